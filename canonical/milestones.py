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
from django.utils import timezone

from canonical import states
from canonical.contracts.v1 import EventType, MilestoneEvent, semantic_key
from canonical.dbutil import bulk_update_rows
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
    # The shipment's status, sequence, delivery and POD times right after this event (the shipment
    # object itself may have moved on when several events for it are applied in one batch).
    state_after: dict = field(default_factory=dict)

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
        record, result = _apply_in_memory(
            shipment, event, key=key, latest=facts["latest"], source=source, message_id=message_id
        )
        record.save(force_insert=True)
        if event.stop_sequence is not None:
            _stop_times(shipment, event)
        if states.affects_exceptions(event.event_type):
            result.opened, result.resolved = _sync_exceptions(shipment)
        shipment.save(update_fields=SHIPMENT_STATE_FIELDS)
    return result


SHIPMENT_STATE_FIELDS = ["status", "delivered_at", "pod_received_at", "sequence", "updated_at"]


def _apply_in_memory(
    shipment: Shipment, event: MilestoneEvent, *, key: str, latest, source: str, message_id: UUID | None
) -> tuple[ShipmentEvent, MilestoneResult]:
    """The state machine on a locked shipment, in memory: the new timeline row (unsaved) and the
    shipment's new status, delivery and POD times and sequence (we hold the row lock, so the
    sequence read is current). Shared by the one-event and the bulk path so both follow one rule."""
    implied = states.EVENT_STATUS.get(event.event_type)
    late = (latest is not None and event.occurred_at < latest) or (
        implied is not None
        and implied != states.CANCELLED
        and shipment.status != states.CANCELLED
        and states.status_rank(implied) < states.status_rank(shipment.status)
    )
    record = ShipmentEvent(
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
    shipment.sequence += 1
    result.state_after = {
        "status": shipment.status,
        "sequence": shipment.sequence,
        "delivered_at": shipment.delivered_at,
        "pod_received_at": shipment.pod_received_at,
    }
    return record, result


# --- Many milestones at once ------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkItem:
    event: MilestoneEvent
    source: str
    message_id: UUID | None = None


def shipments_lock(*, references: set[str]) -> dict[str, Shipment]:
    """Lock the named shipments (in primary-key order, so concurrent batches cannot deadlock) and
    return them by reference. Must run inside a transaction; unknown references are absent."""
    rows = (
        Shipment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("carrier", "customer")
        .filter(reference__in=references)
        .order_by("pk")
    )
    return {shipment.reference: shipment for shipment in rows}


def shipments_apply_milestones(
    *, items: list[BulkItem], shipments: dict[str, Shipment]
) -> list[MilestoneResult]:
    """Apply many milestones to shipments locked by ``shipments_lock``, in list order, with a fixed
    number of queries (not one round of queries per event): the rules and results are those of
    ``shipment_apply_milestone``, one result per item.

    Exceptions follow the same rule too: for each shipment an event in the batch can affect, its
    timeline is read once, the open exceptions after every event are worked out in memory (carried in
    ``state_after["open_exceptions"]``), and the exception rows are synced once per shipment at the
    end. Every item's shipment must be in ``shipments``. Must run inside a transaction.
    """
    targets = [shipments[item.event.shipment.reference] for item in items]
    keys = [semantic_key(item.event, source=item.source) for item in items]
    shipment_ids = {shipment.pk for shipment in targets}
    seen = set(
        ShipmentEvent.objects.filter(shipment_id__in=shipment_ids, dedupe_key__in=set(keys)).values_list(
            "shipment_id", "dedupe_key"
        )
    )
    latest = dict(
        ShipmentEvent.objects.filter(shipment_id__in=shipment_ids)
        .values("shipment_id")
        .annotate(latest=Max("occurred_at"))
        .values_list("shipment_id", "latest")
    )
    affecting = {
        shipment.pk
        for shipment, item in zip(targets, items, strict=True)
        if states.affects_exceptions(item.event.event_type)
    }
    timelines, manual_open = _exception_context(affecting)
    results: list[MilestoneResult] = []
    rows: list[ShipmentEvent] = []
    touched: dict[UUID, Shipment] = {}
    with_stops: list[tuple[Shipment, MilestoneEvent]] = []
    for item, shipment, key in zip(items, targets, keys, strict=True):
        if (shipment.pk, key) in seen:
            results.append(
                MilestoneResult(shipment=shipment, event=None, duplicate=True, status_before=shipment.status)
            )
            continue
        seen.add((shipment.pk, key))
        record, result = _apply_in_memory(
            shipment,
            item.event,
            key=key,
            latest=latest.get(shipment.pk),
            source=item.source,
            message_id=item.message_id,
        )
        if latest.get(shipment.pk) is None or item.event.occurred_at > latest[shipment.pk]:
            latest[shipment.pk] = item.event.occurred_at
        if shipment.pk in affecting:
            timelines[shipment.pk].append(_entry(record))
            episodes = states.exception_episodes(timelines[shipment.pk])
            opened_kinds = {episode.kind for episode in episodes if episode.resolved_at is None}
            manual_open[shipment.pk] -= opened_kinds  # an event-opened exception adopts a manual one
            result.state_after["open_exceptions"] = sorted(opened_kinds | manual_open[shipment.pk])
        rows.append(record)
        results.append(result)
        touched[shipment.pk] = shipment
        if item.event.stop_sequence is not None:
            with_stops.append((shipment, item.event))
    ShipmentEvent.objects.bulk_create(rows)
    for shipment, event in with_stops:  # rare: only events that name a stop
        _stop_times(shipment, event)
    for shipment in touched.values():
        # No episode in the whole timeline means no event-made exception row to sync either.
        if shipment.pk in affecting and states.exception_episodes(timelines[shipment.pk]):
            _sync_exceptions(shipment)
    now = timezone.now()
    for shipment in touched.values():
        shipment.updated_at = now  # bulk_update does not apply auto_now
    bulk_update_rows(Shipment, list(touched.values()), SHIPMENT_STATE_FIELDS)
    return results


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


def _entry(record: ShipmentEvent) -> states.TimelineEntry:
    return states.TimelineEntry(
        event_type=EventType(record.event_type),
        occurred_at=record.occurred_at,
        dedupe_key=record.dedupe_key,
        reason_code=record.reason_code,
        resolves=(record.details or {}).get("exception")
        if record.event_type == EventType.EXCEPTION_RESOLVED
        else None,
    )


def _exception_context(shipment_ids: set) -> tuple[dict, dict]:
    """For the shipments whose exceptions a batch may change: their timelines so far, and the kinds
    of their open exceptions opened by hand (not by an event). Two queries."""
    timelines: dict = {pk: [] for pk in shipment_ids}
    manual_open: dict = {pk: set() for pk in shipment_ids}
    if not shipment_ids:
        return timelines, manual_open
    for record in ShipmentEvent.objects.filter(shipment_id__in=shipment_ids).only(
        "shipment_id", "event_type", "occurred_at", "dedupe_key", "reason_code", "details"
    ):
        timelines[record.shipment_id].append(_entry(record))
    for shipment_id, kind in ShipmentException.objects.filter(
        shipment_id__in=shipment_ids, status=ShipmentException.Status.OPEN, source_key=""
    ).values_list("shipment_id", "kind"):
        manual_open[shipment_id].add(kind)
    return timelines, manual_open


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
