"""Per-connection circuit breaker and rate limit, shared by every worker through Redis (the cache).

Breaker: after CROSSDOCK_BREAKER_THRESHOLD consecutive transient failures a connection's circuit
opens for CROSSDOCK_BREAKER_OPEN_S seconds. While open, deliveries are deferred: they wait, they do not fail and do not spend
attempts. When the time is up one probe delivery goes through (half-open): success closes the
circuit, failure opens it again.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

FAILURE_WINDOW_S = 300  # seconds a failure count is remembered without a new failure
PROBE_TTL_S = 60  # seconds the half-open probe slot is held (longer than one HTTP attempt)


def _key(connection_id, name: str) -> str:
    return f"breaker:{connection_id}:{name}"


def breaker_allows(connection_id) -> tuple[bool, float]:
    """(allowed, seconds to wait if not). Fails open if the cache is down."""
    try:
        open_until = cache.get(_key(connection_id, "open_until"))
        if open_until is None:
            return True, 0.0
        now = time.time()
        if now < open_until:
            return False, open_until - now
        # Half-open: exactly one caller gets the probe slot.
        if cache.add(_key(connection_id, "probe"), 1, timeout=PROBE_TTL_S):
            return True, 0.0
        return False, 1.0
    except Exception as exc:
        logger.warning("circuit breaker unavailable (%s): allowing delivery", exc)
        return True, 0.0


def breaker_degraded(connection_id) -> bool:
    """True when the connection has failed recently but its circuit is still closed."""
    try:
        return bool(cache.get(_key(connection_id, "failures")))
    except Exception:
        return False


def breaker_record_success(connection_id) -> None:
    try:
        cache.delete_many([_key(connection_id, n) for n in ("open_until", "failures", "probe")])
    except Exception as exc:
        logger.warning("circuit breaker unavailable: %s", exc)


def breaker_record_failure(connection_id) -> bool:
    """Count a transient failure; returns True when this failure opened the circuit."""
    try:
        if cache.get(_key(connection_id, "open_until")) is not None:
            # A failed half-open probe: open again for a full period.
            cache.set(
                _key(connection_id, "open_until"),
                time.time() + settings.CROSSDOCK_BREAKER_OPEN_S,
                timeout=settings.CROSSDOCK_BREAKER_OPEN_S * 10,
            )
            cache.delete(_key(connection_id, "probe"))
            return True
        cache.add(_key(connection_id, "failures"), 0, timeout=FAILURE_WINDOW_S)
        failures = cache.incr(_key(connection_id, "failures"))
        if failures >= settings.CROSSDOCK_BREAKER_THRESHOLD:
            cache.set(
                _key(connection_id, "open_until"),
                time.time() + settings.CROSSDOCK_BREAKER_OPEN_S,
                timeout=settings.CROSSDOCK_BREAKER_OPEN_S * 10,
            )
            cache.delete(_key(connection_id, "failures"))
            logger.warning("circuit opened for connection %s after %s failures", connection_id, failures)
            return True
    except Exception as exc:
        logger.warning("circuit breaker unavailable: %s", exc)
    return False


def breaker_state(connection_id) -> str:
    try:
        open_until = cache.get(_key(connection_id, "open_until"))
    except Exception:
        return "unknown"
    if open_until is None:
        return "closed"
    return "open" if time.time() < open_until else "half-open"


def rate_limit_take(connection_id, per_second: int | None) -> float:
    """Take one send slot in this second's window; 0.0 if granted, else seconds to wait."""
    if not per_second:
        return 0.0
    now = time.time()
    key = f"ratelimit:{connection_id}:{int(now)}"
    try:
        cache.add(key, 0, timeout=3)
        count = cache.incr(key)
    except Exception as exc:
        logger.warning("rate limit unavailable (%s): allowing delivery", exc)
        return 0.0
    if count <= per_second:
        return 0.0
    return 1.0 - (now % 1.0) + 0.001
