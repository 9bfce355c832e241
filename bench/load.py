"""Load shared by the benchmark (bench/pipeline.py) and the chaos soak (bench/chaos.py).

- canonical milestone events of synthetic shipments (``milestone_event``, ``event_stream``),
- an HTTP sender that posts one body to the inbound endpoint until it is accepted (``Poster``):
  the at-least-once sender a carrier integration is, across web restarts and database outages.
"""

from __future__ import annotations

import http.client
import random
import time
from datetime import UTC, datetime, timedelta

SHIPMENTS_PER_CHUNK = 500  # shipments whose events are shuffled together (bounded memory in the soak)
BASE_TIME = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
STEP_MINUTES = 97  # minutes between two milestones of one shipment

LOCATIONS = [
    {"code": "USCHI", "name": "Chicago, IL", "lat": 41.88, "lon": -87.63},
    {"code": "USDAL", "name": "Dallas, TX", "lat": 32.78, "lon": -96.8},
    {"code": "USATL", "name": "Atlanta, GA", "lat": 33.75, "lon": -84.39},
]
# One shipment's milestones (type, stop, reason); longer lives repeat IN_TRANSIT.
LIFECYCLE = [
    ("TENDER_ACCEPTED", None, None),
    ("ARRIVED_AT_PICKUP", 1, None),
    ("DEPARTED_PICKUP", 1, None),
    ("IN_TRANSIT", None, None),
    ("DELAYED", None, "WX"),
    ("IN_TRANSIT", None, None),
    ("ARRIVED_AT_DELIVERY", 2, None),
    ("OUT_FOR_DELIVERY", None, None),
    ("DELIVERED", 2, None),
    ("POD_RECEIVED", None, None),
]


def shipment_ref(n: int) -> str:
    return f"B{n:07d}"


def lifecycle(per_shipment: int) -> list[tuple]:
    steps = list(LIFECYCLE[:per_shipment])
    while len(steps) < per_shipment:
        steps.insert(5, ("IN_TRANSIT", None, None))
    return steps


def event_stream(
    phase: str,
    first_ship: int,
    n_unique: int,
    per_shipment: int,
    dup_rate: float,
    seed: int,
    chunk_ships: int = SHIPMENTS_PER_CHUNK,
):
    """Yield ``(event, is_duplicate)`` for ``n_unique`` unique events plus ~``dup_rate`` re-sends.

    Events of SHIPMENTS_PER_CHUNK shipments are shuffled together (so each shipment's milestones
    arrive out of order); a duplicate is a copy of an earlier event re-sent later in its chunk.
    """
    rng = random.Random(seed)
    base = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    steps = lifecycle(per_shipment)
    made = 0
    ship = first_ship
    while made < n_unique:
        chunk: list[dict] = []
        for s in range(chunk_ships):
            for k, (etype, stop, reason) in enumerate(steps):
                if made >= n_unique:
                    break
                event = {
                    "event_id": f"{phase}-{made}",
                    "event_type": etype,
                    "occurred_at": (base + timedelta(minutes=97 * k + s % 60)).isoformat(),
                    "shipment": {"reference": shipment_ref(ship + s)},
                    "details": {"phase": phase},
                }
                if stop is not None:
                    event["stop_sequence"] = stop
                if etype in ("IN_TRANSIT", "ARRIVED_AT_PICKUP", "ARRIVED_AT_DELIVERY"):
                    event["location"] = LOCATIONS[(ship + s + k) % len(LOCATIONS)]
                if reason:
                    event["reason_code"] = reason
                chunk.append(event)
                made += 1
            if made >= n_unique:
                break
        ship += chunk_ships
        rng.shuffle(chunk)
        keyed = [(float(i), ev, False) for i, ev in enumerate(chunk)]
        n_dup = round(len(chunk) * dup_rate)
        for i in rng.sample(range(len(chunk)), n_dup):
            keyed.append((rng.uniform(i + 0.5, len(chunk)), chunk[i], True))
        keyed.sort(key=lambda t: t[0])
        for _, ev, dup in keyed:
            yield ev, dup


def shipments_needed(n_unique: int, per_shipment: int) -> int:
    chunk_events = SHIPMENTS_PER_CHUNK * per_shipment
    return -(-n_unique // chunk_events) * SHIPMENTS_PER_CHUNK


def milestone_event(event_id: str, ship: int, k: int, step: tuple, details: dict) -> dict:
    """The canonical v1 event for the ``k``-th milestone ``step`` (type, stop, reason) of shipment
    number ``ship``: its time is ``k`` steps after the base, so event time follows lifecycle order."""
    etype, stop, reason = step
    event = {
        "event_id": event_id,
        "event_type": etype,
        "occurred_at": (BASE_TIME + timedelta(minutes=STEP_MINUTES * k + ship % 60)).isoformat(),
        "shipment": {"reference": shipment_ref(ship)},
        "details": details,
    }
    if stop is not None:
        event["stop_sequence"] = stop
    if etype in ("IN_TRANSIT", "ARRIVED_AT_PICKUP", "ARRIVED_AT_DELIVERY"):
        event["location"] = LOCATIONS[(ship + k) % len(LOCATIONS)]
    if reason:
        event["reason_code"] = reason
    return event


class Poster:
    """POSTs bodies to one path on 127.0.0.1 over a keep-alive connection, retrying each body until
    it gets a 2xx (connection errors, timeouts, 429 and 5xx are retried with capped back-off; other
    4xx are returned, they would never succeed). Counts what it saw."""

    RETRY_FIRST_S = 0.2  # seconds before the first retry of a body
    RETRY_MAX_S = 5.0  # seconds: cap of the doubling back-off between retries

    def __init__(self, port: int, path: str, headers: dict, timeout_s: float = 60.0) -> None:
        self.port, self.path, self.headers, self.timeout_s = port, path, headers, timeout_s
        self.conn: http.client.HTTPConnection | None = None
        self.statuses: dict[int, int] = {}
        self.errors = 0  # connection errors and timeouts
        self.retries = 0

    def _once(self, body: bytes) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        self.conn.request("POST", self.path, body, self.headers)
        resp = self.conn.getresponse()
        resp.read()
        if resp.will_close:
            self.close()
        return resp.status

    def post(self, body: bytes, deadline: float) -> int:
        """POST ``body`` until accepted; returns the final status (0: gave up at ``deadline``)."""
        wait = self.RETRY_FIRST_S
        while True:
            try:
                status = self._once(body)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status < 300 or (400 <= status < 500 and status not in (408, 429)):
                    return status
            except (OSError, http.client.HTTPException):
                self.errors += 1
                self.close()
            if time.monotonic() + wait > deadline:
                return 0
            self.retries += 1
            time.sleep(wait)
            wait = min(self.RETRY_MAX_S, wait * 2)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
