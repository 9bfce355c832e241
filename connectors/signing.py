"""`X-Crossdock-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (public contract v1).

The same scheme (``t=<unix>,v1=<hex>``, HMAC-SHA256 of ``"<t>." + body``) signs BottleCRM's webhooks
under its own header name, so both verify here: a ``SignatureScheme`` names the header and the
tolerance, and ``CROSSDOCK`` is Crossdock's own. A verified signature is also a one-time token:
``replay_nonce`` names it and says how long it could still be replayed, and the hub refuses it the
second time (docs/subsystems/network.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.errors import AuthError

if TYPE_CHECKING:
    from connectors.base import InboundRequest

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


@dataclass(frozen=True)
class SignatureScheme:
    """This module's scheme as one peer uses it: the header carrying the signature and how many
    seconds a signature stays valid. The one verifier every signed connector calls."""

    header: str = HEADER
    tolerance_s: int = TOLERANCE_S

    def verify(self, secret: str, body: bytes, header: str | None, *, now: float | None = None) -> None:
        """``verify`` with this scheme's header name and tolerance. Raises AuthError."""
        verify(secret, body, header, now=now, header_name=self.header, tolerance_s=self.tolerance_s)

    def verify_request(self, request: InboundRequest, secret: str | None) -> None:
        """Verify an inbound request by this scheme's header (missing secret: AuthError)."""
        self.verify(secret or "", request.body, request.headers.get(self.header.lower()))

    def replay_nonce_of(self, request: InboundRequest) -> tuple[str, int] | None:
        """``replay_nonce`` of a request ``verify_request`` accepted; None without the header."""
        header = request.headers.get(self.header.lower())
        return replay_nonce(header, tolerance_s=self.tolerance_s) if header else None


CROSSDOCK = SignatureScheme()
