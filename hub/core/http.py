"""The hub's outbound HTTP client: timeouts always, redirects never, capped answers, and the outbound
URL policy (SSRF guard). See docs/subsystems/network.md.

URL policy: a destination is refused unless every address its host resolves to is a global unicast
address (``ipaddress.is_global``, after unwrapping IPv4-mapped, 6to4, Teredo and NAT64 IPv6 forms),
so a subscription cannot be pointed at loopback, private, carrier-grade NAT (100.64.0.0/10),
link-local (169.254.169.254, the cloud metadata service), multicast or reserved addresses.
CROSSDOCK_ALLOW_PRIVATE_NETWORKS=1 lifts it (the local demo, whose peers listen on 127.0.0.1).

The check runs when a connection is saved (``url_policy_check``) and again on every new socket:
the host is resolved once, every address checked, and the socket is opened to one of *those*
addresses (``_PinnedHTTPConnection``), so a DNS answer that changes between the check and the
connect (DNS rebinding) cannot slip through. The URL keeps its host name, so the Host header, TLS
SNI and certificate check use the name, as with any client. This is how ``advocate`` does it: a
urllib3 connection class whose ``_new_conn`` resolves, validates and connects itself.

Caps: a response body larger than CROSSDOCK_HTTP_MAX_RESPONSE_BYTES is refused, and the whole
request (connect, send, headers, body) is cut off after CROSSDOCK_HTTP_TOTAL_TIMEOUT_S even when a
server trickles bytes fast enough to never trip the per-read timeout.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import _set_socket_options

from connectors.errors import PermanentError, TransientError

CONNECT_TIMEOUT_S = 5.0  # seconds to open a connection (per address tried)
DEFAULT_READ_TIMEOUT_S = 10.0  # seconds to wait for any one read of the response
CHUNK_BYTES = 65_536  # bytes read from a response body at a time


class UrlPolicyError(PermanentError):
    pass


class ResponseTooLargeError(PermanentError):
    pass


# --- Resolution and the address policy ---------------------------------------------------------------


def _system_resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# The resolver every check and every connect uses: host name -> IP address strings. Raises
# socket.gaierror when the name does not resolve. Tests replace it to play DNS (a name whose answer
# changes between save and send), never to fake the network.
resolve: Callable[[str], list[str]] = _system_resolve


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form routes to (mapped, 6to4, Teredo, NAT64), else None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 well-known prefix (RFC 6052)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: str) -> str | None:
    """Why ``address`` may not be called (a short phrase), or None when it is a global unicast one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = address_refusal(str(embedded))
            return f"embeds {embedded}, which {reason}" if reason else None
    if ip.is_multicast:
        return "is a multicast address"
    if not ip.is_global:
        return "is not a public address (private, loopback, link-local, shared or reserved)"
    return None


def _private_allowed() -> bool:
    guard = getattr(_local, "guard", None)
    if guard is not None and guard.allow_private is not None:
        return guard.allow_private
    return bool(settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS)


def resolve_checked(host: str) -> list[str]:
    """Resolve ``host`` once and return its addresses, every one of them allowed by the policy.

    Raises UrlPolicyError when the name does not resolve or any address is refused (one bad answer
    refuses the name: a resolver may rotate the order).
    """
    try:
        addresses = resolve(host)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UrlPolicyError(f"host {host!r} does not resolve: {reason}") from None
    if not addresses:
        raise UrlPolicyError(f"host {host!r} does not resolve to any address")
    if not _private_allowed():
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise UrlPolicyError(
                    f"{host} resolves to {address}, which {reason}; "
                    "set CROSSDOCK_ALLOW_PRIVATE_NETWORKS=1 to allow it"
                )
    return addresses


def url_policy_check(url: str) -> None:
    """Raise UrlPolicyError when ``url`` may not be called (scheme, host, resolved addresses)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlPolicyError(f"URL scheme {parts.scheme!r} not allowed: use http or https")
    if not parts.hostname:
        raise UrlPolicyError("URL has no host")
    resolve_checked(parts.hostname)


# --- Connections pinned to the checked address ---------------------------------------------------------


def _connect_checked(conn: HTTPConnection) -> socket.socket:
    """``HTTPConnection._new_conn`` with the policy: resolve, check all, connect to a checked address."""
    host = conn._dns_host.strip("[]")
    addresses = resolve_checked(host)
    last_error: OSError | None = None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _set_socket_options(sock, conn.socket_options)
            if isinstance(conn.timeout, int | float):
                sock.settimeout(conn.timeout)
            sock.connect((address, conn.port))
            return sock
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeoutError(conn, f"connection to {conn.host} ({address}) timed out") from exc
        except OSError as exc:
            sock.close()
            last_error = exc
    raise NewConnectionError(conn, f"failed to connect to {conn.host} at {addresses}: {last_error}")


class _PinnedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)

    def request(self, *args, **kwargs):  # every request, on a new or a reused connection
        _watch(self)
        return super().request(*args, **kwargs)


class _PinnedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self)

    def request(self, *args, **kwargs):
        _watch(self)
        return super().request(*args, **kwargs)


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}


# --- The total-time guard ------------------------------------------------------------------------------


class _Guard:
    """One request's deadline: when it passes, the sockets of the connections the request used are
    shut down (from a timer thread), which ends any blocked read at once."""

    def __init__(self, *, total_s: float, allow_private: bool | None) -> None:
        self.total_s = total_s
        self.allow_private = allow_private
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(total_s, self._expire)
        self._timer.daemon = True

    def watch(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(conn)
            expired = self.expired
        if expired:
            self._shut(conn)

    @staticmethod
    def _shut(conn: HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                # socket.socket's own shutdown, also for a TLS socket: unblocks a pending recv
                # without touching the SSL object another thread is reading through.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for conn in connections:
            self._shut(conn)

    def __enter__(self) -> _Guard:
        _local.guard = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _local.guard = None


def _watch(conn: HTTPConnection) -> None:
    guard = getattr(_local, "guard", None)
    if guard is not None:
        guard.watch(conn)


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread: requests.Session is not guaranteed thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        # Proxies and .netrc from the environment would silently reroute webhooks: we call directly.
        session.trust_env = False
        adapter = _PinnedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


class SafeHttpClient:
    """``request`` returns ``(status, headers, body, duration_ms)`` and raises:
    UrlPolicyError (refused destination), ResponseTooLargeError (body over the cap), both permanent;
    TransientError on a timeout (connect, read or total), a refused connection or a broken answer.

    ``total_timeout_s`` (seconds, connect to last body byte) defaults to
    CROSSDOCK_HTTP_TOTAL_TIMEOUT_S and is never below the read timeout;
    ``max_response_bytes`` defaults to CROSSDOCK_HTTP_MAX_RESPONSE_BYTES; ``allow_private`` (tests
    and scripts talking to local peers) overrides CROSSDOCK_ALLOW_PRIVATE_NETWORKS for this client.
    """

    def __init__(
        self,
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        correlation_id: str | None = None,
        total_timeout_s: float | None = None,
        max_response_bytes: int | None = None,
        allow_private: bool | None = None,
    ):
        self.read_timeout_s = read_timeout_s
        self.correlation_id = correlation_id
        self.total_timeout_s = max(
            total_timeout_s if total_timeout_s is not None else settings.CROSSDOCK_HTTP_TOTAL_TIMEOUT_S,
            read_timeout_s,
        )
        self.max_response_bytes = (
            max_response_bytes
            if max_response_bytes is not None
            else settings.CROSSDOCK_HTTP_MAX_RESPONSE_BYTES
        )
        self.allow_private = allow_private

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes, int]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlPolicyError(f"URL scheme {parts.scheme!r} not allowed: use http or https")
        if not parts.hostname:
            raise UrlPolicyError("URL has no host")
        headers = dict(headers)
        if self.correlation_id:
            headers.setdefault("X-Correlation-ID", self.correlation_id)
        started = time.monotonic()
        with _Guard(total_s=self.total_timeout_s, allow_private=self.allow_private) as guard:
            try:
                response = _session().request(
                    method,
                    url,
                    headers=headers,
                    data=body,
                    timeout=(CONNECT_TIMEOUT_S, self.read_timeout_s),
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    content = self._read_capped(response)
                finally:
                    response.close()
            except UrlPolicyError:
                raise
            except (requests.RequestException, OSError) as exc:
                if guard.expired:
                    raise TransientError(self._too_slow()) from None
                if isinstance(exc, requests.Timeout):
                    raise TransientError(f"timed out: {exc}") from None
                if isinstance(exc, requests.ConnectionError):
                    raise TransientError(f"connection failed: {exc}") from None
                raise TransientError(f"request failed: {type(exc).__name__}: {exc}") from None
            if guard.expired:  # a body cut short by the deadline can look complete (no Content-Length)
                raise TransientError(self._too_slow())
        duration_ms = int((time.monotonic() - started) * 1000)
        return response.status_code, response.headers, content, duration_ms

    def _too_slow(self) -> str:
        return f"the answer took longer than {self.total_timeout_s:g}s in total (cut off)"

    def _read_capped(self, response: requests.Response) -> bytes:
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLargeError(f"response of {declared} bytes exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(f"response exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
