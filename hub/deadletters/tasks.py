from __future__ import annotations

from celery import shared_task

from hub.deadletters import replay


@shared_task(name="hub.deadletters.replay_job", soft_time_limit=300, time_limit=330)
def replay_job_run_task(job_id: str) -> None:
    if replay.replay_job_run(job_id=job_id):
        replay_job_run_task.delay(job_id)  # batch-and-requeue: the next chunk in a fresh task


@shared_task(name="hub.sweep", soft_time_limit=50, time_limit=60)
def pipeline_sweep_task() -> None:
    replay.pipeline_sweep()
