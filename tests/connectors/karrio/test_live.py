"""The karrio connector against the live Karrio peer (peers/karrio.sh), nothing mocked.

Karrio's own list API counts its records wherever a test claims "no duplicate". Webhooks reach the
hub's real inbound endpoint (pytest-django's live_server) and the hub's drain service applies them.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests

from canonical.models import Shipment, ShipmentException
from connectors import registry
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.karrio.client import KarrioClient
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox.models import InboundMessage
from hub.inbox.services import inbox_drain
from hub.ledger.models import SideEffect
from hub.ledger.services import (
    side_effect_begin,
    side_effect_lease_expire,
    side_effect_perform,
    side_effect_retry,
)
from hub.mappings.context import connection_context
from tests.connectors.karrio.conftest import SCRIPT, order_payload, tracking_event
from tests.factories.canonical import ShipmentFactory

pytestmark = pytest.mark.peer

CONNECTOR = registry.get("karrio").instance()


def ctx(connection):
    return connection_context(connection, direction="outbound")


def counts(karrio_peer, payload: dict) -> tuple[int, int]:
    """(Karrio orders with this order_id, Karrio shipments with this reference), any status."""
    return (
        karrio_peer.count("orders", order_id=payload.get("order_reference") or payload["reference"]),
        karrio_peer.count("shipments", reference=payload["reference"]),
    )


# --- operate / lookup ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_shipment_create_buys_a_label_for_the_order_and_tags_its_tracker(karrio_peer, karrio_connection):
    payload = order_payload()

    result = CONNECTOR.operate("shipment.create", payload, ctx(karrio_connection()))

    assert result.external_id.startswith("shp_")
    data = result.data
    assert data["tracker_id"].startswith("trk_") and data["order_id"].startswith("ord_")
    assert data["tracking_number"] and data["status"] == "created"
    assert (data["service"], data["total_charge"], data["currency"]) == ("offline_standard", 10.0, "USD")
    tracker = karrio_peer.get(f"/v1/trackers/{data['tracker_id']}")
    assert tracker["tracking_number"] == data["tracking_number"]
    assert tracker["metadata"]["crossdock_reference"] == payload["reference"]
    order = karrio_peer.get(f"/v1/orders/{data['order_id']}")
    assert order["order_id"] == payload["reference"]
    assert order["status"] == "fulfilled"  # every line item went on the shipment (linked by parent_id)
    assert [s["id"] for s in order["shipments"]] == [result.external_id]
    assert counts(karrio_peer, payload) == (1, 1)


@pytest.mark.django_db
def test_shipments_by_ids_reads_the_ones_karrio_has_in_one_list_call(karrio_peer, karrio_connection):
    first = CONNECTOR.operate("shipment.create", order_payload(), ctx(karrio_connection()))
    second = CONNECTOR.operate("shipment.create", order_payload(), ctx(karrio_connection()))
    client = KarrioClient.from_context(ctx(karrio_connection()))

    found = client.shipments_by_ids([second.external_id, first.external_id, "shp_00000000000000000000000000"])

    assert sorted(found) == sorted([first.external_id, second.external_id])
    assert found[first.external_id]["tracker_id"] == first.data["tracker_id"]


@pytest.mark.django_db
def test_operate_again_and_lookup_find_the_same_order_and_shipment(karrio_peer, karrio_connection):
    context, payload = ctx(karrio_connection()), order_payload()
    assert CONNECTOR.lookup("shipment.create", payload, context) is None

    first = CONNECTOR.operate("shipment.create", payload, context)
    again = CONNECTOR.operate("shipment.create", payload, context)
    found = CONNECTOR.lookup("shipment.create", payload, context)
    order = CONNECTOR.operate("order.create", payload, context)

    assert again.external_id == found.external_id == first.external_id
    assert found.data["tracking_number"] == first.data["tracking_number"]
    assert order.external_id == first.data["order_id"]
    assert CONNECTOR.lookup("order.create", payload, context).external_id == order.external_id
    assert counts(karrio_peer, payload) == (1, 1)


@pytest.mark.django_db
def test_two_shipments_of_one_order_share_the_karrio_order(karrio_peer, karrio_connection):
    context, order_ref = ctx(karrio_connection()), f"SO-{uuid.uuid4().hex[:8]}"
    first_lines = [{"sku": "W-1", "quantity": 1, "weight_kg": 1}]
    one = order_payload(f"{order_ref}-1", order_reference=order_ref, lines=first_lines)
    two = order_payload(f"{order_ref}-2", order_reference=order_ref, lines=[{"sku": "G-7", "quantity": 1}])

    a = CONNECTOR.operate("shipment.create", one, context)
    b = CONNECTOR.operate("shipment.create", two, context)

    assert a.external_id != b.external_id
    assert a.data["order_id"] == b.data["order_id"]
    assert karrio_peer.count("orders", order_id=order_ref) == 1
    assert karrio_peer.count("shipments", reference=one["reference"]) == 1


@pytest.mark.django_db
def test_cancel_voids_the_label_and_is_idempotent(karrio_peer, karrio_connection):
    context, payload = ctx(karrio_connection()), order_payload()
    bought = CONNECTOR.operate("shipment.create", payload, context)
    assert CONNECTOR.lookup("shipment.cancel", {"reference": payload["reference"]}, context) is None

    cancelled = CONNECTOR.operate("shipment.cancel", {"external_id": bought.external_id}, context)
    again = CONNECTOR.operate("shipment.cancel", {"reference": payload["reference"]}, context)

    assert cancelled.external_id == again.external_id == bought.external_id
    assert cancelled.data["status"] == again.data["status"] == "cancelled"
    assert karrio_peer.get(f"/v1/shipments/{bought.external_id}")["status"] == "cancelled"
    # A cancelled shipment no longer holds its reference: creating it again buys a new label.
    assert CONNECTOR.lookup("shipment.create", payload, context) is None


@pytest.mark.django_db
def test_webhook_register_subscribes_once_and_returns_the_secret(karrio_peer, karrio_connection):
    context, url = ctx(karrio_connection()), f"http://127.0.0.1:9/hook-{uuid.uuid4().hex[:8]}"

    first = CONNECTOR.operate("webhook.register", {"url": url}, context)
    again = CONNECTOR.operate("webhook.register", {"url": url}, context)

    try:
        assert first.external_id.startswith("weh_") and again.external_id == first.external_id
        assert first.data["secret"].startswith("whsec_") and again.data["secret"] == first.data["secret"]
        assert first.data["enabled_events"] == ["all"]
        hooks = [h for h in karrio_peer.get("/v1/webhooks", limit=1000)["results"] if h["url"] == url]
        assert len(hooks) == 1
    finally:
        karrio_peer.delete(f"/v1/webhooks/{first.external_id}")


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payload_karrio_rejects_is_a_permanent_error_with_karrios_message(karrio_peer, karrio_connection):
    payload = order_payload()
    del payload["ship_to"]["country"]

    with pytest.raises(PermanentError) as caught:
        CONNECTOR.operate("shipment.create", payload, ctx(karrio_connection()))

    assert caught.value.status_code == 400
    assert "country_code: This field is required" in caught.value.detail
    assert not isinstance(caught.value, TransientError | AuthError)
    assert counts(karrio_peer, payload) == (0, 0)


@pytest.mark.django_db
def test_cancelling_a_shipment_in_transit_is_refused_by_karrio(karrio_peer, karrio_connection):
    context = ctx(karrio_connection())
    bought = CONNECTOR.operate("shipment.create", order_payload(), context)
    karrio_peer.inject(bought.data["tracker_id"], "in_transit", tracking_event(2, "in_transit", "IT"))

    with pytest.raises(PermanentError) as caught:
        CONNECTOR.operate("shipment.cancel", {"external_id": bought.external_id}, context)

    assert caught.value.status_code == 409
    assert "can not be cancelled" in caught.value.detail


@pytest.mark.django_db
def test_a_wrong_api_key_is_an_auth_error(karrio_peer, karrio_connection):
    connection = karrio_connection()
    connection_save(instance=connection, data={}, secret=json.dumps({"api_key": "key_not_a_real_one"}))

    with pytest.raises(AuthError) as caught:
        CONNECTOR.operate("shipment.create", order_payload(), ctx(connection))

    assert caught.value.status_code == 401


@pytest.mark.django_db
def test_a_stopped_peer_is_transient_and_a_restart_keeps_the_records(karrio_peer, karrio_connection):
    context, before, during = ctx(karrio_connection()), order_payload(), order_payload()
    bought = CONNECTOR.operate("shipment.create", before, context)
    subprocess.run([str(SCRIPT), "stop"], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    try:
        with pytest.raises(TransientError, match="connection failed"):
            CONNECTOR.operate("shipment.create", during, context)
        with pytest.raises(TransientError):
            CONNECTOR.lookup("shipment.create", before, context)
    finally:
        subprocess.run([str(SCRIPT), "start"], check=True, stdin=subprocess.DEVNULL, capture_output=True)

    assert CONNECTOR.lookup("shipment.create", before, context).external_id == bought.external_id
    assert CONNECTOR.operate("shipment.create", during, context).external_id.startswith("shp_")
    assert counts(karrio_peer, before) == counts(karrio_peer, during) == (1, 1)


# --- the ledger: exactly one order and shipment per business key -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_ledger_creates_the_same_shipment_once(karrio_peer, karrio_connection):
    connection, payload = karrio_connection(), order_payload()

    first = side_effect_perform(
        connection=connection, operation="shipment.create", business_key=payload["reference"], payload=payload
    )
    second = side_effect_perform(
        connection=connection, operation="shipment.create", business_key=payload["reference"], payload=payload
    )

    assert first.pk == second.pk and second.status == SideEffect.Status.DONE
    assert second.external_id.startswith("shp_") and second.result["tracker_id"].startswith("trk_")
    assert second.attempts == 1
    assert counts(karrio_peer, payload) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_the_write_and_its_record_is_adopted_by_lookup(karrio_peer, karrio_connection):
    connection, payload = karrio_connection(), order_payload()
    key = payload["reference"]
    begun = side_effect_begin(
        connection=connection, operation="shipment.create", business_key=key, payload=payload
    )
    written = CONNECTOR.operate("shipment.create", payload, ctx(connection))  # ...and the worker dies here
    side_effect_lease_expire(effect_id=begun.effect.pk)

    effect = side_effect_perform(
        connection=connection, operation="shipment.create", business_key=key, payload=payload
    )

    assert effect.status == SideEffect.Status.DONE and effect.found_by_lookup is True
    assert effect.external_id == written.external_id
    assert effect.result["tracking_number"] == written.data["tracking_number"]
    assert counts(karrio_peer, payload) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_crash_after_the_order_finishes_the_shipment_without_a_second_order(karrio_peer, karrio_connection):
    connection, payload = karrio_connection(), order_payload()
    key = payload["reference"]
    begun = side_effect_begin(
        connection=connection, operation="shipment.create", business_key=key, payload=payload
    )
    CONNECTOR.operate("order.create", payload, ctx(connection))  # the first step only, then a crash
    side_effect_lease_expire(effect_id=begun.effect.pk)

    effect = side_effect_perform(
        connection=connection, operation="shipment.create", business_key=key, payload=payload
    )

    assert effect.status == SideEffect.Status.DONE and effect.found_by_lookup is False
    assert counts(karrio_peer, payload) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_retry_after_the_peer_was_down_writes_once(karrio_peer, karrio_connection):
    connection, payload = karrio_connection(), order_payload()
    key = payload["reference"]
    subprocess.run([str(SCRIPT), "stop"], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    try:
        with pytest.raises(TransientError):
            side_effect_perform(
                connection=connection, operation="shipment.create", business_key=key, payload=payload
            )
    finally:
        subprocess.run([str(SCRIPT), "start"], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    assert SideEffect.objects.get(business_key=key).status == SideEffect.Status.PENDING

    effect = side_effect_perform(
        connection=connection, operation="shipment.create", business_key=key, payload=payload
    )
    retried = side_effect_retry(effect_id=effect.pk)

    assert effect.status == SideEffect.Status.DONE and effect.attempts == 2
    assert retried.external_id == effect.external_id
    assert counts(karrio_peer, payload) == (1, 1)


# --- webhooks into the hub ----------------------------------------------------------------------------


@pytest.fixture
def hub_subscribed(karrio_peer, karrio_connection, live_server, transactional_db):
    """A connection whose webhook Karrio delivers to the hub's live inbound endpoint; the returned
    function sets which webhook secret the connection holds (default: the one Karrio issued)."""
    connection = karrio_connection()
    url = f"{live_server.url}/api/v1/inbound/{connection.slug}/"
    hook = CONNECTOR.operate("webhook.register", {"url": url}, ctx(connection))
    connection_save(
        instance=connection,
        data={},
        secret=json.dumps({"api_key": karrio_peer.api_key, "webhook_secret": hook.data["secret"]}),
    )
    yield connection, hook, url
    karrio_peer.delete(f"/v1/webhooks/{hook.external_id}")


def test_karrio_webhooks_drive_the_canonical_shipment_through_the_hub(karrio_peer, hub_subscribed):
    connection, hook, _url = hub_subscribed
    payload = order_payload()
    ShipmentFactory(reference=payload["reference"], status=Shipment.Status.TENDERED)

    bought = CONNECTOR.operate("shipment.create", payload, ctx(connection))
    tracker = bought.data["tracker_id"]
    karrio_peer.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", "Montreal, QC"))
    karrio_peer.inject(tracker, "in_transit", tracking_event(2, "in_transit", "AR", "Kingston, ON"))
    karrio_peer.inject(tracker, "out_for_delivery", tracking_event(3, "out_for_delivery", "OD"))
    failed = tracking_event(3, "delivery_failed", "NA", time="15:00", timestamp="2030-02-03T15:00:00.000Z")
    karrio_peer.inject(tracker, "delivery_failed", {**failed, "reason": "consignee_not_available"})
    karrio_peer.inject(tracker, "delivered", tracking_event(4, "delivered", "DL"), delivered=True)
    # Karrio sends each webhook inside the API call that caused it: all have arrived by now.
    received = InboundMessage.objects.filter(connection=connection).count()

    processed = inbox_drain()

    assert received >= 14 and processed == received  # 5 at purchase, 2 per milestone but picked_up (1)
    assert set(InboundMessage.objects.filter(connection=connection).values_list("status", flat=True)) == {
        InboundMessage.Status.PROCESSED
    }
    assert not DeadLetter.objects.exists()
    shipment = Shipment.objects.get(reference=payload["reference"])
    assert shipment.status == Shipment.Status.DELIVERED
    assert list(shipment.events.order_by("occurred_at").values_list("event_type", flat=True)) == [
        "TENDER_ACCEPTED", "DEPARTED_PICKUP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELAYED", "DELIVERED",
    ]  # fmt: skip
    assert shipment.delivered_at.isoformat() == "2030-02-04T10:00:00+00:00"
    [delay] = ShipmentException.objects.filter(shipment=shipment)
    assert (delay.kind, delay.status) == ("DELAYED", "RESOLVED")

    # Karrio re-sends its newest tracker_updated event (its webhook test with the stored event): the
    # hub recognises it by natural id and stores nothing new.
    resent = karrio_peer.post(
        f"/v1/webhooks/{hook.external_id}/test", {"event_id": karrio_peer.newest_event_id("tracker_updated")}
    )
    assert resent["success"] is True
    assert InboundMessage.objects.filter(connection=connection).count() == received


def test_a_webhook_with_the_wrong_secret_is_refused_with_401(karrio_peer, hub_subscribed):
    connection, hook, url = hub_subscribed
    connection_save(
        instance=connection,
        data={},
        secret=json.dumps({"api_key": karrio_peer.api_key, "webhook_secret": "whsec_x"}),
    )
    body = {"event": "order_created", "data": {"id": "ord_x", "status": "unfulfilled"}}

    # Karrio's own delivery (its secret no longer matches the connection's) ...
    sent = karrio_peer.post(f"/v1/webhooks/{hook.external_id}/test", {"payload": body})
    # ... and the same request made directly, to see the status code.
    direct = requests.post(url, json=body, headers={"X-Event-Id": hook.data["secret"]}, timeout=10)
    unsigned = requests.post(url, json=body, timeout=10)

    assert sent["success"] is False
    assert (direct.status_code, unsigned.status_code) == (401, 401)
    assert "does not match" in direct.json()["detail"]
    assert not InboundMessage.objects.filter(connection=connection).exists()
