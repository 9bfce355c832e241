"""Replaying dead letters, singly or in bulk, and auto-replay of letters whose shipment appeared.

A replay uses the current connection config and mappings (it re-runs the pipeline from the stored
bytes), records who replayed and why, and when it fails again the same letter is updated.

This app sits below the apps whose failures it keeps: inbox registers how a message letter is
replayed and outbox how a delivery letter is (``replayer_register``, from their ``AppConfig.ready``),
so nothing here imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from canonical.models import Shipment
from hub.core import work
from hub.deadletters.models import DeadLetter, ReplayJob

logger = logging.getLogger(__name__)

BULK_CHUNK = 100  # letters replayed per task run before the job re-enqueues itself
DRY_RUN_SAMPLE = 20  # letters listed in a dry-run answer


REPLAY_JOBS = "replay-jobs"  # the work queue of bulk replays (hub.core.work)
AUTO_REPLAY_ACTOR = "system:auto-replay"

# How a letter is replayed, by what failed: "message" (an inbound message or one of its documents,
# re-run synchronously) and "delivery" (a fresh round of attempts, queued). Registered by the apps.
Replayer = Callable[[DeadLetter], None]
_replayers: dict[str, Replayer] = {}


def replayer_register(kind: str, replayer: Replayer) -> None:
    _replayers[kind] = replayer


def _replayer(kind: str) -> Replayer:
    try:
        return _replayers[kind]
    except KeyError:
        raise LookupError(f"no dead-letter replayer for {kind!r} letters is registered") from None


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
            _replayer("delivery")(letter)
            letter.refresh_from_db()
            return ReplayOutcome(letter=letter, succeeded=None)
        _replayer("message")(letter)
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
        work.enqueue_on_commit(REPLAY_JOBS, job.pk)
    return job


def replay_jobs_unfinished(*, limit: int = 10) -> list[UUID]:
    """Jobs not done (queued, or left by a worker that died); the sweeper sends each again."""
    return list(ReplayJob.objects.exclude(status=ReplayJob.Status.DONE).values_list("id", flat=True)[:limit])


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


# --- Auto-replay (a sweep hook) ---------------------------------------------------------------------


def letters_waiting_ready(*, limit: int = 500) -> list[UUID]:
    """Apply-stage letters waiting for a shipment that now exists (auto-replay candidates)."""
    return list(
        DeadLetter.objects.filter(
            status=DeadLetter.Status.OPEN,
            stage=DeadLetter.Stage.APPLY,
            waiting_for_shipment__in=Shipment.objects.values("reference"),
        ).values_list("id", flat=True)[:limit]
    )


def letters_auto_replay() -> int:
    """Replay every letter whose shipment has appeared. Returns how many now succeeded. Idempotent."""
    succeeded = 0
    for letter_id in letters_waiting_ready():
        try:
            outcome = dead_letter_replay(
                letter_id=letter_id, actor=AUTO_REPLAY_ACTOR, reason="shipment now exists"
            )
        except DeadLetter.DoesNotExist:
            continue
        succeeded += bool(outcome.succeeded)
    return succeeded
