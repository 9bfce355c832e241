"""The inbound pipeline: store first, then parse -> map -> validate -> apply, exactly once.

- ``inbound_message_receive`` stores the raw message and answers before any processing; the unique
  (connection, idempotency_key) constraint is the message-level dedupe.
- ``inbound_batch_process`` claims waiting messages in batches (``FOR UPDATE SKIP LOCKED``) so many
  workers share the work; each message is then processed in one transaction. A worker killed
  mid-message rolls that transaction back and the expired lease returns the message to the queue.
- Each document of a message is validated and applied on its own savepoint: one bad event in a batch
  is dead-lettered with its reason while the others apply. Event-level dedupe (semantic keys) makes
  the same milestone in another message or batch a no-op.
- No stored message can stall the inbox (docs/subsystems/poison.md): an unexpected error in one
  message is caught, the rest of its batch goes on, and the message is tried again; a claim counts
  as a crash until it settles (``crash_count``, raised in the claiming UPDATE, so a killed worker's
  claim counts too), and after CROSSDOCK_INBOX_POISON_AFTER crashes the message is dead-lettered as
  poison and never claimed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from canonical.contracts.v1 import (
    DOCUMENT_CONTRACTS,
    FreightChargeDocument,
    FunctionalAckDocument,
    MilestoneEvent,
    OrderDocument,
    ShipmentDocument,
)
from canonical.documents import (
    freight_charge_document_apply,
    functional_ack_check,
    order_document_apply,
    shipment_document_apply,
)
from canonical.errors import DomainError
from canonical.milestones import UnknownShipmentError, shipment_apply_milestone
from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import ConnectorError, MappingError, NotSupported, ParseError
from hub.connections.models import Connection
from hub.connections.services import connection_config
from hub.core import work
from hub.core.correlation import correlation_scope
from hub.core.lease import lease_kept
from hub.core.wake import claim_helper_slot, wake_clear
from hub.deadletters.models import DeadLetter
from hub.deadletters.services import dead_letter_record, dead_letter_settle
from hub.inbox.acks import acknowledge_on_commit
from hub.inbox.authority import Refused, document_authorize
from hub.inbox.batch import inbound_batch_process
from hub.inbox.models import InboundMessage
from hub.mappings.services import mapping_set_for
from hub.outbox.services import outbox_event_record, subscriptions_active
from hub.workflows.services import workflows_wake

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # messages claimed per round trip; ~100 x 1 KB rows, a few ms of claim time
DRAIN_BUDGET_S = 25.0  # seconds one drain task works before handing over (stays under its time limit)
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "x-correlation-id",
    "idempotency-key",
    "x-crossdock-signature",
    "x-drop-file",
)
INBOX_WAKE = "inbox"


@dataclass(frozen=True)
class Received:
    message: InboundMessage
    created: bool


class Crash(Exception):
    """An unexpected error in one step of a message's processing (a reader's bug, an outage), with
    the step named so the crash count and a poison letter say where. ``error`` is the original."""

    def __init__(self, *, stage: str, error: Exception):
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


def _send_wake() -> None:
    work.send(INBOX_WAKE)


def inbound_message_receive(
    *,
    connection: Connection,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    idempotency_key: str | None,
    correlation_id: str,
) -> Received:
    """Store a message (nothing else). Idempotent: a repeat returns the stored one, ``created=False``.

    Key: the ``Idempotency-Key`` header, else the connector's natural id, else a SHA-256 of the body.
    """
    if idempotency_key:
        key, source = idempotency_key[:200], InboundMessage.KeySource.HEADER
    else:
        natural = None
        spec = registry.get(connection.connector)
        if "natural_id" in spec.capabilities:
            request = InboundRequest(body=body, content_type=content_type, headers=headers)
            try:
                natural = spec.instance().natural_id(request, connection_config(connection))
            except ConnectorError:
                natural = None  # unreadable bodies are stored anyway and dead-lettered at parse
            except Exception:
                # A connector's bug must not refuse the message (a 500): store it under its body hash;
                # the worker meets the bug again and counts it as a crash.
                logger.exception("natural_id of connector %r failed; keying by body hash", spec.key)
                natural = None
        if natural:
            key, source = natural[:200], InboundMessage.KeySource.NATURAL
        else:
            key, source = "sha256:" + hashlib.sha256(body).hexdigest(), InboundMessage.KeySource.BODY_HASH
    kept = {name: value for name, value in headers.items() if name in KEPT_HEADERS}
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                connection=connection,
                idempotency_key=key,
                key_source=source,
                body=body,
                content_type=content_type[:200],
                headers=kept,
                received_at=timezone.now(),
                correlation_id=correlation_id,
                trace=[
                    {
                        "stage": "receive",
                        "at": timezone.now().isoformat(),
                        "ok": True,
                        "detail": f"key from {source}",
                    }
                ],
            )
            work.wake_on_commit(INBOX_WAKE)
    except IntegrityError:
        existing = InboundMessage.objects.only("id", "status").get(connection=connection, idempotency_key=key)
        return Received(message=existing, created=False)
    return Received(message=message, created=True)


# --- Worker side ------------------------------------------------------------------------------------


def inbound_batch_claim(*, limit: int = BATCH_SIZE) -> list[UUID]:
    """Claim up to ``limit`` waiting messages for this worker, oldest first. Safe to run concurrently:
    rows locked by another claimer are skipped, never waited on or taken twice.

    Each claim counts as a crash until the message's processing settles: ``crash_count`` goes up in
    the claiming UPDATE, committed before any work starts, so a worker killed mid-message (whose
    transaction rolls back) still leaves the count behind. A message that has crashed before is
    claimed alone, so only its own crashes add up (a killed batch charges each of its messages once). A message whose earlier claims already
    crashed CROSSDOCK_INBOX_POISON_AFTER times is dead-lettered as poison here instead of returned
    (a backstop: the crash handler and the lease sweeper normally get there first).
    """
    poison_after = settings.CROSSDOCK_INBOX_POISON_AFTER
    with transaction.atomic():
        rows = list(
            InboundMessage.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(status=InboundMessage.Status.RECEIVED)
            .order_by("received_at")
            .values_list("id", "crash_count")[:limit]
        )
        claimable = [(pk, crashes) for pk, crashes in rows if crashes < poison_after]
        # A message whose last claim ended in a crash is claimed alone: a worker killed while it held
        # a batch charged every message of that batch one crash, and only a message that crashes its
        # worker again while alone may be the cause. So a kill -9 of busy workers never poisons the
        # innocent messages of their batches.
        suspect = next((pk for pk, crashes in claimable if crashes > 0), None)
        ids = [suspect] if suspect is not None else [pk for pk, _ in claimable]
        if ids:
            InboundMessage.objects.filter(id__in=ids).update(
                status=InboundMessage.Status.PROCESSING,
                claimed_until=timezone.now() + timedelta(seconds=settings.CROSSDOCK_INBOX_LEASE_S),
                crash_count=F("crash_count") + 1,
            )
        for pk in (pk for pk, crashes in rows if crashes >= poison_after):
            message = InboundMessage.objects.select_related("connection").get(pk=pk)  # locked above
            _poison(message, stage="apply", error_class="Crash", error="its claims ended without a result")
            message.save()
    return ids


def inbox_drain(*, budget_s: float = DRAIN_BUDGET_S) -> int:
    """Process waiting messages until none are left or the time budget is spent. Returns the count.

    The wake flag is cleared before each claim, so a message committed after an empty claim always
    raises a new wake-up (see hub.core.wake). Each batch takes the fast path where it can
    (``hub.inbox.batch``) and the rest one message at a time.
    """
    started = time.monotonic()
    done = 0
    while time.monotonic() - started < budget_s:
        wake_clear(INBOX_WAKE)
        ids = inbound_batch_claim()
        if not ids:
            return done
        every_s = settings.CROSSDOCK_INBOX_LEASE_S / 3
        with lease_kept(partial(_claims_renew, ids), every_s=every_s, name="inbox"):
            done += _batch_work(ids, started=started, budget_s=budget_s)
    _send_wake()  # out of budget with work possibly left: hand over to a fresh task
    return done


def _claims_renew(ids: list[UUID]) -> int:
    """Extend the lease of the batch's messages still being processed (hub.core.lease)."""
    return InboundMessage.objects.filter(id__in=ids, status=InboundMessage.Status.PROCESSING).update(
        claimed_until=timezone.now() + timedelta(seconds=settings.CROSSDOCK_INBOX_LEASE_S)
    )


def _batch_work(ids: list[UUID], *, started: float, budget_s: float) -> int:
    """Process one claimed batch: the fast path, then the careful one message at a time. Returns how
    many messages were done."""
    done = 0
    if len(ids) == BATCH_SIZE and claim_helper_slot(INBOX_WAKE):
        _send_wake()  # a full batch: recruit another worker for the rest
    subscriptions = subscriptions_active()
    try:
        careful = inbound_batch_process(ids=ids, subscriptions=subscriptions)
    except SoftTimeLimitExceeded:
        inbound_claims_release(ids=ids)  # rolled back: all of them go back to the queue
        raise
    done += len(ids) - len(careful)
    for position, message_id in enumerate(careful):
        if time.monotonic() - started >= budget_s:
            # Out of time: hand the rest back now rather than letting them wait out their lease.
            inbound_claims_release(ids=careful[position:])
            break
        try:
            inbound_message_process(message_id=message_id, subscriptions=subscriptions)
        except SoftTimeLimitExceeded:
            # The task's limit: the messages not started are not at fault and go back uncounted;
            # the one running keeps its claim counted, so one that always outlasts the limit
            # ends as poison instead of looping.
            inbound_claims_release(ids=careful[position + 1 :])
            inbound_claims_release(ids=[message_id], count_as_crash=True)
            raise
        except Exception as exc:
            # A bug or an outage while processing: counted, tried again, poison at the limit;
            # the rest of the batch goes on either way.
            logger.exception("processing inbound message %s failed", message_id)
            inbound_message_fail(message_id=message_id, exc=exc)
        done += 1
    return done


def _trace(message: InboundMessage, stage: str, ok: bool, detail: str = "") -> None:
    message.trace.append({"stage": stage, "at": timezone.now().isoformat(), "ok": ok, "detail": detail[:500]})


def _fail_whole(message: InboundMessage, stage: str, exc: Exception, detail: str) -> None:
    _trace(message, stage, False, detail)
    _letter_whole(message, stage, type(exc).__name__, detail)
    message.status = InboundMessage.Status.FAILED


def _letter_whole(message: InboundMessage, stage: str, error_class: str, detail: str) -> None:
    dead_letter_record(
        stage=stage,
        reason=detail,
        error_class=error_class,
        connection=message.connection,
        payload=bytes(message.body),
        payload_content_type=message.content_type,
        message=message,
        item_index=None,
        correlation_id=message.correlation_id,
    )


def _validation_detail(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(document)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def inbound_message_process(
    *, message_id: UUID, subscriptions: list | None = None, only_item: int | None = None
) -> InboundMessage | None:
    """Run one claimed message through parse -> map -> validate -> apply, in one transaction.

    Idempotent: a message already processed is left alone; re-applying an event is a no-op through
    its semantic key. ``only_item`` (replay) re-runs just that document of the message.
    """
    with transaction.atomic():
        message = (
            InboundMessage.objects.select_for_update(no_key=True)
            .select_related("connection")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return None
        if only_item is None and message.status != InboundMessage.Status.PROCESSING:
            return message  # someone else finished it (duplicate wake-up or expired lease race)
        with correlation_scope(message.correlation_id):
            _run_pipeline(
                message, subscriptions if subscriptions is not None else subscriptions_active(), only_item
            )
        if message.attempts == 0 and only_item is None:
            acknowledge_on_commit(message)
        message.attempts += 1
        message.crash_count = 0  # settled: the claim counted as a possible crash did not crash
        message.processed_at = timezone.now()
        message.claimed_until = None
        message.save()
    return message


def _run_pipeline(message: InboundMessage, subscriptions: list, only_item: int | None) -> None:
    connection = message.connection
    spec = registry.get(connection.connector)
    connector = spec.instance()
    config = connection_config(connection)
    request = InboundRequest(
        body=bytes(message.body), content_type=message.content_type, headers=message.headers
    )

    try:
        parsed = connector.parse(request, config)
    except ParseError as exc:
        _fail_whole(message, "parse", exc, exc.detail)
        return
    except MappingError as exc:  # a reader that maps while it reads
        _fail_whole(message, "map", exc, f"{exc.field}: {exc.detail}")
        return
    except NotSupported:
        _fail_whole(
            message, "parse", NotSupported("parse"), f"connector {spec.key!r} cannot read inbound messages"
        )
        return
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # Outside the taxonomy: a reader's bug (or an outage). Not dead-lettered at once: the caller
        # counts it as a crash and tries again; named "parse" for the poison letter.
        raise Crash(stage="parse", error=exc) from exc
    _trace(
        message,
        "parse",
        True,
        f"{len(parsed.documents)} document(s)" + (f"; {parsed.problems}" if parsed.problems else ""),
    )
    reprocessing = message.attempts > 0 or only_item is not None
    if reprocessing and only_item is None:
        dead_letter_settle(message=message, item_index=None)  # a parse-stage letter, if any, is settled

    mappings = mapping_set_for(connection=connection, direction="inbound")
    message.mapping_version = mappings.version
    applied = duplicate = failed = 0
    indexes = range(len(parsed.documents)) if only_item is None else [only_item]
    for index in indexes:
        if index >= len(parsed.documents):
            continue
        document = parsed.documents[index]
        item_index = None if len(parsed.documents) == 1 and only_item is None else index
        outcome = _process_document(
            message, connector, config, mappings, document, item_index, subscriptions, reprocessing
        )
        if outcome == "applied":
            applied += 1
        elif outcome == "duplicate":
            duplicate += 1
        else:
            failed += 1
    message.events_applied += applied
    message.events_duplicate += duplicate
    if only_item is None:
        message.events_failed = failed
    else:
        message.events_failed = max(0, message.events_failed - (1 if failed == 0 else 0))
    _trace(message, "apply", failed == 0, f"{applied} applied, {duplicate} duplicate, {failed} dead-lettered")
    if message.events_failed == 0:
        message.status = InboundMessage.Status.PROCESSED
    elif message.events_applied + message.events_duplicate > 0:
        message.status = InboundMessage.Status.PARTIAL
    else:
        message.status = InboundMessage.Status.FAILED


def _apply_document(doc: Any, *, source: str) -> bool:
    """Apply one non-milestone document; True when it changed something."""
    if isinstance(doc, OrderDocument):
        return order_document_apply(document=doc)[1]
    if isinstance(doc, ShipmentDocument):
        return shipment_document_apply(document=doc, source=source)[1]
    if isinstance(doc, FreightChargeDocument):
        return freight_charge_document_apply(document=doc, source=source)[1]
    if isinstance(doc, FunctionalAckDocument):
        functional_ack_check(document=doc)
        return True
    raise TypeError(f"no apply for {type(doc).__name__}")


def _kind(doc: Any) -> str:
    return doc.get("kind", "milestone") if isinstance(doc, dict) else "milestone"


def _document_bytes(document: Any) -> bytes:
    if isinstance(document, bytes | bytearray):
        return bytes(document)
    return json.dumps(document, default=str, sort_keys=True).encode()


def _process_document(
    message, connector, config, mappings, document, item_index, subscriptions, reprocessing
) -> str:
    """Map, validate and apply one document on a savepoint. Returns applied|duplicate|failed."""
    connection = message.connection

    def fail(stage: str, exc: Exception, detail: str, waiting_for: str = "") -> str:
        dead_letter_record(
            stage=stage,
            reason=detail,
            error_class=type(exc).__name__,
            connection=connection,
            payload=_document_bytes(document),
            payload_content_type="application/json",
            message=message,
            item_index=item_index,
            waiting_for_shipment=waiting_for,
            correlation_id=message.correlation_id,
        )
        where = f"document {item_index}" if item_index is not None else "document"
        _trace(message, stage, False, f"{where}: {detail}")
        return "failed"

    try:
        canonical_docs = connector.map(document, config, mappings)
    except MappingError as exc:
        return fail("map", exc, f"{exc.field}: {exc.detail}")
    except ParseError as exc:  # a part the connector's reader rejected (e.g. an X12 set)
        return fail("parse", exc, exc.detail)
    unknown = sorted({_kind(doc) for doc in canonical_docs} - set(DOCUMENT_CONTRACTS))
    if unknown:
        exc = MappingError(f"unknown canonical document kind {unknown[0]!r}", field="kind", value=unknown[0])
        return fail("validate", exc, f"kind: {exc.detail}; expected one of {', '.join(DOCUMENT_CONTRACTS)}")
    try:
        documents = [DOCUMENT_CONTRACTS[_kind(doc)].model_validate(doc) for doc in canonical_docs]
    except PydanticValidationError as exc:
        return fail("validate", exc, _validation_detail(exc))

    outcome = "duplicate"
    try:
        with transaction.atomic():
            for checked in documents:
                # Who may write what (hub.inbox.authority): the same rule as the batch fast path.
                doc = document_authorize(connection=connection, document=checked)
                if isinstance(doc, MilestoneEvent):
                    result = shipment_apply_milestone(
                        event=doc,
                        source=connection.slug,
                        message_id=message.pk,
                        carrier_id=connection.carrier_id,
                    )
                    if result.duplicate:
                        continue
                    outcome = "applied"
                    outbox_event_record(result=result, message=message, subscriptions=subscriptions)
                    # A run waiting on this shipment (POD, a resolution) looks again once this commits.
                    transaction.on_commit(partial(workflows_wake, subjects=[result.shipment.reference]))
                elif _apply_document(doc, source=connection.slug):
                    outcome = "applied"
    except Refused as exc:
        return fail("validate", exc, exc.detail)
    except UnknownShipmentError as exc:
        detail = f"unknown shipment reference {exc.reference!r}; will retry when the shipment exists"
        return fail("apply", exc, detail, waiting_for=exc.reference)
    except ConnectorError as exc:
        return fail(exc.stage, exc, exc.detail)
    except DomainError as exc:
        return fail("apply", exc, exc.detail)
    if reprocessing:
        dead_letter_settle(message=message, item_index=item_index)
    return outcome


def inbound_claims_release(*, ids: list[UUID], count_as_crash: bool = False) -> int:
    """Give claimed messages back to the queue (another drain picks them up at once). Returns how many.

    Untouched messages get their claim uncounted (it was no crash); ``count_as_crash`` keeps it
    counted, for the message that was running when the task's time ran out.
    """
    uncount = {} if count_as_crash else {"crash_count": Greatest(F("crash_count") - 1, 0)}
    released = InboundMessage.objects.filter(id__in=ids, status=InboundMessage.Status.PROCESSING).update(
        status=InboundMessage.Status.RECEIVED, claimed_until=None, **uncount
    )
    if released:
        transaction.on_commit(_send_wake)
    return released


def inbound_message_fail(*, message_id: UUID, exc: Exception) -> None:
    """Record a crash: processing raised outside the error taxonomy and its transaction rolled back.

    The crash was counted when the message was claimed. Under CROSSDOCK_INBOX_POISON_AFTER crashes
    the message goes back to the queue for another try (an outage may pass); at the limit it is
    dead-lettered as poison ("poison: crashed N times: <error>", stage of the step that crashed) and
    never claimed again. Idempotent: only a message still claimed is touched.
    """
    stage, error = (exc.stage, exc.error) if isinstance(exc, Crash) else ("apply", exc)
    # An error's text may quote the input: PostgreSQL text holds no NUL, and this write must not fail.
    described = f"{type(error).__name__}: {error}".replace("\x00", "\\x00")
    poison_after = settings.CROSSDOCK_INBOX_POISON_AFTER
    with transaction.atomic():
        message = (
            InboundMessage.objects.select_for_update(no_key=True, of=("self",))
            .select_related("connection")
            .filter(pk=message_id, status=InboundMessage.Status.PROCESSING)
            .first()
        )
        if message is None:
            return
        if message.crash_count >= poison_after:
            _poison(message, stage=stage, error_class=type(error).__name__, error=described)
        else:
            _trace(message, stage, False, f"crashed ({message.crash_count} of {poison_after}): {described}")
            message.status = InboundMessage.Status.RECEIVED
            message.claimed_until = None
            transaction.on_commit(_send_wake)
        message.save()


def _poison(message: InboundMessage, *, stage: str, error_class: str, error: str) -> None:
    """Dead-letter a message that crashed too often; the caller holds its row and saves it."""
    detail = f"poison: crashed {message.crash_count} times: {error}"
    _trace(message, stage, False, detail)
    _letter_whole(message, stage, error_class, detail)
    message.status = InboundMessage.Status.FAILED
    message.attempts += 1
    message.claimed_until = None
    message.processed_at = timezone.now()


# --- Sweeper side -----------------------------------------------------------------------------------


def inbound_leases_expire() -> int:
    """Return abandoned claims (worker died mid-batch) to the queue. Returns how many it handled.

    An expired claim is a crash (counted when claimed): one that reaches CROSSDOCK_INBOX_POISON_AFTER
    is dead-lettered as poison instead of returned, so a message that kills its worker every time
    cannot loop forever. Safe to run concurrently with workers and other sweepers.
    """
    now = timezone.now()
    poison_after = settings.CROSSDOCK_INBOX_POISON_AFTER
    expired = InboundMessage.objects.filter(status=InboundMessage.Status.PROCESSING, claimed_until__lt=now)
    poisoned = 0
    for pk in expired.filter(crash_count__gte=poison_after).values_list("id", flat=True)[:BATCH_SIZE]:
        with transaction.atomic():
            message = (
                expired.select_for_update(skip_locked=True, no_key=True, of=("self",))
                .select_related("connection")
                .filter(pk=pk)
                .first()
            )
            if message is None:
                continue  # a worker still holds it (it is finishing) or another sweeper took it
            _poison(
                message,
                stage="apply",
                error_class="LeaseExpired",
                error="its claim expired mid-message (the worker was killed or stuck)",
            )
            message.save()
            poisoned += 1
    returned = expired.filter(crash_count__lt=poison_after).update(
        status=InboundMessage.Status.RECEIVED, claimed_until=None
    )
    return returned + poisoned


def message_letter_replay(letter: DeadLetter) -> None:
    """Replay a message's letter (hub.deadletters.replay): the whole message again when parsing
    failed or its only document did, else just the document that failed."""
    message = letter.message
    if letter.item_index is None:
        InboundMessage.objects.filter(pk=message.pk).update(status=InboundMessage.Status.PROCESSING)
        inbound_message_process(message_id=message.pk)
    else:
        inbound_message_process(message_id=message.pk, only_item=letter.item_index)


def inbound_waiting_exists() -> bool:
    return InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED).exists()
