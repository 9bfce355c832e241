"""Two claimers on the same rows, in two threads with their own database connections (STYLE.md §6:
every concurrency rule gets a test that runs two claimers on the same row)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

JOIN_TIMEOUT_S = 30  # seconds each thread may take before the test gives up on it
WAIT_TIMEOUT_S = 10  # seconds a thread waits for the other one's signal


@dataclass
class Claims:
    """What claimers A and B claimed, and what either raised."""

    a: list[Any] = field(default_factory=list)
    b: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    b_finished: bool = False


def _run_in_threads(*targets: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)


def claimers_race(claim: Callable[[], Sequence[Any]]) -> Claims:
    """A and B start together and each calls ``claim`` until it returns nothing."""
    claims = Claims()
    start = threading.Barrier(2)

    def claimer(claimed: list[Any]) -> None:
        try:
            start.wait(timeout=WAIT_TIMEOUT_S)
            while batch := claim():
                claimed.extend(batch)
        except BaseException as exc:
            claims.errors.append(exc)
        finally:
            connections.close_all()

    _run_in_threads(lambda: claimer(claims.a), lambda: claimer(claims.b))
    claims.b_finished = True
    return claims


def claimers_while_held(hold: Callable[[], Sequence[Any]], other: Callable[[], Sequence[Any]]) -> Claims:
    """A claims with ``hold`` inside a longer transaction, so its row locks are held, and keeps them
    until B has claimed with ``other`` (or given up waiting)."""
    claims = Claims()
    a_has_claimed, b_is_done = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                claims.a = list(hold())
                a_has_claimed.set()
                b_is_done.wait(timeout=WAIT_TIMEOUT_S)
        except BaseException as exc:
            claims.errors.append(exc)
        finally:
            a_has_claimed.set()
            connections.close_all()

    def claimer() -> None:
        try:
            a_has_claimed.wait(timeout=WAIT_TIMEOUT_S)
            claims.b = list(other())
        except BaseException as exc:
            claims.errors.append(exc)
        finally:
            b_is_done.set()
            connections.close_all()

    _run_in_threads(holder, claimer)
    claims.b_finished = b_is_done.is_set()
    return claims
