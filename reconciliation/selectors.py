"""Read-side views of reconciliation for the API, the admin and the metrics (one query per figure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max
from django_celery_beat.models import PeriodicTask

from reconciliation import checks
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun


@dataclass(frozen=True)
class CheckView:
    name: str
    title: str
    systems: list[str]
    enabled: bool
    auto_repair: bool
    every_s: int | None
    options: dict[str, Any]
    last_success_at: datetime | None
    open_discrepancies: int


def checks_overview() -> list[CheckView]:
    configs = {c.check_name: c for c in CheckConfig.objects.all()}
    schedules = {
        task.name.removeprefix("crossdock:reconcile:"): task
        for task in PeriodicTask.objects.filter(name__startswith="crossdock:reconcile:").select_related(
            "interval"
        )
    }
    last_success = dict(
        ReconciliationRun.objects.filter(status=ReconciliationRun.Status.SUCCEEDED, dry_run=False)
        .values_list("check_name")
        .annotate(at=Max("finished_at"))
    )
    open_counts = dict(
        Discrepancy.objects.filter(status__in=Discrepancy.OPEN_STATUSES)
        .values_list("check_name")
        .annotate(n=Count("pk"))
    )
    views = []
    for check in checks.all_checks():
        config = configs.get(check.name)
        task = schedules.get(check.name)
        interval = task.interval if task is not None and task.enabled else None
        views.append(
            CheckView(
                name=check.name,
                title=check.title,
                systems=list(check.systems),
                enabled=config.enabled if config else True,
                auto_repair=config.auto_repair if config else False,
                every_s=interval.every if interval is not None and interval.period == "seconds" else None,
                options=check.options(config.options if config else None),
                last_success_at=last_success.get(check.name),
                open_discrepancies=open_counts.get(check.name, 0),
            )
        )
    return views


def open_discrepancy_counts() -> list[tuple[str, str, int]]:
    """(check, severity, open count) for the metrics."""
    return list(
        Discrepancy.objects.filter(status__in=Discrepancy.OPEN_STATUSES)
        .values_list("check_name", "severity")
        .annotate(n=Count("pk"))
        .order_by("check_name", "severity")
    )


def last_runs() -> list[ReconciliationRun]:
    """The latest finished (not dry) run of each check, for the metrics' durations and last success."""
    latest = (
        ReconciliationRun.objects.filter(dry_run=False, finished_at__isnull=False)
        .order_by("check_name", "-finished_at")
        .distinct("check_name")
    )
    return list(latest)
