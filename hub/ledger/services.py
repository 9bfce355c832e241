"""Writes to external systems through the ledger, so none is ever made twice.

``side_effect_perform`` is the only way Crossdock writes to an ERP, TMS or CRM:

1. the intent row (connection, operation, business key) is inserted and **committed** first;
2. if that write is already ``done``, the recorded result is returned and nothing is called;
3. an attempt takes a lease on the row (a conditional UPDATE), so two workers never write at once;
4. if an earlier attempt started but never recorded its outcome (a crash, a timeout after the peer
   had written), the connector's ``lookup`` finds the record by business key; only if there is none
   does ``operate`` write;
5. the outcome is recorded. A transient error releases the lease for a retry; a permanent one marks
   the row ``failed`` (an operator's retry runs the same steps again, lookup included).

Simulating the crash in step 4 for a test: ``side_effect_begin`` (steps 1-3), then the write through
the connector directly, then ``side_effect_lease_expire`` and ``side_effect_perform`` again; it
must find the record instead of writing a second one.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from connectors import registry
from connectors.base import OperationContext, OperationResult
from connectors.errors import ConnectorError, NotSupported, TransientError
from hub.connections.models import Connection
from hub.core.correlation import correlation_id_get
from hub.core.lease import LEASE_S, lease_kept
from hub.ledger.models import ControlCounter, SideEffect
from hub.mappings.context import connection_context

logger = logging.getLogger(__name__)

# An attempt holds a write for hub.core.lease.LEASE_S, renewed by a heartbeat while the write runs:
# another worker may take it over only once the holder has died.
BUSY_RETRY_S = 5.0  # seconds the caller is told to wait when another worker holds the write


@dataclass(frozen=True)
class Begun:
    effect: SideEffect
    unknown_outcome: bool  # an earlier attempt started and recorded nothing: look before writing


def _intent(*, connection: Connection, operation: str, business_key: str, payload: dict) -> SideEffect:
    effect = SideEffect.objects.filter(
        connection=connection, operation=operation, business_key=business_key
    ).first()
    if effect is not None:
        return effect
    try:
        with transaction.atomic():
            return SideEffect.objects.create(
                connection=connection,
                operation=operation,
                business_key=business_key,
                payload=payload,
                correlation_id=correlation_id_get() or "",
            )
    except IntegrityError:  # created concurrently: use theirs
        return SideEffect.objects.get(connection=connection, operation=operation, business_key=business_key)


def side_effect_begin(
    *, connection: Connection, operation: str, business_key: str, payload: dict[str, Any]
) -> Begun | SideEffect:
    """Steps 1-3: record the intent and take the lease. Returns the ``done`` row when there is nothing
    to do, else ``Begun``. Raises TransientError when another attempt holds the lease.

    Must run outside a transaction: the intent has to be committed before the external write.
    """
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("side effects are performed outside a transaction (the intent must commit first)")
    spec = registry.get(connection.connector)
    if operation not in spec.connector.operations:
        raise NotSupported(f"connector {spec.key!r} has no operation {operation!r}")
    effect = _intent(connection=connection, operation=operation, business_key=business_key, payload=payload)
    if effect.status == SideEffect.Status.DONE:
        return effect
    now = timezone.now()
    claimed = (
        SideEffect.objects.filter(pk=effect.pk)
        .exclude(status=SideEffect.Status.DONE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=LEASE_S), attempts=F("attempts") + 1)
    )
    effect.refresh_from_db()
    if effect.status == SideEffect.Status.DONE:
        return effect
    if claimed == 1 and effect.status == SideEffect.Status.FAILED and effect.payload != payload:
        # A failed write is retried with what the caller sends now (the data may have been fixed);
        # a pending one keeps its first payload, so a resend is the same write.
        SideEffect.objects.filter(pk=effect.pk).update(payload=payload)
        effect.payload = payload
    if claimed != 1:
        raise TransientError(
            f"{operation} {business_key!r} is being written by another worker", retry_after=BUSY_RETRY_S
        )
    return Begun(effect=effect, unknown_outcome=effect.attempts > 1)


SECRET_MARKERS = ("secret", "password", "token", "api_key")  # result keys never stored in clear


def _redact(value: Any) -> Any:
    """A result as the ledger stores it: values under secret-looking keys replaced (the caller gets
    the real result back from ``side_effect_perform``'s return only on the attempt that wrote it)."""
    if isinstance(value, dict):
        return {
            key: "(redacted)" if any(m in str(key).lower() for m in SECRET_MARKERS) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def _record(effect: SideEffect, result: OperationResult, *, found: bool) -> SideEffect:
    SideEffect.objects.filter(pk=effect.pk).update(
        status=SideEffect.Status.DONE,
        external_id=result.external_id,
        result=_redact(result.data),
        found_by_lookup=found,
        last_error="",
        lease_until=None,
        completed_at=timezone.now(),
    )
    effect.refresh_from_db()
    effect.result = result.data  # this caller sees what the operation returned, secrets included
    return effect


def side_effect_perform(
    *, connection: Connection, operation: str, business_key: str, payload: dict[str, Any]
) -> SideEffect:
    """Make the write ``operation`` for ``business_key`` in ``connection``'s system exactly once.

    Idempotent: returns the recorded row (``external_id``, ``result``) when it was done before.
    Raises the connector's errors: TransientError (retry later), PermanentError/AuthError/
    MappingError (the row is ``failed`` with the reason).
    """
    begun = side_effect_begin(
        connection=connection, operation=operation, business_key=business_key, payload=payload
    )
    if isinstance(begun, SideEffect):
        return begun
    effect = begun.effect
    connector = registry.get(connection.connector).instance()
    ctx: OperationContext = connection_context(connection, direction="outbound")
    try:
        with (
            lease_kept(partial(_lease_renew, effect.pk), name=f"ledger:{operation}"),
            _write_slot(connection, ctx.config),
        ):
            return _attempt(effect, begun, connector, operation, ctx)
    except TransientError as exc:
        SideEffect.objects.filter(pk=effect.pk).update(lease_until=None, last_error=exc.detail[:2000])
        raise
    except ConnectorError as exc:
        SideEffect.objects.filter(pk=effect.pk).update(
            status=SideEffect.Status.FAILED, lease_until=None, last_error=exc.detail[:2000]
        )
        raise


def _lease_renew(effect_pk) -> int:
    """Extend the lease of a write still held (not recorded yet); a recorded one is left alone."""
    return (
        SideEffect.objects.filter(pk=effect_pk, lease_until__isnull=False)
        .exclude(status=SideEffect.Status.DONE)
        .update(lease_until=timezone.now() + timedelta(seconds=LEASE_S))
    )


@contextmanager
def _write_slot(connection: Connection, config: Any):
    """One write at a time to a connection whose config asks for it (``serialize_writes``): a
    PostgreSQL advisory lock held for the write, so workers on any host queue for the system."""
    if not getattr(config, "serialize_writes", False) or db_connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(connection.pk.int % (2**63 - 1))])
        yield


def _attempt(
    effect: SideEffect, begun: Begun, connector, operation: str, ctx: OperationContext
) -> SideEffect:
    """Steps 4-5: look up first when an earlier attempt's outcome is unknown, else write; record."""
    payload = effect.payload  # what the first attempt sent (see side_effect_begin)
    found = None
    if begun.unknown_outcome:
        try:
            found = connector.lookup(operation, payload, ctx)
        except NotSupported:
            found = None  # the connector's operate is idempotent by itself (it says so)
    if found is not None:
        logger.info("ledger: %s %s already written (found by lookup)", operation, effect.business_key)
        return _record(effect, found, found=True)
    return _record(effect, connector.operate(operation, payload, ctx), found=False)


def side_effect_lease_expire(*, effect_id) -> None:
    """End an attempt's lease now (what time does to a crashed worker's lease). For tests and ops."""
    SideEffect.objects.filter(pk=effect_id).update(lease_until=None)


def side_effect_retry(*, effect_id) -> SideEffect | None:
    """Run a recorded write again with its stored payload (an operator's retry of a failed one).

    A ``done`` row is returned untouched; otherwise the usual steps run, lookup first, so a write
    that did reach the peer is adopted instead of repeated. Errors are recorded on the row.
    """
    effect = SideEffect.objects.select_related("connection").filter(pk=effect_id).first()
    if effect is None or effect.status == SideEffect.Status.DONE:
        return effect
    try:
        return side_effect_perform(
            connection=effect.connection,
            operation=effect.operation,
            business_key=effect.business_key,
            payload=effect.payload,
        )
    except ConnectorError:
        effect.refresh_from_db()
        return effect


MAX_CONTROL_NUMBER = 999_999_999  # X12 ISA13/GS06 are at most nine digits; counters wrap to 1


def control_number_next(*, connection: Connection, name: str) -> int:
    """The next value of the connection's counter ``name`` (1..999999999, wrapping). Never repeats
    a value before wrapping, across processes and restarts (a row lock on the counter)."""
    with transaction.atomic():
        counter, _ = ControlCounter.objects.select_for_update().get_or_create(
            connection=connection, name=name
        )
        counter.last_value = counter.last_value % MAX_CONTROL_NUMBER + 1
        counter.save(update_fields=["last_value", "updated_at"])
        return counter.last_value


def side_effect_payload_once(
    *, connection: Connection, operation: str, business_key: str, build: Any
) -> dict[str, Any]:
    """The payload recorded for this write, else ``build()``: a retry after a crash resends exactly
    what the first attempt sent (same control numbers), not a new variant of it."""
    existing = (
        SideEffect.objects.filter(connection=connection, operation=operation, business_key=business_key)
        .values_list("payload", flat=True)
        .first()
    )
    return existing if existing else build()


WRITES = "writes"  # the work queue of writes the sweeper retries (hub.core.work)
SWEEP_RETRY_BASE_S = 15.0  # seconds; back-off base for writes the sweeper retries (doubling, capped)
SWEEP_RETRY_MAX_S = 3600.0
SWEEP_MAX_ATTEMPTS = 12  # a write still failing transiently after this many tries is marked failed


def side_effects_due(*, limit: int = 50) -> list:
    """Pending writes whose last attempt failed transiently and whose back-off has passed (the
    sweeper retries them; writes a workflow owns are retried by the workflow too, harmlessly)."""
    now = timezone.now()
    due = []
    rows = (
        SideEffect.objects.filter(status=SideEffect.Status.PENDING)
        .exclude(last_error="")
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("updated_at")
        .values_list("pk", "attempts", "updated_at")[: limit * 4]
    )
    for pk, attempts, updated_at in rows:
        if attempts >= SWEEP_MAX_ATTEMPTS:
            SideEffect.objects.filter(pk=pk, status=SideEffect.Status.PENDING).update(
                status=SideEffect.Status.FAILED
            )
            continue
        wait = min(SWEEP_RETRY_MAX_S, SWEEP_RETRY_BASE_S * 2 ** max(0, attempts - 1))
        if updated_at + timedelta(seconds=wait) <= now:
            due.append(pk)
        if len(due) >= limit:
            break
    return due
