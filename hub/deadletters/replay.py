"""Replaying dead letters, singly or in bulk, and the beat sweeper that keeps the pipeline moving.

A replay uses the current connection config and mappings (it re-runs the pipeline from the stored
bytes), records who replayed and why, and when it fails again the same letter is updated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from hub.deadletters.models import DeadLetter, ReplayJob
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage
from hub.outbox import services as outbox

logger = logging.getLogger(__name__)

BULK_CHUNK = 100  # letters replayed per task run before the job re-enqueues itself
DRY_RUN_SAMPLE = 20  # letters listed in a dry-run answer


@dataclass(frozen=True)
class ReplayOutcome:
    letter: DeadLetter
    succeeded: bool | None  # None: queued (a delivery replay completes asynchronously)


def dead_letter_replay(*, letter_id: UUID, actor: str, reason: str) -> ReplayOutcome:
    """Replay one letter now. Message letters are re-processed synchronously; delivery letters are
    queued for a fresh round of attempts. Raises DeadLetter.DoesNotExist."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
        DeadLetter.objects.filter(pk=letter.pk).update(
            replay_count=F("replay_count") + 1,
            last_replayed_at=timezone.now(),
            last_replayed_by=actor[:150],
            last_replay_reason=reason,
        )
        if letter.delivery_id is not None:
            outbox.delivery_requeue(delivery=letter.delivery)
            letter.refresh_from_db()
            return ReplayOutcome(letter=letter, succeeded=None)
        message = letter.message
        if letter.item_index is None:
            # The whole message again (parse failed, or its only document failed).
            InboundMessage.objects.filter(pk=message.pk).update(status=InboundMessage.Status.PROCESSING)
            inbox.inbound_message_process(message_id=message.pk)
        else:
            inbox.inbound_message_process(message_id=message.pk, only_item=letter.item_index)
        letter.refresh_from_db()
    return ReplayOutcome(letter=letter, succeeded=letter.status == DeadLetter.Status.REPLAYED)


def dead_letter_resolve(*, letter_id: UUID, actor: str, reason: str) -> DeadLetter:
    """Close a letter without replaying it (an operator decided it needs nothing more)."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
        letter.status = DeadLetter.Status.RESOLVED
        letter.last_replayed_by, letter.last_replay_reason = actor[:150], reason
        letter.waiting_for_shipment = ""
        letter.save()
    return letter


def dead_letters_filter(filters: dict[str, Any]) -> QuerySet[DeadLetter]:
    """Letters matching a bulk-replay filter: connection (slug), stage, status (default open),
    created_after / created_before (ISO times)."""
    qs = DeadLetter.objects.all()
    if filters.get("connection"):
        qs = qs.filter(connection__slug=filters["connection"])
    if filters.get("stage"):
        qs = qs.filter(stage=filters["stage"])
    qs = qs.filter(status=filters.get("status") or DeadLetter.Status.OPEN)
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=_time(filters["created_after"]))
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=_time(filters["created_before"]))
    return qs.order_by("created_at")


def _time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def replay_job_create(*, filters: dict[str, Any], actor: str, reason: str) -> ReplayJob:
    """Select the letters now (the job's scope does not drift) and queue the job."""
    ids = [str(pk) for pk in dead_letters_filter(filters).values_list("id", flat=True)]
    with transaction.atomic():
        job = ReplayJob.objects.create(
            filters=filters, reason=reason, requested_by=actor[:150], total=len(ids), letter_ids=ids
        )
        from hub.deadletters.tasks import replay_job_run_task

        transaction.on_commit(lambda: replay_job_run_task.delay(str(job.pk)))
    return job


def replay_job_run(*, job_id: UUID) -> bool:
    """Replay the next chunk of a job. Returns True when more remain (the task re-enqueues itself)."""
    with transaction.atomic():
        job = ReplayJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status == ReplayJob.Status.DONE:
            return False
        position = job.replayed + job.failed
        chunk = job.letter_ids[position : position + BULK_CHUNK]
        job.status = ReplayJob.Status.RUNNING
        for letter_id in chunk:
            try:
                outcome = dead_letter_replay(letter_id=letter_id, actor=job.requested_by, reason=job.reason)
            except DeadLetter.DoesNotExist:
                job.failed += 1
                continue
            if outcome.succeeded is False:
                job.failed += 1
            else:
                job.replayed += 1
        if job.replayed + job.failed >= job.total:
            job.status = ReplayJob.Status.DONE
            job.finished_at = timezone.now()
        job.save()
        return job.status != ReplayJob.Status.DONE


# --- The sweeper (beat, every few seconds) ----------------------------------------------------------


def pipeline_sweep() -> dict[str, int]:
    """Re-wake stuck work and auto-replay letters whose shipment has appeared. Idempotent."""
    report = {
        "inbound_leases_expired": inbox.inbound_leases_expire(),
        "delivery_leases_expired": outbox.delivery_leases_expire(),
        "auto_replayed": 0,
    }
    if inbox.inbound_waiting_exists():
        inbox._send_wake()
    if outbox.deliveries_due_exist():
        outbox._send_wake()
    for letter_id in inbox.open_apply_letters_ready():
        try:
            outcome = dead_letter_replay(
                letter_id=letter_id, actor="system:auto-replay", reason="shipment now exists"
            )
        except DeadLetter.DoesNotExist:
            continue
        report["auto_replayed"] += bool(outcome.succeeded)
    from hub.ledger.services import side_effects_due
    from hub.ledger.tasks import side_effect_retry_task

    for effect_id in side_effects_due():
        side_effect_retry_task.delay(str(effect_id))
        report["writes_retried"] = report.get("writes_retried", 0) + 1
    for job_id in ReplayJob.objects.exclude(status=ReplayJob.Status.DONE).values_list("id", flat=True)[:10]:
        from hub.deadletters.tasks import replay_job_run_task

        replay_job_run_task.delay(str(job_id))
    return report
