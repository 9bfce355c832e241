"""Driving the BottleCRM peer (peers/bottlecrm.sh) from tests and the fixture capture script.

No Django here: ``tests/fixtures/bottlecrm/capture.py`` imports this module as a plain script.
Reading the CRM's own records back (to count them) goes through the connector's ``CrmApi``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from connectors.base import OperationContext
from connectors.bottlecrm import DEFAULT_MAPPINGS, Config
from connectors.bottlecrm.client import CrmApi
from connectors.errors import TransientError
from connectors.mapping import MappingSet
from tests.support.peers import peer_script, peer_script_env

OUTBOUND = MappingSet.from_data(DEFAULT_MAPPINGS["outbound"])


def peer(verb: str, timeout: float = 900) -> str:
    """Run ``peers/bottlecrm.sh <verb>`` (stdin closed) and return its stdout; fail loudly."""
    return peer_script("bottlecrm", verb, timeout=timeout)


def peer_env() -> dict[str, str]:
    return peer_script_env("bottlecrm")


class Http:
    """The HttpClient protocol over requests, for scripts without Django settings (the hub's
    SafeHttpClient reads them); the tests themselves use SafeHttpClient."""

    def __init__(self, timeout_s: float = 30):
        self.session = requests.Session()
        self.session.trust_env = False
        self.timeout_s = timeout_s

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes):
        started = time.monotonic()
        try:
            r = self.session.request(method, url, headers=dict(headers), data=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise TransientError(f"connection failed: {exc}") from None
        return r.status_code, r.headers, r.content, int((time.monotonic() - started) * 1000)


def make_ctx(
    env: Mapping[str, str], client: Any, *, secret: str | None = None, **config: Any
) -> OperationContext:
    return OperationContext(
        config=Config.model_validate({"url": env["CRM_URL"], **config}),
        secret=env["CRM_PAT"] if secret is None else secret,
        client=client,
        mappings=OUTBOUND,
        connection_slug="bottlecrm-test",
    )


def api(env: Mapping[str, str], client: Any) -> CrmApi:
    return CrmApi(url=env["CRM_URL"], token=env["CRM_PAT"], http=client)


# --- Test data and counting the CRM's own records ---------------------------------------------------


def customer(unique: str, **overrides) -> dict:
    return {
        "code": f"C-{unique}",
        "name": f"ACME Logistics {unique}",
        "email": "ops@acme.example",
        "phone": "+49 40 1234567",
        "billing_address": "Am Sandtorkai 1\n20457 Hamburg",
        "address": {"city": "Hamburg", "postal_code": "20457", "country": "DE"},
        **overrides,
    }


def exception(unique: str, **overrides) -> dict:
    return {
        "customer_code": f"C-{unique}",
        "shipment": {"reference": f"SHP-{unique}"},
        "exception_type": "CUSTOMS_HOLD",
        "opened_at": "2026-11-20T14:05:00Z",
        "description": "Held by customs: commercial invoice missing.",
        **overrides,
    }


def accounts_counted(crm, code: str) -> int:
    """Accounts with this ERP id, by the CRM's own counts (open and closed lists)."""
    answer = crm.call("GET", "accounts/", params={"cf_erp_customer_id": code})
    return (
        answer["active_accounts"]["open_accounts_count"] + answer["closed_accounts"]["close_accounts_count"]
    )


def cases_counted(crm, reference: str, exception_type: str = "CUSTOMS_HOLD") -> int:
    answer = crm.call(
        "GET", "cases/", params={"cf_shipment_id": reference, "cf_exception_type": exception_type}
    )
    return answer["cases_count"]


def contacts_with_email(crm, email: str) -> list[dict]:
    return [c for c in crm.contacts_by_email(email) if c["email"].casefold() == email.casefold()]


# --- Webhooks ---------------------------------------------------------------------------------------


class WebhookSink:
    """A loopback HTTP server that records every POST (body and headers) the CRM sends it."""

    def __init__(self, port: int = 0):
        received: list[dict[str, Any]] = []
        arrived = threading.Condition()
        self.received, self.arrived = received, arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with arrived:
                    received.append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crm-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout_s: float = 20) -> dict[str, Any]:
        """The first received call for which ``predicate(envelope)`` is true (waits for it)."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while True:
                for call in self.received:
                    if predicate(json.loads(call["body"])):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching webhook within {timeout_s}s; got {len(self.received)}")
                self.arrived.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def webhook_register(env: Mapping[str, str], url: str, events: list[str]) -> dict[str, Any]:
    """Registers a webhook endpoint (needs the JWT: PATs may not manage credentials); returns it
    with its ``secret`` (shown only here)."""
    r = requests.post(
        f"{env['CRM_URL']}/api/webhooks/",
        headers={"Authorization": f"Bearer {env['CRM_JWT']}"},
        json={"url": url, "events": events, "format": "json", "is_active": True},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()


def webhook_delete(env: Mapping[str, str], webhook_id: str) -> None:
    requests.delete(
        f"{env['CRM_URL']}/api/webhooks/{webhook_id}/",
        headers={"Authorization": f"Bearer {env['CRM_JWT']}"},
        timeout=30,
    )
