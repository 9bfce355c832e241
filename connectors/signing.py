"""`X-Crossdock-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (public contract v1).

The same scheme (``t=<unix>,v1=<hex>``, HMAC-SHA256 of ``"<t>." + body``) signs BottleCRM's webhooks
under its own header name, so both verify here. A verified signature is also a one-time token:
``replay_nonce`` names it and says how long it could still be replayed, and the hub refuses it the
second time (docs/subsystems/network.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from connectors.errors import AuthError

HEADER = "X-Crossdock-Signature"
TOLERANCE_S = 300  # seconds a signature stays valid: bounds replay of a captured request


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _parse(header: str, header_name: str) -> tuple[int, str]:
    malformed = AuthError(f"malformed {header_name}: expected t=<unix>,v1=<hex>")
    if not header.isascii():  # a header is Latin-1 text to Django; ours is ASCII by contract
        raise malformed
    parts = dict(item.strip().split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise malformed from None
    return t, given


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    header_name: str = HEADER,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Raises AuthError unless ``header`` is a fresh, valid signature of ``body``.

    Any header text (non-ASCII, garbage) is an AuthError, never another exception. ``header_name``
    only names the header in messages (BottleCRM signs the same way under its own name).
    """
    if not secret:
        raise AuthError("no webhook secret is configured for this connection")
    if not header:
        raise AuthError(f"missing {header_name} header")
    t, given = _parse(header, header_name)
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        raise AuthError(f"{header_name} timestamp is more than {tolerance_s}s away from now")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise AuthError(f"{header_name} does not match the body")


def replay_nonce(header: str, *, now: float | None = None, tolerance_s: int = TOLERANCE_S) -> tuple[str, int]:
    """For a header ``verify`` accepted: ``(nonce, ttl_s)``, the value that must not be accepted
    again and the seconds (at least 1) until ``verify`` would refuse it anyway (its timestamp leaves
    the tolerance window), which is how long the nonce must be remembered."""
    t, given = _parse(header, "signature")
    current = time.time() if now is None else now
    return f"{t}.{given.lower()}", max(1, int(t + tolerance_s - current) + 1)
