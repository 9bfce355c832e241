"""The dcsa connector through the hub's inbound pipeline (real PostgreSQL): DCSA's 2.2 example response
applies its actual transport events, skips estimates and paperwork, and DCSA's negative example is
dead-lettered at parse with the JSON path."""

from __future__ import annotations

import pytest

from canonical.models import ShipmentEvent
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from tests.connectors.dcsa.support import FIXTURES
from tests.factories.canonical import ShipmentFactory


def _process(connection, body):
    received = inbox.inbound_message_receive(
        connection=connection,
        body=body,
        content_type="application/json",
        headers={"content-type": "application/json"},
        idempotency_key=None,
        correlation_id="corr-dcsa",
    )
    assert received.message.pk in inbox.inbound_batch_claim()
    return inbox.inbound_message_process(message_id=received.message.pk)


@pytest.mark.django_db
def test_22_example_applies_the_actual_transport_events_once():
    connection = connection_save(
        data={"slug": "carrier-tnt", "system": "carrier", "connector": "dcsa", "config": {}}
    )
    shipment = ShipmentFactory(reference="ABC123123123")

    message = _process(connection, (FIXTURES / "example_tnt_220_response.json").read_bytes())

    assert message.status == "processed"
    assert message.events_failed == 0
    events = ShipmentEvent.objects.filter(shipment=shipment).order_by("source_event_id")
    assert [(e.event_type, e.source_event_id, e.location_code, e.reason_code) for e in events] == [
        ("IN_TRANSIT", "3cecb101-7a1a-43a4-9d62-e88a131651e2", "FRPAR", "WEA"),
        ("IN_TRANSIT", "3cecb101-7a1a-43a4-9d62-e88a131651e5", "FRPAR", "WEA"),
    ]


@pytest.mark.django_db
def test_dcsa_negative_example_is_dead_lettered_at_parse_with_the_path():
    connection = connection_save(
        data={"slug": "carrier-tnt", "system": "carrier", "connector": "dcsa", "config": {}}
    )

    message = _process(connection, (FIXTURES / "example_tnt_220_response_wrong_structure.json").read_bytes())

    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "parse"
    assert letter.reason.startswith("$[0].eventType: a DCSA T&T 2.2 event needs eventType")
