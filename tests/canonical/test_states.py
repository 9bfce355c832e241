"""canonical.states: pure rules for status precedence and exception episodes (no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from canonical import states
from canonical.contracts.v1 import EventType
from canonical.states import CANCELLED, PRECEDENCE, Episode, TimelineEntry

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(
    event_type: EventType, minutes: int, key: str = "", *, resolves: str | None = None
) -> TimelineEntry:
    return TimelineEntry(
        event_type=event_type,
        occurred_at=at(minutes),
        dedupe_key=key or f"{event_type.value}@{minutes}",
        resolves=resolves,
    )


def summary(episodes: list[Episode]) -> list[tuple[str, datetime, datetime | None]]:
    return sorted(((e.kind, e.opened_at, e.resolved_at) for e in episodes), key=lambda t: (t[1], t[0]))


# --- Status precedence ------------------------------------------------------------------------------


@pytest.mark.parametrize("current", PRECEDENCE)
@pytest.mark.parametrize("event_type", list(EventType))
def test_next_status_never_ranks_below_the_current_status(current: str, event_type: EventType):
    after = states.next_status(current, event_type)

    assert states.status_rank(after) >= states.status_rank(current)


@pytest.mark.parametrize("event_type", list(EventType))
def test_cancelled_is_terminal_whatever_event_follows(event_type: EventType):
    assert states.next_status(CANCELLED, event_type) == CANCELLED


@pytest.mark.parametrize("current", PRECEDENCE)
def test_cancelled_event_cancels_from_any_progress_status(current: str):
    assert states.next_status(current, EventType.CANCELLED) == CANCELLED


def test_late_lower_milestone_leaves_a_higher_status_unchanged():
    assert states.next_status("IN_TRANSIT", EventType.ARRIVED_AT_PICKUP) == "IN_TRANSIT"
    assert states.next_status("DELIVERED", EventType.OUT_FOR_DELIVERY) == "DELIVERED"


def test_higher_milestone_moves_status_forward_skipping_steps():
    assert states.next_status("PLANNED", EventType.DELIVERED) == "DELIVERED"
    assert states.next_status("TENDER_ACCEPTED", EventType.IN_TRANSIT) == "IN_TRANSIT"


@pytest.mark.parametrize(
    "event_type",
    [
        EventType.DELAYED,
        EventType.CUSTOMS_HOLD,
        EventType.POD_RECEIVED,
        EventType.FREIGHT_ADJUSTMENT,
        EventType.EXCEPTION_RESOLVED,
    ],
)
def test_events_without_an_implied_status_leave_status_alone(event_type: EventType):
    assert states.next_status("IN_TRANSIT", event_type) == "IN_TRANSIT"


def test_final_status_is_the_same_for_every_arrival_order():
    events = [
        EventType.TENDER_ACCEPTED,
        EventType.ARRIVED_AT_PICKUP,
        EventType.DEPARTED_PICKUP,
        EventType.DELAYED,
        EventType.IN_TRANSIT,
        EventType.OUT_FOR_DELIVERY,
    ]
    rng = random.Random(20261120)
    finals = set()
    for _ in range(50):
        order = events[:]
        rng.shuffle(order)
        status = "PLANNED"
        for event_type in order:
            status = states.next_status(status, event_type)
        finals.add(status)

    assert finals == {"OUT_FOR_DELIVERY"}


def test_cancelled_rank_is_above_every_progress_status():
    assert all(states.status_rank(CANCELLED) > states.status_rank(s) for s in PRECEDENCE)


# --- Exception episodes -----------------------------------------------------------------------------


def test_opener_opens_one_episode():
    episodes = states.exception_episodes([entry(EventType.DELAYED, 10, "d1")])

    assert episodes == [Episode("DELAYED", at(10), "d1", "", None)]


def test_repeat_opener_while_open_enriches_the_episode_instead_of_adding_one():
    episodes = states.exception_episodes(
        [entry(EventType.DELAYED, 30, "d2"), entry(EventType.DELAYED, 10, "d1")]
    )

    assert len(episodes) == 1
    # Opened by the earliest event in time, whatever the arrival order.
    assert (episodes[0].opened_at, episodes[0].opened_key, episodes[0].resolved_at) == (at(10), "d1", None)


def test_exception_resolved_naming_a_kind_resolves_only_that_kind():
    episodes = states.exception_episodes(
        [
            entry(EventType.DELAYED, 10),
            entry(EventType.DAMAGED, 20),
            entry(EventType.EXCEPTION_RESOLVED, 30, resolves="DAMAGED"),
        ]
    )

    assert summary(episodes) == [("DELAYED", at(10), None), ("DAMAGED", at(20), at(30))]


def test_exception_resolved_without_a_kind_resolves_every_open_exception():
    episodes = states.exception_episodes(
        [
            entry(EventType.DELAYED, 10),
            entry(EventType.REFUSED, 20),
            entry(EventType.EXCEPTION_RESOLVED, 30),
        ]
    )

    assert summary(episodes) == [("DELAYED", at(10), at(30)), ("REFUSED", at(20), at(30))]


def test_exception_resolved_naming_a_kind_that_is_not_open_changes_nothing():
    episodes = states.exception_episodes(
        [entry(EventType.DELAYED, 10), entry(EventType.EXCEPTION_RESOLVED, 20, resolves="CUSTOMS_HOLD")]
    )

    assert summary(episodes) == [("DELAYED", at(10), None)]


def test_customs_released_closes_customs_hold_only():
    episodes = states.exception_episodes(
        [
            entry(EventType.CUSTOMS_HOLD, 10),
            entry(EventType.DELAYED, 15),
            entry(EventType.CUSTOMS_RELEASED, 20),
        ]
    )

    assert summary(episodes) == [("CUSTOMS_HOLD", at(10), at(20)), ("DELAYED", at(15), None)]


def test_delivered_closes_delayed():
    episodes = states.exception_episodes([entry(EventType.DELAYED, 10), entry(EventType.DELIVERED, 40)])

    assert summary(episodes) == [("DELAYED", at(10), at(40))]


def test_departed_pickup_closes_missed_pickup():
    episodes = states.exception_episodes(
        [entry(EventType.MISSED_PICKUP, 10), entry(EventType.DEPARTED_PICKUP, 50)]
    )

    assert summary(episodes) == [("MISSED_PICKUP", at(10), at(50))]


def test_closer_earlier_in_time_than_the_opener_does_not_close_it():
    # A CUSTOMS_RELEASED that happened before the hold (arriving after it) must not resolve it.
    episodes = states.exception_episodes(
        [entry(EventType.CUSTOMS_HOLD, 20), entry(EventType.CUSTOMS_RELEASED, 10)]
    )

    assert summary(episodes) == [("CUSTOMS_HOLD", at(20), None)]


def test_reopen_after_resolve_gives_a_second_episode():
    episodes = states.exception_episodes(
        [
            entry(EventType.DELAYED, 10, "d1"),
            entry(EventType.EXCEPTION_RESOLVED, 20, resolves="DELAYED"),
            entry(EventType.DELAYED, 30, "d2"),
        ]
    )

    assert summary(episodes) == [("DELAYED", at(10), at(20)), ("DELAYED", at(30), None)]
    assert {e.opened_key for e in episodes} == {"d1", "d2"}


def test_episodes_are_the_same_for_every_arrival_order():
    timeline = [
        entry(EventType.DELAYED, 10),
        entry(EventType.CUSTOMS_HOLD, 20),
        entry(EventType.DELAYED, 25),
        entry(EventType.CUSTOMS_RELEASED, 30),
        entry(EventType.EXCEPTION_RESOLVED, 40, resolves="DELAYED"),
        entry(EventType.DELAYED, 50),
        entry(EventType.DELIVERED, 60),
    ]
    expected = summary(states.exception_episodes(timeline))
    rng = random.Random(7)
    for _ in range(50):
        shuffled = timeline[:]
        rng.shuffle(shuffled)
        assert summary(states.exception_episodes(shuffled)) == expected
    assert expected == [
        ("DELAYED", at(10), at(40)),
        ("CUSTOMS_HOLD", at(20), at(30)),
        ("DELAYED", at(50), at(60)),
    ]


def test_reason_code_of_the_opening_event_is_kept_on_the_episode():
    opener = TimelineEntry(EventType.DAMAGED, at(10), "dmg", reason_code="AH")

    (episode,) = states.exception_episodes([opener])

    assert episode.reason_code == "AH"
