"""The hub's outbound HTTP client: timeouts always, redirects never, and the outbound URL policy.

URL policy: a destination that resolves to a private, loopback, link-local, multicast or reserved
address is refused unless CROSSDOCK_ALLOW_PRIVATE_NETWORKS=1 (tests and the local demo set it), so
a subscription cannot be pointed at internal services (SSRF). The check runs when a connection is
saved and again before every request, since DNS answers change.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
from django.conf import settings

from connectors.errors import PermanentError, TransientError

CONNECT_TIMEOUT_S = 5.0  # seconds to open a connection
DEFAULT_READ_TIMEOUT_S = 10.0  # seconds to wait for a response


class UrlPolicyError(PermanentError):
    pass


def url_policy_check(url: str) -> None:
    """Raise UrlPolicyError when ``url`` may not be called. Resolves the host name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlPolicyError(f"URL scheme {parts.scheme!r} not allowed: use http or https")
    if not parts.hostname:
        raise UrlPolicyError("URL has no host")
    if settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise UrlPolicyError(f"host {parts.hostname!r} does not resolve: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        ):
            raise UrlPolicyError(
                f"{parts.hostname} resolves to {address}, a private or loopback address; "
                "set CROSSDOCK_ALLOW_PRIVATE_NETWORKS=1 to allow it"
            )


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread: requests.Session is not guaranteed thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        # Proxies and .netrc from the environment would silently reroute webhooks: we call directly.
        session.trust_env = False
        _local.session = session
    return session


class SafeHttpClient:
    def __init__(self, *, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S, correlation_id: str | None = None):
        self.read_timeout_s = read_timeout_s
        self.correlation_id = correlation_id

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes, int]:
        url_policy_check(url)
        headers = dict(headers)
        if self.correlation_id:
            headers.setdefault("X-Correlation-ID", self.correlation_id)
        started = time.monotonic()
        try:
            response = _session().request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(CONNECT_TIMEOUT_S, self.read_timeout_s),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise TransientError(f"timed out: {exc}") from None
        except requests.ConnectionError as exc:
            raise TransientError(f"connection failed: {exc}") from None
        except requests.RequestException as exc:
            raise TransientError(f"request failed: {type(exc).__name__}: {exc}") from None
        duration_ms = int((time.monotonic() - started) * 1000)
        return response.status_code, response.headers, response.content, duration_ms
