from __future__ import annotations

from celery import shared_task

from hub.workflows import services, triggers


@shared_task(
    name="hub.workflows.advance", acks_late=True, soft_time_limit=280, time_limit=300, ignore_result=True
)
def workflow_advance_task(run_id: str) -> None:
    """Advance one run (idempotent: a run not due or held by another worker is left alone)."""
    services.workflow_advance(run_id=run_id)


@shared_task(name="hub.workflows.sweep", soft_time_limit=50, time_limit=60, ignore_result=True)
def workflows_sweep_task() -> None:
    """Beat: start runs for facts that have none, then advance runs whose wake-up time has come
    (retries, waits, SLA checks, runs of a worker that died)."""
    triggers.workflow_triggers_scan()
    for run_id in services.workflows_due():
        workflow_advance_task.delay(str(run_id))
