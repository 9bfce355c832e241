"""canonical.milestones.shipment_apply_milestone against PostgreSQL: dedupe, lateness, facts, exceptions,
and the property that arrival order and repeats never change the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from canonical import states
from canonical.contracts.v1 import EventType, MilestoneEvent
from canonical.milestones import UnknownShipmentError, shipment_apply_milestone
from canonical.models import Shipment, ShipmentEvent, ShipmentException, Stop
from tests.factories.canonical import (
    CarrierFactory,
    ShipmentExceptionFactory,
    ShipmentFactory,
    StopFactory,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SOURCE = "tms-test"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def milestone(
    reference: str,
    event_type: EventType,
    minutes: int,
    *,
    event_id: str | None = None,
    stop: int | None = None,
    details: dict[str, Any] | None = None,
    reason_code: str | None = None,
) -> MilestoneEvent:
    doc: dict[str, Any] = {
        "event_type": event_type.value,
        "occurred_at": at(minutes).isoformat(),
        "shipment": {"reference": reference},
        "details": details or {},
    }
    if event_id is not None:
        doc["event_id"] = event_id
    if stop is not None:
        doc["stop_sequence"] = stop
    if reason_code is not None:
        doc["reason_code"] = reason_code
    return MilestoneEvent.model_validate(doc)


def apply(event: MilestoneEvent, **kwargs):
    return shipment_apply_milestone(event=event, source=SOURCE, **kwargs)


def apply_in_savepoint(event: MilestoneEvent, **kwargs):
    # The service opens no savepoint of its own: a caller that survives its errors wraps it in one.
    with transaction.atomic():
        return apply(event, **kwargs)


pytestmark = pytest.mark.django_db


# --- Dedupe -----------------------------------------------------------------------------------------


def test_same_event_id_twice_is_a_duplicate_stored_once():
    shipment = ShipmentFactory()
    first = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10, event_id="e-1"))
    # Same id, even with a different time: the source says it is the same event.
    again = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 12, event_id="e-1"))

    assert first.duplicate is False
    assert again.duplicate is True
    assert again.event is None
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


def test_same_natural_key_without_event_id_is_a_duplicate_stored_once():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 10, stop=1))

    again = apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 10, stop=1))

    assert again.duplicate is True
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


def test_natural_key_differs_by_time_so_two_distinct_events_are_both_kept():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10))

    other = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 20))

    assert other.duplicate is False
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 2


def test_same_event_id_from_another_source_is_a_distinct_event():
    shipment = ShipmentFactory()
    shipment_apply_milestone(
        event=milestone(shipment.reference, EventType.IN_TRANSIT, 10, event_id="x"), source="a"
    )

    other = shipment_apply_milestone(
        event=milestone(shipment.reference, EventType.IN_TRANSIT, 10, event_id="x"), source="b"
    )

    assert other.duplicate is False
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 2


# --- Which shipment -----------------------------------------------------------------------------------


def test_unknown_shipment_raises_naming_the_reference():
    with pytest.raises(UnknownShipmentError) as caught:
        apply_in_savepoint(milestone("SHP-NOPE", EventType.IN_TRANSIT, 10))

    assert caught.value.reference == "SHP-NOPE"
    assert ShipmentEvent.objects.count() == 0


def test_carrier_restriction_hides_another_carriers_shipment():
    mine, theirs = CarrierFactory(), CarrierFactory()
    shipment = ShipmentFactory(carrier=theirs)

    with pytest.raises(UnknownShipmentError) as caught:
        apply_in_savepoint(milestone(shipment.reference, EventType.IN_TRANSIT, 10), carrier_id=mine.pk)

    assert caught.value.reference == shipment.reference
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 0
    shipment.refresh_from_db()
    assert shipment.status == "PLANNED"


def test_carrier_restriction_lets_the_carrier_update_its_own_shipment():
    carrier = CarrierFactory()
    shipment = ShipmentFactory(carrier=carrier)

    result = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10), carrier_id=carrier.pk)

    assert result.shipment.status == "IN_TRANSIT"


# --- Status and lateness ----------------------------------------------------------------------------


def test_late_event_is_kept_flagged_late_and_does_not_regress_status():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.IN_TRANSIT, 60))

    late = apply(milestone(shipment.reference, EventType.DEPARTED_PICKUP, 30))

    assert late.late is True
    assert late.event.late is True
    assert late.shipment.status == "IN_TRANSIT"
    assert not late.status_changed
    timeline = list(
        ShipmentEvent.objects.filter(shipment=shipment)
        .order_by("occurred_at")
        .values_list("event_type", "late")
    )
    assert timeline == [("DEPARTED_PICKUP", True), ("IN_TRANSIT", False)]


def test_event_later_in_time_than_everything_applied_is_not_late():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.DEPARTED_PICKUP, 30))

    result = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 60))

    assert result.late is False
    assert result.status_changed
    assert result.status_before == "PICKED_UP"


def test_cancelled_is_terminal_in_the_database():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.CANCELLED, 10))

    result = apply(milestone(shipment.reference, EventType.DELIVERED, 20))

    assert result.shipment.status == "CANCELLED"
    assert Shipment.objects.get(pk=shipment.pk).status == "CANCELLED"


def test_delivered_at_is_the_earliest_delivered_event_time():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.DELIVERED, 90, event_id="d-late"))
    apply(milestone(shipment.reference, EventType.DELIVERED, 80, event_id="d-early"))

    shipment.refresh_from_db()
    assert shipment.status == "DELIVERED"
    assert shipment.delivered_at == at(80)


def test_pod_received_sets_its_own_fact_and_leaves_status_alone():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10))

    apply(milestone(shipment.reference, EventType.POD_RECEIVED, 100))

    shipment.refresh_from_db()
    assert shipment.pod_received_at == at(100)
    assert shipment.status == "IN_TRANSIT"
    assert shipment.delivered_at is None


def test_stop_actual_arrival_and_departure_come_from_stop_events():
    shipment = ShipmentFactory()
    pickup = StopFactory(shipment=shipment, sequence=1, kind=Stop.Kind.PICKUP)
    drop = StopFactory(shipment=shipment, sequence=2, kind=Stop.Kind.DELIVERY)

    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 10, stop=1))
    apply(milestone(shipment.reference, EventType.DEPARTED_PICKUP, 40, stop=1))
    apply(milestone(shipment.reference, EventType.ARRIVED_AT_DELIVERY, 300, stop=2))
    apply(milestone(shipment.reference, EventType.DELIVERED, 330, stop=2))

    pickup.refresh_from_db()
    drop.refresh_from_db()
    assert (pickup.actual_arrival, pickup.actual_departure) == (at(10), at(40))
    assert (drop.actual_arrival, drop.actual_departure) == (at(300), at(330))


def test_stop_keeps_the_earliest_arrival_when_a_later_report_comes_in():
    shipment = ShipmentFactory()
    stop = StopFactory(shipment=shipment, sequence=1)

    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 20, stop=1, event_id="a2"))
    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 10, stop=1, event_id="a1"))
    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 30, stop=1, event_id="a3"))

    stop.refresh_from_db()
    assert stop.actual_arrival == at(10)


def test_departure_reported_before_arrival_is_clamped_to_the_arrival():
    shipment = ShipmentFactory()
    stop = StopFactory(shipment=shipment, sequence=1)

    apply(milestone(shipment.reference, EventType.DEPARTED_PICKUP, 10, stop=1))
    apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 25, stop=1))

    stop.refresh_from_db()
    assert stop.actual_arrival == at(25)
    assert stop.actual_departure == at(25)


def test_event_for_an_unplanned_stop_still_applies():
    shipment = ShipmentFactory()

    result = apply(milestone(shipment.reference, EventType.ARRIVED_AT_PICKUP, 10, stop=7))

    assert result.duplicate is False
    assert result.shipment.status == "AT_PICKUP"
    assert not Stop.objects.filter(shipment=shipment).exists()


def test_sequence_bumps_once_per_applied_event_and_not_for_duplicates():
    shipment = ShipmentFactory()
    assert shipment.sequence == 0

    first = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10, event_id="s1"))
    assert first.shipment.sequence == 1
    dup = apply(milestone(shipment.reference, EventType.IN_TRANSIT, 10, event_id="s1"))
    assert dup.shipment.sequence == 1
    # An event that changes no status still counts as an applied change.
    second = apply(milestone(shipment.reference, EventType.FREIGHT_ADJUSTMENT, 20, event_id="s2"))
    assert second.shipment.sequence == 2

    shipment.refresh_from_db()
    assert shipment.sequence == 2


# --- Exceptions -------------------------------------------------------------------------------------


def test_opener_opens_an_exception_and_closer_resolves_it():
    shipment = ShipmentFactory()
    opened = apply(milestone(shipment.reference, EventType.CUSTOMS_HOLD, 10, reason_code="CH"))

    assert [(e.kind, e.status) for e in opened.opened] == [("CUSTOMS_HOLD", "OPEN")]

    closed = apply(milestone(shipment.reference, EventType.CUSTOMS_RELEASED, 30))

    assert [(e.kind, e.status, e.resolved_at) for e in closed.resolved] == [
        ("CUSTOMS_HOLD", "RESOLVED", at(30))
    ]
    row = ShipmentException.objects.get(shipment=shipment)
    assert (row.opened_at, row.resolved_at, row.reason_code) == (at(10), at(30), "CH")


def test_manual_open_exception_of_the_same_kind_is_adopted_not_duplicated():
    shipment = ShipmentFactory()
    manual = ShipmentExceptionFactory(
        shipment=shipment, kind="DELAYED", status="OPEN", source_key="", description="called by ops"
    )

    apply(milestone(shipment.reference, EventType.DELAYED, 15, event_id="late-1"))

    rows = list(ShipmentException.objects.filter(shipment=shipment))
    assert [r.pk for r in rows] == [manual.pk]
    assert rows[0].status == "OPEN"
    assert rows[0].source_key != ""
    assert rows[0].opened_at == at(15)
    assert rows[0].description == "called by ops"


def test_earlier_opener_arriving_second_moves_the_open_exception_back_without_a_second_row():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.DELAYED, 30, event_id="d-30"))

    apply(milestone(shipment.reference, EventType.DELAYED, 10, event_id="d-10"))

    rows = list(ShipmentException.objects.filter(shipment=shipment).values_list("status", "opened_at"))
    assert rows == [("OPEN", at(10))]


def test_resolve_then_reopen_keeps_both_episodes():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.DELAYED, 10))
    apply(milestone(shipment.reference, EventType.EXCEPTION_RESOLVED, 20, details={"exception": "DELAYED"}))
    apply(milestone(shipment.reference, EventType.DELAYED, 30))

    rows = sorted(
        ShipmentException.objects.filter(shipment=shipment).values_list("opened_at", "resolved_at", "status")
    )
    assert rows == [(at(10), at(20), "RESOLVED"), (at(30), None, "OPEN")]


def test_late_resolution_arriving_after_a_reopen_resolves_the_right_episode():
    shipment = ShipmentFactory()
    apply(milestone(shipment.reference, EventType.DELAYED, 10))
    apply(milestone(shipment.reference, EventType.DELAYED, 30))  # enriches the episode opened at 10
    # The resolution (time 20) arrives last: the episode from 10 closes at 20, the one from 30 opens.
    apply(milestone(shipment.reference, EventType.EXCEPTION_RESOLVED, 20))

    rows = sorted(
        ShipmentException.objects.filter(shipment=shipment).values_list("opened_at", "resolved_at", "status")
    )
    assert rows == [(at(10), at(20), "RESOLVED"), (at(30), None, "OPEN")]


# --- Property: arrival order and repeats never change the outcome ------------------------------------

STATUS_TYPES = [t for t in states.EVENT_STATUS if t != EventType.CANCELLED]
OTHER_TYPES = [
    EventType.DELAYED,
    EventType.CUSTOMS_HOLD,
    EventType.CUSTOMS_RELEASED,
    EventType.MISSED_PICKUP,
    EventType.DAMAGED,
    EventType.REFUSED,
    EventType.EXCEPTION_RESOLVED,
    EventType.POD_RECEIVED,
    EventType.FREIGHT_ADJUSTMENT,
]
EXCEPTION_KINDS = sorted(set(states.EXCEPTION_OPENERS.values()))


@dataclass(frozen=True)
class Spec:
    event_type: EventType
    minutes: int
    event_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def event(self, reference: str) -> MilestoneEvent:
        return milestone(
            reference, self.event_type, self.minutes, event_id=self.event_id, details=dict(self.details)
        )


@st.composite
def milestone_sets(draw) -> list[Spec]:
    """A valid milestone set: status-moving milestones occur in precedence order over time (CANCELLED,
    when present, comes last); exception openers and closers anywhere; distinct increasing times."""
    types = draw(st.lists(st.sampled_from(STATUS_TYPES + OTHER_TYPES), min_size=1, max_size=10))
    slots = [i for i, t in enumerate(types) if t in states.EVENT_STATUS]
    in_order = sorted((types[i] for i in slots), key=lambda t: states.status_rank(states.EVENT_STATUS[t]))
    for slot, event_type in zip(slots, in_order, strict=True):
        types[slot] = event_type
    if draw(st.integers(0, 5)) == 0:
        types.append(EventType.CANCELLED)
    gaps = draw(st.lists(st.integers(1, 240), min_size=len(types), max_size=len(types)))
    specs, minutes = [], 0
    for index, (event_type, gap) in enumerate(zip(types, gaps, strict=True)):
        minutes += gap
        event_id = draw(st.sampled_from([None, f"evt-{index}"]))
        details: dict[str, Any] = {}
        if event_type == EventType.EXCEPTION_RESOLVED:
            kind = draw(st.sampled_from([None, *EXCEPTION_KINDS]))
            if kind is not None:
                details = {"exception": kind}
        specs.append(Spec(event_type, minutes, event_id, details))
    return specs


class _Rollback(Exception):
    """Raised at the end of each example so its rows vanish before the next one."""


def _outcome(shipment: Shipment) -> dict[str, Any]:
    shipment.refresh_from_db()
    exceptions = ShipmentException.objects.filter(shipment=shipment)
    return {
        "status": shipment.status,
        "delivered_at": shipment.delivered_at,
        "pod_received_at": shipment.pod_received_at,
        "sequence": shipment.sequence,
        "timeline": list(
            ShipmentEvent.objects.filter(shipment=shipment)
            .order_by("occurred_at")
            .values_list("event_type", "occurred_at")
        ),
        "open_kinds": set(exceptions.filter(status="OPEN").values_list("kind", flat=True)),
        "episodes": sorted(
            exceptions.values_list("kind", "opened_at", "resolved_at"), key=lambda e: (e[1], e[0])
        ),
    }


@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
@given(specs=milestone_sets(), data=st.data())
def test_any_permutation_and_duplication_gives_the_same_shipment_as_time_order(specs, data):
    count = len(specs)
    repeats = data.draw(st.lists(st.integers(0, count - 1), max_size=count), label="repeats")
    arrival = data.draw(st.permutations([*range(count), *repeats]), label="arrival")

    try:
        with transaction.atomic():
            # No carrier or customer: the property is about events, and each example stays small.
            reference_run = ShipmentFactory(carrier=None, customer=None)
            for spec in specs:  # already in time order, each once
                apply(spec.event(reference_run.reference))
            shuffled_run = ShipmentFactory(carrier=None, customer=None)
            results = [apply(specs[i].event(shuffled_run.reference)) for i in arrival]

            expected, actual = _outcome(reference_run), _outcome(shuffled_run)
            assert actual == expected
            assert expected["sequence"] == count

            # The reference run agrees with the pure rules.
            pure = states.exception_episodes(
                states.TimelineEntry(
                    event_type=s.event_type,
                    occurred_at=at(s.minutes),
                    dedupe_key=f"{i}",
                    resolves=s.details.get("exception"),
                )
                for i, s in enumerate(specs)
            )
            assert expected["episodes"] == sorted(
                ((e.kind, e.opened_at, e.resolved_at) for e in pure), key=lambda e: (e[1], e[0])
            )

            # Duplicates are reported as such and stored nothing.
            seen: set[int] = set()
            for index, result in zip(arrival, results, strict=True):
                assert result.duplicate == (index in seen)
                seen.add(index)

            # In time order nothing is late; shuffled, exactly what arrived after a later event is.
            assert not ShipmentEvent.objects.filter(shipment=reference_run, late=True).exists()
            expected_late: dict[datetime, bool] = {}
            applied_times: list[datetime] = []
            for index in arrival:
                when = at(specs[index].minutes)
                if when in expected_late:
                    continue
                expected_late[when] = any(t > when for t in applied_times)
                applied_times.append(when)
            actual_late = dict(
                ShipmentEvent.objects.filter(shipment=shuffled_run).values_list("occurred_at", "late")
            )
            assert actual_late == expected_late
            raise _Rollback
    except _Rollback:
        pass
