from __future__ import annotations

from celery import shared_task

from hub.inbox import services


@shared_task(name="hub.inbox.drain", soft_time_limit=50, time_limit=60)
def inbox_drain_task() -> None:
    """Wake-up: process waiting inbound messages (claimed from PostgreSQL in batches)."""
    services.inbox_drain()
