"""shipment_status's comparison (reconciliation/checks/shipment_status.py): the shipments examined
(PostgreSQL), the TMS milestones' dedupe keys against the hub's timeline as the pipeline writes it,
and the hub's status against the TMS's and the CRM's (plain data here; the live peers are in
tests/reconciliation/live)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from canonical.contracts.v1 import EventType, MilestoneEvent, ShipmentRef, semantic_key
from canonical.milestones import shipment_apply_milestone
from canonical.models import Shipment
from canonical.services import external_refs_attach
from reconciliation import checks
from reconciliation.checks.base import CheckContext
from reconciliation.checks.shipment_status import (
    CrmSeen,
    HubSeen,
    TmsSeen,
    compare,
    shipments_examined,
    tms_status,
)
from tests.factories.canonical import ShipmentFactory
from tests.reconciliation.support import connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def ctx(private_networks):
    connections()
    check = checks.get("shipment_status")
    return CheckContext(options=check.options({"connections": {"tms": "rec-tms", "crm": "rec-crm"}}))


def booked(reference, *, status=Shipment.Status.TENDER_ACCEPTED, age=timedelta(hours=1)):
    shipment = ShipmentFactory(reference=reference, status=status)
    external_refs_attach(record=shipment, refs=[{"system": "karrio", "external_id": f"shp_{reference}"}])
    Shipment.objects.filter(pk=shipment.pk).update(updated_at=timezone.now() - age)
    return shipment


def event(reference, event_type, day, *, event_id=None):
    return MilestoneEvent(
        event_id=event_id or f"trk_1/2030-03-{day:02d}T10:00:00Z/{event_type}",
        event_type=event_type,
        occurred_at=f"2030-03-{day:02d}T10:00:00Z",
        shipment=ShipmentRef(reference=reference),
    )


def hub(status="TENDER_ACCEPTED", keys=(), sequence=3):
    return HubSeen(
        reference="SHP-1", status=status, sequence=sequence, customer="C1", event_keys=frozenset(keys)
    )


def tms(*milestones, status="purchased"):
    return TmsSeen(
        shipment_id="shp_1",
        status=status,
        tracker_id="trk_1",
        milestones=tuple(milestones),
        webhook={"event": "x"},
    )


def test_examined_are_booked_shipments_not_changed_within_the_grace_and_recent_terminal_ones(ctx):
    booked("SHP-OPEN", age=timedelta(days=60))  # open: examined however old
    booked("SHP-FRESH", age=timedelta(minutes=2))  # within grace: its webhooks may be on their way
    booked("SHP-DONE", status=Shipment.Status.DELIVERED, age=timedelta(days=2))
    booked("SHP-OLD", status=Shipment.Status.DELIVERED, age=timedelta(days=30))  # outside the window
    ShipmentFactory(reference="SHP-UNBOOKED")  # no TMS id

    examined = set(shipments_examined(ctx, "karrio").values_list("reference", flat=True))

    assert examined == {"SHP-OPEN", "SHP-DONE"}
    assert checks.get("shipment_status").estimate(ctx) == 2
    ctx.scope = {"references": ["SHP-DONE", "SHP-FRESH"]}
    assert set(shipments_examined(ctx, "karrio").values_list("reference", flat=True)) == {"SHP-DONE"}


def test_the_check_finds_a_milestone_on_the_timeline_under_the_key_the_pipeline_gave_it(ctx):
    shipment = booked("SHP-1")
    applied = event("SHP-1", EventType.DEPARTED_PICKUP, 1)
    shipment_apply_milestone(event=applied, source="rec-tms")  # what the inbox does for Karrio's webhook
    missed = event("SHP-1", EventType.IN_TRANSIT, 2)

    keys = {semantic_key(e, source="rec-tms") for e in (applied, missed)}
    on_timeline = set(shipment.events.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))

    assert on_timeline == {semantic_key(applied, source="rec-tms")}
    shipment.refresh_from_db()
    seen = HubSeen("SHP-1", shipment.status, shipment.sequence, "C1", frozenset(on_timeline))
    finding = compare(
        seen,
        tms(
            (semantic_key(applied, source="rec-tms"), "DEPARTED_PICKUP"),
            (semantic_key(missed, source="rec-tms"), "IN_TRANSIT"),
        ),
        None,
    )
    assert (finding.kind, finding.repairable) == ("missed_milestone", True)
    assert finding.expected["tms"] == {
        "status": "IN_TRANSIT",
        "missing_events": [semantic_key(missed, source="rec-tms")],
    }
    assert finding.found["hub"]["status"] == "PICKED_UP"


def test_the_tms_status_follows_the_state_machine_never_below_the_hubs():
    assert tms_status("TENDER_ACCEPTED", tms(("k1", "DEPARTED_PICKUP"), ("k2", "IN_TRANSIT"))) == "IN_TRANSIT"
    assert tms_status("DELIVERED", tms(("k1", "IN_TRANSIT"))) == "DELIVERED"
    assert tms_status("IN_TRANSIT", tms(status="cancelled")) == "CANCELLED"


def test_a_hub_ahead_of_the_tms_with_every_tms_event_applied_agrees():
    finding = compare(
        hub("DELIVERED", keys={"k1"}), tms(("k1", "IN_TRANSIT")), CrmSeen("acc", "DELIVERED", 3)
    )
    assert finding.ok


def test_an_event_that_changes_no_status_is_still_a_missed_milestone():
    finding = compare(hub("IN_TRANSIT", keys={"k1"}), tms(("k1", "IN_TRANSIT"), ("k2", "DELAYED")), None)
    assert finding.kind == "missed_milestone"
    assert finding.expected["tms"]["missing_events"] == ["k2"]
    assert finding.severity == "warning"  # the status is right; the timeline lacks an event


def test_a_shipment_cancelled_in_the_tms_only_is_a_missed_milestone():
    finding = compare(hub("IN_TRANSIT"), tms(status="cancelled"), None)
    assert finding.kind == "missed_milestone" and finding.expected["tms"]["status"] == "CANCELLED"
    assert finding.severity == "error"


def test_a_crm_showing_an_older_status_or_none_is_behind_and_repairable():
    finding = compare(
        hub("IN_TRANSIT", keys={"k1"}), tms(("k1", "IN_TRANSIT")), CrmSeen("acc", "TENDER_ACCEPTED", 1)
    )
    assert (finding.kind, finding.repairable, finding.systems) == ("crm_behind", True, ("hub", "crm"))
    assert finding.expected == {"hub": {"status": "IN_TRANSIT", "sequence": 3}}
    assert compare(
        hub("IN_TRANSIT", keys={"k1"}), tms(("k1", "IN_TRANSIT")), CrmSeen(None, None, None)
    ).kind == ("crm_behind")


def test_all_three_agreeing_is_ok_and_the_crm_is_optional():
    agreeing = (hub("IN_TRANSIT", keys={"k1"}), tms(("k1", "IN_TRANSIT")))
    assert compare(*agreeing, CrmSeen("acc", "IN_TRANSIT", 3)).ok
    assert compare(*agreeing, None).ok
