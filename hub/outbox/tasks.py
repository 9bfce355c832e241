from __future__ import annotations

from celery import shared_task

from hub.outbox import services


@shared_task(name="hub.outbox.drain", soft_time_limit=50, time_limit=60)
def outbox_drain_task() -> None:
    """Wake-up: send due deliveries (claimed from PostgreSQL in batches)."""
    services.outbox_drain()
