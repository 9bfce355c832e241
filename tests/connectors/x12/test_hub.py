"""The x12 connector through the hub's inbound pipeline (real PostgreSQL): a Canada Post 214 interchange
is stored once under its ISA natural id, its sets apply as milestones, and the set whose AT7 has no time
code dead-letters alone at stage map naming AT7[07]."""

from __future__ import annotations

import pytest

from canonical.models import ShipmentEvent
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from tests.connectors.x12.support import FIXTURES
from tests.factories.canonical import ShipmentFactory

CANADAPOST = (FIXTURES / "214_canadapost_omniparser.edi").read_bytes()
REFERENCES = [
    "4343638097845589", "4343638098050296", "4343638931638575", "4343638098146166", "4343638098181877",
    "4343638098181891", "4343638098181921", "4343638098186995", "4343638151403540", "4343638316026577",
    "4343638672340607", "4343638098171441", "4343638098171472", "4343638098176088", "4343638458862606",
    "4343638098196574",
]  # fmt: skip


def _receive(connection, body):
    return inbox.inbound_message_receive(
        connection=connection,
        body=body,
        content_type="application/edi-x12",
        headers={"content-type": "application/edi-x12"},
        idempotency_key=None,
        correlation_id="corr-x12",
    )


@pytest.mark.django_db
def test_canada_post_214_applies_per_set_and_dead_letters_only_the_set_without_a_time_code():
    connection = connection_save(
        data={"slug": "canadapost", "system": "carrier", "connector": "x12", "config": {}}
    )
    for reference in REFERENCES:
        ShipmentFactory(reference=reference)

    received = _receive(connection, CANADAPOST)
    assert received.message.idempotency_key == "isa:02:CPC:000001644"
    assert received.message.pk in inbox.inbound_batch_claim()
    message = inbox.inbound_message_process(message_id=received.message.pk)

    assert (message.status, message.events_applied, message.events_failed) == ("partial", 18, 1)
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.item_index) == ("map", 0)
    assert letter.reason == "AT7[07]: unmapped time_code code '' (in 214 '000000001' position 10)"
    delivered = ShipmentEvent.objects.get(shipment__reference="4343638098146166")
    assert (delivered.event_type, delivered.occurred_at.isoformat()) == (
        "DELIVERED",
        "2019-11-02T22:48:00+00:00",
    )
    assert delivered.location_code == "SWITCH,AB,CA"
    assert delivered.reason_code == "NS"


@pytest.mark.django_db
def test_the_same_interchange_sent_twice_is_stored_once():
    connection = connection_save(
        data={"slug": "canadapost", "system": "carrier", "connector": "x12", "config": {}}
    )

    first = _receive(connection, CANADAPOST)
    again = _receive(connection, CANADAPOST.replace(b"\n", b"\r\n"))  # same ISA, other line ends

    assert first.created and not again.created
    assert again.message.pk == first.message.pk
