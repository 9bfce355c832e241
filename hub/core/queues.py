"""Celery queues, by kind of work. The one source of truth: settings and tasks both read this enum."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    INBOUND = "inbound"  # parse/map/apply of stored inbound messages
    OUTBOUND = "outbound"  # deliveries to subscribers and peer writes
    WORKFLOWS = "workflows"  # long-running process flows
    RECONCILIATION = "reconciliation"  # scheduled cross-system checks; may take minutes
    DEFAULT = "default"  # everything else (health pings, housekeeping)


# Task name prefix -> queue. Celery 5.6 deprecates the per-task ``queue`` attribute, so routing
# lives here, beside the enum, and settings hand it to Celery as CELERY_TASK_ROUTES.
ROUTES: dict[str, Queue] = {
    "hub.core.*": Queue.DEFAULT,
    "hub.sweep": Queue.DEFAULT,
    "hub.deadletters.*": Queue.DEFAULT,
    "hub.inbox.*": Queue.INBOUND,
    "hub.outbox.*": Queue.OUTBOUND,
    "hub.ledger.*": Queue.OUTBOUND,
    "hub.workflows.*": Queue.WORKFLOWS,
    "reconciliation.*": Queue.RECONCILIATION,
}
