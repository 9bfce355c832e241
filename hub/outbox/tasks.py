from __future__ import annotations

import contextlib

from celery import shared_task

from connectors.errors import ConnectorError
from hub.outbox import services, tenders


@shared_task(name="hub.outbox.drain", soft_time_limit=50, time_limit=60)
def outbox_drain_task(timer_slot: int | None = None) -> None:
    """Wake-up: send due deliveries (claimed from PostgreSQL in batches). ``timer_slot``: set when a
    timed wake-up (hub.core.work.wake_at) sent it."""
    services.outbox_drain(timer_slot=timer_slot)


@shared_task(name="hub.outbox.tender", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def shipment_tender_task(shipment_id: str, connection_id: str) -> None:
    """Send a shipment's tender (idempotent through the ledger; failures stay on the ledger row,
    where the sweeper retries transient ones)."""
    with contextlib.suppress(ConnectorError):  # recorded on the ledger row with its reason
        tenders.shipment_tender(shipment_id=shipment_id, connection_id=connection_id)
