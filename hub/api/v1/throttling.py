"""Per-client request rate, counted in Redis so every web process shares one budget.

A fixed window per client: ``INCR`` on a key that expires with the window. It can let through up to
twice the rate across a window boundary, which is acceptable for abuse protection and costs one
round trip. If the cache is down the request is allowed (availability first) and a warning logged.

Callers without an API key or a login are counted by address, :func:`client_ip`: the socket address,
unless ``CROSSDOCK_NUM_PROXIES`` trusted proxies stand in front (DRF's ``NUM_PROXIES``). With the
default of 0 a forged ``X-Forwarded-For`` changes nothing, so it cannot buy a fresh budget.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from hub.api.v1.scoping import principal_for
from hub.core.cache import redis_client

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The caller's address as the rate limits and the admin login lockout (django-axes) see it.

    ``REMOTE_ADDR`` with ``NUM_PROXIES=0``; with n trusted proxies, the n-th address from the right of
    ``X-Forwarded-For`` (the one the outermost trusted proxy saw). Works on a Django or DRF request.
    """
    return BaseThrottle().get_ident(request)


def _count(key: str, ttl_s: int) -> int:
    """Increment a window counter; one round trip on Redis (INCR + EXPIRE NX in a pipeline)."""
    client = redis_client(cache)
    if client is None:
        cache.add(key, 0, timeout=ttl_s)
        return cache.incr(key)
    full_key = cache.make_key(key)
    pipe = client.pipeline(transaction=False)
    pipe.incr(full_key)
    pipe.expire(full_key, ttl_s, nx=True)
    return int(pipe.execute()[0])


class ApiClientRateThrottle(BaseThrottle):
    rate_setting = "CROSSDOCK_API_RATE"  # (requests, window seconds)
    scope = "api"
    honour_client_limit = True  # the client's own rate_limit_per_minute overrides the setting

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        principal = principal_for(request)
        limit, window = getattr(settings, self.rate_setting)
        if principal is not None and principal.api_client is not None:
            ident = f"client:{principal.api_client.pk}"
            if self.honour_client_limit and principal.api_client.rate_limit_per_minute:
                limit, window = principal.api_client.rate_limit_per_minute, 60
        elif principal is not None:
            ident = f"staff:{principal.name}"
        else:
            ident = f"ip:{client_ip(request)}"
        now = time.time()
        bucket = int(now // window)
        key = f"throttle:{self.scope}:{ident}:{bucket}"
        try:
            count = _count(key, window + 1)
        except Exception as exc:
            logger.warning("rate limit not enforced, cache unavailable: %s", exc)
            return True
        if count > limit:
            self._wait = window - (now % window)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class InboundRateThrottle(ApiClientRateThrottle):
    """The inbound endpoint's own, larger budget: carriers post in bursts, and storing is cheap."""

    rate_setting = "CROSSDOCK_INBOUND_RATE"
    scope = "inbound"
    honour_client_limit = False
