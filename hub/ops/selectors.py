"""Pipeline health reads for the ops dashboard (``hub.ops.dashboard``) and ``/metrics``.

Each function is one block of the dashboard and runs exactly one query (the circuit states also read
the cache, never the database per connection). Counts are computed when called: nothing is cached,
so every gunicorn worker and every scrape sees the database as it is.

Every grouped query clears the model's default ordering (``order_by()``): an ordering field would
otherwise join the GROUP BY and split the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone

from canonical.models import Shipment, ShipmentEvent, ShipmentException
from hub.connections.models import Connection, Subscription
from hub.deadletters.models import DeadLetter
from hub.inbox.models import InboundMessage
from hub.outbox import breaker
from hub.outbox.models import Delivery

RECENT_WINDOW = timedelta(hours=1)  # the dashboard's "last hour" columns


def recent_since(now: datetime | None = None) -> datetime:
    """The start of the "last hour" window ending at ``now`` (default: the current time)."""
    return (now or timezone.now()) - RECENT_WINDOW


@dataclass(frozen=True)
class StatusCount:
    status: str
    total: int
    recent: int  # within RECENT_WINDOW


def inbound_message_counts(*, since: datetime) -> list[StatusCount]:
    """Inbound messages per status: all of them, and those received since ``since``. Every status is
    listed (zero when none), in the model's order. One query."""
    rows = {
        row["status"]: row
        for row in InboundMessage.objects.order_by()
        .values("status")
        .annotate(total=Count("pk"), recent=Count("pk", filter=Q(received_at__gte=since)))
    }
    return [
        StatusCount(
            status=status,
            total=rows.get(status, {}).get("total", 0),
            recent=rows.get(status, {}).get("recent", 0),
        )
        for status in InboundMessage.Status.values
    ]


def events_applied_count(*, since: datetime) -> int:
    """Milestones applied to shipments since ``since`` (timeline rows written). One query."""
    return ShipmentEvent.objects.filter(created_at__gte=since).count()


def oldest_waiting_message_age(*, now: datetime | None = None) -> float | None:
    """Seconds the oldest message still waiting for a worker has waited, or None when none waits.

    One query, served by the partial index on waiting messages (``inbox_msg_waiting_idx``).
    """
    oldest = InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED).aggregate(
        oldest=Min("received_at")
    )["oldest"]
    if oldest is None:
        return None
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


@dataclass(frozen=True)
class DeliveryCounts:
    pending: int
    in_flight: int
    delivered: int
    delivered_recent: int  # delivered within RECENT_WINDOW
    dead: int

    def by_status(self) -> dict[str, int]:
        return {
            Delivery.Status.PENDING: self.pending,
            Delivery.Status.IN_FLIGHT: self.in_flight,
            Delivery.Status.DELIVERED: self.delivered,
            Delivery.Status.DEAD: self.dead,
        }


def delivery_counts(*, since: datetime) -> DeliveryCounts:
    """Deliveries per status, plus those delivered since ``since``. One query."""
    status = Delivery.Status
    counts = Delivery.objects.aggregate(
        pending=Count("pk", filter=Q(status=status.PENDING)),
        in_flight=Count("pk", filter=Q(status=status.IN_FLIGHT)),
        delivered=Count("pk", filter=Q(status=status.DELIVERED)),
        delivered_recent=Count("pk", filter=Q(status=status.DELIVERED, delivered_at__gte=since)),
        dead=Count("pk", filter=Q(status=status.DEAD)),
    )
    return DeliveryCounts(**counts)


@dataclass(frozen=True)
class OpenLetterCount:
    stage: str
    connection: str  # the connection's slug
    count: int


def open_dead_letter_counts() -> list[OpenLetterCount]:
    """Open dead letters per (stage, connection), ordered by stage then connection. One query."""
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
        .order_by()
        .values("stage", "connection__slug")
        .annotate(count=Count("pk"))
        .order_by("stage", "connection__slug")
    )
    return [
        OpenLetterCount(stage=row["stage"], connection=row["connection__slug"], count=row["count"])
        for row in rows
    ]


def open_dead_letters_by_stage(rows: list[OpenLetterCount]) -> dict[str, int]:
    """Totals per stage (every stage, zero when none) from :func:`open_dead_letter_counts`' rows."""
    totals = dict.fromkeys(DeadLetter.Stage.values, 0)
    for row in rows:
        totals[row.stage] = totals.get(row.stage, 0) + row.count
    return totals


@dataclass(frozen=True)
class CircuitState:
    connection_id: object
    slug: str
    state: str  # closed | open | half-open | unknown (see hub.outbox.breaker.breaker_state)

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def outbound_circuits() -> list[CircuitState]:
    """The breaker state of every active connection with an active subscription (the ones events are
    delivered to). One query for the connections; the states come from the cache."""
    subscribed = Subscription.objects.filter(connection=OuterRef("pk"), is_active=True)
    connections = (
        Connection.objects.filter(Exists(subscribed), is_active=True)
        .order_by("slug")
        .values_list("pk", "slug")
    )
    return [
        CircuitState(connection_id=pk, slug=slug, state=breaker.breaker_state(pk)) for pk, slug in connections
    ]


def _counts_by(queryset, field: str, values: list[str]) -> dict[str, int]:
    counted = dict(queryset.order_by().values_list(field).annotate(count=Count("pk")))
    return {value: counted.get(value, 0) for value in values}


def shipment_counts() -> dict[str, int]:
    """Shipments per status (every status, zero when none). One query."""
    return _counts_by(Shipment.objects.all(), "status", Shipment.Status.values)


def open_exception_counts() -> dict[str, int]:
    """Open shipment exceptions per kind (every kind, zero when none). One query."""
    return _counts_by(
        ShipmentException.objects.filter(status=ShipmentException.Status.OPEN),
        "kind",
        ShipmentException.Kind.values,
    )
