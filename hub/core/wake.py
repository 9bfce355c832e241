"""Celery messages as wake-ups, deduplicated: work lives in PostgreSQL, a message only says "look".

One message per inbound request would cost ~2 ms of worker CPU each (measured on this machine's
class), so a producer sends a wake-up only when none is pending: ``cache.add`` (Redis ``SET NX``)
on a short-lived flag. The drainer clears the flag *before* its last empty claim, so work committed
after that claim raises a fresh wake-up; anything missed is caught by the beat sweeper.
Sending the wake-up by task name is hub.core.work's job.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

WAKE_FLAG_TTL_S = 30  # seconds; bounds how long a lost wake-up can suppress new ones (sweeper covers it)


def _flag(name: str) -> str:
    return f"wake:{name}"


def wake_flag_take(name: str) -> bool:
    """True when no wake-up of ``name`` is pending (and now one is): the caller sends it. When the
    cache is down, True: a duplicate wake-up is harmless, a missing one waits for the sweeper."""
    try:
        return bool(cache.add(_flag(name), 1, timeout=WAKE_FLAG_TTL_S))
    except Exception as exc:
        logger.warning("wake-up flag unavailable (%s); sending %s wake-up unconditionally", exc, name)
        return True


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
