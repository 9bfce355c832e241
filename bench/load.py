"""Load shared by the benchmark (bench/pipeline.py) and the chaos soak (bench/chaos.py).

- canonical milestone events of synthetic shipments (``milestone_event``, ``event_stream``),
- an HTTP sender that posts one body to the inbound endpoint until it is accepted (``Poster``):
  the at-least-once sender a carrier integration is, across web restarts and database outages,
- the benchmark's senders: ``post_retrying`` (a POST with up to three attempts) and ``run_clients``
  (forked client processes, open-loop paced or keeping a bounded backlog).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.stack import http_json

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
    steps = lifecycle(per_shipment)
    made = 0
    ship = first_ship
    while made < n_unique:
        chunk: list[dict] = []
        for s in range(chunk_ships):
            for k, step in enumerate(steps):
                if made >= n_unique:
                    break
                chunk.append(
                    milestone_event(f"{phase}-{made}", ship + s, k, step, {"phase": phase}, minute=s % 60)
                )
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


def milestone_event(
    event_id: str, ship: int, k: int, step: tuple, details: dict, minute: int | None = None
) -> dict:
    """The canonical v1 event for the ``k``-th milestone ``step`` (type, stop, reason) of shipment
    number ``ship``: its time is ``k`` steps after the base, so event time follows lifecycle order,
    plus ``minute`` minutes (default ``ship % 60``; the benchmark's stream uses the shipment's place
    in its chunk)."""
    etype, stop, reason = step
    minute = ship % 60 if minute is None else minute
    event = {
        "event_id": event_id,
        "event_type": etype,
        "occurred_at": (BASE_TIME + timedelta(minutes=STEP_MINUTES * k + minute)).isoformat(),
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


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def post_retrying(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict, attempts: int = 3
) -> tuple[int | None, int]:
    """POST ``body`` on ``conn``, up to ``attempts`` times while the connection fails (a status, any
    status, ends it). Returns the status (None: every attempt failed) and the attempts that failed."""
    failed = 0
    for _attempt in range(attempts):
        try:
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.will_close:
                conn.close()
            return resp.status, failed
        except (OSError, http.client.HTTPException):
            failed += 1
            conn.close()
    return None, failed


# --- Forked clients of the pipeline benchmark -------------------------------------------------------

_CLIENT_WORK: list[list] = []  # set before forking: the requests of each client
ACTIVE_CLIENTS: list = []  # the client processes of the running phase (ended on cleanup)


def _client_main(index: int, port: int, path: str, key: str, go, results, pace, flow) -> None:
    """POST this client's requests to ``path``.

    ``pace`` = (start time, interval between this client's sends) for an open-loop paced stream;
    ``flow`` = (sink port, phase, window, shared posted-events counter): wait while more than ``window``
    posted events are not yet at the sink (a bounded backlog, as a well-behaved sender keeps).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    work = _CLIENT_WORK[index]
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    statuses: Counter = Counter()
    lat_ms: list[float] = []
    errors = 0
    go.wait()
    first = last = None
    behind = 0.0
    for n, payload in enumerate(work):
        if pace is not None:
            due = pace[0] + n * pace[1]
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                behind = max(behind, -delay)
        if flow is not None:
            sink_port, phase, window, posted = flow
            while True:
                delivered = http_json(sink_port, "/stats")[1]["phases"].get(phase, {}).get("unique", 0)
                if posted.value - delivered <= window:
                    break
                time.sleep(0.05)
            with posted.get_lock():
                posted.value += len(payload) if isinstance(payload, list) else 1
        sent = time.time()
        first = first or sent
        for ev in payload if isinstance(payload, list) else [payload]:
            ev["details"]["sent_at"] = sent
        status, failed = post_retrying(conn, path, json.dumps(payload).encode(), headers)
        errors += failed
        if status is not None:
            statuses[status] += 1
        done = time.time()
        lat_ms.append((done - sent) * 1000)
        last = done
    conn.close()
    results.put(
        {
            "index": index,
            "statuses": dict(statuses),
            "first": first,
            "last": last,
            "lat_ms": lat_ms,
            "errors": errors,
            "cpu_s": time.process_time(),
            "max_behind_s": behind,
        }
    )


def run_clients(
    port: int,
    path: str,
    key: str,
    work: list[list],
    pace_rate: float | None = None,
    flow: tuple | None = None,
) -> dict:
    """Run one forked client per element of ``work``, each POSTing to ``path``; returns merged figures."""
    global _CLIENT_WORK
    _CLIENT_WORK = work
    ctx = mp.get_context("fork")
    go = ctx.Event()
    results = ctx.Queue()
    if flow is not None:
        flow = (*flow, ctx.Value("q", 0))
    start_at = time.time() + 0.3
    procs = []
    for i in range(len(work)):
        pace = None
        if pace_rate:
            # client i sends its n-th request at start + (n * K + i) / rate
            pace = (start_at + i / pace_rate, len(work) / pace_rate)
        p = ctx.Process(target=_client_main, args=(i, port, path, key, go, results, pace, flow), daemon=True)
        p.start()
        procs.append(p)
    ACTIVE_CLIENTS.extend(procs)
    go.set()
    merged: list[dict] = []
    try:
        for _ in procs:
            merged.append(results.get(timeout=3600))
        for p in procs:
            p.join(10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        ACTIVE_CLIENTS.clear()
        _CLIENT_WORK = []
    statuses: Counter = Counter()
    for r in merged:
        statuses.update({int(k): v for k, v in r["statuses"].items()})
    lat = [x for r in merged for x in r["lat_ms"]]
    return {
        "first": min(r["first"] for r in merged if r["first"]),
        "last": max(r["last"] for r in merged if r["last"]),
        "statuses": dict(statuses),
        "requests": sum(len(w) for w in work),
        "errors": sum(r["errors"] for r in merged),
        "client_cpu_s": round(sum(r["cpu_s"] for r in merged), 2),
        "http_ms": {
            "p50": pct(lat, 50),
            "p95": pct(lat, 95),
            "p99": pct(lat, 99),
            "max": max(lat, default=None),
        },
        "max_behind_s": max(r["max_behind_s"] for r in merged),
    }
