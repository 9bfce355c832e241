from __future__ import annotations

from celery import shared_task

from hub.core import work
from hub.core.probes import check_database


@shared_task(name="hub.core.ping", ignore_result=False, soft_time_limit=5, time_limit=10)
def ping_task(token: str) -> dict[str, str]:
    """Round-trip check: proves a worker consumes the broker and reaches the database."""
    ok, detail = check_database()
    return {"token": token, "database": detail if not ok else "ok"}


@shared_task(name="hub.sweep", soft_time_limit=50, time_limit=60, ignore_result=True)
def work_sweep_task() -> None:
    """Beat: give back lapsed claims and wake every queue with work due (hub.core.work)."""
    work.work_sweep()
