"""`webhook`: delivers canonical events as CloudEvents 1.0 JSON by HTTP POST to ``config.url``."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors import signing
from connectors.base import Connector, ConnectorSpec, HttpClient, OutboundRequest, SendResult
from connectors.errors import AuthError, PermanentError, TransientError

RESPONSE_EXCERPT_CHARS = 500  # characters of a response body kept on each attempt


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
        headers = {
            **config.headers,
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
        }
        if secret:
            headers[signing.HEADER] = signing.sign(secret, body)
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
