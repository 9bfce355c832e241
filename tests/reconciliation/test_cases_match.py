"""cases_match's comparison (pure, over the CRM's case rows) and its choice of episodes (real
PostgreSQL): which exception of a shipment and type is looked at, and what a repair would write."""

from __future__ import annotations

import datetime as dt

import pytest

from canonical.models import ShipmentException
from hub.ledger.models import SideEffect
from hub.workflows.flows.exception_to_case import case_key
from reconciliation.checks.base import CheckContext, NotRepairable
from reconciliation.checks.cases_match import (
    CasesMatch,
    Episode,
    Write,
    _episodes,
    _recorded,
    compare,
    plan,
)
from tests.factories.canonical import ShipmentExceptionFactory, ShipmentFactory
from tests.factories.pipeline import ConnectionFactory

OPENED = "2030-03-02T10:00:00+00:00"
OPENING = [Write("case.open", "SHP-1:DAMAGED:" + OPENED, {"x": 1})]


def episode(status="OPEN", recorded=None, **extra) -> Episode:
    return Episode(
        exception_id="e1",
        reference="SHP-1",
        kind="DAMAGED",
        status=status,
        opened_at=OPENED,
        resolved_at=None if status == "OPEN" else "2030-03-03T10:00:00+00:00",
        recorded_case_id=recorded,
        **extra,
    )


def case(case_id: str, status="New", name="Shipment SHP-1: DAMAGED 2030-03-02 10:00", **extra) -> dict:
    return {"id": case_id, "status": status, "name": name, "created_at": f"2026-12-0{case_id[-1]}", **extra}


def test_an_open_exception_with_one_open_case_agrees():
    assert compare(episode(), [case("c1")]).ok
    assert plan(episode(), [case("c1")], opening=OPENING) == []


def test_an_open_exception_without_any_case_is_no_case_repaired_with_the_flows_own_write():
    finding = compare(episode(), [])
    assert (finding.ok, finding.kind, finding.repairable) == (False, "no_case", True)
    assert finding.business_key == "SHP-1:DAMAGED"
    assert plan(episode(), [], opening=OPENING) == OPENING


def test_a_case_of_an_earlier_episode_closed_long_ago_does_not_count_as_this_ones():
    old = case("c0", status="Closed", name="Shipment SHP-1: DAMAGED 2029-01-01 09:00")
    assert compare(episode(), [old]).kind == "no_case"


def test_the_episodes_case_closed_by_hand_is_reopened_not_replaced():
    closed = case("c1", status="Closed", closed_on="2026-12-03T10:00:00Z")
    finding = compare(episode(recorded="c1"), [closed])
    assert (finding.kind, finding.repairable) == ("case_closed_by_hand", True)
    assert finding.found["crm"]["cases"][0]["status"] == "Closed"
    (write,) = plan(episode(recorded="c1"), [closed], opening=OPENING)
    assert write.operation == "case.reopen"
    assert write.payload["case_id"] == "c1"
    assert write.business_key == "reconcile:cases_match:c1:reopen:2026-12-03T10:00:00Z"


def test_a_case_found_by_its_episode_name_when_the_ledger_has_none():
    closed = case("c1", status="Closed", closed_on="x")
    assert compare(episode(), [closed]).kind == "case_closed_by_hand"


def test_a_case_rejected_by_hand_is_listed_but_not_repairable():
    rejected = case("c1", status="Rejected")
    finding = compare(episode(recorded="c1"), [rejected])
    assert (finding.kind, finding.repairable) == ("case_closed_by_hand", False)
    with pytest.raises(NotRepairable):
        plan(episode(recorded="c1"), [rejected], opening=OPENING)


def test_a_resolved_exception_with_an_open_case_is_orphan_and_each_open_case_is_closed():
    finding = compare(episode("RESOLVED"), [case("c1"), case("c2", status="Pending")])
    assert (finding.kind, finding.repairable) == ("orphan_case", True)
    writes = plan(episode("RESOLVED"), [case("c1"), case("c2", status="Pending")], opening=OPENING)
    assert [(w.operation, w.payload["case_id"]) for w in writes] == [
        ("case.close", "c1"),
        ("case.close", "c2"),
    ]
    assert compare(episode("RESOLVED"), [case("c1", status="Closed")]).ok


def test_duplicate_open_cases_keep_the_flows_case_and_close_the_others():
    cases = [case("c1"), case("c2")]
    assert compare(episode(recorded="c2"), cases).kind == "duplicate_cases"
    (write,) = plan(episode(recorded="c2"), cases, opening=OPENING)
    assert (write.operation, write.payload["case_id"]) == ("case.close", "c1")
    (write,) = plan(episode(), cases, opening=OPENING)  # no ledger record: the oldest stays
    assert write.payload["case_id"] == "c2"


@pytest.mark.django_db
def test_only_the_latest_episode_of_a_shipment_and_type_is_examined_and_old_resolved_ones_are_left():
    now = dt.datetime.now(dt.UTC)
    shipment = ShipmentFactory()
    old = ShipmentExceptionFactory(
        shipment=shipment,
        kind="DAMAGED",
        status="RESOLVED",
        opened_at=now - dt.timedelta(days=3),
        resolved_at=now - dt.timedelta(days=2),
    )
    current = ShipmentExceptionFactory(
        shipment=shipment, kind="DAMAGED", opened_at=now - dt.timedelta(days=1)
    )
    stale = ShipmentExceptionFactory(
        kind="DELAYED",
        status="RESOLVED",
        opened_at=now - dt.timedelta(days=90),
        resolved_at=now - dt.timedelta(days=60),
    )
    recent = ShipmentExceptionFactory(
        kind="DELAYED",
        status="RESOLVED",
        opened_at=now - dt.timedelta(days=5),
        resolved_at=now - dt.timedelta(days=4),
    )
    ctx = CheckContext(options=CasesMatch().options({}))
    picked = set(_episodes(ctx).values_list("pk", flat=True))
    assert picked == {current.pk, recent.pk}
    assert old.pk not in picked and stale.pk not in picked
    scoped = CheckContext(options=ctx.options, scope={"references": [shipment.reference]})
    assert set(_episodes(scoped).values_list("pk", flat=True)) == {current.pk}


@pytest.mark.django_db
def test_the_case_the_flow_opened_is_read_from_the_ledger_by_the_flows_key():
    crm = ConnectionFactory(slug="crm-test", system="crm", connector="bottlecrm")
    exc = ShipmentExceptionFactory(status=ShipmentException.Status.OPEN)
    SideEffect.objects.create(
        connection=crm, operation="case.open", business_key=case_key(exc), status="done", external_id="case-9"
    )
    assert _recorded(crm, [exc]) == {case_key(exc): "case-9"}
