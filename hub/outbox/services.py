"""Outbox and deliveries.

- ``outbox_event_record`` writes the event and its deliveries in the caller's transaction (the change
  and the promise to publish it commit together, or neither does).
- ``outbox_drain`` claims due deliveries in batches, at most one per (subscription, shipment) at a
  time and in shipment-sequence order, sends them concurrently, and records every attempt.
- Transient failures retry with back-off (``retry.py``) up to the connection's ``max_attempts``;
  permanent ones dead-letter at once. Long waits live in ``next_attempt_at``; the beat sweeper wakes
  them (never a long Celery countdown: Redis would redeliver it after the visibility timeout).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef
from django.utils import timezone

from canonical.milestones import MilestoneResult
from canonical.models import Shipment, ShipmentException
from connectors import registry
from connectors.base import OutboundRequest, SendResult
from connectors.errors import ConnectorError, PermanentError, TransientError
from hub.connections.models import Connection, Subscription
from hub.connections.services import connection_config, connection_secret
from hub.core import work
from hub.core.http import SafeHttpClient
from hub.core.lease import lease_kept
from hub.core.wake import wake_clear
from hub.deadletters.models import DeadLetter
from hub.deadletters.services import dead_letter_record
from hub.ledger.services import side_effect_perform
from hub.outbox import breaker
from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent
from hub.outbox.retry import backoff_delay
from hub.routing.plan import SubscriptionView, delivery_plan

logger = logging.getLogger(__name__)

BATCH_SIZE = 50  # deliveries claimed per round; sent concurrently
SEND_THREADS = 8  # concurrent HTTP requests per worker process
DRAIN_BUDGET_S = 25.0  # seconds per drain task before it hands over to a fresh one
OUTBOX_WAKE = "outbox"
SOURCE = "crossdock"


def _send_wake() -> None:
    work.send(OUTBOX_WAKE)


def subscriptions_active() -> list[SubscriptionView]:
    return [
        SubscriptionView(id=s.id, connection_id=s.connection_id, event_types=frozenset(s.event_types or []))
        for s in Subscription.objects.filter(is_active=True, connection__is_active=True)
    ]


def _open_exception_kinds(shipment_ids) -> dict[UUID, list[str]]:
    kinds: dict[UUID, list[str]] = {}
    rows = (
        ShipmentException.objects.filter(shipment_id__in=shipment_ids, status=ShipmentException.Status.OPEN)
        .order_by("kind")
        .values_list("shipment_id", "kind")
    )
    for shipment_id, kind in rows:
        kinds.setdefault(shipment_id, []).append(kind)
    return kinds


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def shipment_state(
    shipment: Shipment, *, after: dict | None = None, open_exceptions: list[str] | None = None
) -> dict[str, Any]:
    """The shipment's current state as carried on every outbound update (``after``: the state right
    after one event of a batch; ``open_exceptions``: when the caller already knows them)."""
    state = after or {
        "status": shipment.status,
        "sequence": shipment.sequence,
        "delivered_at": shipment.delivered_at,
        "pod_received_at": shipment.pod_received_at,
    }
    if open_exceptions is None:
        open_exceptions = state.get("open_exceptions")
    if open_exceptions is None:
        open_exceptions = _open_exception_kinds([shipment.pk]).get(shipment.pk, [])
    return {
        "reference": shipment.reference,
        "status": state["status"],
        "sequence": state["sequence"],
        "carrier": shipment.carrier.scac if shipment.carrier_id else None,
        "customer": shipment.customer.code if shipment.customer_id else None,
        "delivered_at": _iso(state["delivered_at"]),
        "pod_received_at": _iso(state["pod_received_at"]),
        "open_exceptions": open_exceptions,
    }


def _outbox_row(result: MilestoneResult, message, open_exceptions: list[str] | None) -> OutboxEvent:
    shipment, event = result.shipment, result.event
    assert event is not None
    state = shipment_state(shipment, after=result.state_after or None, open_exceptions=open_exceptions)
    data = {
        "event": {
            "event_type": event.event_type,
            "occurred_at": event.occurred_at.isoformat(),
            "late": event.late,
            "stop_sequence": event.stop_sequence,
            "location_code": event.location_code or None,
            "reason_code": event.reason_code or None,
            "source_system": event.source_system,
            "source_event_id": event.source_event_id or None,
            "details": event.details,
        },
        "shipment": state,
    }
    return OutboxEvent(
        event_type=event.event_type,
        shipment=shipment,
        subject=shipment.reference,
        shipment_sequence=state["sequence"],
        occurred_at=event.occurred_at,
        data=data,
        message=message,
        correlation_id=message.correlation_id if message is not None else "",
    )


def _deliveries_for(outbox: OutboxEvent, subscriptions: list[SubscriptionView], now) -> list[Delivery]:
    return [
        Delivery(
            event=outbox,
            subscription_id=sub.id,
            next_attempt_at=now,
            ordering_key=str(outbox.shipment_id),
            ordering_seq=outbox.shipment_sequence,
        )
        for sub in delivery_plan(outbox.event_type, subscriptions)
    ]


def outbox_event_record(
    *, result: MilestoneResult, message=None, subscriptions: list[SubscriptionView]
) -> OutboxEvent:
    """Write the outbox event for an applied milestone and one delivery per interested subscription.

    Must run inside the transaction that applied the milestone.
    """
    outbox = _outbox_row(result, message, None)
    outbox.save(force_insert=True)
    deliveries = _deliveries_for(outbox, subscriptions, timezone.now())
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        work.wake_on_commit(OUTBOX_WAKE)
    return outbox


def outbox_events_record_bulk(
    *, results: list[tuple[MilestoneResult, Any]], subscriptions: list[SubscriptionView]
) -> list[OutboxEvent]:
    """``outbox_event_record`` for many applied milestones (each with its message) in three queries.

    Open exceptions come from each result's ``state_after`` when the batch worked them out, else
    they are read once per shipment.
    """
    if not results:
        return []
    open_kinds = _open_exception_kinds({result.shipment.pk for result, _ in results})
    rows = [
        _outbox_row(
            result, message, result.state_after.get("open_exceptions", open_kinds.get(result.shipment.pk, []))
        )
        for result, message in results
    ]
    OutboxEvent.objects.bulk_create(rows)
    now = timezone.now()
    deliveries = [delivery for row in rows for delivery in _deliveries_for(row, subscriptions, now)]
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        work.wake_on_commit(OUTBOX_WAKE)
    return rows


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """CloudEvents 1.0 structured JSON for an outbox event."""
    return {
        "specversion": "1.0",
        "id": str(event.id),
        "source": f"/{SOURCE}/shipments",
        "type": f"{SOURCE}.shipment.{event.event_type}",
        "time": event.occurred_at.isoformat(),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "sequence": str(event.shipment_sequence),
        "data": event.data,
    }


# --- Claiming and sending ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryClaim:
    """Deliveries claimed together, and the token that proves the claim is still this worker's."""

    token: UUID
    ids: list[UUID]

    def __bool__(self) -> bool:
        return bool(self.ids)


def delivery_batch_claim(*, limit: int = BATCH_SIZE) -> DeliveryClaim:
    """Claim due deliveries that are at the head of their (subscription, shipment) line.

    A delivery waits while an earlier one for the same subscription and shipment is pending or in
    flight, so a receiver gets each shipment's updates in sequence. Concurrent claimers skip rows
    locked by each other. Every row claimed carries the claim's token: renewals, outcomes and
    deferrals match on it, so a worker that lost its lease (and its rows to a new claim) cannot
    record over the new claimant.
    """
    token = uuid4()
    now = timezone.now()
    earlier = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        ordering_key=OuterRef("ordering_key"),
        ordering_seq__lt=OuterRef("ordering_seq"),
        status__in=[Delivery.Status.PENDING, Delivery.Status.IN_FLIGHT],
    )
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .exclude(Exists(earlier))
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(id__in=ids).update(
                status=Delivery.Status.IN_FLIGHT,
                claim=token,
                lease_until=now + timedelta(seconds=settings.CROSSDOCK_DELIVERY_LEASE_S),
            )
    return DeliveryClaim(token, ids)


@dataclass
class _Prepared:
    delivery: Delivery
    connection: Connection
    config: Any
    claim: DeliveryClaim
    request: OutboundRequest | None = None
    result: SendResult | None = None
    error: ConnectorError | None = None
    started_at: Any = None


def outbox_drain(*, budget_s: float = DRAIN_BUDGET_S, timer_slot: int | None = None) -> int:
    """Send due deliveries until none are due or the budget is spent. Returns how many were tried.
    ``timer_slot``: the timed wake-up that started this drain (hub.core.work.wake_at)."""
    work.timer_fired(OUTBOX_WAKE, timer_slot)
    started = time.monotonic()
    tried = 0
    while time.monotonic() - started < budget_s:
        wake_clear(OUTBOX_WAKE)
        claim = delivery_batch_claim()
        if not claim:
            _schedule_next_wake()
            return tried
        delivery_batch_send(claim)
        tried += len(claim.ids)
    _send_wake()
    return tried


def _schedule_next_wake() -> None:
    """A retry due within seconds gets a timed wake-up at its due time; later ones, the sweeper."""
    soonest = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(at=Min("next_attempt_at"))[
        "at"
    ]
    if soonest is not None:
        work.wake_at(OUTBOX_WAKE, soonest.timestamp())


def _ours(claim: DeliveryClaim, ids: list[UUID] | None = None):
    """The claim's deliveries that are still in flight under it (not finished, deferred or re-claimed)."""
    return Delivery.objects.filter(
        id__in=claim.ids if ids is None else ids, status=Delivery.Status.IN_FLIGHT, claim=claim.token
    )


def _deliveries_lease_renew(claim: DeliveryClaim) -> int:
    """Extend the lease of the claim's deliveries still in flight under it."""
    return _ours(claim).update(
        lease_until=timezone.now() + timedelta(seconds=settings.CROSSDOCK_DELIVERY_LEASE_S)
    )


def delivery_batch_send(claim: DeliveryClaim) -> None:
    """Send claimed deliveries, keeping their lease alive while the requests run (hub.core.lease):
    a worker killed mid-send gives them back within one lease, a slow receiver never does."""
    every_s = settings.CROSSDOCK_DELIVERY_LEASE_S / 3
    with lease_kept(partial(_deliveries_lease_renew, claim), every_s=every_s, name="outbox"):
        _batch_send(claim)


def _batch_send(claim: DeliveryClaim) -> None:
    """Send claimed deliveries that are still ours and record each outcome.

    Steps: load the rows still in flight; per connection, ask the breaker once how many may go
    (the rest are deferred without spending an attempt); take rate-limit slots; render; send
    concurrently; record attempts and new states; then tell the breaker each connection's answers
    in one call (successes and transient failures; a permanent error says nothing of its health).
    """
    deliveries = list(_ours(claim).select_related("event", "subscription__connection"))
    configured: list[tuple[Delivery, Any]] = []
    for delivery in deliveries:
        connection = delivery.subscription.connection
        try:
            configured.append((delivery, connection_config(connection)))
        except Exception as exc:  # config no longer valid: an operator must fix the connection
            _finish(
                _Prepared(
                    delivery,
                    connection,
                    None,
                    claim,
                    error=PermanentError(f"connection config invalid: {exc}"),
                )
            )
    policies: dict[UUID, breaker.BreakerPolicy] = {}
    wanted: dict[UUID, int] = {}
    for delivery, config in configured:
        connection_id = delivery.subscription.connection_id
        policies.setdefault(connection_id, breaker.breaker_policy(config))
        wanted[connection_id] = wanted.get(connection_id, 0) + 1
    admissions = {
        connection_id: breaker.breaker_admit(connection_id, wanted=n, policy=policies[connection_id])
        for connection_id, n in wanted.items()
    }
    prepared: list[_Prepared] = []
    for delivery, config in configured:
        connection = delivery.subscription.connection
        admission = admissions[connection.pk]
        if admission.allowed <= 0:
            _defer(claim, delivery, admission.wait_s, admission.why)
            continue
        admissions[connection.pk] = replace(admission, allowed=admission.allowed - 1)
        wait = breaker.rate_limit_take(connection.pk, getattr(config, "rate_limit_per_s", None))
        if wait:
            _defer(claim, delivery, wait, "rate limited")
            continue
        item = _Prepared(delivery, connection, config, claim)
        spec = registry.get(connection.connector)
        if spec.connector.event_operation is not None:
            _perform_event_operation(item, spec.connector.event_operation)
            prepared.append(item)
            continue
        try:
            item.request = spec.instance().render(
                envelope(delivery.event),
                config,
                connection_secret(connection),
                idempotency_key=str(delivery.id),
            )
        except ConnectorError as exc:
            item.error = exc
        except Exception as exc:
            item.error = PermanentError(f"cannot render: {type(exc).__name__}: {exc}")
        prepared.append(item)

    to_send = [p for p in prepared if p.request is not None]
    if to_send:
        list(_send_pool().map(_send_one, to_send))
    delivered = _finish_delivered(
        [item for item in prepared if item.error is None and item.result is not None]
    )
    for item in prepared:
        if item.error is not None and _finish(item):
            delivered.append(item.delivery.id)
    if delivered:
        DeadLetter.objects.filter(delivery_id__in=delivered, status=DeadLetter.Status.OPEN).update(
            status=DeadLetter.Status.REPLAYED
        )
    _breaker_record_answers(prepared, policies)


def _breaker_record_answers(prepared: list[_Prepared], policies: dict[UUID, breaker.BreakerPolicy]) -> None:
    """One breaker call per connection for the whole batch, so the order the batch's answers came
    back in cannot matter. Every answer counts, even one whose record was skipped because its lease
    was taken over: the receiver did answer it."""
    answers: dict[UUID, list[int]] = {}  # connection -> [succeeded, failed]
    for item in prepared:
        tally = answers.setdefault(item.connection.pk, [0, 0])
        if item.error is None and item.result is not None:
            tally[0] += 1
        elif isinstance(item.error, TransientError):
            tally[1] += 1
    for connection_id, (succeeded, failed) in answers.items():
        breaker.breaker_record(
            connection_id, succeeded=succeeded, failed=failed, policy=policies[connection_id]
        )


def _perform_event_operation(item: _Prepared, operation: str) -> None:
    """Deliver to a system of record (a CRM's account notes, an ERP) as one ledger write keyed by the
    event: a retry, a replay or a crash after the write never repeats it in the peer."""
    item.started_at = timezone.now()
    started = time.monotonic()
    try:
        effect = side_effect_perform(
            connection=item.connection,
            operation=operation,
            business_key=f"event:{item.delivery.event_id}",
            payload=envelope(item.delivery.event),
        )
    except ConnectorError as exc:
        item.error = exc
        return
    except Exception as exc:  # a connector bug must not kill the batch; treat as retryable
        item.error = TransientError(f"unexpected {type(exc).__name__}: {exc}")
        return
    item.result = SendResult(
        status_code=200,
        body_excerpt=f"{operation}: {effect.external_id}"[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


_pool: ThreadPoolExecutor | None = None


def _send_pool() -> ThreadPoolExecutor:
    """One pool per worker process, made on first use (after the prefork), so its threads' HTTP
    sessions keep their connections alive from batch to batch."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="crossdock-send")
    return _pool


def _send_one(item: _Prepared) -> None:
    """Runs in a worker thread: HTTP only, no database."""
    item.started_at = timezone.now()
    spec = registry.get(item.connection.connector)
    client = SafeHttpClient(
        read_timeout_s=getattr(item.config, "timeout_s", 10.0),
        correlation_id=item.delivery.event.correlation_id,
    )
    try:
        item.result = spec.instance().send(item.request, client)
    except ConnectorError as exc:
        item.error = exc
    except Exception as exc:  # a connector bug must not kill the batch; treat as retryable
        item.error = TransientError(f"unexpected {type(exc).__name__}: {exc}")


def _defer(claim: DeliveryClaim, delivery: Delivery, wait_s: float, why: str) -> None:
    """Put a claimed delivery back without spending an attempt (circuit open or half-open, rate limit)."""
    _ours(claim, [delivery.pk]).update(
        status=Delivery.Status.PENDING,
        claim=None,
        lease_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=wait_s),
        last_error=f"deferred: {why}",
    )


def _finish_delivered(items: list[_Prepared]) -> list[UUID]:
    """Record a batch's successful sends in three queries (not a transaction per delivery).

    Only deliveries still in flight under the batch's claim are ours: one whose lease expired and
    was taken over is skipped, like ``_finish`` does one at a time. Returns the ids recorded as
    delivered.
    """
    if not items:
        return []
    now = timezone.now()
    with transaction.atomic():
        ours = set(
            _ours(items[0].claim, [item.delivery.pk for item in items])
            .select_for_update(no_key=True)
            .values_list("pk", flat=True)
        )
        kept = [item for item in items if item.delivery.pk in ours]
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    delivery=item.delivery,
                    number=item.delivery.attempts_total + 1,
                    started_at=item.started_at or now,
                    duration_ms=item.result.duration_ms,
                    status_code=item.result.status_code,
                    outcome=DeliveryAttempt.Outcome.DELIVERED,
                    response_excerpt=item.result.body_excerpt,
                )
                for item in kept
            ]
        )
        by_status: dict[int, list[UUID]] = {}
        for item in kept:
            by_status.setdefault(item.result.status_code, []).append(item.delivery.pk)
        for status_code, ids in by_status.items():
            Delivery.objects.filter(pk__in=ids).update(
                status=Delivery.Status.DELIVERED,
                delivered_at=now,
                attempts=F("attempts") + 1,
                attempts_total=F("attempts_total") + 1,
                claim=None,
                lease_until=None,
                last_status_code=status_code,
                last_error="",
                updated_at=now,
            )
    return [item.delivery.pk for item in kept]


def _finish(item: _Prepared) -> bool:
    """Record the attempt and the delivery's new state. Returns True when delivered."""
    delivery, connection = item.delivery, item.connection
    now = timezone.now()
    number = delivery.attempts + 1  # within this round (a replay starts a new round)
    duration = item.result.duration_ms if item.result else 0
    status_code = item.result.status_code if item.result else getattr(item.error, "status_code", None)
    max_attempts = getattr(item.config, "max_attempts", 8) if item.config else 1
    base_s = getattr(item.config, "backoff_base_s", 5.0) if item.config else 5.0
    with transaction.atomic():
        still_ours = _ours(item.claim, [delivery.pk]).select_for_update(no_key=True)
        if not still_ours.exists():
            return False  # lease expired and another worker took it over; its outcome wins
        attempt = DeliveryAttempt(
            delivery=delivery,
            number=delivery.attempts_total + 1,
            started_at=item.started_at or now,
            duration_ms=duration,
            status_code=status_code,
        )
        fields: dict[str, Any] = {
            "attempts": number,
            "attempts_total": delivery.attempts_total + 1,
            "claim": None,
            "lease_until": None,
            "last_status_code": status_code,
        }
        if item.error is None:
            attempt.outcome = DeliveryAttempt.Outcome.DELIVERED
            attempt.response_excerpt = item.result.body_excerpt if item.result else ""
            fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, last_error="")
        elif isinstance(item.error, TransientError) and number < max_attempts:
            delay = backoff_delay(attempt=number, base_s=base_s, retry_after_s=item.error.retry_after)
            attempt.outcome = DeliveryAttempt.Outcome.RETRY
            attempt.error = item.error.detail
            attempt.next_attempt_at = now + timedelta(seconds=delay)
            fields.update(
                status=Delivery.Status.PENDING,
                next_attempt_at=attempt.next_attempt_at,
                last_error=item.error.detail,
            )
        else:
            attempt.outcome = DeliveryAttempt.Outcome.DEAD
            attempt.error = item.error.detail
            reason = item.error.detail
            if isinstance(item.error, TransientError):
                reason = f"gave up after {number} attempts; last error: {item.error.detail}"
            fields.update(status=Delivery.Status.DEAD, last_error=reason)
            dead_letter_record(
                stage="deliver",
                reason=reason,
                error_class=type(item.error).__name__,
                connection=connection,
                payload=item.request.body if item.request else b"",
                payload_content_type="application/cloudevents+json",
                delivery=delivery,
                correlation_id=delivery.event.correlation_id,
            )
        attempt.save()
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=now, **fields)
    return item.error is None


# --- Sweeper side -----------------------------------------------------------------------------------


def delivery_leases_expire() -> int:
    """Put abandoned in-flight deliveries (worker died mid-send) back to pending; they go out again
    with the same Idempotency-Key, so a receiver that already had them can drop the repeat."""
    return Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT, lease_until__lt=timezone.now()).update(
        status=Delivery.Status.PENDING, claim=None, lease_until=None, next_attempt_at=timezone.now()
    )


def deliveries_due_exist() -> bool:
    return Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


def delivery_letter_replay(letter: DeadLetter) -> None:
    """Replay a delivery's letter (hub.deadletters.replay): a fresh round of attempts, queued."""
    delivery_requeue(delivery=letter.delivery)


def delivery_requeue(*, delivery: Delivery) -> None:
    """Replay a dead delivery: a fresh set of attempts, sent with the same Idempotency-Key."""
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.DEAD).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), lease_until=None
    )
    work.wake_on_commit(OUTBOX_WAKE)
