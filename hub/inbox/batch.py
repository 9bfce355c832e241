"""Processing a claimed batch of inbound messages with a fixed number of queries.

One message at a time costs ~14 queries per event, which bounds a 2-core machine to a few hundred
events a second. Most traffic is plain progress milestones arriving once, so a batch takes a fast
path: parse, map and validate every message in memory, lock all the shipments it names in one
query, apply the events in arrival order (``canonical.milestones.shipments_apply_milestones``),
write the outbox and deliveries and update the messages in bulk, all in one transaction.

Anything unusual goes the careful way, one message at a time through
``inbound_message_process`` (same transaction semantics, per-document savepoints, dead letters):
a message that fails to parse, map or validate, names an unknown shipment, is refused by
``hub.inbox.authority`` (a kind the connection may not send, another carrier's shipment), or is
being reprocessed, and every message touching a shipment that
such a message touches (so the two paths never interleave on one shipment). If the fast path fails
unexpectedly, its whole transaction rolls back and those messages go the careful way too.

Planning never fails the batch: whatever reading one message raises (even ``RecursionError`` from a
reader's bug) sends that message the careful way, where the error is dead-lettered or counted as a
crash (docs/subsystems/poison.md). A message whose previous claim crashed skips the fast path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from canonical.contracts.v1 import MilestoneEvent
from canonical.dbutil import bulk_update_rows
from canonical.milestones import BulkItem, shipments_apply_milestones, shipments_lock
from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import ConnectorError
from hub.connections.services import connection_config
from hub.inbox.acks import acknowledge_on_commit
from hub.inbox.authority import document_refusal
from hub.inbox.models import InboundMessage
from hub.mappings.services import mapping_set_for
from hub.outbox.services import outbox_events_record_bulk
from hub.workflows.services import workflows_wake

logger = logging.getLogger(__name__)


@dataclass
class _Plan:
    """One message read in memory: its documents' events, or why it needs the careful path."""

    message: InboundMessage
    documents: list[list[MilestoneEvent]] = field(default_factory=list)
    careful: bool = False
    mapping_version: int | None = None

    @property
    def references(self) -> set[str]:
        return {event.shipment.reference for events in self.documents for event in events}


def _plan(message: InboundMessage) -> _Plan:
    """Read one message in memory. Never raises (but for the task's time limit): whatever goes wrong
    sends the message the careful way, which records the precise reason or counts the crash."""
    plan = _Plan(message=message)
    if message.attempts > 0 or message.crash_count > 1:
        # A reprocess settles dead letters, and a message whose last claim crashed is retried on its
        # own, so it cannot take the batch's fast path down again: the careful path knows how.
        plan.careful = True
        return plan
    connection = message.connection
    try:
        connector = registry.get(connection.connector).instance()
        config = connection_config(connection)
        request = InboundRequest(
            body=bytes(message.body), content_type=message.content_type, headers=message.headers
        )
        parsed = connector.parse(request, config)
        mappings = mapping_set_for(connection=connection, direction="inbound")
        plan.mapping_version = mappings.version
        for document in parsed.documents:
            docs = connector.map(document, config, mappings)
            if any(isinstance(doc, dict) and doc.get("kind", "milestone") != "milestone" for doc in docs):
                plan.careful = True  # orders and other documents are applied by the careful path
                return plan
            plan.documents.append([MilestoneEvent.model_validate(doc) for doc in docs])
    except SoftTimeLimitExceeded:
        raise  # the task's time is up: the caller hands the claims back
    except (ConnectorError, PydanticValidationError, ValueError, TypeError):
        plan.careful = True  # the careful path records the precise reason as a dead letter
        return plan
    except Exception:
        # A reader's or mapper's bug (RecursionError on a pathological body, a KeyError): not this
        # batch's problem. The careful path meets it again on its own and counts it as a crash.
        logger.exception("planning inbound message %s failed; it goes the careful way", message.pk)
        plan.careful = True
        return plan
    if parsed.problems:
        plan.careful = True
    return plan


def _split(plans: list[_Plan], shipments: dict) -> tuple[list[_Plan], list[_Plan]]:
    """(fast, careful): careful spreads to every message sharing a shipment with a careful one."""
    for plan in plans:
        if plan.careful:
            continue
        if not plan.references <= set(shipments):
            plan.careful = True  # an unknown shipment: dead-lettered (and retried) by the careful path
            continue
        connection = plan.message.connection
        if any(
            document_refusal(
                connection=connection, document=event, shipment=shipments[event.shipment.reference]
            )
            for events in plan.documents
            for event in events
        ):
            # Not this connection's to send (hub.inbox.authority): the careful path dead-letters it
            # with the same rule's reason.
            plan.careful = True
    careful_refs: set[str] = set()
    changed = True
    while changed:
        changed = False
        for plan in plans:
            if plan.careful:
                if not plan.references <= careful_refs:
                    careful_refs |= plan.references
                    changed = True
            elif plan.references & careful_refs:
                plan.careful = True
                changed = True
    return [p for p in plans if not p.careful], [p for p in plans if p.careful]


def inbound_batch_process(*, ids: list[UUID], subscriptions: list) -> list[UUID]:
    """Apply the fast-path messages of a claimed batch in one transaction.

    Returns the ids of the messages left for the careful path (the caller processes them one by
    one). Idempotent: only messages still PROCESSING are touched.
    """
    messages = list(
        InboundMessage.objects.select_related("connection")
        .filter(id__in=ids, status=InboundMessage.Status.PROCESSING)
        .order_by("received_at")
    )
    plans = [_plan(message) for message in messages]
    candidate_refs = {ref for plan in plans if not plan.careful for ref in plan.references}
    try:
        with transaction.atomic():
            shipments = shipments_lock(references=candidate_refs) if candidate_refs else {}
            fast, careful = _split(plans, shipments)
            _apply_fast(fast, shipments, subscriptions)
    except SoftTimeLimitExceeded:
        raise  # the task's time is up: the caller hands the claims back
    except Exception:
        logger.exception(
            "fast path failed for a batch of %s messages; processing them one by one", len(plans)
        )
        return [plan.message.pk for plan in plans]
    return [plan.message.pk for plan in careful]


def _apply_fast(plans: list[_Plan], shipments: dict, subscriptions: list) -> None:
    if not plans:
        return
    items: list[BulkItem] = []
    owners: list[tuple[_Plan, int]] = []  # (plan, document index) per item
    for plan in plans:
        source = plan.message.connection.slug
        for index, events in enumerate(plan.documents):
            for event in events:
                items.append(BulkItem(event=event, source=source, message_id=plan.message.pk))
                owners.append((plan, index))
    results = shipments_apply_milestones(items=items, shipments=shipments)

    applied_docs: dict[tuple[UUID, int], bool] = {}
    outbox_input: list[tuple[Any, InboundMessage]] = []
    for (plan, index), result in zip(owners, results, strict=True):
        key = (plan.message.pk, index)
        applied_docs[key] = applied_docs.get(key, False) or not result.duplicate
        if not result.duplicate:
            outbox_input.append((result, plan.message))
    outbox_events_record_bulk(results=outbox_input, subscriptions=subscriptions)
    for plan in plans:
        acknowledge_on_commit(plan.message)  # first processing (the fast path takes no reprocessing)
    touched = sorted({result.shipment.reference for result, _message in outbox_input})
    if touched:
        transaction.on_commit(partial(workflows_wake, subjects=touched))

    now = timezone.now()
    for plan in plans:
        message = plan.message
        applied = sum(applied_docs.get((message.pk, i), False) for i in range(len(plan.documents)))
        duplicate = len(plan.documents) - applied
        message.events_applied += applied
        message.events_duplicate += duplicate
        message.events_failed = 0
        message.status = InboundMessage.Status.PROCESSED
        message.attempts += 1
        message.crash_count = 0  # settled: the claim that counted as a possible crash did not crash
        message.processed_at = now
        message.claimed_until = None
        message.mapping_version = plan.mapping_version
        message.updated_at = now
        at = now.isoformat()
        message.trace.append(
            {"stage": "parse", "at": at, "ok": True, "detail": f"{len(plan.documents)} document(s)"}
        )
        message.trace.append(
            {
                "stage": "apply",
                "at": at,
                "ok": True,
                "detail": f"{applied} applied, {duplicate} duplicate, 0 dead-lettered",
            }
        )
    bulk_update_rows(
        InboundMessage,
        [plan.message for plan in plans],
        [
            "events_applied",
            "events_duplicate",
            "events_failed",
            "status",
            "attempts",
            "crash_count",
            "processed_at",
            "claimed_until",
            "mapping_version",
            "updated_at",
            "trace",
        ],
    )
