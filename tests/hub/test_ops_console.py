"""The ops console for the pipeline: admin pages and actions, the /ops/ dashboard and /metrics.

Data is made by the real inbox services (receive -> claim -> process), so each page shows what
production writes: traces, shipment events, outbox events, deliveries and dead letters.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from canonical.models import Shipment
from hub.connections.models import Connection, Subscription
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter, ReplayJob
from hub.inbox.models import InboundMessage
from hub.outbox import breaker
from hub.outbox.models import Delivery, OutboxEvent
from tests.factories.canonical import ShipmentFactory
from tests.factories.pipeline import (
    ConnectionFactory,
    SubscriptionFactory,
    WebhookConnectionFactory,
    delivery_make_dead,
    milestone,
    receive_and_process,
)

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-that-must-never-render"


@pytest.fixture
def pipeline():
    """Two connections, four messages: two applied, one for an unknown shipment (apply letter), one
    unreadable (parse letter); one delivery pending and one dead (deliver letter)."""
    shipment = ShipmentFactory(reference="SHP-OPS-1")
    inbound = connection_save(
        data={"slug": "acme-in", "system": "carrier", "connector": "canonical", "config": {}},
        secret=SECRET,
    )
    outbound = WebhookConnectionFactory(slug="erp-out")
    SubscriptionFactory(connection=outbound)
    picked_up = receive_and_process(
        inbound, milestone("SHP-OPS-1", "DEPARTED_PICKUP"), correlation_id="cid-ok"
    )
    delayed = receive_and_process(inbound, milestone("SHP-OPS-1", "DELAYED"))
    unknown = receive_and_process(
        inbound, milestone("SHP-LATER", "DEPARTED_PICKUP"), correlation_id="cid-unk"
    )
    unreadable = receive_and_process(inbound, b"{not json")
    dead_delivery = Delivery.objects.get(event__message=picked_up)
    delivery_make_dead(dead_delivery)
    return {
        "shipment": shipment,
        "inbound": inbound,
        "outbound": outbound,
        "picked_up": picked_up,
        "delayed": delayed,
        "unknown": unknown,
        "unreadable": unreadable,
        "dead_delivery": dead_delivery,
        "pending_delivery": Delivery.objects.get(event__message=delayed),
        "apply_letter": DeadLetter.objects.get(message=unknown),
        "parse_letter": DeadLetter.objects.get(message=unreadable),
        "deliver_letter": DeadLetter.objects.get(delivery=dead_delivery),
    }


def test_fixture_is_what_the_pages_assume(pipeline):
    assert pipeline["picked_up"].status == InboundMessage.Status.PROCESSED
    assert pipeline["unknown"].status == InboundMessage.Status.FAILED
    assert pipeline["apply_letter"].stage == DeadLetter.Stage.APPLY
    assert pipeline["apply_letter"].waiting_for_shipment == "SHP-LATER"
    assert pipeline["parse_letter"].stage == DeadLetter.Stage.PARSE
    assert pipeline["pending_delivery"].status == Delivery.Status.PENDING


# --- Every page loads ------------------------------------------------------------------------------


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _change(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize(
    "model", [Connection, Subscription, InboundMessage, OutboxEvent, Delivery, DeadLetter, ReplayJob]
)
def test_changelists_load_with_data(admin_client, pipeline, model):
    if model is ReplayJob:
        ReplayJob.objects.create(
            filters={"stage": "apply"}, reason="r", requested_by="ops", total=4, replayed=1
        )
    response = admin_client.get(_changelist(model))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_change_pages_load_and_show_the_trace(admin_client, pipeline):
    job = ReplayJob.objects.create(
        filters={"stage": "apply"},
        reason="r",
        requested_by="ops",
        total=1,
        letter_ids=[str(pipeline["apply_letter"].pk)],
    )
    objects = [
        pipeline["inbound"],
        pipeline["outbound"].subscriptions.get(),
        pipeline["picked_up"],
        pipeline["unknown"],
        OutboxEvent.objects.filter(message=pipeline["picked_up"]).get(),
        pipeline["dead_delivery"],
        pipeline["apply_letter"],
        pipeline["deliver_letter"],
        job,
    ]
    for obj in objects:
        response = admin_client.get(_change(obj))
        assert response.status_code == 200, obj

    page = admin_client.get(_change(pipeline["picked_up"])).content.decode()
    # The stage trace as a table, the body, the shipment event and the outbox event it produced.
    assert "<th>Stage</th>" in page and ">receive<" in page and ">parse<" in page and ">apply<" in page
    assert "DEPARTED_PICKUP" in page and "SHP-OPS-1" in page
    assert _change(OutboxEvent.objects.get(message=pipeline["picked_up"])) in page
    page = admin_client.get(_change(pipeline["unknown"])).content.decode()
    assert _change(pipeline["apply_letter"]) in page  # its dead letter, linked
    page = admin_client.get(_change(pipeline["dead_delivery"])).content.decode()
    assert "upstream busy" in page and "503" in page  # the attempt, with its response excerpt
    page = admin_client.get(_change(pipeline["apply_letter"])).content.decode()
    assert "&quot;SHP-LATER&quot;" in page  # the payload, escaped in a <pre>
    assert _change(pipeline["unknown"]) in page


def test_message_search_finds_by_id_key_and_correlation_id(admin_client, pipeline):
    message = pipeline["picked_up"]
    for term in (str(message.pk), message.idempotency_key, "cid-ok"):
        response = admin_client.get(_changelist(InboundMessage), {"q": term})
        assert [m.pk for m in response.context["cl"].result_list] == [message.pk], term


def test_dead_letter_list_filters_by_stage_and_connection(admin_client, pipeline):
    response = admin_client.get(
        _changelist(DeadLetter), {"stage__exact": "apply", "status__exact": "open", "connection": "acme-in"}
    )
    assert [letter.pk for letter in response.context["cl"].result_list] == [pipeline["apply_letter"].pk]


# --- Connections: write-only secret, service errors on the form ------------------------------------


def test_connection_page_never_renders_the_secret_or_its_ciphertext(admin_client, pipeline):
    connection = pipeline["inbound"]
    assert connection.secret_encrypted
    for url in (_changelist(Connection), _change(connection)):
        page = admin_client.get(url).content.decode()
        assert SECRET not in page
        assert connection.secret_encrypted not in page
        assert connection.secret_encrypted[:20] not in page
    page = admin_client.get(_change(connection)).content.decode()
    assert 'type="password"' in page
    assert "/api/v1/inbound/acme-in/" in page


def _connection_form(**overrides) -> dict:
    data = {
        "slug": "new-erp",
        "name": "New ERP",
        "system": "erp",
        "connector": "webhook",
        "carrier": "",
        "is_active": "on",
        "config": '{"url": "https://erp.example.com/hook"}',
        "secret": "",
        "subscriptions-TOTAL_FORMS": "0",
        "subscriptions-INITIAL_FORMS": "0",
        "subscriptions-MIN_NUM_FORMS": "0",
        "subscriptions-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_bad_config_shows_a_form_error_naming_the_field_and_saves_nothing(admin_client):
    response = admin_client.post(
        reverse("admin:connections_connection_add"),
        _connection_form(config='{"url": "not a url"}', secret="typed-secret-xyz"),
    )
    assert response.status_code == 200
    assert "typed-secret-xyz" not in response.content.decode()  # not echoed back either
    form = response.context["adminform"].form
    assert "config" in form.errors
    assert form.errors["config"][0].startswith("url: ")
    assert not Connection.objects.filter(slug="new-erp").exists()


def test_adding_a_connection_saves_through_the_service_and_encrypts_the_secret(admin_client, dns):
    dns["erp.example.com"] = ["93.184.215.14"]  # the URL policy resolves the host on save
    response = admin_client.post(
        reverse("admin:connections_connection_add"),
        _connection_form(
            secret="hush",
            **{
                "subscriptions-TOTAL_FORMS": "1",
                "subscriptions-0-event_types": ["DELIVERED"],
                "subscriptions-0-description": "deliveries",
                "subscriptions-0-is_active": "on",
            },
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    connection = Connection.objects.get(slug="new-erp")
    assert connection.has_secret and "hush" not in connection.secret_encrypted
    assert list(connection.subscriptions.values_list("event_types", flat=True)) == [["DELIVERED"]]


def test_blank_secret_keeps_it_and_clear_secret_removes_it(admin_client, pipeline):
    connection = pipeline["inbound"]
    stored = connection.secret_encrypted
    form = _connection_form(slug="acme-in", system="carrier", connector="canonical", config="{}")
    response = admin_client.post(_change(connection), form)
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.secret_encrypted == stored
    response = admin_client.post(_change(connection), {**form, "clear_secret": "on"})
    assert response.status_code == 302
    connection.refresh_from_db()
    assert not connection.has_secret


def test_a_rejected_subscription_rolls_back_the_connection_change(admin_client, pipeline):
    # The canonical connector cannot render events, so subscription_save refuses a subscription.
    connection = pipeline["inbound"]
    form = _connection_form(
        slug="acme-in",
        name="renamed",
        system="carrier",
        connector="canonical",
        config="{}",
        **{
            "subscriptions-TOTAL_FORMS": "1",
            "subscriptions-0-description": "all events",
            "subscriptions-0-is_active": "on",
        },
    )
    response = admin_client.post(_change(connection), form)
    assert response.status_code == 200
    assert "cannot deliver events" in response.content.decode()
    connection.refresh_from_db()
    assert connection.name != "renamed"
    assert not connection.subscriptions.exists()


# --- Dead-letter actions -----------------------------------------------------------------------------


def _action(admin_client, action: str, letters, *, query: str = "", **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(x.pk) for x in letters], **extra}
    url = _changelist(DeadLetter) + (f"?{query}" if query else "")
    return admin_client.post(url, {**data, "index": "0"} if "confirm" not in extra else data)


def test_replay_asks_for_a_reason_then_replays_the_letter(admin_client, admin_user, pipeline):
    letter = pipeline["apply_letter"]
    # First the intermediate page: nothing replayed yet.
    response = _action(admin_client, "replay_selected", [letter])
    assert response.status_code == 200
    assert response.templates[0].name == "admin/deadletters/deadletter/action_reason.html"
    assert 'name="reason"' in response.content.decode()
    letter.refresh_from_db()
    assert letter.replay_count == 0

    # The shipment now exists: the confirmed replay applies the event and settles the letter.
    ShipmentFactory(reference="SHP-LATER")
    response = _action(
        admin_client, "replay_selected", [letter], confirm="yes", reason="shipment created", select_across="0"
    )
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    assert letter.replay_count == 1
    assert letter.last_replayed_by == admin_user.get_username()
    assert letter.last_replay_reason == "shipment created"
    assert Shipment.objects.get(reference="SHP-LATER").status == Shipment.Status.PICKED_UP
    shown = [str(m) for m in admin_client.get(_changelist(DeadLetter)).context["messages"]]
    assert any("Replayed 1 letter(s) successfully" in m for m in shown)


def test_replay_without_a_reason_stays_on_the_page(admin_client, pipeline):
    letter = pipeline["apply_letter"]
    response = _action(admin_client, "replay_selected", [letter], confirm="yes", reason="", select_across="0")
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    letter.refresh_from_db()
    assert letter.replay_count == 0


def test_replay_that_fails_again_is_reported(admin_client, pipeline):
    letter = pipeline["apply_letter"]  # the shipment still does not exist
    _action(admin_client, "replay_selected", [letter], confirm="yes", reason="try", select_across="0")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.OPEN and letter.replay_count == 1
    shown = [str(m) for m in admin_client.get(_changelist(DeadLetter)).context["messages"]]
    assert any("1 replay(s) failed" in m and "SHP-LATER" in m for m in shown)


def test_resolve_closes_open_letters_without_replaying(admin_client, admin_user, pipeline):
    letter = pipeline["parse_letter"]
    response = _action(admin_client, "resolve_selected", [letter])
    assert response.status_code == 200  # asks why first
    response = _action(
        admin_client, "resolve_selected", [letter], confirm="yes", reason="sender fixed it", select_across="0"
    )
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESOLVED
    assert letter.replay_count == 0
    assert letter.last_replay_reason == "sender fixed it"


def test_bulk_replay_creates_a_job_from_the_current_filter(admin_client, pipeline):
    query = "stage__exact=apply&connection=acme-in"
    response = _action(admin_client, "bulk_replay_job", [pipeline["parse_letter"]], query=query)
    assert response.status_code == 200
    assert response.context["count"] == 1  # the filter's letters, not the selection

    response = _action(
        admin_client,
        "bulk_replay_job",
        [pipeline["parse_letter"]],
        query=query,
        confirm="yes",
        reason="carrier resent",
        select_across="0",
    )
    assert response.status_code == 302
    job = ReplayJob.objects.get()
    assert job.filters == {"stage": "apply", "connection": "acme-in"}
    assert job.letter_ids == [str(pipeline["apply_letter"].pk)]
    assert job.reason == "carrier resent"
    shown = [str(m) for m in admin_client.get(_changelist(DeadLetter)).context["messages"]]
    assert any(_change(job) in m for m in shown)


def test_bulk_replay_refuses_a_filter_a_job_cannot_express(admin_client, pipeline):
    _action(admin_client, "bulk_replay_job", [pipeline["apply_letter"]], query="q=SHP-LATER")
    assert not ReplayJob.objects.exists()


def test_retry_now_requeues_a_dead_delivery_through_its_letter(admin_client, pipeline):
    dead, pending = pipeline["dead_delivery"], pipeline["pending_delivery"]
    response = admin_client.post(
        _changelist(Delivery),
        {"action": "retry_now", "index": "0", helpers.ACTION_CHECKBOX_NAME: [str(dead.pk), str(pending.pk)]},
    )
    assert response.status_code == 302
    dead.refresh_from_db()
    assert dead.status == Delivery.Status.PENDING and dead.attempts == 0
    assert DeadLetter.objects.get(delivery=dead).replay_count == 1


def test_read_only_pages_offer_no_add_or_delete(admin_client, pipeline):
    assert admin_client.get(reverse("admin:inbox_inboundmessage_add")).status_code == 403
    response = admin_client.post(_change(pipeline["apply_letter"]).replace("/change/", "/delete/"))
    assert response.status_code == 403


# --- Dashboard ---------------------------------------------------------------------------------------


def test_dashboard_shows_the_counts_with_bounded_queries(
    admin_client, pipeline, django_assert_max_num_queries
):
    # 8 blocks (one query each) + session + user.
    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("ops-dashboard"))
    assert response.status_code == 200
    ctx = response.context
    inbound = {row["status"]: (row["recent"], row["total"]) for row in ctx["inbound"]}
    assert inbound["processed"] == (2, 2)
    assert inbound["failed"] == (2, 2)
    assert ctx["events_applied_recent"] == 2
    deliveries = {row["label"]: row["count"] for row in ctx["deliveries"]}
    assert deliveries == {"Pending": 1, "In flight": 0, "Delivered (last hour)": 0, "Dead": 1}
    letters = {(row["stage"], row["connection"]): row["count"] for row in ctx["dead_letters"]}
    assert letters == {("apply", "acme-in"): 1, ("parse", "acme-in"): 1, ("deliver", "erp-out"): 1}
    assert [(c["slug"], c["state"]) for c in ctx["circuits"]] == [("erp-out", "closed")]
    assert dict((row["status"], row["count"]) for row in ctx["shipments"])["PICKED_UP"] == 1
    assert dict((row["kind"], row["count"]) for row in ctx["exceptions"])["DELAYED"] == 1
    assert ctx["oldest_waiting"] == "none waiting"

    page = response.content.decode()
    assert re.search(r'id="events-applied-recent">2<', page)
    assert re.search(r'id="dead-letters-open"><a href="[^"]+">3<', page)
    # The letter counts link into the filtered changelist.
    assert "stage__exact=apply&amp;status__exact=open&amp;connection=acme-in" in page


def test_dashboard_query_count_does_not_grow_with_connections(
    admin_client, pipeline, django_assert_max_num_queries
):
    for n in range(5):
        SubscriptionFactory(connection=WebhookConnectionFactory(slug=f"extra-{n}"))
        ConnectionFactory(slug=f"idle-{n}")
    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("ops-dashboard"))
    assert len(response.context["circuits"]) == 6


def test_dashboard_is_staff_only(client):
    response = client.get(reverse("ops-dashboard"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_admin_index_links_to_the_dashboard(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("ops-dashboard")}"' in page


# --- /metrics ----------------------------------------------------------------------------------------


def test_metrics_from_loopback_render_the_gauges(client, pipeline):
    defaults = breaker.breaker_policy(None)
    # A dead receiver: the default minimum of sends in the window, all failed.
    breaker.breaker_record(pipeline["outbound"].pk, succeeded=0, failed=defaults.min_calls, policy=defaults)
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for line in (
        'crossdock_dead_letters_open{stage="apply"} 1.0',
        'crossdock_dead_letters_open{stage="parse"} 1.0',
        'crossdock_dead_letters_open{stage="deliver"} 1.0',
        'crossdock_dead_letters_open{stage="map"} 0.0',
        'crossdock_inbound_messages{status="processed"} 2.0',
        'crossdock_inbound_messages{status="failed"} 2.0',
        'crossdock_deliveries{status="pending"} 1.0',
        'crossdock_deliveries{status="dead"} 1.0',
        'crossdock_circuit_open{connection="erp-out"} 1.0',
        'crossdock_shipments{status="PICKED_UP"} 1.0',
        "crossdock_oldest_waiting_message_seconds 0.0",
    ):
        assert line in text, line


def test_metrics_oldest_waiting_message_is_its_age(client, pipeline):
    from hub.inbox.services import inbound_message_receive

    inbound_message_receive(
        connection=pipeline["inbound"],
        body=b"{}",
        content_type="application/json",
        headers={},
        idempotency_key="waiting-1",
        correlation_id="cid-wait",
    )
    text = client.get("/metrics").content.decode()
    value = float(re.search(r"^crossdock_oldest_waiting_message_seconds (\S+)$", text, re.M).group(1))
    assert 0.0 <= value < 60


def test_metrics_from_elsewhere_without_a_key_is_401_problem(client, db):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_metrics_through_a_local_proxy_is_not_loopback(client, db):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 401


def test_metrics_with_an_admin_key_from_anywhere(client, admin_caller, pipeline):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Token {admin_caller.key}")
    assert response.status_code == 200
    assert 'crossdock_dead_letters_open{stage="apply"} 1.0' in response.content.decode()


def test_metrics_with_a_partner_key_is_403_and_a_bad_key_401(client, make_caller):
    carrier_scac = ShipmentFactory().carrier.scac
    partner = make_caller("partner", partner_code=carrier_scac)
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Token {partner.key}")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Token cdk_nope")
    assert response.status_code == 401
