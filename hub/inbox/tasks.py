from __future__ import annotations

from celery import shared_task

from hub.inbox import acks, dropfolder, polling, services


@shared_task(name="hub.inbox.drain", soft_time_limit=50, time_limit=60)
def inbox_drain_task() -> None:
    """Wake-up: process waiting inbound messages (claimed from PostgreSQL in batches)."""
    services.inbox_drain()


@shared_task(name="hub.inbox.poll", acks_late=True, soft_time_limit=240, time_limit=270, ignore_result=True)
def inbox_poll_task(connection_id: str) -> None:
    """Poll one connection (idempotent: a lease and natural ids make a repeat harmless)."""
    polling.connection_poll(connection_id=connection_id)


@shared_task(name="hub.inbox.drop_scan", soft_time_limit=50, time_limit=60, ignore_result=True)
def inbox_drop_scan_task() -> None:
    """Beat: take the files partners dropped into connections' drop folders."""
    dropfolder.drop_folders_scan()


@shared_task(
    name="hub.inbox.acknowledge", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True
)
def inbox_acknowledge_task(message_id: str) -> None:
    """Send a received message's acknowledgements (idempotent through the ledger)."""
    acks.message_acknowledge(message_id=message_id)
