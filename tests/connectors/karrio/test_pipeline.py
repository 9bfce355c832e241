"""Captured Karrio webhooks through the hub's real inbound pipeline (receive -> parse -> map ->
validate -> apply), against PostgreSQL. No peer needed: the bodies are the golden fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canonical.models import Shipment, ShipmentEvent, ShipmentException
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox.models import InboundMessage
from hub.inbox.services import inbound_message_receive
from tests.factories.canonical import ShipmentFactory
from tests.factories.pipeline import receive_and_process

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "karrio"
JOURNEY = [  # the order Karrio sent them for shipment SO-GOLD-1
    "order_created",
    "shipment_purchased",
    "tracker_created",
    "tracker_picked_up",
    "tracker_in_transit",
    "shipment_fulfilled",
    "tracker_out_for_delivery",
    "tracker_delivery_failed",
    "shipment_delivery_failed",
    "tracker_delivered",
    "order_delivered",
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(dns):
    dns["karrio.test"] = ["93.184.215.14"]  # the URL policy resolves the host on save; never called
    return connection_save(
        data={
            "slug": "karrio-tms",
            "system": "tms",
            "connector": "karrio",
            "config": {
                "url": "http://karrio.test:5002",
                "carrier_id": "offline",
                "service": "offline_standard",
                "shipper": {
                    "person_name": "Dock 4",
                    "address_line1": "1 Dock St",
                    "city": "Montreal",
                    "country_code": "CA",
                },
            },
        },
        secret=json.dumps({"api_key": "key_test", "webhook_secret": "whsec_test"}),
    )


def body(case: str) -> bytes:
    return (FIXTURES / f"{case}.json").read_bytes()


def test_the_captured_journey_delivers_the_shipment_with_a_resolved_delay(connection):
    ShipmentFactory(reference="SO-GOLD-1", status=Shipment.Status.TENDERED)

    messages = [receive_and_process(connection, body(case)) for case in JOURNEY]

    assert {m.status for m in messages} == {InboundMessage.Status.PROCESSED}
    assert not DeadLetter.objects.exists()
    shipment = Shipment.objects.get(reference="SO-GOLD-1")
    assert shipment.status == Shipment.Status.DELIVERED
    timeline = list(shipment.events.order_by("occurred_at").values_list("event_type", flat=True))
    assert timeline == [
        "TENDER_ACCEPTED", "DEPARTED_PICKUP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELAYED", "DELIVERED",
    ]  # fmt: skip
    [delay] = ShipmentException.objects.filter(shipment=shipment)
    assert (delay.kind, delay.status, delay.reason_code) == ("DELAYED", "RESOLVED", "NA")
    # Each tracker webhook re-sends the whole history; the timeline above holds each event once.
    assert shipment.events.count() == 6
    assert shipment.delivered_at.isoformat() == "2030-01-05T10:00:00+00:00"


def test_a_resent_webhook_is_stored_once_by_its_natural_id(connection):
    def receive():
        return inbound_message_receive(
            connection=connection,
            body=body("tracker_in_transit"),
            content_type="application/json",
            headers={"content-type": "application/json"},
            idempotency_key=None,
            correlation_id="cid-karrio",
        )

    first, second = receive(), receive()

    assert (first.created, second.created) == (True, False)
    assert first.message.key_source == InboundMessage.KeySource.NATURAL
    assert first.message.idempotency_key.startswith("karrio:tracker_updated:trk_")


def test_an_unmapped_status_dead_letters_at_map_naming_it(connection):
    ShipmentFactory(reference="SO-GOLD-1")
    doc = json.loads(body("tracker_picked_up"))
    doc["data"]["events"][0]["status"] = "teleported"

    message = receive_and_process(connection, json.dumps(doc).encode())

    assert message.status == InboundMessage.Status.FAILED
    [letter] = DeadLetter.objects.filter(message=message)
    assert letter.stage == "map"
    assert "teleported" in letter.reason and "events.0.status" in letter.reason
    assert not ShipmentEvent.objects.exists()


def test_a_cancelled_label_cancels_the_canonical_shipment(connection):
    ShipmentFactory(reference="SO-GOLD-2", status=Shipment.Status.TENDER_ACCEPTED)

    message = receive_and_process(connection, body("shipment_cancelled"))

    assert message.status == InboundMessage.Status.PROCESSED
    assert Shipment.objects.get(reference="SO-GOLD-2").status == Shipment.Status.CANCELLED
