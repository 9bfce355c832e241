"""Who may write what through the inbox (hub.inbox.authority, docs/subsystems/authority.md).

A connection sends only the document kinds its connector declares, narrowed per connection; a
connection bound to a carrier writes only that carrier's shipments, their charges and their
milestones, and never orders or customers. A refusal is a dead letter at stage ``validate`` naming
the binding, the record and the rule, the other party's records stay as they were, and a replay of
the letter is refused again. The batch fast path follows the same rule.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from canonical.models import Customer, FreightCharge, Order, Shipment, ShipmentEvent
from connectors import registry
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.core.errors import ValidationFailed
from hub.deadletters.models import DeadLetter
from hub.deadletters.replay import dead_letter_replay
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage
from tests.factories.canonical import (
    CarrierFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ShipmentFactory,
    StopFactory,
)

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _connection(slug: str, *, carrier=None, connector: str = "canonical", kinds: list[str] | None = None):
    data: dict[str, Any] = {"slug": slug, "system": "carrier", "connector": connector, "config": {}}
    if carrier is not None:
        data["carrier"] = carrier
    if kinds is not None:
        data["document_kinds"] = kinds
    return connection_save(data=data)


def _receive(connection: Connection, doc: Any) -> InboundMessage:
    received = inbox.inbound_message_receive(
        connection=connection,
        body=json.dumps(doc).encode(),
        content_type=JSON,
        headers={"content-type": JSON},
        idempotency_key=None,
        correlation_id="corr-authority",
    )
    assert received.created
    return received.message


def _process(connection: Connection, doc: Any) -> InboundMessage:
    message = _receive(connection, doc)
    assert message.pk in inbox.inbound_batch_claim()
    processed = inbox.inbound_message_process(message_id=message.pk)
    assert processed is not None
    return processed


def _letter(message: InboundMessage) -> DeadLetter:
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.status) == ("validate", "open")
    return letter


@pytest.fixture
def acme():
    return CarrierFactory(scac="ACME")


@pytest.fixture
def rival():
    return CarrierFactory(scac="RIVL")


@pytest.fixture
def feed(acme):
    """ACME's own feed (canonical connector: every document kind by default)."""
    return _connection("acme-feed", carrier=acme)


@pytest.fixture
def theirs(rival):
    """RIVL's shipment with two stops, planned by someone other than ACME."""
    shipment = ShipmentFactory(reference="SHP-RIVL-1", carrier=rival)
    StopFactory(shipment=shipment, sequence=1, kind="PICKUP")
    StopFactory(shipment=shipment, sequence=2, kind="DELIVERY")
    return shipment


def _stops(shipment: Shipment) -> list[tuple[int, str, str]]:
    return [(s.sequence, s.kind, s.location.code) for s in shipment.stops.order_by("sequence")]


def _shipment_doc(reference: str, *, scac: str | None, stops: list[dict] | None = None, **extra) -> dict:
    doc: dict[str, Any] = {"kind": "shipment", "reference": reference, "stops": stops or [], **extra}
    if scac is not None:
        doc["carrier"] = {"scac": scac}
    return doc


def _stop(sequence: int, kind: str, code: str) -> dict:
    return {"sequence": sequence, "kind": kind, "location": {"code": code, "name": code}}


def _charge_doc(reference: str, invoice: str = "INV-9", amount: str = "500.00") -> dict:
    return {
        "kind": "freight_charge",
        "invoice_number": invoice,
        "shipment": {"reference": reference},
        "currency": "USD",
        "charges": [{"kind": "ACCESSORIAL", "amount": amount}],
    }


def _order_doc(reference: str, customer_code: str, name: str = "Renamed by a carrier") -> dict:
    return {
        "kind": "order",
        "reference": reference,
        "customer": {"code": customer_code, "name": name},
        "lines": [{"line_number": 1, "sku": "CARRIER-SKU", "quantity": "9", "unit_price": "0.01"}],
    }


# --- A carrier-bound feed and another carrier's records ---------------------------------------------


def test_a_carrier_feed_cannot_re_carrier_another_carriers_shipment(feed, theirs):
    before = _stops(theirs)

    message = _process(feed, _shipment_doc(theirs.reference, scac="ACME", stops=[_stop(1, "PICKUP", "X1")]))

    theirs.refresh_from_db()
    assert theirs.carrier.scac == "RIVL"
    assert _stops(theirs) == before
    assert message.status == "failed"
    assert _letter(message).reason == (
        "connection 'acme-feed' is bound to carrier ACME: shipment 'SHP-RIVL-1' belongs to carrier RIVL "
        "(a carrier-bound connection writes only its own carrier's shipments)"
    )


def test_a_carrier_feed_cannot_empty_the_stops_of_another_carriers_shipment(feed, theirs):
    before = _stops(theirs)
    assert len(before) == 2

    message = _process(feed, _shipment_doc(theirs.reference, scac=None, stops=[]))

    theirs.refresh_from_db()
    assert (theirs.carrier.scac, _stops(theirs)) == ("RIVL", before)
    assert "shipment 'SHP-RIVL-1' belongs to carrier RIVL" in _letter(message).reason


def test_a_carrier_feed_cannot_cancel_another_carriers_shipment(feed, theirs):
    message = _process(feed, _shipment_doc(theirs.reference, scac=None, purpose="CANCELLATION"))

    theirs.refresh_from_db()
    assert theirs.status == "PLANNED"
    assert "shipment 'SHP-RIVL-1' belongs to carrier RIVL" in _letter(message).reason


def test_a_carrier_feed_cannot_take_an_unassigned_shipment(feed):
    open_load = ShipmentFactory(reference="SHP-OPEN", carrier=None)

    message = _process(feed, _shipment_doc(open_load.reference, scac="ACME"))

    open_load.refresh_from_db()
    assert open_load.carrier is None
    assert "shipment 'SHP-OPEN' belongs to no carrier" in _letter(message).reason


def test_a_carrier_feed_cannot_create_a_shipment_naming_another_carrier(feed, rival):
    message = _process(feed, _shipment_doc("SHP-NEW-RIVL", scac="RIVL", stops=[_stop(1, "PICKUP", "X1")]))

    assert not Shipment.objects.filter(reference="SHP-NEW-RIVL").exists()
    assert _letter(message).reason == (
        "connection 'acme-feed' is bound to carrier ACME: shipment 'SHP-NEW-RIVL' names carrier RIVL "
        "(a carrier-bound connection writes only its own carrier's shipments)"
    )


def test_a_carrier_feed_cannot_charge_another_carriers_shipment(feed, theirs):
    message = _process(feed, _charge_doc(theirs.reference))

    assert not FreightCharge.objects.filter(shipment=theirs).exists()
    assert _letter(message).reason == (
        "connection 'acme-feed' is bound to carrier ACME: shipment 'SHP-RIVL-1' belongs to carrier "
        "RIVL (a carrier-bound connection charges only its own carrier's shipments)"
    )


def test_a_carrier_feed_cannot_overwrite_orders_or_customers(feed):
    customer = CustomerFactory(code="CUST-BIG", name="Big Customer")
    order = OrderFactory(reference="SO-BIG", customer=customer)
    OrderLineFactory(order=order, line_number=1)

    message = _process(feed, _order_doc(order.reference, customer.code))

    customer.refresh_from_db()
    assert customer.name == "Big Customer"
    assert [(line.line_number, line.product.sku) for line in order.lines.all()] != [(1, "CARRIER-SKU")]
    assert _letter(message).reason == (
        "connection 'acme-feed' is bound to carrier ACME: order 'SO-BIG' (customer 'CUST-BIG') is not "
        "the carrier's (a carrier-bound connection never writes orders or customers)"
    )


def test_a_carrier_feed_cannot_create_an_order_or_customer_either(feed):
    message = _process(feed, _order_doc("SO-NEW", "CUST-NEW"))

    assert not Order.objects.filter(reference="SO-NEW").exists()
    assert not Customer.objects.filter(code="CUST-NEW").exists()
    assert "never writes orders or customers" in _letter(message).reason


def test_a_carrier_feed_milestone_for_another_carriers_shipment_is_refused_at_validate(feed, theirs):
    message = _process(
        feed,
        {
            "event_type": "DELIVERED",
            "occurred_at": "2026-11-20T14:05:00Z",
            "shipment": {"reference": theirs.reference},
        },
    )

    theirs.refresh_from_db()
    assert theirs.status == "PLANNED"
    assert not ShipmentEvent.objects.filter(shipment=theirs).exists()
    letter = _letter(message)
    assert letter.waiting_for_shipment == ""  # not retried forever: the shipment exists, it is not ACME's
    assert letter.reason == (
        "connection 'acme-feed' is bound to carrier ACME: shipment 'SHP-RIVL-1' belongs to carrier "
        "RIVL (a carrier-bound connection reports milestones only on its own carrier's shipments)"
    )


def test_one_refused_document_in_a_batch_leaves_the_others_applied(feed, acme, theirs):
    mine = ShipmentFactory(reference="SHP-ACME-2", carrier=acme)

    message = _process(feed, [_charge_doc(mine.reference, invoice="A-1"), _charge_doc(theirs.reference)])

    assert message.status == "partial"
    assert FreightCharge.objects.filter(shipment=mine).count() == 1
    assert not FreightCharge.objects.filter(shipment=theirs).exists()
    assert DeadLetter.objects.get(message=message).item_index == 1


# --- What a bound feed and an unbound one may still do ----------------------------------------------


def test_a_carrier_feed_still_writes_its_own_shipments_charges_and_milestones(feed, acme):
    mine = ShipmentFactory(reference="SHP-ACME-1", carrier=acme)
    StopFactory(shipment=mine, sequence=1, kind="PICKUP")

    replanned = _process(
        feed,
        _shipment_doc(
            mine.reference, scac="ACME", stops=[_stop(1, "PICKUP", "P1"), _stop(2, "DELIVERY", "D1")]
        ),
    )
    charged = _process(feed, _charge_doc(mine.reference))
    moved = _process(
        feed,
        {
            "event_type": "IN_TRANSIT",
            "occurred_at": "2026-11-20T14:05:00Z",
            "shipment": {"reference": mine.reference},
        },
    )

    assert [m.status for m in (replanned, charged, moved)] == ["processed"] * 3
    mine.refresh_from_db()
    assert (mine.status, _stops(mine)) == ("IN_TRANSIT", [(1, "PICKUP", "P1"), (2, "DELIVERY", "D1")])
    assert FreightCharge.objects.get(shipment=mine).amount == Decimal("500.00")
    assert not DeadLetter.objects.exists()


def test_a_new_shipment_from_a_carrier_feed_is_the_carriers_own(feed, acme):
    message = _process(feed, _shipment_doc("SHP-ACME-NEW", scac=None, stops=[_stop(1, "PICKUP", "P1")]))

    assert message.status == "processed"
    assert Shipment.objects.get(reference="SHP-ACME-NEW").carrier == acme


def test_an_unbound_connection_applies_every_kind_its_connector_allows(rival, theirs):
    customer = CustomerFactory(code="CUST-OPEN", name="Old name")
    unbound = _connection("tms-in")

    results = [
        _process(unbound, _shipment_doc(theirs.reference, scac="ACME", stops=[])),
        _process(unbound, _charge_doc(theirs.reference)),
        _process(unbound, _order_doc("SO-OPEN", customer.code, name="New name")),
        _process(
            unbound,
            {
                "event_type": "IN_TRANSIT",
                "occurred_at": "2026-11-20T14:05:00Z",
                "shipment": {"reference": theirs.reference},
            },
        ),
    ]

    assert [m.status for m in results] == ["processed"] * 4
    theirs.refresh_from_db()
    assert (theirs.carrier.scac, _stops(theirs), theirs.status) == ("ACME", [], "IN_TRANSIT")
    assert FreightCharge.objects.filter(shipment=theirs).count() == 1
    customer.refresh_from_db()
    assert customer.name == "New name"


# --- Replay -----------------------------------------------------------------------------------------


def test_replaying_a_refused_letter_is_refused_again(feed, theirs):
    message = _process(feed, _charge_doc(theirs.reference))
    letter = _letter(message)

    outcome = dead_letter_replay(letter_id=letter.pk, actor="ops@example.com", reason="try again")

    assert outcome.succeeded is False
    again = _letter(message)
    assert (again.pk, again.replay_count, again.reason) == (letter.pk, 1, letter.reason)
    assert not FreightCharge.objects.filter(shipment=theirs).exists()


def test_a_charge_waiting_for_its_shipment_is_refused_on_replay_when_it_turns_out_another_carriers(
    feed, rival
):
    message = _process(feed, _charge_doc("SHP-LATER"))
    waiting = DeadLetter.objects.get(message=message)
    assert (waiting.stage, waiting.waiting_for_shipment) == ("apply", "SHP-LATER")
    later = ShipmentFactory(reference="SHP-LATER", carrier=rival)

    outcome = dead_letter_replay(letter_id=waiting.pk, actor="sweeper", reason="shipment exists")

    assert outcome.succeeded is False
    letter = _letter(message)
    assert letter.waiting_for_shipment == ""
    assert "shipment 'SHP-LATER' belongs to carrier RIVL" in letter.reason
    assert not FreightCharge.objects.filter(shipment=later).exists()


# --- Which kinds a connection may send --------------------------------------------------------------


def test_a_narrowed_connection_dead_letters_a_kind_it_may_not_send():
    narrowed = _connection("acme-milestones", kinds=["milestone"])

    message = _process(narrowed, _order_doc("SO-NARROW", "CUST-NARROW"))

    assert not Order.objects.filter(reference="SO-NARROW").exists()
    assert _letter(message).reason == (
        "connection 'acme-milestones' may not send 'order' documents (allowed: milestone)"
    )


def test_each_connector_declares_the_kinds_its_map_produces():
    declared = {spec.key: set(spec.document_kinds) for spec in registry.all_specs()}

    assert declared == {
        "canonical": {"milestone", "order", "shipment", "freight_charge", "functional_ack"},
        "tryton": {"order"},
        "karrio": {"milestone"},
        "bottlecrm": {"milestone"},
        "dcsa": {"milestone"},
        "x12": {"milestone", "shipment", "freight_charge", "functional_ack"},
        "webhook": set(),
    }


@pytest.mark.parametrize(
    ("connector", "kinds", "named"),
    [
        ("dcsa", ["milestone", "order"], "'order'"),
        ("tryton", ["shipment"], "'shipment'"),
        ("canonical", ["invoice"], "'invoice'"),
        ("webhook", ["milestone"], "'milestone'"),
    ],
)
def test_a_connection_cannot_widen_beyond_its_connector(connector, kinds, named, dns):
    dns["peer.example"] = ["93.184.215.14"]  # a public address: the URL policy lets it through
    config = {"url": "https://peer.example/h"} if connector == "webhook" else {}
    if connector == "tryton":
        config = {"url": "https://peer.example", "database": "db", "username": "u"}
    with pytest.raises(ValidationFailed) as caught:
        connection_save(
            data={
                "slug": f"wide-{connector}",
                "system": "partner",
                "connector": connector,
                "config": config,
                "document_kinds": kinds,
            }
        )
    assert caught.value.errors[0]["field"] == "document_kinds"
    assert named in caught.value.detail and connector in caught.value.detail
    assert not Connection.objects.filter(slug=f"wide-{connector}").exists()


def test_a_connection_may_narrow_and_empty_means_the_connectors_full_set():
    narrowed = _connection("x12-charges", connector="x12", kinds=["freight_charge", "freight_charge"])
    full = _connection("x12-all", connector="x12")

    assert narrowed.document_kinds == ["freight_charge"]
    assert full.document_kinds == []


# --- The batch fast path ----------------------------------------------------------------------------


def _claim(connection: Connection, docs: list) -> list:
    ids = [_receive(connection, doc).pk for doc in docs]
    InboundMessage.objects.filter(pk__in=ids).update(status=InboundMessage.Status.PROCESSING)
    return ids


def test_fast_path_leaves_a_milestone_the_connection_may_not_send_to_the_careful_path():
    charges_only = _connection("charges-only", kinds=["freight_charge"])
    shipment = ShipmentFactory()
    event = {
        "event_type": "IN_TRANSIT",
        "occurred_at": "2026-11-20T14:05:00Z",
        "shipment": {"reference": shipment.reference},
    }
    ids = _claim(charges_only, [event])

    careful = inbox.inbound_batch_process(ids=ids, subscriptions=[])

    assert careful == ids
    inbox.inbound_message_process(message_id=ids[0])
    shipment.refresh_from_db()
    assert shipment.status == "PLANNED"
    message = InboundMessage.objects.get(pk=ids[0])
    assert _letter(message).reason == (
        "connection 'charges-only' may not send 'milestone' documents (allowed: freight_charge)"
    )


def test_fast_path_refuses_another_carriers_shipment_like_the_careful_path(feed, acme, theirs):
    mine = ShipmentFactory(reference="SHP-ACME-FAST", carrier=acme)
    ids = _claim(
        feed,
        [
            {
                "event_type": "IN_TRANSIT",
                "occurred_at": "2026-11-20T14:05:00Z",
                "shipment": {"reference": mine.reference},
            },
            {
                "event_type": "IN_TRANSIT",
                "occurred_at": "2026-11-20T14:05:00Z",
                "shipment": {"reference": theirs.reference},
            },
        ],
    )

    careful = inbox.inbound_batch_process(ids=ids, subscriptions=[])

    assert careful == [ids[1]]
    inbox.inbound_message_process(message_id=ids[1])
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("IN_TRANSIT", "PLANNED")
    assert (
        "shipment 'SHP-RIVL-1' belongs to carrier RIVL"
        in _letter(InboundMessage.objects.get(pk=ids[1])).reason
    )


def test_a_carrier_feed_cannot_charge_its_own_shipment_in_another_carriers_name(feed, acme):
    mine = ShipmentFactory(reference="SHP-ACME-3", carrier=acme)

    message = _process(feed, {**_charge_doc(mine.reference, invoice="R-7"), "carrier": {"scac": "RIVL"}})

    assert not FreightCharge.objects.filter(shipment=mine).exists()
    assert _letter(message).reason == (
        "connection 'acme-feed' is bound to carrier ACME: freight charge 'R-7' names carrier RIVL "
        "(a carrier-bound connection charges only its own carrier's shipments)"
    )


def test_the_api_refuses_a_connection_widening_its_connector_as_a_problem_naming_the_field(admin_caller):
    response = admin_caller.http.post(
        "/api/v1/connections/",
        {"slug": "api-dcsa", "system": "carrier", "connector": "dcsa", "document_kinds": ["order"]},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["errors"][0]["field"] == "document_kinds"
    assert "'order'" in body["errors"][0]["message"]
    assert not Connection.objects.filter(slug="api-dcsa").exists()


def test_the_api_narrows_a_connection_and_shows_its_kinds(admin_caller):
    created = admin_caller.http.post(
        "/api/v1/connections/",
        {"slug": "api-x12", "system": "partner", "connector": "x12", "document_kinds": ["milestone"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["document_kinds"] == ["milestone"]

    widened = admin_caller.http.patch(
        "/api/v1/connections/api-x12/", {"document_kinds": ["milestone", "order"]}, format="json"
    )
    assert widened.status_code == 400, widened.content
    assert Connection.objects.get(slug="api-x12").document_kinds == ["milestone"]


def test_the_admin_shows_a_widening_error_on_the_document_kinds_box(admin_client):
    response = admin_client.post(
        reverse("admin:connections_connection_add"),
        {
            "slug": "admin-dcsa",
            "system": "carrier",
            "connector": "dcsa",
            "carrier": "",
            "document_kinds": ["milestone", "freight_charge"],
            "is_active": "on",
            "config": "{}",
            "secret": "",
            "subscriptions-TOTAL_FORMS": "0",
            "subscriptions-INITIAL_FORMS": "0",
            "subscriptions-MIN_NUM_FORMS": "0",
            "subscriptions-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "'freight_charge'" in errors["document_kinds"][0]
    assert not Connection.objects.filter(slug="admin-dcsa").exists()
