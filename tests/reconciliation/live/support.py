"""Running a check the way the worker does, and reading what it recorded."""

from __future__ import annotations

from typing import Any

from reconciliation import services
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun


def run_check(
    check: str, *, scope: dict[str, Any] | None = None, options: dict | None = None
) -> ReconciliationRun:
    if options is not None:
        CheckConfig.objects.update_or_create(check_name=check, defaults={"options": options})
    run = services.run_start(check=check, scope=scope or {}, actor="tests")
    done = services.run_execute(run_id=run.pk)
    assert done is not None and done.status == ReconciliationRun.Status.SUCCEEDED, done and done.error
    return done


def discrepancies(check: str, key: str) -> list[Discrepancy]:
    return list(Discrepancy.objects.filter(check_name=check, business_key=key).order_by("created_at"))
