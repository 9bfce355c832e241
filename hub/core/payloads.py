"""How stored message bytes are shown to people: the API's ``body`` fields and the admin pages."""

from __future__ import annotations

import base64


def payload_repr(raw: bytes) -> dict[str, str]:
    """Bytes as text when they are UTF-8, else base64 (the original bytes are never altered)."""
    raw = bytes(raw)
    try:
        return {"encoding": "utf-8", "body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "body": base64.b64encode(raw).decode()}
