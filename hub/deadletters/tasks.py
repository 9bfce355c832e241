from __future__ import annotations

from celery import shared_task

from hub.core import work
from hub.deadletters import replay


@shared_task(name="hub.deadletters.replay_job", soft_time_limit=300, time_limit=330)
def replay_job_run_task(job_id: str) -> None:
    if replay.replay_job_run(job_id=job_id):
        work.send(replay.REPLAY_JOBS, job_id)  # batch-and-requeue: the next chunk in a fresh task
