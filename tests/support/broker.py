"""The real broker's queues, the same way on Redis and RabbitMQ.

Each queue is declared as Celery declares it (durable, from ``CELERY_TASK_QUEUES``) before it is
read or purged: RabbitMQ answers 404 for a queue nobody declared yet and refuses a re-declaration
with other flags, where Redis just sees an empty list.
"""

from __future__ import annotations

from django.conf import settings

from celery_app import app


def _declared(conn, name: str):
    queue = next(q for q in settings.CELERY_TASK_QUEUES if q.name == name)
    bound = queue(conn.default_channel)
    bound.declare()
    return bound


def queue_size(name: str) -> int:
    """Messages ready in queue ``name`` (not those a consumer holds unacknowledged)."""
    with app.connection_for_write() as conn:
        # Not passive: Redis has no empty queues (an empty list is no key), so a passive check
        # would fail there; a declaration with Celery's own flags is a no-op on RabbitMQ.
        return _declared(conn, name).queue_declare().message_count


def queue_purge(name: str) -> None:
    with app.connection_for_write() as conn:
        _declared(conn, name).purge()
