"""BottleCRM's REST API over the hub's HTTP client: the `bottlecrm` connector's only I/O.

API facts (django-crm 1.35.0, checked against the peer; see /work/shared/peers/crm.md):

- Every call sends ``Authorization: Bearer <personal access token>``. A missing or refused token is
  **403** ``{"detail": "Organization context is required. Please login again."}`` (not 401).
- Validation errors are 400 ``{"error": true, "errors": {"field": ["message", ...]}}``.
- Creates answer 200 (not 201) with ``{"error": false, "id": ...}`` (cases add ``cases_obj``).
- Lists page with ``limit``/``offset``; ``?cf_<key>=<value>`` matches a custom field exactly;
  ``?email=`` and ``?name=`` match substrings, case-insensitively.
- With DEBUG on, a 500 is an HTML page. A write that fails after ``save()`` leaves its row behind,
  so a 5xx on a create is an unknown outcome: the caller looks the record up before writing again.

Error mapping (connectors.errors): connection failures, 408, 429 and 5xx are TransientError; 401 and
403 are AuthError; 400 is ``Rejected`` (a PermanentError carrying the field messages and the raw
``errors`` for callers that handle a known clash); 404 and other 4xx are PermanentError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from connectors.base import HttpClient
from connectors.bottlecrm.translate import account_rows, case_rows, contact_rows, error_messages
from connectors.errors import AuthError, PermanentError, TransientError

EXCERPT_CHARS = 300  # characters of an unexpected response body quoted in an error
PAGE_LIMIT = 100  # records asked for per list call; a key matches a handful, never a page


class Rejected(PermanentError):
    """HTTP 400: the CRM refused the request body. ``errors`` is its ``{"field": [messages]}``."""

    def __init__(self, detail: str, *, errors: Any, status_code: int = 400):
        super().__init__(detail, status_code=status_code)
        self.errors = errors

    def about(self, field: str, fragment: str) -> bool:
        """Whether the CRM's message for ``field`` contains ``fragment`` (case-insensitive)."""
        messages = self.errors.get(field) if isinstance(self.errors, Mapping) else None
        if isinstance(messages, str):
            messages = [messages]
        return any(fragment.casefold() in str(m).casefold() for m in messages or [])


class NotFound(PermanentError):
    pass


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class CrmApi:
    """One connection's view of the CRM's REST API (``<url>/api/...``)."""

    def __init__(self, *, url: str, token: str | None, http: HttpClient):
        if not token:
            raise AuthError("no personal access token is configured (the connection's secret)")
        self.base = url.rstrip("/") + "/api"
        self.token = token
        self.http = http

    # --- transport ---------------------------------------------------------------------------------

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One request; returns the decoded JSON object. Raises the taxonomy's errors (module doc)."""
        url = f"{self.base}/{path.lstrip('/')}"
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, separators=(",", ":")).encode()
        status, response_headers, raw, _ms = self.http.request(method, url, headers=headers, body=data)
        what = f"{method} {path}"
        decoded: Any = None
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = None
        if 200 <= status < 300:
            if not isinstance(decoded, dict):
                # Not the API answering (a proxy page?): the write may or may not have happened.
                raise TransientError(
                    f"{what}: HTTP {status} with a body that is not a JSON object: {self._excerpt(raw)}",
                    status_code=status,
                )
            return decoded
        if status in (408, 429) or status >= 500:
            raise TransientError(
                f"{what}: HTTP {status}: {self._excerpt(raw)}",
                retry_after=_retry_after(response_headers),
                status_code=status,
            )
        detail = self._detail(decoded, raw)
        if status in (401, 403):
            raise AuthError(
                f"{what}: the CRM refused the access token (HTTP {status}): {detail}", status_code=status
            )
        if status == 400:
            errors = decoded.get("errors", decoded) if isinstance(decoded, dict) else detail
            raise Rejected(f"{what}: the CRM rejected the request: {detail}", errors=errors)
        if status == 404:
            raise NotFound(f"{what}: not found (HTTP 404): {detail}", status_code=status)
        raise PermanentError(f"{what}: HTTP {status}: {detail}", status_code=status)

    @staticmethod
    def _excerpt(raw: bytes) -> str:
        return raw[:EXCERPT_CHARS].decode("utf-8", "replace").strip()

    def _detail(self, decoded: Any, raw: bytes) -> str:
        if isinstance(decoded, dict):
            if "errors" in decoded:
                return error_messages(decoded["errors"])
            if "detail" in decoded:
                return str(decoded["detail"])
            if "message" in decoded:
                return str(decoded["message"])
        return self._excerpt(raw)

    # --- accounts ----------------------------------------------------------------------------------

    def accounts_list(self, **params: Any) -> list[dict[str, Any]]:
        """Open and closed accounts matching ``params`` (``cf_<key>=``, ``name=``)."""
        return account_rows(self.call("GET", "accounts/", params={**params, "limit": PAGE_LIMIT}))

    def accounts_by_custom_field(self, key: str, value: str) -> list[dict[str, Any]]:
        return self.accounts_list(**{f"cf_{key}": value})

    def accounts_by_name(self, name: str) -> list[dict[str, Any]]:
        """Accounts named ``name`` (compared case-insensitively, as the CRM's uniqueness rule does)."""
        wanted = name.strip().casefold()
        return [
            a for a in self.accounts_list(name=name) if (a.get("name") or "").strip().casefold() == wanted
        ]

    def account_get(self, account_id: str) -> dict[str, Any]:
        """``{"account_obj", "comments", "contacts", ...}``."""
        return self.call("GET", f"accounts/{account_id}/")

    def account_create(self, body: Mapping[str, Any]) -> str:
        return str(self.call("POST", "accounts/", body=body)["id"])

    def account_update(self, account_id: str, body: Mapping[str, Any]) -> None:
        self.call("PATCH", f"accounts/{account_id}/", body=body)

    def account_note(self, account_id: str, comment: str) -> list[dict[str, Any]]:
        """Adds a note (comment) to the account; returns all its comments, newest first."""
        return self.call("POST", f"accounts/{account_id}/", body={"comment": comment}).get("comments") or []

    # --- contacts ----------------------------------------------------------------------------------

    def contacts_by_email(self, email: str) -> list[dict[str, Any]]:
        """Contacts whose email contains ``email`` (the caller compares exactly)."""
        return contact_rows(self.call("GET", "contacts/", params={"email": email, "limit": PAGE_LIMIT}))

    def contact_get(self, contact_id: str) -> dict[str, Any]:
        return self.call("GET", f"contacts/{contact_id}/")["contact_obj"]

    def contact_create(self, body: Mapping[str, Any]) -> str:
        return str(self.call("POST", "contacts/", body=body)["id"])

    def contact_update(self, contact_id: str, body: Mapping[str, Any]) -> None:
        self.call("PATCH", f"contacts/{contact_id}/", body=body)

    # --- cases -------------------------------------------------------------------------------------

    def cases_list(self, **params: Any) -> list[dict[str, Any]]:
        """Cases of any status matching ``params`` (``cf_<key>=``, ``account=``, ``status=``)."""
        return case_rows(self.call("GET", "cases/", params={**params, "limit": PAGE_LIMIT}))

    def case_get(self, case_id: str) -> dict[str, Any]:
        """``{"cases_obj", "comments", "internal_notes", ...}``."""
        return self.call("GET", f"cases/{case_id}/")

    def case_create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.call("POST", "cases/", body=body)
        return answer.get("cases_obj") or {"id": answer["id"], **body}

    def case_update(self, case_id: str, body: Mapping[str, Any]) -> None:
        self.call("PATCH", f"cases/{case_id}/", body=body)

    def case_comment(self, case_id: str, comment: str, *, internal: bool) -> dict[str, Any]:
        """Adds a comment (an internal note when ``internal``); returns the case detail."""
        return self.call("POST", f"cases/{case_id}/", body={"comment": comment, "is_internal": internal})
