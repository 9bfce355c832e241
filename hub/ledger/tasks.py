from __future__ import annotations

from celery import shared_task

from hub.ledger import services


@shared_task(name="hub.ledger.retry", acks_late=True, soft_time_limit=120, time_limit=150, ignore_result=True)
def side_effect_retry_task(effect_id: str) -> None:
    """An operator's retry of one recorded write (idempotent through the ledger)."""
    services.side_effect_retry(effect_id=effect_id)
