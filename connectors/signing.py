"""`X-Crossdock-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (public contract v1)."""

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


def verify(secret: str, body: bytes, header: str | None, *, now: float | None = None) -> None:
    """Raises AuthError unless ``header`` is a fresh, valid signature of ``body``."""
    if not header:
        raise AuthError(f"missing {HEADER} header")
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise AuthError(f"malformed {HEADER}: expected t=<unix>,v1=<hex>") from None
    current = time.time() if now is None else now
    if abs(current - t) > TOLERANCE_S:
        raise AuthError(f"{HEADER} timestamp is more than {TOLERANCE_S}s away from now")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise AuthError(f"{HEADER} does not match the body")
