"""The work runtime: every queue of work the hub keeps in PostgreSQL, and the one sweeper over them.

Work lives in tables (inbound messages, deliveries, workflow runs, writes to other systems, polls,
bulk replays); a Celery message only says "look". Each app describes its queue once, in its
``AppConfig.ready``, with :func:`register`:

============  ============================  ===============================  =====================
queue         task (by name)                claim (conditional UPDATE)       kind
============  ============================  ===============================  =====================
inbox         hub.inbox.drain               inbound_batch_claim              drained
outbox        hub.outbox.drain              delivery_batch_claim             drained
workflows     hub.workflows.advance         workflow run lease               keyed by run id
writes        hub.ledger.retry              side-effect lease                keyed by write id
polls         hub.inbox.poll                connection poll lease            keyed by connection
replay-jobs   hub.deadletters.replay_job    SKIP LOCKED on the job row       keyed by job id
============  ============================  ===============================  =====================

A *drained* queue has one task that claims batches until nothing is due; a *keyed* queue has one
task per row, called with the row's id. Either way the claim is a conditional ``UPDATE … SKIP
LOCKED`` in the owning app's services (hub.core.lease keeps the lease alive while work runs).

How work gets started, and picked up again:

1. a service calls :func:`wake_on_commit` (drained) or :func:`enqueue_on_commit` (keyed): after the
   transaction commits, the task is sent **by name**, so services never import tasks;
2. a drained queue due again in under ``SHORT_WAKE_S`` (a retry's back-off) asks for a timed
   wake-up with :func:`wake_at`; the timer carries its slot and releases it when it fires, so a
   timer that fires a moment early can set the next one instead of leaving the work to the sweeper;
3. every ``SWEEP_EVERY_S`` beat runs :func:`work_sweep` (task ``hub.sweep``): for each queue it gives
   back claims whose lease lapsed (``expire``), then wakes a drained queue that has work due or sends
   the task for each due id of a keyed queue; then it runs the sweep hooks apps registered
   (auto-replay of dead letters whose shipment appeared, workflow triggers).

Where it is tested: ``tests/hub/test_work.py`` (the registry, the sweep, by-name sends, timers) and
the e2e tests that kill workers and retry with sub-second back-offs (``tests/e2e``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from hub.core.wake import wake_clear, wake_flag_take

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 5  # seconds between sweeps (hub/core/schedule.py)
SHORT_WAKE_S = 10.0  # work due sooner than this gets a timed wake-up; later work waits for the sweeper
TIMER_SLOT_S = 0.25  # seconds; timed wake-ups are rounded up to slots of this length (at most 4 a second)
TIMER_MARGIN_S = 0.02  # a timer is set this much after its slot, never before it
KEYED_PER_SWEEP = 200  # ids of one keyed queue sent per sweep; the next sweep sends the rest


@dataclass(frozen=True)
class WorkQueue:
    """One queue of work. Exactly one of ``waiting`` (drained) and ``due`` (keyed) is set."""

    name: str
    task: str  # the Celery task that works it, by its explicit name
    claim: Callable[..., Any]  # the conditional UPDATE that takes work (documented; called by the task)
    expire: Callable[[], int] | None = None  # gives back claims whose lease lapsed; returns how many
    waiting: Callable[[], bool] | None = None  # drained queue: is anything due now?
    due: Callable[[], Iterable[Any]] | None = None  # keyed queue: the ids due now

    def __post_init__(self) -> None:
        if (self.waiting is None) == (self.due is None):
            raise ValueError(f"work queue {self.name!r}: set exactly one of waiting (drained) or due (keyed)")

    @property
    def keyed(self) -> bool:
        return self.due is not None


_queues: dict[str, WorkQueue] = {}
_hooks: dict[str, Callable[[], int]] = {}


def register(queue: WorkQueue) -> WorkQueue:
    """Add a queue (from an ``AppConfig.ready``). Registering the same name twice is a mistake."""
    existing = _queues.get(queue.name)
    if existing is not None and existing != queue:
        raise ValueError(f"work queue {queue.name!r} is already registered")
    _queues[queue.name] = queue
    return queue


def hook_register(name: str, hook: Callable[[], int]) -> None:
    """Run ``hook()`` on every sweep after the queues (it returns how much it did, for the report)."""
    _hooks[name] = hook


def queues() -> list[WorkQueue]:
    return list(_queues.values())


def queue(name: str) -> WorkQueue:
    try:
        return _queues[name]
    except KeyError:
        raise LookupError(f"no work queue {name!r}; registered: {sorted(_queues)}") from None


# --- Sending by name --------------------------------------------------------------------------------


def _celery_send(task: str, args: list[Any], kwargs: dict[str, Any], countdown: float | None) -> None:
    # current_app is the one celery_app.py configures (hub/__init__.py loads it); routes apply by name.
    current_app.send_task(task, args=args, kwargs=kwargs, countdown=countdown)


_sender: Callable[[str, list[Any], dict[str, Any], float | None], None] = _celery_send


def sender_set(sender: Callable[[str, list[Any], dict[str, Any], float | None], None] | None) -> Callable:
    """Replace how tasks are sent (a benchmark that calls the services itself sends nothing);
    ``None`` restores Celery. Returns the previous sender."""
    global _sender
    previous, _sender = _sender, sender or _celery_send
    return previous


def send(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Send queue ``name``'s task now (a drained queue's wake-up, or a keyed queue's task for ``args``)."""
    _sender(queue(name).task, list(args), kwargs, countdown)


def wake_on_commit(name: str) -> None:
    """After the current transaction commits, wake drained queue ``name`` unless a wake-up is pending."""

    def _maybe_send() -> None:
        if not wake_flag_take(name):
            return
        try:
            send(name)
        except Exception as exc:
            # The broker is down. The work is committed and the sweeper re-wakes it; failing here
            # would turn the caller's committed request into an error. Drop the flag so the next
            # producer tries again instead of waiting for it to expire.
            logger.warning("%s wake-up not sent (%s); the sweeper will pick the work up", name, exc)
            wake_clear(name)

    transaction.on_commit(_maybe_send)


def enqueue_on_commit(name: str, key: Any) -> None:
    """After the current transaction commits, send keyed queue ``name``'s task for ``key``."""
    transaction.on_commit(partial(_send_quietly, name, str(key)))


def task_on_commit(task: str, *args: Any) -> None:
    """After the current transaction commits, send a one-off task by name (an acknowledgement, a
    tender): work that is not a sweepable queue, whose own service records failures."""
    transaction.on_commit(partial(_sender, task, [str(arg) for arg in args], {}, None))


def _send_quietly(name: str, key: str) -> None:
    try:
        send(name, key)
    except Exception as exc:  # the broker is down: the row is committed and the sweeper sends it
        logger.warning("%s task for %s not sent (%s); the sweeper will pick it up", name, key, exc)


# --- Timed wake-ups ---------------------------------------------------------------------------------


def _timer_key(name: str, slot: int) -> str:
    return f"wake:{name}:timer:{slot}"


def wake_at(name: str, at_epoch_s: float) -> bool:
    """Wake drained queue ``name`` when work falls due at ``at_epoch_s`` (``time.time()`` scale).

    One timer per slot, however many drainers ask for the same due time; the slot is named in the
    task (``timer_slot``) and released by :func:`timer_fired`. Work due later than ``SHORT_WAKE_S``
    is left to the sweeper. Returns True when a timer was set.
    """
    wait = at_epoch_s - time.time()
    if wait > SHORT_WAKE_S:
        return False
    slot = math.ceil(at_epoch_s / TIMER_SLOT_S)
    try:
        if not cache.add(_timer_key(name, slot), 1, timeout=max(1, int(wait) + 2)):
            return False
    except Exception as exc:  # the cache is down: set the timer anyway, a spare wake-up is harmless
        logger.warning("timer flag unavailable (%s); setting the %s timer unconditionally", exc, name)
    countdown = max(0.05, slot * TIMER_SLOT_S - time.time() + TIMER_MARGIN_S)
    try:
        send(name, countdown=countdown, timer_slot=slot)
    except Exception as exc:
        logger.warning("%s timer not set (%s); the sweeper will pick the work up", name, exc)
        return False
    return True


def timer_fired(name: str, slot: int | None) -> None:
    """A drain started by a timer releases its slot first, so finding nothing due yet (the timer
    fired a moment early) lets it set the same slot's timer again."""
    if slot is None:
        return
    try:
        cache.delete(_timer_key(name, slot))
    except Exception as exc:
        logger.warning("could not release the %s timer slot %s: %s", name, slot, exc)


# --- The sweeper ------------------------------------------------------------------------------------


def work_sweep() -> dict[str, int]:
    """Give back lapsed claims, wake every queue with work due, run the hooks. Idempotent.

    One queue's failure (its table locked, a bug) is logged and the others are still swept.
    """
    report: dict[str, int] = {}
    for q in queues():
        try:
            if q.expire is not None:
                report[f"{q.name}_leases_expired"] = q.expire()
            if q.keyed:
                keys = [str(key) for key in list(q.due())[:KEYED_PER_SWEEP]]
                for key in keys:
                    send(q.name, key)
                report[f"{q.name}_sent"] = len(keys)
            elif q.waiting():
                send(q.name)
                report[f"{q.name}_woken"] = 1
        except Exception:
            logger.exception("sweeping work queue %s failed; the next sweep tries again", q.name)
    for name, hook in _hooks.items():
        try:
            report[name] = hook()
        except Exception:
            logger.exception("sweep hook %s failed; the next sweep tries again", name)
    return report
