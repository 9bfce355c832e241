"""Celery messages as wake-ups, deduplicated: work lives in PostgreSQL, a message only says "look".

One message per inbound request would cost ~2 ms of worker CPU each (measured on this machine's
class), so a producer sends a wake-up only when none is pending: ``cache.add`` (Redis ``SET NX``)
on a short-lived flag. The drainer clears the flag *before* its last empty claim, so work committed
after that claim raises a fresh wake-up; anything missed is caught by the beat sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

WAKE_FLAG_TTL_S = 30  # seconds; bounds how long a lost wake-up can suppress new ones (sweeper covers it)


def _flag(name: str) -> str:
    return f"wake:{name}"


def wake_on_commit(name: str, send: Callable[[], object]) -> None:
    """After the current transaction commits, send the wake-up unless one is already pending."""

    def _maybe_send() -> None:
        try:
            if not cache.add(_flag(name), 1, timeout=WAKE_FLAG_TTL_S):
                return
        except Exception as exc:  # the cache is down: send anyway, a duplicate wake-up is harmless
            logger.warning("wake-up flag unavailable (%s); sending %s wake-up unconditionally", exc, name)
        try:
            send()
        except Exception as exc:
            # The broker is down. The work is committed and the beat sweeper re-wakes it; failing
            # here would turn the caller's committed request into an error. Drop the flag so the
            # next producer tries again instead of waiting for it to expire.
            logger.warning("%s wake-up not sent (%s); the sweeper will pick the work up", name, exc)
            wake_clear(name)

    transaction.on_commit(_maybe_send)


def wake_clear(name: str) -> None:
    try:
        cache.delete(_flag(name))
    except Exception as exc:
        logger.warning("could not clear wake-up flag %s: %s", name, exc)


def claim_helper_slot(name: str, ttl_s: float = 2.0) -> bool:
    """True at most once per ``ttl_s``: lets a busy drainer recruit one more worker without a storm."""
    try:
        return bool(cache.add(f"wake:{name}:helper", 1, timeout=ttl_s))
    except Exception:
        return False
