"""Running checks, recording what they find, and the operator actions on discrepancies.

A run, step by step (``run_execute``):

1. claim the run with a conditional UPDATE (queued, or running with a lapsed lease) and keep the
   lease alive from a heartbeat while the check runs (hub.core.lease): a worker killed mid-run
   gives the run back within one lease, and the re-run starts over (recording is an upsert);
2. the check yields one finding per business key examined; findings are recorded in bounded batches
   of ``Check.page_size``: one query reads the batch's open discrepancies, then each disagreeing key
   opens one (``new``) or touches the open one (``still_open``, ``last_seen``), each agreeing key
   closes its open one (``closed``) — the partial unique index makes a second open one impossible;
3. with ``auto_repair`` on (and not a dry run) repairable discrepancies are repaired after their
   batch is recorded, each through the ledger of writes to other systems;
4. the run ends ``succeeded`` with its counts, or ``failed`` with the error (what was recorded
   before the error stays).

A dry run yields the same counts and a sample of findings in ``report`` and records nothing.

How to test a crash: start a run whose check blocks, kill the worker, and see
``reconciliation_runs_due`` return it once its lease lapses (tests/reconciliation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import timedelta
from functools import partial
from itertools import islice
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from canonical.errors import ConflictError, DomainError, NotFoundError, ValidationFailed
from connectors.errors import ConnectorError
from hub.core import work
from hub.core.lease import LEASE_S, lease_kept
from reconciliation import checks
from reconciliation.checks.base import CheckContext, Finding, NotRepairable, RepairFailed
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun

logger = logging.getLogger(__name__)

RUNS = "reconciliation"  # the work queue of runs (hub.core.work)
SYSTEM_ACTOR = "system:reconciliation"
DRY_RUN_SAMPLE = 20  # findings kept in a dry run's report
LOST_AFTER_S = 60  # a queued run with no worker after this long is sent again by the sweeper


# --- Configuration -----------------------------------------------------------------------------------


def check_config(name: str) -> CheckConfig:
    """The check's configuration row, created with its defaults the first time it is asked for."""
    checks.get(name)  # NotFoundError for an unknown check
    config, _ = CheckConfig.objects.get_or_create(check_name=name)
    return config


def _context(name: str, *, dry_run: bool, scope: dict[str, Any] | None = None) -> CheckContext:
    check = checks.get(name)
    return CheckContext(options=check.options(check_config(name).options), dry_run=dry_run, scope=scope or {})


# --- Starting runs -----------------------------------------------------------------------------------


def run_start(
    *, check: str, dry_run: bool = False, scope: dict[str, Any] | None = None, actor: str = SYSTEM_ACTOR
) -> ReconciliationRun:
    """Queue a run of ``check`` (its task is sent after commit). Raises NotFoundError for an unknown
    check and ValidationFailed for a scope that is not ``{"references": [...]}`` (plus the keys the check
    declares in ``scope_keys``, e.g. a period end)."""
    known = {"references", *checks.get(check).scope_keys}
    scope = scope or {}
    unknown = set(scope) - known
    if unknown or not isinstance(scope.get("references", []), list):
        raise ValidationFailed(
            "scope takes only a list of references",
            errors=[
                {"field": "scope", "message": f"unknown keys: {sorted(unknown)}" if unknown else "not a list"}
            ],
        )
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            check_name=check, dry_run=dry_run, scope=scope, requested_by=actor[:150]
        )
        work.enqueue_on_commit(RUNS, run.pk)
    return run


def run_scheduled(*, check: str) -> ReconciliationRun | None:
    """The beat's start of ``check``: nothing when the check is switched off or already queued/running."""
    if not check_config(check).enabled:
        return None
    busy = ReconciliationRun.objects.filter(
        check_name=check, status__in=[ReconciliationRun.Status.QUEUED, ReconciliationRun.Status.RUNNING]
    )
    if busy.exists():
        return None
    return run_start(check=check, actor="system:schedule")


def reconciliation_runs_due(*, limit: int = 20) -> list[UUID]:
    """Runs whose task was lost (queued for a while) or whose worker died (lease lapsed)."""
    now = timezone.now()
    return list(
        ReconciliationRun.objects.filter(
            Q(status=ReconciliationRun.Status.QUEUED, created_at__lt=now - timedelta(seconds=LOST_AFTER_S))
            | Q(status=ReconciliationRun.Status.RUNNING, lease_until__lt=now)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- Executing a run ---------------------------------------------------------------------------------


def _claim(run_id: UUID) -> bool:
    now = timezone.now()
    claimed = (
        ReconciliationRun.objects.filter(pk=run_id)
        .filter(
            Q(status=ReconciliationRun.Status.QUEUED)
            | Q(status=ReconciliationRun.Status.RUNNING, lease_until__lt=now)
        )
        .update(
            status=ReconciliationRun.Status.RUNNING,
            lease_until=now + timedelta(seconds=LEASE_S),
            started_at=now,
            examined=0,
            ok=0,
            new=0,
            still_open=0,
            closed=0,
            repaired=0,
            errors=0,
            ignored=0,
            error="",
        )
    )
    return claimed == 1


def _lease_renew(run_id: UUID) -> int:
    return ReconciliationRun.objects.filter(pk=run_id, status=ReconciliationRun.Status.RUNNING).update(
        lease_until=timezone.now() + timedelta(seconds=LEASE_S)
    )


def run_execute(*, run_id: UUID) -> ReconciliationRun | None:
    """Execute a queued run (or one whose worker died). Idempotent: a run another worker holds, or one
    already finished, is left alone (returns None)."""
    if not _claim(run_id):
        return None
    run = ReconciliationRun.objects.get(pk=run_id)
    check = checks.get(run.check_name)
    ctx = _context(run.check_name, dry_run=run.dry_run, scope=run.scope)
    auto_repair = check_config(run.check_name).auto_repair and not run.dry_run
    sample: list[dict[str, Any]] = []
    try:
        with lease_kept(partial(_lease_renew, run.pk), name=f"reconcile:{run.check_name}"):
            ReconciliationRun.objects.filter(pk=run.pk).update(total=check.estimate(ctx))
            for batch in _batches(check.examine(ctx), check.page_size):
                if run.dry_run:
                    _count_dry(run, batch, sample)
                    continue
                to_repair = _record(run, batch)
                if auto_repair:
                    for discrepancy_id in to_repair:
                        _repair_quietly(run, discrepancy_id, ctx)
    except Exception as exc:
        logger.exception("reconciliation run %s (%s) failed", run.pk, run.check_name)
        _finish(
            run, ctx, sample, status=ReconciliationRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
        return run
    _finish(run, ctx, sample, status=ReconciliationRun.Status.SUCCEEDED)
    return run


def _batches(findings: Iterable[Finding], size: int) -> Iterator[list[Finding]]:
    iterator = iter(findings)
    while batch := list(islice(iterator, size)):
        yield batch


def _count_dry(run: ReconciliationRun, batch: list[Finding], sample: list[dict[str, Any]]) -> None:
    open_keys = set(
        Discrepancy.objects.filter(
            check_name=run.check_name,
            business_key__in=[f.business_key for f in batch],
            status__in=Discrepancy.OPEN_STATUSES,
        ).values_list("business_key", flat=True)
    )
    counts = {"examined": len(batch), "ok": 0, "new": 0, "still_open": 0, "closed": 0}
    for finding in batch:
        if finding.ok:
            counts["ok"] += 1
            counts["closed"] += finding.business_key in open_keys
            continue
        counts["still_open" if finding.business_key in open_keys else "new"] += 1
        if len(sample) < DRY_RUN_SAMPLE:
            sample.append(asdict(finding))
    ReconciliationRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in counts.items()})


def _record(run: ReconciliationRun, batch: list[Finding]) -> list[UUID]:
    """Record one batch of findings; returns the repairable discrepancies it left open."""
    now = timezone.now()
    counts = {"examined": len(batch), "ok": 0, "new": 0, "still_open": 0, "closed": 0, "ignored": 0}
    repairable: list[UUID] = []
    keys = [f.business_key for f in batch]
    with transaction.atomic():
        open_by_key = {
            d.business_key: d
            for d in Discrepancy.objects.select_for_update().filter(
                check_name=run.check_name, business_key__in=keys, status__in=Discrepancy.OPEN_STATUSES
            )
        }
        ignored = set(
            Discrepancy.objects.filter(
                check_name=run.check_name, business_key__in=keys, status=Discrepancy.Status.IGNORED
            ).values_list("business_key", flat=True)
        )
        for finding in batch:
            current = open_by_key.get(finding.business_key)
            if not finding.ok and current is None and finding.business_key in ignored:
                counts["ignored"] += 1  # an operator chose to leave it: not opened again
                continue
            if finding.ok:
                counts["ok"] += 1
                if current is not None and current.status == Discrepancy.Status.OPEN:
                    Discrepancy.objects.filter(pk=current.pk).update(
                        status=Discrepancy.Status.RESOLVED,
                        closed_at=now,
                        closed_by=SYSTEM_ACTOR,
                        reason=f"the systems agree again (run {run.pk})",
                        last_run=run,
                        updated_at=now,
                    )
                    counts["closed"] += 1
                continue
            fields = {
                "kind": finding.kind,
                "summary": finding.summary[:300],
                "systems": list(finding.systems),
                "expected": finding.expected,
                "found": finding.found,
                "severity": finding.severity,
                "repairable": finding.repairable,
                "external_ids": [str(i) for i in finding.external_ids],
                "last_seen": now,
                "last_run": run,
            }
            if current is None:
                current = Discrepancy.objects.create(
                    check_name=run.check_name,
                    business_key=finding.business_key,
                    first_seen=now,
                    found_by=run,
                    **fields,
                )
                counts["new"] += 1
            else:
                Discrepancy.objects.filter(pk=current.pk).update(updated_at=now, **fields)
                counts["still_open"] += 1
            if finding.repairable and current.status == Discrepancy.Status.OPEN:
                repairable.append(current.pk)
        ReconciliationRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in counts.items()})
    return repairable


def _repair_quietly(run: ReconciliationRun, discrepancy_id: UUID, ctx: CheckContext) -> None:
    try:
        outcome = discrepancy_repair(discrepancy_id=discrepancy_id, actor=SYSTEM_ACTOR, reason="auto-repair")
    except Exception as exc:  # not open any more, not repairable, the write failed, or a bug: the run goes on
        logger.log(
            logging.WARNING if isinstance(exc, DomainError) else logging.ERROR,
            "auto-repair of discrepancy %s failed: %s",
            discrepancy_id,
            exc,
            exc_info=not isinstance(exc, DomainError),
        )
        ReconciliationRun.objects.filter(pk=run.pk).update(errors=F("errors") + 1)
        return
    if outcome.status == Discrepancy.Status.REPAIRED:
        ReconciliationRun.objects.filter(pk=run.pk).update(repaired=F("repaired") + 1)


def _finish(
    run: ReconciliationRun, ctx: CheckContext, sample: list[dict[str, Any]], *, status: str, error: str = ""
) -> None:
    report = {"totals": ctx.totals}
    if run.dry_run:
        report["sample"] = sample
    ReconciliationRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), lease_until=None, report=report, error=error[:4000]
    )
    run.refresh_from_db()


# --- Operator actions --------------------------------------------------------------------------------


def _need_reason(reason: str) -> None:
    if not (reason or "").strip():
        raise ValidationFailed("a reason is required", errors=[{"field": "reason", "message": "required"}])


def discrepancy_repair(
    *, discrepancy_id: UUID, actor: str, reason: str, dry_run: bool = False
) -> Discrepancy:
    """Repair one open discrepancy through its check (the writes go through the ledger, so repeating
    a repair writes nothing twice). A dry run returns the discrepancy with the plan in ``repair`` and
    changes nothing. Raises NotFoundError, ConflictError (not open, or being repaired), NotRepairable
    and RepairFailed (a write failed: the discrepancy is open again, with the error in ``repair``)."""
    _need_reason(reason)
    discrepancy = Discrepancy.objects.filter(pk=discrepancy_id).first()
    if discrepancy is None:
        raise NotFoundError(f"no discrepancy {discrepancy_id}")
    check = checks.get(discrepancy.check_name)
    ctx = _context(discrepancy.check_name, dry_run=dry_run)
    if dry_run:
        discrepancy.repair = {"plan": check.repair(discrepancy, ctx), "dry_run": True}
        return discrepancy
    taken = Discrepancy.objects.filter(pk=discrepancy_id, status=Discrepancy.Status.OPEN).update(
        status=Discrepancy.Status.REPAIRING, updated_at=timezone.now()
    )
    if not taken:
        raise ConflictError(
            f"discrepancy {discrepancy_id} is {discrepancy.status}, not open: nothing to repair"
        )
    try:
        done = check.repair(discrepancy, ctx)
    except NotRepairable:
        Discrepancy.objects.filter(pk=discrepancy_id).update(status=Discrepancy.Status.OPEN)
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        Discrepancy.objects.filter(pk=discrepancy_id).update(
            status=Discrepancy.Status.OPEN,
            repair={"error": error, "by": actor[:150], "at": timezone.now().isoformat()},
        )
        if isinstance(exc, ConnectorError | DomainError):
            raise RepairFailed(f"repair of {discrepancy.business_key} failed: {error}") from exc
        raise
    Discrepancy.objects.filter(pk=discrepancy_id).update(
        status=Discrepancy.Status.REPAIRED,
        repair={**done, "by": actor[:150], "at": timezone.now().isoformat()},
        closed_at=timezone.now(),
        closed_by=actor[:150],
        reason=reason,
    )
    discrepancy.refresh_from_db()
    return discrepancy


def _close(discrepancy_id: UUID, *, status: str, actor: str, reason: str) -> Discrepancy:
    _need_reason(reason)
    with transaction.atomic():
        discrepancy = Discrepancy.objects.select_for_update().filter(pk=discrepancy_id).first()
        if discrepancy is None:
            raise NotFoundError(f"no discrepancy {discrepancy_id}")
        if discrepancy.status != Discrepancy.Status.OPEN:
            raise ConflictError(f"discrepancy {discrepancy_id} is {discrepancy.status}, not open")
        discrepancy.status = status
        discrepancy.closed_at = timezone.now()
        discrepancy.closed_by = actor[:150]
        discrepancy.reason = reason
        discrepancy.save(update_fields=["status", "closed_at", "closed_by", "reason", "updated_at"])
    return discrepancy


def discrepancy_resolve(*, discrepancy_id: UUID, actor: str, reason: str) -> Discrepancy:
    """Close an open discrepancy: fixed by hand, or not a problem after all (a reason is required)."""
    return _close(discrepancy_id, status=Discrepancy.Status.RESOLVED, actor=actor, reason=reason)


def discrepancy_ignore(*, discrepancy_id: UUID, actor: str, reason: str) -> Discrepancy:
    """Leave an open discrepancy as it is, on purpose (a reason is required). Later runs that find
    the same key disagreeing count it as ignored and do not open it again."""
    return _close(discrepancy_id, status=Discrepancy.Status.IGNORED, actor=actor, reason=reason)
