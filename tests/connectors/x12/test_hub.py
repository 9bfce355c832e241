"""The x12 connector through the hub's inbound pipeline (real PostgreSQL): a Canada Post 214 interchange
is stored once under its ISA natural id, its sets apply as milestones, and the set whose AT7 has no time
code dead-letters alone at stage map naming AT7[07]; the same interchange with a faulty IEA02 is processed
alike and acknowledged with a 997 carrying TA1 E 001."""

from __future__ import annotations

import pytest

from bench.sink import Sink
from canonical.models import ShipmentEvent
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from hub.inbox.acks import message_acknowledge
from hub.inbox.models import InboundMessage
from hub.ledger.models import SideEffect
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


@pytest.fixture
def gateway(private_networks):
    """A partner's X12 gateway on 127.0.0.1 (the URL guard is lifted for it)."""
    sink = Sink().start()
    yield sink
    sink.stop()


@pytest.mark.django_db(transaction=True)
def test_an_interchange_whose_iea02_disagrees_applies_its_milestones_and_the_997_carries_ta1_e_001(gateway):
    """Canada Post's interchange with IEA02 000001645 (ISA13 is 000001644) and ISA14 1 (TA1 requested),
    received and drained like any message: its 214s apply (the sample's own outcome: 18 applied, set
    000000001 dead-letters for its blank AT7-07), the warning is in the trace, and the one 997 sent
    back carries TA1 E 001 ahead of its group."""
    connection = connection_save(
        data={
            "slug": "canadapost",
            "system": "carrier",
            "connector": "x12",
            "config": {"sender_id": "CROSSDOCK", "receiver_id": "CPC", "outbound_url": gateway.url},
        }
    )
    for reference in REFERENCES:
        ShipmentFactory(reference=reference)
    body = CANADAPOST.replace(b"IEA*00001*000001644", b"IEA*00001*000001645").replace(
        b"*000001644*0*P*>", b"*000001644*1*P*>"
    )

    received = _receive(connection, body)
    assert inbox.inbox_drain(budget_s=20) == 1
    message = InboundMessage.objects.get(pk=received.message.pk)

    assert (message.status, message.events_applied, message.events_failed) == ("partial", 18, 1)
    assert ShipmentEvent.objects.filter(shipment__reference__in=REFERENCES).count() == 18
    (parse,) = [t for t in message.trace if t["stage"] == "parse"]
    assert (
        "IEA02 at segment 252 IEA (line 252): interchange control number differs from ISA13"
        in parse["detail"]
    )

    assert message_acknowledge(message_id=message.pk) == 1
    (sent,) = gateway.state.received
    segments = [s.strip() for s in sent["body"].decode().split("~") if s.strip()]
    assert segments[0].startswith("ISA*00*          *00*          *ZZ*CROSSDOCK      *ZZ*CPC            *")
    assert segments[0].endswith("*U*00401*000000001*0*P*>")  # our first interchange number
    assert segments[1] == "TA1*000001644*191103*1800*E*001"  # the received ISA13/09/10; E, note 001
    assert segments[2].startswith("GS*FA*CROSSDOCK*CPC*")
    assert segments[3:6] == ["ST*997*0001", "AK1*QM*000001644", "AK2*214*000000001"]
    assert segments[-4:] == ["AK9*A*19*19*19", "SE*42*0001", "GE*1*1", "IEA*1*000000001"]
    effect = SideEffect.objects.get(connection=connection, operation="ack.997")
    assert (effect.status, effect.payload["group"]["ta1"]["notes"]) == ("done", ["001"])
    assert message_acknowledge(message_id=message.pk) == 1  # again: the ledger row is done, nothing resent
    assert len(gateway.state.received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_ta1_no_997_answers_is_sent_alone_through_the_ledger(gateway):
    """With 997s off and ``send_ta1: errors``, the faulty interchange gets a TA1 of its own (operation
    ack.ta1), numbered from the connection's interchange counter, sent once."""
    connection = connection_save(
        data={
            "slug": "canadapost",
            "system": "carrier",
            "connector": "x12",
            "config": {
                "sender_id": "CROSSDOCK",
                "receiver_id": "CPC",
                "outbound_url": gateway.url,
                "send_997": False,
                "send_ta1": "errors",
            },
        }
    )
    body = CANADAPOST.replace(b"IEA*00001*000001644", b"IEA*00002*000001644")  # IEA01: 2 groups, 1 sent
    received = _receive(connection, body)
    assert inbox.inbox_drain(budget_s=20) == 1

    assert message_acknowledge(message_id=received.message.pk) == 1
    assert message_acknowledge(message_id=received.message.pk) == 1  # the ledger row is done: not resent
    (sent,) = gateway.state.received
    segments = [s.strip() for s in sent["body"].decode().split("~") if s.strip()]
    assert len(segments) == 3
    assert segments[0].endswith("*U*00401*000000001*0*P*>")
    assert segments[1:] == ["TA1*000001644*191103*1800*E*021", "IEA*0*000000001"]
    effect = SideEffect.objects.get(connection=connection)
    assert (effect.operation, effect.business_key, effect.status, effect.external_id) == (
        "ack.ta1",
        "isa:02:CPC:000001644:TA1:000001644",
        "done",
        "000000001",
    )
