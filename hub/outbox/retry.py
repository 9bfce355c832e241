"""Retry schedule: exponential back-off with full jitter, never sooner than the peer's Retry-After."""

from __future__ import annotations

import random

MAX_BACKOFF_S = 3600.0  # seconds; the longest wait between two attempts


def backoff_delay(
    *, attempt: int, base_s: float, retry_after_s: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter (uniform between 0 and base * 2^(attempt-1), capped) spreads retries of many
    deliveries that failed together; a Retry-After from the peer is a floor.
    """
    ceiling = min(MAX_BACKOFF_S, base_s * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_BACKOFF_S))
    return delay


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth retrying; other 4xx (and 3xx: redirects are not followed) are not."""
    return status in (408, 429) or status >= 500
