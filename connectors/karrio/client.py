"""Karrio's REST API through the hub's HTTP client: the connector's only I/O.

Every call sends ``Authorization: Token <api key>`` and JSON, and turns Karrio's answers into the
error taxonomy: 401/403 -> AuthError, 408/429/5xx -> TransientError (network failures already are,
from the hub's client), other 4xx -> PermanentError carrying Karrio's own messages
(``{"errors": [{"code", "message"}]}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from connectors.base import HttpClient, OperationContext
from connectors.errors import AuthError, PermanentError, TransientError

PAGE_LIMIT = 100  # records per list page
MAX_PAGES = 20  # pages read per lookup (2,000 records share a reference only in a broken setup)
ERROR_EXCERPT_CHARS = 300  # characters of an unreadable error body kept in the message


@dataclass(frozen=True)
class Credentials:
    api_key: str | None
    webhook_secret: str | None


def credentials(secret: str | None) -> Credentials:
    """The connection's one secret string: ``{"api_key": "key_...", "webhook_secret": "whsec_..."}``.

    A plain string (not a JSON object) is taken as the API key alone; webhooks then cannot be
    verified until the secret is saved in the JSON form.
    """
    if not secret or not secret.strip():
        return Credentials(None, None)
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise AuthError("the connection secret is not valid JSON") from None
        if not isinstance(data, dict):
            raise AuthError("the connection secret must be a JSON object")
        return Credentials(data.get("api_key") or None, data.get("webhook_secret") or None)
    return Credentials(text, None)


def _retry_after(headers: Any) -> float | None:
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_detail(status: int, body: bytes) -> str:
    """Karrio's error messages joined (``code: message; ...``), else an excerpt of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        messages = [
            f"{e.get('code')}: {e.get('message')}" if e.get("code") else str(e.get("message"))
            for e in data["errors"]
            if isinstance(e, dict)
        ]
        if messages:
            return f"Karrio HTTP {status}: " + "; ".join(messages)
    excerpt = body[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return f"Karrio HTTP {status}: {excerpt or '(empty body)'}"


class KarrioClient:
    def __init__(self, http: HttpClient, base_url: str, api_key: str):
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    @classmethod
    def from_context(cls, ctx: OperationContext) -> KarrioClient:
        api_key = credentials(ctx.secret).api_key
        if not api_key:
            raise AuthError('no Karrio API key: set the connection secret to {"api_key": "key_...", ...}')
        return cls(ctx.client, str(ctx.config.url), api_key)

    def call(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> Any:
        """One API call; returns the decoded JSON. Raises the taxonomy's errors."""
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Authorization": f"Token {self.api_key}", "Accept": "application/json"}
        data = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, default=str).encode()
        status, response_headers, content, _ms = self.http.request(method, url, headers=headers, body=data)
        if 200 <= status < 300:
            try:
                return json.loads(content) if content else {}
            except ValueError:
                raise PermanentError(
                    f"{method} {path}: Karrio answered {status} with a body that is not JSON",
                    status_code=status,
                ) from None
        detail = f"{method} {path}: {error_detail(status, content)}"
        if status in (401, 403):
            raise AuthError(detail, status_code=status)
        if status in (408, 429) or status >= 500:
            raise TransientError(detail, retry_after=_retry_after(response_headers), status_code=status)
        raise PermanentError(detail, status_code=status)

    def list_all(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every record of a filtered list, following Karrio's limit/offset pages."""
        records: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            data = self.call("GET", path, params={**params, "limit": PAGE_LIMIT, "offset": page * PAGE_LIMIT})
            results = data.get("results") or []
            records.extend(results)
            if not data.get("next") or not results:
                break
        return records

    # --- Orders ------------------------------------------------------------------------------------

    def orders_by_order_id(self, order_id: str) -> list[dict[str, Any]]:
        found = self.list_all("/v1/orders", {"order_id": order_id})
        return [order for order in found if order.get("order_id") == order_id]  # exact, whatever the filter

    def order_create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/v1/orders", body=body)

    # --- Shipments and trackers --------------------------------------------------------------------

    def shipments_by_reference(self, reference: str) -> list[dict[str, Any]]:
        # Karrio's reference filter is a substring match: keep the exact ones.
        found = self.list_all("/v1/shipments", {"reference": reference})
        return [shipment for shipment in found if shipment.get("reference") == reference]

    def shipments_by_ids(self, shipment_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The shipments among ``shipment_ids`` that Karrio has, by id (an id it does not have is
        absent): one ``GET /v1/shipments?id=a,b,...`` per ``PAGE_LIMIT`` ids, for checks that compare
        a page of records at a time instead of one GET per shipment."""
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(shipment_ids))
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            wanted = set(chunk)
            data = self.call("GET", "/v1/shipments", params={"id": ",".join(chunk), "limit": len(chunk)})
            for shipment in data.get("results") or []:
                if shipment.get("id") in wanted:  # exact, whatever the filter did
                    found[shipment["id"]] = shipment
        return found

    def shipment_get(self, shipment_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/shipments/{quote(shipment_id, safe='')}")

    def shipment_create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/v1/shipments", body=body)

    def shipment_purchase(self, shipment_id: str, rate_id: str) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/v1/shipments/{quote(shipment_id, safe='')}/purchase",
            body={"selected_rate_id": rate_id},
        )

    def shipment_cancel(self, shipment_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v1/shipments/{quote(shipment_id, safe='')}/cancel", body={})

    def tracker_get(self, tracker_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/trackers/{quote(tracker_id, safe='')}")

    def tracker_metadata_set(self, tracker_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the tracker's (no webhook fires for a metadata change)."""
        return self.call("PUT", f"/v1/trackers/{quote(tracker_id, safe='')}", body={"metadata": metadata})

    # --- Webhooks ----------------------------------------------------------------------------------

    def webhooks(self) -> list[dict[str, Any]]:
        return self.list_all("/v1/webhooks", {})

    def webhook_create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/v1/webhooks", body=body)
