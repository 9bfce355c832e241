"""Shipment state rules, as pure functions (no ORM): precedence, what each event means, exceptions.

A shipment's status only moves forward: the applied status is the highest-precedence one any of its
events implies, and CANCELLED is terminal. Because ``max`` does not care about arrival order, the
final status is the same for any permutation or duplication of the same events.

Exceptions are derived from the timeline *ordered by event time*, never by arrival, for the same
reason: replaying the sorted timeline gives the same open exceptions whatever order events came in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from canonical.contracts.v1 import EventType

PRECEDENCE: tuple[str, ...] = (
    "PLANNED",
    "TENDERED",
    "TENDER_ACCEPTED",
    "AT_PICKUP",
    "PICKED_UP",
    "IN_TRANSIT",
    "AT_DELIVERY",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
)
CANCELLED = "CANCELLED"
_RANK = {status: rank for rank, status in enumerate(PRECEDENCE)}

# The status an event implies. Events absent here (exceptions, POD, freight, invoice) leave it alone.
EVENT_STATUS: dict[EventType, str] = {
    EventType.TENDER_ACCEPTED: "TENDER_ACCEPTED",
    EventType.ARRIVED_AT_PICKUP: "AT_PICKUP",
    EventType.DEPARTED_PICKUP: "PICKED_UP",
    EventType.IN_TRANSIT: "IN_TRANSIT",
    EventType.ARRIVED_AT_DELIVERY: "AT_DELIVERY",
    EventType.OUT_FOR_DELIVERY: "OUT_FOR_DELIVERY",
    EventType.DELIVERED: "DELIVERED",
    EventType.CANCELLED: CANCELLED,
}

# Events that open an exception, by exception kind.
EXCEPTION_OPENERS: dict[EventType, str] = {
    EventType.DELAYED: "DELAYED",
    EventType.CUSTOMS_HOLD: "CUSTOMS_HOLD",
    EventType.MISSED_PICKUP: "MISSED_PICKUP",
    EventType.DAMAGED: "DAMAGED",
    EventType.REFUSED: "REFUSED",
}
# Events that resolve specific kinds. EXCEPTION_RESOLVED resolves details["exception"] or all open.
EXCEPTION_CLOSERS: dict[EventType, tuple[str, ...]] = {
    EventType.CUSTOMS_RELEASED: ("CUSTOMS_HOLD",),
    EventType.DEPARTED_PICKUP: ("MISSED_PICKUP",),
    EventType.DELIVERED: ("DELAYED",),
}


def status_rank(status: str) -> int:
    return len(PRECEDENCE) if status == CANCELLED else _RANK[status]


def next_status(current: str, event_type: EventType) -> str:
    """The status after ``event_type``: never lower than ``current``; CANCELLED is terminal."""
    if current == CANCELLED:
        return CANCELLED
    implied = EVENT_STATUS.get(event_type)
    if implied is None:
        return current
    if implied == CANCELLED:
        return CANCELLED
    return implied if _RANK[implied] > _RANK[current] else current


@dataclass(frozen=True)
class Episode:
    """One exception from the event that opened it to the event that resolved it (if any)."""

    kind: str
    opened_at: datetime
    opened_key: str  # dedupe key of the opening event
    reason_code: str
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class TimelineEntry:
    event_type: EventType
    occurred_at: datetime
    dedupe_key: str
    reason_code: str = ""
    resolves: str | None = None  # for EXCEPTION_RESOLVED: the kind named in details, if any


def _sort_key(entry: TimelineEntry) -> tuple:
    # Ties on time are broken by a stable, arrival-independent key.
    return (entry.occurred_at, entry.event_type.value, entry.dedupe_key)


def exception_episodes(timeline: Iterable[TimelineEntry]) -> list[Episode]:
    """Replay the timeline in event-time order; return every exception episode, open or resolved.

    A repeat of an opener while that kind is open enriches the open episode (no second one).
    """
    open_by_kind: dict[str, Episode] = {}
    closed: list[Episode] = []
    for entry in sorted(timeline, key=_sort_key):
        kind = EXCEPTION_OPENERS.get(entry.event_type)
        if kind is not None:
            if kind not in open_by_kind:
                open_by_kind[kind] = Episode(kind, entry.occurred_at, entry.dedupe_key, entry.reason_code)
            continue
        if entry.event_type == EventType.EXCEPTION_RESOLVED:
            kinds = (entry.resolves,) if entry.resolves else tuple(open_by_kind)
        else:
            kinds = EXCEPTION_CLOSERS.get(entry.event_type, ())
        for resolved_kind in kinds:
            episode = open_by_kind.pop(resolved_kind, None)
            if episode is not None:
                closed.append(
                    Episode(
                        episode.kind,
                        episode.opened_at,
                        episode.opened_key,
                        episode.reason_code,
                        entry.occurred_at,
                    )
                )
    return closed + list(open_by_kind.values())


def affects_exceptions(event_type: EventType) -> bool:
    """Whether applying ``event_type`` can change any exception episode (else the sync is skipped)."""
    return (
        event_type in EXCEPTION_OPENERS
        or event_type in EXCEPTION_CLOSERS
        or event_type == EventType.EXCEPTION_RESOLVED
    )
