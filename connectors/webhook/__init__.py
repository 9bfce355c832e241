"""`webhook`: delivers canonical events as CloudEvents 1.0 JSON by HTTP POST to ``config.url``.

Secret: the signing secret (plain text, X-Crossdock-Signature), or, once the connection has
credential headers, a JSON object ``{"signing_secret": <str|null>, "headers": {<name>: <value>}}``.
Headers that carry credentials (``is_credential_header``: Authorization, X-Api-Key, any name with
token/secret/key/password/...) are never kept in the plain ``config.headers``: the hub moves them
into the encrypted secret on save (``secret_with_headers``) and ``render`` adds them back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors import signing
from connectors.base import Connector, ConnectorSpec, HttpClient, OutboundRequest, SendResult
from connectors.errors import AuthError, PermanentError, TransientError

RESPONSE_EXCERPT_CHARS = 500  # characters of a response body kept on each attempt
# Header names (lower case) that always carry credentials, and words that mark one in any name.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
CREDENTIAL_WORDS = (
    "token",
    "secret",
    "key",
    "password",
    "passwd",
    "auth",
    "credential",
    "session",
    "signature",
)


def is_credential_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in CREDENTIAL_HEADERS or any(word in lowered for word in CREDENTIAL_WORDS)


def split_headers(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(plain, credentials)``: the headers that may stay in config, and those that may not."""
    plain = {k: v for k, v in headers.items() if not is_credential_header(k)}
    return plain, {k: v for k, v in headers.items() if is_credential_header(k)}


@dataclass(frozen=True)
class Credentials:
    signing_secret: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def credentials(secret: str | None) -> Credentials:
    """The connection secret read back: a plain signing secret (the original form, still valid) or
    the JSON object holding the signing secret and the credential headers."""
    if not secret:
        return Credentials()
    if secret.lstrip().startswith("{"):
        try:
            data = json.loads(secret)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("headers"), dict):
            signing_secret = data.get("signing_secret")
            return Credentials(
                signing_secret=signing_secret if isinstance(signing_secret, str) and signing_secret else None,
                headers={str(k): str(v) for k, v in data["headers"].items()},
            )
    return Credentials(signing_secret=secret)


def secret_with_headers(
    *, stored: str | None, given: str | None, config_headers: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """Move credential headers out of ``config_headers`` into the secret.

    ``stored`` is the secret now stored, ``given`` the one sent with this save (None: keep; "":
    clear, headers included). Credential headers in the config are merged over the stored ones (an
    empty value removes one). Returns ``(secret to store or None to keep, the config's plain
    headers)``. Pure; the API never sees the credential headers again.
    """
    plain, moved = split_headers(config_headers)
    if given is None and not moved:
        return None, plain  # nothing to change: the stored secret stays as it is
    current = credentials(stored)
    signing_secret, headers = current.signing_secret, dict(current.headers)
    if given is not None:
        sent = credentials(given)
        signing_secret = sent.signing_secret
        if sent.headers or not given:  # "" clears everything; a new signing secret keeps the headers
            headers = dict(sent.headers)
    for name, value in moved.items():
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if value:
            headers[name] = value
    if not headers:
        return signing_secret or "", plain  # the plain form, as before any header moved
    return json.dumps({"signing_secret": signing_secret, "headers": headers}, sort_keys=True), plain


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_s: float = Field(default=5, ge=0.01, le=3600)
    rate_limit_per_s: int | None = Field(default=None, ge=1, le=100000)
    timeout_s: float = Field(default=10, gt=0, le=60)
    headers: dict[str, str] = Field(default_factory=dict)
    # Circuit breaker (hub/outbox/breaker.py); None = the CROSSDOCK_BREAKER_* setting of the same name.
    breaker_window_s: int | None = Field(
        default=None, ge=1, le=3600
    )  # seconds the failure rate is taken over
    breaker_min_calls: int | None = Field(
        default=None, ge=1, le=100000
    )  # sends in the window before it may open
    breaker_failure_percent: int | None = Field(
        default=None, ge=1, le=100
    )  # % failed at or above which it opens
    breaker_open_s: int | None = Field(default=None, ge=1, le=3600)  # seconds open before it half-opens
    breaker_probes: int | None = Field(default=None, ge=1, le=100)  # sends let through while half-open


def _retry_after(headers) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))  # delta-seconds
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())  # HTTP-date
    except (TypeError, ValueError):
        return None


class WebhookConnector(Connector):
    def render(
        self, envelope: dict[str, Any], config: BaseModel, secret: str | None, *, idempotency_key: str
    ) -> OutboundRequest:
        body = json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str).encode()
        stored = credentials(secret)
        headers = {
            **config.headers,
            **stored.headers,
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
        }
        if stored.signing_secret:
            headers[signing.HEADER] = signing.sign(stored.signing_secret, body)
        return OutboundRequest(method="POST", url=str(config.url), headers=headers, body=body)

    def send(self, request: OutboundRequest, client: HttpClient) -> SendResult:
        status, headers, body, duration_ms = client.request(
            request.method, request.url, headers=request.headers, body=request.body
        )
        excerpt = body[:RESPONSE_EXCERPT_CHARS].decode("utf-8", "replace")
        if 200 <= status < 300:
            return SendResult(status_code=status, body_excerpt=excerpt, duration_ms=duration_ms)
        detail = f"HTTP {status}: {excerpt[:200]}".strip()
        if status in (408, 429) or status >= 500:
            raise TransientError(detail, retry_after=_retry_after(headers), status_code=status)
        if status in (401, 403):
            raise AuthError(detail, status_code=status)
        raise PermanentError(detail, status_code=status)


CONNECTOR = ConnectorSpec(
    key="webhook",
    label="Webhook (outbound HTTP POST)",
    system="partner",
    version="1.0",
    config_schema=Config,
    connector=WebhookConnector,
    document_kinds=frozenset(),  # delivers only: reads nothing inbound
    secret_fields=("secret",),
    description="POSTs each event as a CloudEvents 1.0 envelope, signed with X-Crossdock-Signature.",
)
