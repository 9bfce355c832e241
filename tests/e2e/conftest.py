"""Fixtures for end-to-end pipeline tests: a real HTTP sink, bounded polling and an API driver.

Everything goes through the public API (an admin API client) and the real worker process; the
tests observe the outcome in the database, the API and what the sink received.
"""

from __future__ import annotations

import itertools
import json
import string
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from bench.sink import Sink

WAIT_TIMEOUT_S = 30.0  # seconds any single wait_until may take before the test fails
POLL_S = 0.1  # seconds between polls
BASE_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def wait_until[T](
    predicate: Callable[[], T],
    timeout: float = WAIT_TIMEOUT_S,
    *,
    what: str = "",
    interval: float = POLL_S,
    each: Callable[[], object] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy (and return that), at most ``timeout`` s.

    ``each`` runs before every poll (e.g. the sweeper a beat process would run). The last value is
    shown on failure, so a timeout says what state the system was stuck in.
    """
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        if each is not None:
            each()
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}; last: {value!r}"
            )
        time.sleep(interval)


def at(minutes: int) -> str:
    """An event time ``minutes`` after a fixed base, ISO 8601 with offset."""
    return (BASE_TIME + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def milestone(reference: str, event_type: str, minutes: int, *, event_id: str | None = None, **extra) -> dict:
    """A canonical milestone event (ARCHITECTURE.md "Canonical milestone event")."""
    doc = {
        "event_id": event_id or f"{reference}-{event_type}-{minutes}",
        "event_type": event_type,
        "occurred_at": at(minutes),
        "shipment": {"reference": reference},
    }
    doc.update(extra)
    return doc


class SinkDriver:
    """The in-process webhook sink, with helpers to script it and read what it received."""

    def __init__(self) -> None:
        self.sink = Sink().start()
        self.url = self.sink.url
        self.state = self.sink.state

    def script(
        self, statuses: list[int] | None = None, *, retry_after: float | None = None, delay_s: float = 0
    ) -> None:
        """Answer ``statuses`` in turn (then 200s); also resets retry_after and delay_s."""
        body: dict[str, Any] = {"statuses": statuses or [], "delay_s": delay_s}
        if retry_after is not None:
            body["retry_after"] = retry_after
        base = self.url.rsplit("/", 1)[0]
        response = requests.post(f"{base}/script", json=body, timeout=5)
        response.raise_for_status()

    def records(self) -> list[dict]:
        with self.state.lock:
            return list(self.state.received)

    def arrivals(self) -> list[str | None]:
        """Idempotency keys of every request as it arrived, answered yet or not."""
        with self.state.lock:
            return list(self.state.arrived)

    def delivered(self) -> list[dict]:
        """Requests the sink answered 2xx, in arrival order."""
        return [r for r in self.records() if 200 <= r["status"] < 300]

    def stop(self) -> None:
        self.sink.stop()


@pytest.fixture
def sink():
    driver = SinkDriver()
    yield driver
    driver.stop()


class Pipeline:
    """Drives Crossdock through its public API as an operator (admin API client) would."""

    _seq = itertools.count(1)

    def __init__(self, caller) -> None:
        self.caller = caller
        self.http = caller.http

    @staticmethod
    def _ok(response, *codes: int) -> dict:
        assert response.status_code in codes, (response.status_code, response.content[:2000])
        return response.json() if response.content else {}

    def carrier(self, scac: str | None = None) -> str:
        if scac is None:  # 2 to 4 capital letters
            n = next(self._seq)
            scac = "C" + "".join(string.ascii_uppercase[(n // 26**i) % 26] for i in (2, 1, 0))
        self._ok(self.http.post("/api/v1/carriers/", {"scac": scac, "name": f"Carrier {scac}"}), 201)
        return scac

    def shipment(self, reference: str, *, carrier: str) -> dict:
        return self._ok(
            self.http.post("/api/v1/shipments/", {"reference": reference, "carrier": carrier}), 201
        )

    def shipment_read(self, reference: str) -> dict:
        body = self._ok(self.http.get("/api/v1/shipments/", {"reference": reference}), 200)
        results = body["results"] if isinstance(body, dict) else body
        assert len(results) == 1, results
        return results[0]

    def inbound_connection(self, slug: str = "tms-in", **extra) -> dict:
        data = {"slug": slug, "system": "tms", "connector": "canonical", "config": {}, **extra}
        return self._ok(self.http.post("/api/v1/connections/", data, format="json"), 201)

    def outbound_connection(
        self,
        url: str,
        *,
        slug: str = "partner-out",
        secret: str = "s3cret-for-signing",
        max_attempts: int = 5,
        backoff_base_s: float = 0.2,
        event_types: list[str] | None = None,
        timeout_s: float | None = None,
    ) -> dict:
        """A webhook connection to ``url`` plus a subscription to ``event_types`` (all by default)."""
        config = {"url": url, "max_attempts": max_attempts, "backoff_base_s": backoff_base_s}
        if timeout_s is not None:
            config["timeout_s"] = timeout_s
        connection = self._ok(
            self.http.post(
                "/api/v1/connections/",
                {
                    "slug": slug,
                    "system": "partner",
                    "connector": "webhook",
                    "config": config,
                    "secret": secret,
                },
                format="json",
            ),
            201,
        )
        self._ok(
            self.http.post(
                "/api/v1/subscriptions/",
                {"connection": slug, "event_types": event_types or []},
                format="json",
            ),
            201,
        )
        return connection

    def post_inbound(self, slug: str, body: Any, *, http=None, **headers):
        """POST a body (a dict/list as JSON, or raw bytes) to the inbound endpoint; the raw response."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return (http or self.http).post(
            f"/api/v1/inbound/{slug}/", data=raw, content_type="application/json", **headers
        )

    def send(self, slug: str, body: Any, **headers) -> dict:
        """POST and expect the message to be stored (202 accepted)."""
        response = self.post_inbound(slug, body, **headers)
        data = self._ok(response, 202)
        assert data["status"] == "accepted", data
        return data


@pytest.fixture
def pipeline(admin_caller) -> Pipeline:
    return Pipeline(admin_caller)


@pytest.fixture
def unique() -> str:
    """A short unique token for references and ids (the database is emptied between tests anyway)."""
    return uuid.uuid4().hex[:8]
