"""Leases kept alive by a heartbeat while the work runs, so a dead worker's claim lapses in seconds.

Every queue in the hub claims rows with a conditional UPDATE that sets a lease (``claimed_until``,
``lease_until``); the sweeper hands rows whose lease has passed back to the queue. A fixed lease has to
outlast the slowest honest piece of work, so a worker killed with ``kill -9`` left its claim waiting
minutes. Instead the lease is short (``LEASE_S``) and the process holding it renews it every
``HEARTBEAT_S`` from a background thread for as long as the work runs:

1. the worker claims rows with ``lease_until = now + LEASE_S`` (one UPDATE, as before);
2. ``lease_kept(renew)`` starts a daemon thread that calls ``renew()`` every ``HEARTBEAT_S``; ``renew``
   is a conditional UPDATE that extends the lease only of rows still claimed (status unchanged), on
   the thread's own database connection;
3. when the work ends (normally or by an exception, a soft time limit included) the thread stops and
   closes its connection; rows already finished are not touched by a late renewal because the
   UPDATE's WHERE no longer matches them;
4. when the process dies, the heartbeat dies with it: the lease lapses within ``LEASE_S`` and the next
   sweep (every few seconds) gives the rows back.

A renewal that fails (database restarting) is logged and tried again on the next beat; a lease that
lapses while its worker still runs is safe, because every claimant re-checks the row's state under
its lock (an outbox delivery also its claim token, so a worker whose rows were claimed again neither
renews nor records over the new claimant) and applying an event twice is a no-op (semantic keys,
the ledger's look-up).

Where it is tested: the heartbeat itself and an inbox drain slower than its lease in
``tests/hub/test_lease.py``; a worker killed mid-send, picked up again within the default lease, and
a live worker's sends three leases long never taken over, in ``tests/e2e/test_pipeline.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

LEASE_S = 30  # seconds a claim stays valid without a renewal: the longest a dead worker's rows wait
HEARTBEAT_S = 10  # seconds between renewals; three beats fit in one lease, so one missed beat is harmless
STOP_WAIT_S = 2.0  # seconds the finished work waits for a renewal in progress before going on


class _Heartbeat(threading.Thread):
    def __init__(self, renew: Callable[[], object], every_s: float, name: str) -> None:
        super().__init__(name=f"lease-heartbeat:{name}", daemon=True)
        self._renew = renew
        self._every_s = every_s
        self._halt = threading.Event()
        self.beats = 0

    def run(self) -> None:
        try:
            while not self._halt.wait(self._every_s):
                try:
                    self._renew()
                    self.beats += 1
                except Exception:
                    logger.exception(
                        "lease renewal for %s failed; trying again in %ss", self.name, self._every_s
                    )
                    close_old_connections()
        finally:
            connections.close_all()  # this thread's own connections only (they are thread-local)

    def stop(self) -> None:
        self._halt.set()
        # A renewal waiting on a row lock finishes by itself (its UPDATE then matches nothing); the
        # work that is done must not wait for it.
        self.join(timeout=STOP_WAIT_S)


@contextmanager
def lease_kept(
    renew: Callable[[], object], *, every_s: float = HEARTBEAT_S, name: str = "work"
) -> Iterator[None]:
    """Call ``renew()`` every ``every_s`` seconds from a background thread while the block runs.

    ``renew`` must be a conditional UPDATE of the claimed rows (it runs on its own connection, outside
    the caller's transaction) and must not raise for rows that were finished meanwhile. Nothing is
    renewed when the block ends within one beat.
    """
    beat = _Heartbeat(renew, every_s, name)
    beat.start()
    try:
        yield
    finally:
        beat.stop()
