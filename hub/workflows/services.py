"""The workflow engine: start (idempotent per business key), advance, wait with SLA escalation,
retry with back-off, compensate, and the operator actions (retry a step, resume, compensate,
cancel), each recorded with its reason.

``workflow_advance`` runs outside any transaction because steps call external systems; a lease on
the run row (a conditional UPDATE) lets one worker at a time advance a run, and every state change
is saved as it happens, so a worker killed mid-step leaves a run the sweeper picks up again once its
lease expires. The step then runs again; its writes go through the side-effect ledger, so the
repeat finds what the killed attempt wrote instead of writing it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from canonical.errors import ConflictError, DomainError, NotFoundError, ValidationFailed
from connectors.errors import ConnectorError, TransientError
from hub.core import work
from hub.core.correlation import correlation_id_get, correlation_id_new, correlation_scope
from hub.core.lease import LEASE_S, lease_kept
from hub.outbox.retry import backoff_delay
from hub.workflows import definitions
from hub.workflows.definitions import Done, StepContext, Wait
from hub.workflows.models import WorkflowAction, WorkflowRun, WorkflowStep

logger = logging.getLogger(__name__)

MAX_STEPS_PER_ADVANCE = 50  # a guard against a flow that never stops; the sweeper continues it


WORKFLOWS = "workflows"  # the work queue of runs due to advance (hub.core.work)


def _enqueue(run_id: UUID) -> None:
    work.enqueue_on_commit(WORKFLOWS, run_id)


def _act(run: WorkflowRun, action: str, *, reason: str = "", actor: str = "", step: str = "") -> None:
    WorkflowAction.objects.create(run=run, action=action, reason=reason, actor=actor, step=step)


# --- Start -------------------------------------------------------------------------------------------


def workflow_start(
    *, flow: str, business_key: str, inputs: dict[str, Any], actor: str = "system", subject: str = ""
) -> tuple[WorkflowRun, bool]:
    """Start ``flow`` (its latest version) for ``business_key``. Idempotent: a second start returns
    the existing run and ``False``. Raises NotFoundError for an unknown flow."""
    try:
        definition = definitions.get(flow)
    except KeyError as exc:
        raise NotFoundError(str(exc.args[0])) from None
    existing = WorkflowRun.objects.filter(flow=flow, business_key=business_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            run = WorkflowRun.objects.create(
                flow=flow,
                flow_version=definition.version,
                business_key=business_key,
                subject=subject,
                inputs=inputs,
                wake_at=timezone.now(),
                correlation_id=correlation_id_get() or correlation_id_new(),
                current_step=definition.steps[0].name,
            )
            WorkflowStep.objects.bulk_create(
                WorkflowStep(run=run, sequence=index, name=step.name)
                for index, step in enumerate(definition.steps, start=1)
            )
            _act(run, "started", actor=actor)
            _enqueue(run.pk)
    except IntegrityError:
        return WorkflowRun.objects.get(flow=flow, business_key=business_key), False
    return run, True


# --- Advance -----------------------------------------------------------------------------------------


def _lease(run_id: UUID) -> WorkflowRun | None:
    now = timezone.now()
    claimed = (
        WorkflowRun.objects.filter(pk=run_id, status__in=WorkflowRun.ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=LEASE_S))
    )
    return WorkflowRun.objects.get(pk=run_id) if claimed == 1 else None


def _lease_renew(run_id: UUID) -> int:
    return WorkflowRun.objects.filter(pk=run_id, lease_until__isnull=False).update(
        lease_until=timezone.now() + timedelta(seconds=LEASE_S)
    )


def _save_run(run: WorkflowRun, **changes: Any) -> None:
    for name, value in changes.items():
        setattr(run, name, value)
    run.save(update_fields=[*changes, "updated_at"])


def workflow_advance(*, run_id: UUID) -> WorkflowRun | None:
    """Run the run's due steps until it waits, fails, finishes or must retry later.

    Idempotent and safe to call any time: a run that is not due, or leased by another worker, is
    left alone (returns None). Must not be called inside a transaction.
    """
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("workflow_advance runs outside a transaction (steps call external systems)")
    run = _lease(run_id)
    if run is None:
        return None
    try:
        # Steps call peers with their own timeouts: the heartbeat keeps the run ours while they do.
        with (
            lease_kept(partial(_lease_renew, run.pk), name=f"workflow:{run.flow}"),
            correlation_scope(run.correlation_id),
        ):
            if run.status == WorkflowRun.Status.COMPENSATING:
                _compensate_steps(run)
            else:
                _advance_steps(run)
    finally:
        WorkflowRun.objects.filter(pk=run.pk).update(lease_until=None)
    run.refresh_from_db()
    return run


def _advance_steps(run: WorkflowRun) -> None:
    flow = definitions.get(run.flow, run.flow_version)
    for _ in range(MAX_STEPS_PER_ADVANCE):
        run.refresh_from_db(fields=["status"])
        if run.status not in (WorkflowRun.Status.RUNNING, WorkflowRun.Status.WAITING):
            return  # an operator cancelled or started compensating it meanwhile
        step_row = run.steps.exclude(
            status__in=[WorkflowStep.Status.DONE, WorkflowStep.Status.SKIPPED]
        ).first()
        if step_row is None:
            _save_run(
                run,
                status=WorkflowRun.Status.COMPLETED,
                finished_at=timezone.now(),
                wake_at=None,
                current_step="",
                error="",
            )
            _act(run, "completed")
            return
        if step_row.status == WorkflowStep.Status.FAILED:
            return  # an operator decides (retry, compensate, cancel)
        step = flow.step(step_row.name)
        now = timezone.now()
        step_row.status = WorkflowStep.Status.RUNNING
        step_row.attempts += 1
        step_row.started_at = step_row.started_at or now
        step_row.save(update_fields=["status", "attempts", "started_at", "updated_at"])
        _save_run(run, current_step=step.name)
        ctx = StepContext(run=run, step=step_row, inputs=run.inputs, context=run.context)
        try:
            outcome = step.run(ctx)
        except TransientError as exc:
            _step_transient(run, step_row, step, exc)
            return
        except (ConnectorError, DomainError) as exc:
            _step_failed(run, step_row, flow, f"{type(exc).__name__}: {exc.detail}")
            return
        except Exception as exc:
            # A bug or an unexpected failure (a database error, a missing record): retried like a
            # transient error, so it is recorded, backs off and fails the step once attempts run out.
            logger.exception("workflow %s step %s raised", run.pk, step.name)
            _step_transient(run, step_row, step, TransientError(f"unexpected {type(exc).__name__}: {exc}"))
            return
        if isinstance(outcome, Wait):
            _step_wait(run, step_row, flow, step, outcome)
            return
        assert isinstance(outcome, Done), f"step {step.name} returned {outcome!r}"
        step_row.status = WorkflowStep.Status.DONE
        step_row.outputs = outcome.outputs
        step_row.error = ""
        step_row.waiting_for = ""
        step_row.finished_at = timezone.now()
        step_row.save()
        run.context = {**run.context, step.name: outcome.outputs}
        _save_run(run, context=run.context, status=WorkflowRun.Status.RUNNING, error="")
    _save_run(run, wake_at=timezone.now())  # more to do: the sweeper comes back


def _step_transient(run: WorkflowRun, step_row: WorkflowStep, step, exc: TransientError) -> None:
    if step_row.attempts >= step.max_attempts:
        flow = definitions.get(run.flow, run.flow_version)
        _step_failed(run, step_row, flow, f"gave up after {step_row.attempts} attempts: {exc.detail}")
        return
    delay = backoff_delay(attempt=step_row.attempts, base_s=step.retry_base_s, retry_after_s=exc.retry_after)
    step_row.status = WorkflowStep.Status.PENDING
    step_row.error = exc.detail
    step_row.save(update_fields=["status", "error", "updated_at"])
    _save_run(
        run,
        status=WorkflowRun.Status.RUNNING,
        error=exc.detail,
        wake_at=timezone.now() + timedelta(seconds=delay),
    )


def _step_wait(run: WorkflowRun, step_row: WorkflowStep, flow, step, outcome: Wait) -> None:
    now = timezone.now()
    # A milestone that arrived while this step was looking asked for a look now (workflows_wake):
    # keep that earlier time rather than overwrite it with the step's next scheduled look.
    requested = WorkflowRun.objects.filter(pk=run.pk).values_list("wake_at", flat=True).first()
    woken = requested is not None and requested > (step_row.updated_at or now)
    if step_row.sla_due_at is None and step.sla_s is not None:
        step_row.sla_due_at = (step_row.started_at or now) + timedelta(seconds=step.sla_s)
    step_row.status = WorkflowStep.Status.WAITING
    step_row.waiting_for = outcome.waiting_for[:200]
    step_row.save()
    wake_at = now + timedelta(seconds=outcome.check_again_s)
    if step_row.sla_due_at is not None:
        if step_row.escalated_at is None and now >= step_row.sla_due_at:
            step_row.escalated_at = now
            step_row.save(update_fields=["escalated_at", "updated_at"])
            _act(
                run,
                "escalated",
                step=step_row.name,
                reason=f"still waiting for {outcome.waiting_for} after its SLA ({step.sla_s:.0f} s)",
            )
            if flow.on_escalate is not None:
                flow.on_escalate(StepContext(run=run, step=step_row, inputs=run.inputs, context=run.context))
        elif step_row.escalated_at is None:
            wake_at = min(wake_at, step_row.sla_due_at)
    if woken:
        wake_at = min(wake_at, requested)
    _save_run(run, status=WorkflowRun.Status.WAITING, wake_at=wake_at)


def _step_failed(run: WorkflowRun, step_row: WorkflowStep, flow, error: str) -> None:
    step_row.status = WorkflowStep.Status.FAILED
    step_row.error = error[:4000]
    step_row.save(update_fields=["status", "error", "updated_at"])
    _act(run, "step_failed", step=step_row.name, reason=error[:4000])
    if flow.compensate_on_failure and run.steps.filter(status=WorkflowStep.Status.DONE).exists():
        _save_run(run, status=WorkflowRun.Status.COMPENSATING, error=error[:4000], wake_at=timezone.now())
        _act(run, "compensate", reason=f"automatic: {step_row.name} failed", actor="system")
        _compensate_steps(run)
        return
    _save_run(run, status=WorkflowRun.Status.FAILED, error=error[:4000], wake_at=None)


def _compensate_steps(run: WorkflowRun) -> None:
    """Undo done steps, last first. A transient failure leaves the run compensating for a retry."""
    flow = definitions.get(run.flow, run.flow_version)
    for step_row in run.steps.filter(status=WorkflowStep.Status.DONE).order_by("-sequence"):
        step = flow.step(step_row.name)
        if step.compensate is None:
            continue
        ctx = StepContext(run=run, step=step_row, inputs=run.inputs, context=run.context)
        try:
            result = step.compensate(ctx)
        except TransientError as exc:
            _save_run(
                run,
                error=f"compensating {step.name}: {exc.detail}",
                wake_at=timezone.now()
                + timedelta(seconds=backoff_delay(attempt=3, base_s=step.retry_base_s)),
            )
            return
        except (ConnectorError, DomainError) as exc:
            _save_run(
                run,
                status=WorkflowRun.Status.FAILED,
                wake_at=None,
                error=f"compensating {step.name} failed: {type(exc).__name__}: {exc.detail}",
            )
            _act(run, "compensation_failed", step=step.name, reason=exc.detail)
            return
        step_row.status = WorkflowStep.Status.COMPENSATED
        step_row.compensation = result or {}
        step_row.save(update_fields=["status", "compensation", "updated_at"])
    run.steps.filter(status__in=[WorkflowStep.Status.PENDING, WorkflowStep.Status.WAITING]).update(
        status=WorkflowStep.Status.SKIPPED
    )
    _save_run(run, status=WorkflowRun.Status.COMPENSATED, finished_at=timezone.now(), wake_at=None)
    _act(run, "compensated")


# --- Signals and the sweeper -------------------------------------------------------------------------


def workflows_due(*, limit: int = 200) -> list[UUID]:
    """Active runs whose wake-up time has come and that no worker holds."""
    now = timezone.now()
    return list(
        WorkflowRun.objects.filter(status__in=WorkflowRun.ACTIVE, wake_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("wake_at")
        .values_list("pk", flat=True)[:limit]
    )


def workflows_wake(
    *, flow: str | None = None, business_keys: list[str] | None = None, subjects: list[str] | None = None
) -> int:
    """Look at waiting runs about these business keys or shipments now (a milestone, POD or an
    approval arrived) instead of at their next scheduled look."""
    # And a run being advanced right now (leased) keeps the request (see _step_wait); a run backing
    # off after a peer error is not hurried.
    now = timezone.now()
    runs = WorkflowRun.objects.filter(
        status__in=[WorkflowRun.Status.WAITING, WorkflowRun.Status.RUNNING]
    ).filter(Q(status=WorkflowRun.Status.WAITING) | Q(lease_until__gt=now))
    if business_keys is not None:
        runs = runs.filter(business_key__in=business_keys)
    if subjects is not None:
        runs = runs.filter(subject__in=subjects)
    if flow is not None:
        runs = runs.filter(flow=flow)
    ids = list(runs.values_list("pk", flat=True))
    WorkflowRun.objects.filter(pk__in=ids).update(wake_at=now)
    for run_id in ids:
        _enqueue(run_id)
    return len(ids)


# --- Operator actions --------------------------------------------------------------------------------


def _locked(run_id: UUID) -> WorkflowRun:
    run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"no workflow run {run_id}")
    return run


def _need_reason(reason: str) -> None:
    if not reason.strip():
        raise ValidationFailed("a reason is required", errors=[{"field": "reason", "message": "required"}])


@contextmanager
def _operator_action(run_id: UUID, reason: str) -> Iterator[WorkflowRun]:
    """An operator's action on one run: a reason is required (ValidationFailed), and the run is
    locked (NotFoundError when there is none) for the transaction the action runs in."""
    _need_reason(reason)
    with transaction.atomic():
        yield _locked(run_id)


def _look_now(
    run: WorkflowRun, action: str, *, reason: str, actor: str, step: str = "", **changes: Any
) -> None:
    """Save ``changes``, record the operator's ``action`` and have the engine look at the run now
    (enqueued on commit)."""
    _save_run(run, **changes, wake_at=timezone.now())
    _act(run, action, step=step, reason=reason, actor=actor)
    _enqueue(run.pk)


def workflow_retry_step(*, run_id: UUID, reason: str, actor: str) -> WorkflowRun:
    """Run a failed step again (with a fresh attempt budget). ConflictError unless a step failed."""
    with _operator_action(run_id, reason) as run:
        step_row = run.steps.filter(status=WorkflowStep.Status.FAILED).first()
        if step_row is None or run.status != WorkflowRun.Status.FAILED:
            raise ConflictError(f"run is {run.status}: only a failed step can be retried")
        step_row.status = WorkflowStep.Status.PENDING
        step_row.attempts = 0
        step_row.save(update_fields=["status", "attempts", "updated_at"])
        _look_now(
            run,
            "retry",
            step=step_row.name,
            reason=reason,
            actor=actor,
            status=WorkflowRun.Status.RUNNING,
            finished_at=None,
        )
    return run


def workflow_resume(*, run_id: UUID, reason: str, actor: str) -> WorkflowRun:
    """Look at a waiting (or retrying) run now instead of at its next wake-up."""
    with _operator_action(run_id, reason) as run:
        if run.status not in WorkflowRun.ACTIVE:
            raise ConflictError(f"run is {run.status}: only a running, waiting or compensating run resumes")
        _look_now(run, "resume", reason=reason, actor=actor)
    return run


def workflow_compensate(*, run_id: UUID, reason: str, actor: str) -> WorkflowRun:
    """Undo the run's completed steps (last first) through their compensations."""
    with _operator_action(run_id, reason) as run:
        if run.status in (WorkflowRun.Status.COMPENSATED, WorkflowRun.Status.CANCELLED):
            raise ConflictError(f"run is {run.status}: nothing to compensate")
        _look_now(
            run,
            "compensate",
            reason=reason,
            actor=actor,
            status=WorkflowRun.Status.COMPENSATING,
            finished_at=None,
        )
    return run


def workflow_cancel(*, run_id: UUID, reason: str, actor: str) -> WorkflowRun:
    """Stop the run where it is; steps not done are skipped (nothing is undone: compensate for that)."""
    with _operator_action(run_id, reason) as run:
        if run.status in (
            WorkflowRun.Status.COMPLETED,
            WorkflowRun.Status.COMPENSATED,
            WorkflowRun.Status.CANCELLED,
        ):
            raise ConflictError(f"run is {run.status}: it can no longer be cancelled")
        run.steps.exclude(status__in=[WorkflowStep.Status.DONE, WorkflowStep.Status.COMPENSATED]).update(
            status=WorkflowStep.Status.SKIPPED
        )
        _save_run(run, status=WorkflowRun.Status.CANCELLED, wake_at=None, finished_at=timezone.now())
        _act(run, "cancel", reason=reason, actor=actor)
    return run
