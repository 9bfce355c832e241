from __future__ import annotations

from celery import shared_task

from reconciliation import services


@shared_task(
    name="reconciliation.run", acks_late=True, soft_time_limit=1800, time_limit=1860, ignore_result=True
)
def reconciliation_run_task(run_id: str) -> None:
    """Execute one run (idempotent: a run another worker holds, or a finished one, is left alone)."""
    services.run_execute(run_id=run_id)


@shared_task(name="reconciliation.scheduled", soft_time_limit=30, time_limit=60, ignore_result=True)
def reconciliation_scheduled_task(check: str) -> None:
    """Beat: start a run of ``check`` unless it is switched off or already running."""
    services.run_scheduled(check=check)
