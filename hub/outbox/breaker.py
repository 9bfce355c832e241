"""Per-connection circuit breaker and rate limit, shared by every worker through Redis (the cache).

The breaker judges a receiver by its failure *rate* over a sliding time window, like resilience4j's
time-based window, not by a run of consecutive failures: a receiver that fails some requests (flaky)
keeps its circuit closed and its deliveries retry on their own back-off; one that fails (nearly)
all of them is let alone for a while.

- **Closed.** Each send's outcome is counted in the last ``window_s`` seconds (``WINDOW_BUCKETS``
  buckets in Redis). The circuit opens only when the window holds at least ``min_calls`` sends *and*
  ``failure_percent`` % or more of them failed.
- **Open** for ``open_s`` seconds. Deliveries are deferred: they wait, they do not fail and do not
  spend attempts.
- **Half-open.** Then ``probes`` deliveries go through (the rest wait ``HALF_OPEN_DEFER_S``). As soon
  as the probes' answers settle it (failure share of the probes at or above ``failure_percent`` →
  open again for ``open_s``; below it whatever the unanswered probes do → closed, with an empty
  window), the circuit moves on (:func:`probe_verdict`).

Only transient failures count (5xx, 408, 429, network errors, connector bugs). A permanent error
(another 4xx) is the request's fault, not the receiver's health, and counts for nothing. Each worker
records a batch's outcomes per connection in one call (:func:`breaker_record`), so the order in which
a batch's results come back cannot make a flaky receiver look dead.

Every number is a policy field (:class:`BreakerPolicy`), set per connection with ``config.breaker_*``
and defaulting to the ``CROSSDOCK_BREAKER_*`` settings. If the cache is down the breaker fails open
(deliveries go out) and logs a warning.

Why not a library: pybreaker (the maintained Python breaker with Redis storage) counts consecutive
failures only, lets every call through while half-open and wraps the call itself; here the check
happens when a batch is claimed and the outcome is recorded after the batch is written, across
worker processes. resilience4j's sliding window is the model; the shared state is a handful of
Redis counters.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core.cache import cache

from hub.core.cache import redis_client

logger = logging.getLogger(__name__)

WINDOW_BUCKETS = 10  # buckets per window: the window slides in steps of window_s / 10 seconds
PROBE_TTL_S = 90  # seconds a half-open probe slot is held: longer than one attempt (timeout_s <= 60 s)
HALF_OPEN_DEFER_S = 1.0  # seconds a delivery waits while the half-open probes are out
HALF_OPEN_FORGET_S = 600  # seconds a half-open circuit that sees no probe answer is kept, then forgotten

State = Literal["closed", "open", "half-open", "unknown"]
Verdict = Literal["close", "reopen"]


@dataclass(frozen=True)
class BreakerPolicy:
    """One connection's breaker numbers (see the module docstring)."""

    window_s: int  # seconds of sends the failure rate is taken over
    min_calls: int  # sends the window must hold before it may open the circuit
    failure_percent: int  # % of the window's sends that failed, at or above which it opens
    open_s: int  # seconds the circuit stays open before it half-opens
    probes: int  # sends let through while half-open


def breaker_policy(config: Any = None) -> BreakerPolicy:
    """The policy for a connection's validated config: its ``breaker_*`` fields where set (not None),
    else the ``CROSSDOCK_BREAKER_*`` settings. A connector whose config has no such fields gets the
    defaults."""

    def pick(name: str, setting: str) -> int:
        value = getattr(config, f"breaker_{name}", None)
        return int(value) if value is not None else int(getattr(settings, setting))

    return BreakerPolicy(
        window_s=pick("window_s", "CROSSDOCK_BREAKER_WINDOW_S"),
        min_calls=pick("min_calls", "CROSSDOCK_BREAKER_MIN_CALLS"),
        failure_percent=pick("failure_percent", "CROSSDOCK_BREAKER_FAILURE_PERCENT"),
        open_s=pick("open_s", "CROSSDOCK_BREAKER_OPEN_S"),
        probes=pick("probes", "CROSSDOCK_BREAKER_PROBES"),
    )


# --- The rules (pure) -------------------------------------------------------------------------------


def window_trips(*, calls: int, failed: int, policy: BreakerPolicy) -> bool:
    """True when a closed circuit's window says open: enough sends, and a failure share at or above
    the threshold."""
    return calls >= policy.min_calls and failed * 100 >= policy.failure_percent * calls


def probe_verdict(*, succeeded: int, failed: int, policy: BreakerPolicy) -> Verdict | None:
    """What a half-open circuit's probe answers so far decide: "reopen", "close", or None (not yet).

    Decided as soon as the unanswered probes cannot change it: reopen when the failures alone reach
    ``failure_percent`` of the probes; close when even every unanswered probe failing would stay
    below it. (More answers than probes, after lost slots were retaken, count as more probes.)
    """
    probes = max(policy.probes, succeeded + failed)
    if failed * 100 >= policy.failure_percent * probes:
        return "reopen"
    unanswered = probes - succeeded - failed
    if (failed + unanswered) * 100 < policy.failure_percent * probes:
        return "close"
    return None


# --- Redis state ------------------------------------------------------------------------------------


def _key(connection_id, name: str) -> str:
    return f"breaker:{connection_id}:{name}"


def _bucket_keys(connection_id, window_s: int, now: float) -> list[tuple[str, str]]:
    """(calls key, failures key) of each bucket in the window ending now, newest first. The bucket
    length is part of the key, so a changed ``window_s`` starts a fresh window."""
    bucket_s = window_s / WINDOW_BUCKETS
    newest = math.floor(now / bucket_s)
    return [
        (_key(connection_id, f"w{window_s}:{i}:calls"), _key(connection_id, f"w{window_s}:{i}:failed"))
        for i in range(newest, newest - WINDOW_BUCKETS, -1)
    ]


def _incr_many(deltas: dict[str, int], ttl_s: int) -> dict[str, int]:
    """Add to counters that expire ``ttl_s`` after they are made; their new values. One atomic round
    trip on Redis (INCRBY + EXPIRE NX in a MULTI); the cache API elsewhere (embedded default)."""
    client = redis_client(cache)
    if client is None:
        values = {}
        for key, delta in deltas.items():
            cache.add(key, 0, timeout=ttl_s)
            values[key] = cache.incr(key, delta)
        return values
    pipe = client.pipeline(transaction=True)
    for key, delta in deltas.items():
        pipe.incrby(cache.make_key(key), delta)
        pipe.expire(cache.make_key(key), ttl_s, nx=True)
    results = pipe.execute()
    return {key: int(results[2 * i]) for i, key in enumerate(deltas)}


@dataclass(frozen=True)
class Window:
    calls: int
    failed: int


def breaker_window(connection_id, *, policy: BreakerPolicy) -> Window:
    """The sends and failures counted in the connection's window now (a closed circuit's evidence)."""
    keys = _bucket_keys(connection_id, policy.window_s, time.time())
    values = cache.get_many([k for pair in keys for k in pair])
    return Window(
        calls=sum(int(values.get(c) or 0) for c, _ in keys),
        failed=sum(int(values.get(f) or 0) for _, f in keys),
    )


def _window_add(connection_id, *, calls: int, failed: int, policy: BreakerPolicy, now: float) -> Window:
    keys = _bucket_keys(connection_id, policy.window_s, now)
    calls_key, failed_key = keys[0]
    _incr_many({calls_key: calls, failed_key: failed}, ttl_s=policy.window_s + 1)
    return breaker_window(connection_id, policy=policy)


def _window_clear(connection_id, *, policy: BreakerPolicy) -> None:
    cache.delete_many([k for pair in _bucket_keys(connection_id, policy.window_s, time.time()) for k in pair])


def _open(connection_id, *, policy: BreakerPolicy, now: float) -> None:
    cache.set(
        _key(connection_id, "open_until"), now + policy.open_s, timeout=policy.open_s + HALF_OPEN_FORGET_S
    )


def _period(open_until: float) -> str:
    """Names one open period; its half-open probe counters carry it, so answers to an earlier
    period's probes never count for a later one."""
    return f"{open_until:.6f}"


# --- What the deliverer calls -----------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    allowed: int  # sends that may go to the connection now
    wait_s: float  # seconds the others should wait (0 when all are allowed)
    why: str  # why the others wait (for Delivery.last_error)


def breaker_admit(connection_id, *, wanted: int, policy: BreakerPolicy) -> Admission:
    """How many of ``wanted`` sends may go to the connection now. One round trip when closed.

    Closed: all of them. Open: none, until it half-opens. Half-open: the probe slots still free
    (taken atomically, so every worker together lets at most ``policy.probes`` through per period).
    A slot is given back only by expiring (``PROBE_TTL_S``): a probe lost to a dead worker, or held
    back by the rate limit after it was admitted, delays the verdict by that long at most.
    Fails open if the cache is down.
    """
    try:
        open_until = cache.get(_key(connection_id, "open_until"))
        if open_until is None:
            return Admission(wanted, 0.0, "")
        now = time.time()
        if now < open_until:
            return Admission(0, open_until - now, "circuit open")
        slot_key = _key(connection_id, f"probe:{_period(open_until)}:taken")
        taken = _incr_many({slot_key: wanted}, ttl_s=PROBE_TTL_S)[slot_key]
        allowed = max(0, min(wanted, policy.probes - (taken - wanted)))
        return Admission(allowed, HALF_OPEN_DEFER_S, "circuit half-open, waiting for its probes")
    except Exception as exc:
        logger.warning("circuit breaker unavailable (%s): allowing delivery", exc)
        return Admission(wanted, 0.0, "")


def breaker_record(
    connection_id, *, succeeded: int, failed: int, policy: BreakerPolicy
) -> Literal["opened", "closed"] | None:
    """Count one batch's answers from a connection (``failed``: transient failures only).

    Closed: adds them to the window and opens the circuit when :func:`window_trips`. Open: ignored
    (answers to sends made before it opened). Half-open: they are the probes' answers, and
    :func:`probe_verdict` may close or reopen it. Returns the transition made, if any. Never raises:
    a cache failure is logged and the answers are dropped.
    """
    if not succeeded and not failed:
        return None
    try:
        now = time.time()
        open_until = cache.get(_key(connection_id, "open_until"))
        if open_until is None:
            window = _window_add(
                connection_id, calls=succeeded + failed, failed=failed, policy=policy, now=now
            )
            if not window_trips(calls=window.calls, failed=window.failed, policy=policy):
                return None
            # Several workers may see the same window trip; the first to add the key opens it.
            if not cache.add(
                _key(connection_id, "open_until"),
                now + policy.open_s,
                timeout=policy.open_s + HALF_OPEN_FORGET_S,
            ):
                return None
            logger.warning(
                "circuit opened for connection %s: %s of %s sends failed in the last %ss",
                connection_id,
                window.failed,
                window.calls,
                policy.window_s,
            )
            return "opened"
        if now < open_until:
            return None
        period = _period(open_until)
        ok_key, failed_key = (
            _key(connection_id, f"probe:{period}:ok"),
            _key(connection_id, f"probe:{period}:failed"),
        )
        answers = _incr_many(
            {ok_key: succeeded, failed_key: failed}, ttl_s=policy.open_s + HALF_OPEN_FORGET_S
        )
        verdict = probe_verdict(succeeded=answers[ok_key], failed=answers[failed_key], policy=policy)
        if verdict == "reopen":
            _open(connection_id, policy=policy, now=now)
            logger.warning("circuit reopened for connection %s: its probes failed", connection_id)
            return "opened"
        if verdict == "close":
            # An empty window: the failures that opened it are not held against the recovered receiver.
            _window_clear(connection_id, policy=policy)
            cache.delete(_key(connection_id, "open_until"))
            logger.info("circuit closed for connection %s: its probes succeeded", connection_id)
            return "closed"
        return None
    except Exception as exc:
        logger.warning("circuit breaker unavailable: %s", exc)
        return None


def breaker_state(connection_id) -> State:
    """closed | open | half-open, or unknown when the cache cannot be read (the dashboard, the API,
    the admin and /metrics show it; needs no policy)."""
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
