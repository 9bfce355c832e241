from __future__ import annotations

from celery import shared_task

from hub.workflows import services


@shared_task(
    name="hub.workflows.advance", acks_late=True, soft_time_limit=280, time_limit=300, ignore_result=True
)
def workflow_advance_task(run_id: str) -> None:
    """Advance one run (idempotent: a run not due or held by another worker is left alone)."""
    services.workflow_advance(run_id=run_id)
