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


PERIODIC_TASKS: dict[str, Periodic] = {
    # Proves beat -> broker -> worker -> database works end to end; visible in Flower.
    "heartbeat": Periodic(task="hub.core.ping", every_s=300, queue=Queue.DEFAULT, args=["beat"]),
    # Re-wakes due retries and abandoned claims, auto-replays letters whose shipment appeared.
    "pipeline-sweep": Periodic(task="hub.sweep", every_s=5, queue=Queue.DEFAULT),
    # Polls connections that have a poll interval (systems without webhooks, e.g. an ERP's sales).
    "connections-poll": Periodic(task="hub.inbox.poll_due", every_s=5, queue=Queue.INBOUND),
    # Takes files partners drop into connections' drop folders (hub/inbox/dropfolder.py).
    "drop-folders": Periodic(task="hub.inbox.drop_scan", every_s=10, queue=Queue.INBOUND),
    # Advances workflow runs whose wake-up time has come (retries, waits, SLA checks, crashed runs).
    "workflows-sweep": Periodic(task="hub.workflows.sweep", every_s=5, queue=Queue.WORKFLOWS),
}
