"""Applying milestones to shipments: the shipment state machine with the database.

``shipment_apply_milestone`` is the one way a shipment's status, delivery time, POD and event-driven
exceptions change. It is idempotent per event (the semantic key is unique per shipment), never
regresses status, keeps late events in the timeline flagged ``late``, and bumps the shipment's
``sequence`` once per applied change so receivers can drop stale updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from django.db import transaction
from django.db.models import Count, Max, Q

from canonical import states
from canonical.contracts.v1 import EventType, MilestoneEvent, semantic_key
from canonical.errors import NotFoundError
from canonical.models import Shipment, ShipmentEvent, ShipmentException, Stop


class UnknownShipmentError(NotFoundError):
    """The milestone names a shipment reference Crossdock does not know (yet)."""

    slug = "unknown-shipment"

    def __init__(self, reference: str):
        super().__init__(f"no shipment with reference {reference!r}")
        self.reference = reference


@dataclass
class MilestoneResult:
    shipment: Shipment
    event: ShipmentEvent | None
    duplicate: bool = False
    status_before: str = ""
    late: bool = False
    opened: list[ShipmentException] = field(default_factory=list)
    resolved: list[ShipmentException] = field(default_factory=list)

    @property
    def status_changed(self) -> bool:
        return self.status_before != self.shipment.status


def _earliest(current, candidate):
    return candidate if current is None or candidate < current else current


def shipment_apply_milestone(
    *, event: MilestoneEvent, source: str, message_id: UUID | None = None, carrier_id: UUID | None = None
) -> MilestoneResult:
    """Apply one milestone. Idempotent: a repeat returns ``duplicate=True`` and changes nothing.

    ``carrier_id``, when given, restricts the event to that carrier's shipments (a partner carrier may
    post only its own events); another carrier's shipment is reported as unknown, leaking nothing.
    Raises ``UnknownShipmentError`` before writing anything. Opens a transaction when called outside
    one; inside one it adds no savepoint of its own (one fewer round trip per event), so a caller that
    must carry on after a failure wraps the call in its own ``transaction.atomic()``.
    """
    # No savepoint of its own: callers that must survive a failure here wrap it in theirs.
    with transaction.atomic(savepoint=False):
        shipments = Shipment.objects.select_for_update(no_key=True, of=("self",)).select_related(
            "carrier", "customer"
        )
        if carrier_id is not None:
            shipments = shipments.filter(carrier_id=carrier_id)
        shipment = shipments.filter(reference=event.shipment.reference).first()
        if shipment is None:
            raise UnknownShipmentError(event.shipment.reference)
        key = semantic_key(event, source=source)
        # One query for both facts. Check-then-insert is race-free here because every writer of this
        # shipment's events holds its row lock (above); the unique constraint remains the backstop.
        facts = shipment.events.aggregate(
            latest=Max("occurred_at"), seen=Count("id", filter=Q(dedupe_key=key))
        )
        if facts["seen"]:
            return MilestoneResult(
                shipment=shipment, event=None, duplicate=True, status_before=shipment.status
            )
        latest = facts["latest"]
        implied = states.EVENT_STATUS.get(event.event_type)
        late = (latest is not None and event.occurred_at < latest) or (
            implied is not None
            and implied != states.CANCELLED
            and shipment.status != states.CANCELLED
            and states.status_rank(implied) < states.status_rank(shipment.status)
        )
        record = ShipmentEvent.objects.create(
            shipment=shipment,
            event_type=event.event_type.value,
            occurred_at=event.occurred_at,
            stop_sequence=event.stop_sequence,
            location_code=event.location.code if event.location else "",
            reason_code=event.reason_code or "",
            source_system=source,
            source_event_id=event.event_id or "",
            dedupe_key=key,
            late=late,
            details=event.details,
            source_message_id=message_id,
        )

        result = MilestoneResult(shipment=shipment, event=record, status_before=shipment.status, late=late)
        shipment.status = states.next_status(shipment.status, event.event_type)
        if event.event_type == EventType.DELIVERED:
            shipment.delivered_at = _earliest(shipment.delivered_at, event.occurred_at)
        elif event.event_type == EventType.POD_RECEIVED:
            shipment.pod_received_at = _earliest(shipment.pod_received_at, event.occurred_at)
        if event.stop_sequence is not None:
            _stop_times(shipment, event)
        if states.affects_exceptions(event.event_type):
            result.opened, result.resolved = _sync_exceptions(shipment)
        shipment.sequence += 1  # we hold the row lock, so the value read above is current
        shipment.save(update_fields=["status", "delivered_at", "pod_received_at", "sequence", "updated_at"])
    return result


def _stop_times(shipment: Shipment, event: MilestoneEvent) -> None:
    stop = Stop.objects.filter(shipment=shipment, sequence=event.stop_sequence).first()
    if stop is None:
        return  # the event still counts; an unplanned stop is not an error of the carrier's
    if event.event_type in (EventType.ARRIVED_AT_PICKUP, EventType.ARRIVED_AT_DELIVERY):
        stop.actual_arrival = _earliest(stop.actual_arrival, event.occurred_at)
    elif event.event_type in (EventType.DEPARTED_PICKUP, EventType.DELIVERED):
        stop.actual_departure = _earliest(stop.actual_departure, event.occurred_at)
    else:
        return
    if stop.actual_arrival and stop.actual_departure and stop.actual_departure < stop.actual_arrival:
        stop.actual_departure = stop.actual_arrival  # keep the check constraint: departure after arrival
    stop.save(update_fields=["actual_arrival", "actual_departure", "updated_at"])


def _timeline(shipment: Shipment) -> list[states.TimelineEntry]:
    rows = ShipmentEvent.objects.filter(shipment=shipment).values_list(
        "event_type", "occurred_at", "dedupe_key", "reason_code", "details"
    )
    return [
        states.TimelineEntry(
            event_type=EventType(event_type),
            occurred_at=occurred_at,
            dedupe_key=key,
            reason_code=reason,
            resolves=(details or {}).get("exception") if event_type == EventType.EXCEPTION_RESOLVED else None,
        )
        for event_type, occurred_at, key, reason, details in rows
    ]


def _sync_exceptions(shipment: Shipment) -> tuple[list[ShipmentException], list[ShipmentException]]:
    """Make the shipment's event-driven exceptions match the episodes its timeline implies."""
    episodes = states.exception_episodes(_timeline(shipment))
    rows = {
        row.source_key: row
        for row in ShipmentException.objects.filter(shipment=shipment).exclude(source_key="")
    }
    opened: list[ShipmentException] = []
    resolved: list[ShipmentException] = []
    # A row whose opening event no longer opens an episode: an earlier event of the same kind arrived
    # late and now heads that episode. The row moves to it (same exception, opened earlier), rather
    # than a second row being created beside it (which the one-open-per-kind constraint refuses).
    episode_keys = {episode.opened_key for episode in episodes}
    stale = [row for key, row in rows.items() if key not in episode_keys]
    # Resolutions first, so a kind that closes and reopens never holds two OPEN rows at once.
    for episode in sorted(episodes, key=lambda e: e.resolved_at is None):
        row = rows.get(episode.opened_key)
        status = (
            ShipmentException.Status.OPEN
            if episode.resolved_at is None
            else ShipmentException.Status.RESOLVED
        )
        if row is None:
            row = next((r for r in stale if r.kind == episode.kind), None)
            if row is not None:
                stale.remove(row)
        if row is None:
            manual = None
            if status == ShipmentException.Status.OPEN:
                manual = ShipmentException.objects.filter(
                    shipment=shipment, kind=episode.kind, status=status, source_key=""
                ).first()
            row = manual or ShipmentException(shipment=shipment, kind=episode.kind)
            row.source_key = episode.opened_key
            row.opened_at = episode.opened_at
            row.reason_code = episode.reason_code
            row.status, row.resolved_at = status, episode.resolved_at
            row.save()
            (opened if status == ShipmentException.Status.OPEN else resolved).append(row)
        elif (
            row.source_key != episode.opened_key
            or row.status != status
            or row.resolved_at != episode.resolved_at
            or row.opened_at != episode.opened_at
        ):
            was_open = row.status == ShipmentException.Status.OPEN
            row.source_key, row.reason_code = episode.opened_key, episode.reason_code
            row.status, row.resolved_at, row.opened_at = status, episode.resolved_at, episode.opened_at
            row.save(
                update_fields=[
                    "source_key",
                    "reason_code",
                    "status",
                    "resolved_at",
                    "opened_at",
                    "updated_at",
                ]
            )
            if was_open and status == ShipmentException.Status.RESOLVED:
                resolved.append(row)
            elif not was_open and status == ShipmentException.Status.OPEN:
                opened.append(row)
    return opened, resolved
