"""Bounding a block in time, so a test that would hang fails instead."""

from __future__ import annotations

import contextlib
import signal


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def within(seconds: float):
    """Raise TookTooLong in the block when it runs longer than ``seconds`` (main thread only)."""

    def _alarm(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
