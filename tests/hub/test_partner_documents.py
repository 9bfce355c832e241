"""Partner documents through the inbox (real X12 samples, tests/fixtures/x12/): a 3PL's 204 becomes a
shipment with its stops, a carrier's 210 waits for its shipment and then records its charges once,
a rejected set dead-letters at parse, and a partner's 997 rejecting our group is dead-lettered
naming what was rejected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical.models import FreightCharge, Shipment
from hub.connections.services import connection_save
from hub.core.work import work_sweep
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from tests.connectors.x12.support import FIXTURES

pytestmark = pytest.mark.django_db


def _process(connection, name: str, *, body: bytes | None = None):
    received = inbox.inbound_message_receive(
        connection=connection,
        body=body if body is not None else (FIXTURES / name).read_bytes(),
        content_type="application/edi-x12",
        headers={},
        idempotency_key=None,
        correlation_id="corr-partner",
    )
    if not received.created:
        return received.message
    assert received.message.pk in inbox.inbound_batch_claim()
    return inbox.inbound_message_process(message_id=received.message.pk)


@pytest.fixture
def partner():
    return connection_save(data={"slug": "3pl-edi", "system": "partner", "connector": "x12", "config": {}})


def test_a_204_tender_becomes_a_shipment_with_its_stops_and_a_resend_changes_nothing(partner):
    message = _process(partner, "204_sudu_export_x12types.edi")
    assert (message.status, message.events_applied) == ("processed", 1)
    shipment = Shipment.objects.get(reference="3PHLT0XXXX")
    assert shipment.carrier.scac == "SUDU"
    assert [
        (s.sequence, s.kind, s.location.code, s.location.city) for s in shipment.stops.order_by("sequence")
    ] == [
        (1, "PICKUP", "USLGBUPIC", "LONG BEACH"),
        (2, "DELIVERY", "USLGBITST", "LONG BEACH"),
    ]
    body = (FIXTURES / "204_sudu_export_x12types.edi").read_bytes().replace(b"000022310", b"000022311")
    again = _process(partner, "", body=body)  # the same tender in a new interchange
    assert (again.events_applied, again.events_duplicate) == (0, 1)


def test_a_bare_204_with_a_wrong_segment_count_is_dead_lettered_at_parse(partner):
    message = _process(partner, "204_st_only_x12types.edi")
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "parse"
    assert "SE01" in letter.reason and "37" in letter.reason and "29" in letter.reason
    assert not Shipment.objects.exists()


def test_a_210_waits_for_its_shipment_then_records_its_charges_once(partner):
    message = _process(partner, "210_cn_oopfactory_1.edi")
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.waiting_for_shipment) == ("apply", "291226")

    Shipment.objects.create(reference="291226")
    work_sweep()  # the sweeper replays letters whose shipment now exists
    letter.refresh_from_db()
    assert letter.status == "replayed"
    charges = sorted(FreightCharge.objects.values_list("kind", "amount", "currency", "source_ref"))
    assert charges == [
        ("LINEHAUL", Decimal("2510.00"), "USD", "28066945:1"),
        ("OTHER", Decimal("244.33"), "USD", "28066945:2"),
    ]
    body = (FIXTURES / "210_cn_oopfactory_1.edi").read_bytes().replace(b"000000340", b"000000341")
    again = _process(partner, "", body=body)  # the carrier resends the invoice
    assert again.events_duplicate == 1
    assert FreightCharge.objects.count() == 2


def test_a_997_rejecting_our_group_is_dead_lettered_naming_the_rejected_set(partner):
    message = _process(partner, "997_edifabric.edi")
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "apply"
    assert letter.reason == (
        "partner acknowledged group IN 000000001 with R: set 810 ST02 R codes 5 (TXI at 54 code 8)"
    )
