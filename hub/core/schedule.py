"""The periodic tasks beat runs, by stable name. `manage.py setup_periodic_tasks` upserts them.

Later subsystems (sweepers, reconciliation) add their entries here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.core.queues import Queue


@dataclass(frozen=True)
class Periodic:
    task: str  # the task's explicit Celery name
    every_s: int  # seconds between runs
    queue: Queue
    args: list = field(default_factory=list)  # JSON-serializable positional arguments
    # Ops own the schedule (e.g. a reconciliation check's): created when missing, then its interval
    # and on/off switch are left as edited in the admin.
    operator_edits: bool = False


PERIODIC_TASKS: dict[str, Periodic] = {
    # Proves beat -> broker -> worker -> database works end to end; visible in Flower.
    "heartbeat": Periodic(task="hub.core.ping", every_s=300, queue=Queue.DEFAULT, args=["beat"]),
    # The one sweeper (hub.core.work): gives back lapsed claims and wakes every queue with work due
    # (inbound messages, deliveries, workflow runs, writes to retry, connections due a poll, bulk
    # replays), then auto-replays letters whose shipment appeared and starts triggered workflows.
    "sweep": Periodic(task="hub.sweep", every_s=5, queue=Queue.DEFAULT),
    # Takes files partners drop into connections' drop folders (hub/inbox/dropfolder.py).
    "drop-folders": Periodic(task="hub.inbox.drop_scan", every_s=10, queue=Queue.INBOUND),
}


def periodic_register(name: str, entry: Periodic) -> None:
    """Add an entry from an app above core (from its ``AppConfig.ready``)."""
    PERIODIC_TASKS[name] = entry
