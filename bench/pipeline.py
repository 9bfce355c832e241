"""The Crossdock pipeline benchmark: one command starts the stack, drives it, measures, cleans up.

    .venv/bin/python bench/pipeline.py [--events N] [--quick]          # throughput + latency run
    .venv/bin/python bench/pipeline.py --soak 1000000 --max-seconds 600  # RSS soak, bounded in time

What it starts (all on 127.0.0.1, free ports, its own PostgreSQL database ``crossdock_bench`` dropped
and recreated, its own Redis db 6 flushed):
- gunicorn ``hub.wsgi`` (``--web-workers`` sync workers, default 2),
- ``--celery-workers`` celery worker processes with ``--celery-concurrency`` prefork children each
  (default one worker, concurrency 2), plus celery beat (the pipeline sweeper; ``--no-beat`` to skip),
- a recording webhook sink in a *separate process* (its CPU and RSS are reported apart): a lean
  variant of bench/sink.py that keeps only ids, keys and latencies, so a 1M-event soak fits in memory.

Phases of one run, in order (each but the last waits until the sink holds every unique event of it):
- ``warmup``: 200 events in batches of 50;
- ``single``: single-event POSTs from ``--clients`` processes, workers running (ingest req/s, e2e);
- ``single_paused``: the same with the celery processes SIGSTOPped (the web tier alone); on SIGCONT
  the backlog drain rate measures the workers alone;
- ``batch``: lists of ``--batch-size`` events per POST, workers running, at most ``--window`` events
  posted but not yet delivered (a sender that keeps the backlog bounded): end-to-end events/s;
- ``latency_low`` / ``latency``: single events paced open-loop at ``--low-rate`` / ``--rate`` events/s;
  latency = the sink's receive time minus the client's send time (``details.sent_at`` of the event),
  split by stage (web, inbox, outbox) from the database's own timestamps;
- ``batch_burst``: batches at full speed with the workers paused: batched ingest events/s. Not
  drained unless ``--burst-drain`` (which reproduces the drain time-limit problem, docs/benchmarks.md);
- profile (after web and workers stop, sink still up): queries per message/event/delivery/request by
  kind and statement (CaptureQueriesContext), Redis calls, wall and CPU time, and cProfile listings of
  the inbox worker, the outbox sender and the inbound request, in a Django process on the bench DB.
RSS and CPU time of web (gunicorn master+workers), worker (celery main+children), beat, sink and the
bench database's PostgreSQL backends are sampled throughout (psutil); CPU of other processes on the
machine is reported too (``other_processes_on_machine``), since the machine may be shared.

Soak (``--soak N``): one batched stream of N events, at most ``--window`` in flight, RSS sampled every
``--sample-every`` seconds (5 in a soak), stopped after ``--max-seconds``; reports the first- vs
last-quartile median RSS per group and the RSS trend per 100k events over the soak's second half.

Every stream holds ~5% duplicates (the same event_id re-sent later) and is shuffled per shipment.
Results: a table on stdout and JSON in bench/results/<timestamp>.json; logs in a temp dir (printed).
Exit status: 0, 1 (the run failed), 2 (the sink did not get every unique event exactly once), 130.
Subcommands prefixed with ``_`` are internal (sink, seeding, stats, profile).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo root

from bench.load import SHIPMENTS_PER_CHUNK, event_stream, shipment_ref, shipments_needed
from bench.stack import (
    PY,
    ROOT,
    Stack,
    beat_cmd,
    encryption_key,
    free_port,
    http_json,
    web_cmd,
    worker_cmd,
)

RESULTS_DIR = ROOT / "bench" / "results"
DB_NAME = "crossdock_bench"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DB = 6
INBOUND_SLUG = "bench-in"
SINK_SLUG = "bench-sink"
SCAC = "BNCH"

TARGETS = {
    "single_ingest_req_s": 1500,
    "e2e_events_s": 1000,
    "batch_ingest_events_s": 20000,
    "p95_ms_at_200": 250,
}

# --- Event stream -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- Sink (separate process) ------------------------------------------------------------------------


class SinkState:
    """Counts per phase: unique source events, redeliveries of a key, one source event under two keys."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.keys: set[str] = set()
        self.sources: dict[str, set[str]] = {}
        self.phases: dict[str, dict] = {}
        self.latency: dict[str, list[float]] = {}
        self.last_seq: dict[str, int] = {}
        self.out_of_order = 0
        self.unparsable = 0

    def record(self, key: str | None, body: bytes) -> None:
        now = time.time()
        try:
            envelope = json.loads(body)
            event = envelope["data"]["event"]
            details = event.get("details") or {}
            phase = details.get("phase", "?")
            source = event.get("source_event_id") or envelope["id"]
            subject, seq = envelope.get("subject"), int(envelope.get("sequence") or 0)
            sent_at = details.get("sent_at")
        except (ValueError, KeyError, TypeError):
            with self.lock:
                self.requests += 1
                self.unparsable += 1
            return
        key = key or envelope.get("id")
        with self.lock:
            self.requests += 1
            stats = self.phases.setdefault(
                phase,
                {"unique": 0, "redelivered_same_key": 0, "applied_twice": 0, "first": None, "last": None},
            )
            if key in self.keys:
                stats["redelivered_same_key"] += 1
                return
            self.keys.add(key)
            seen = self.sources.setdefault(phase, set())
            if source in seen:
                stats["applied_twice"] += 1
            else:
                seen.add(source)
                stats["unique"] += 1
                stats["first"] = now if stats["first"] is None else stats["first"]
                stats["last"] = now
                if isinstance(sent_at, int | float):
                    self.latency.setdefault(phase, []).append(now - sent_at)
            if seq < self.last_seq.get(subject, 0):
                self.out_of_order += 1
            else:
                self.last_seq[subject] = seq

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": self.requests,
                "unparsable": self.unparsable,
                "out_of_order": self.out_of_order,
                "phases": {name: dict(stats) for name, stats in self.phases.items()},
            }


def sink_serve(port: int) -> None:
    state = SinkState()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY the client's delayed ACK
        # adds ~40 ms to every keep-alive request (Nagle), which would cap the sink, not Crossdock.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"{}") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/stats":
                self._reply(200, json.dumps(state.snapshot()).encode())
            elif url.path == "/latencies":
                phase = parse_qs(url.query).get("phase", ["?"])[0]
                with state.lock:
                    values = list(state.latency.get(phase, []))
                self._reply(200, json.dumps(values).encode())
            else:
                self._reply(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.record(self.headers.get("Idempotency-Key"), body)
            self._reply(200)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


# --- Django-side helpers (run as subprocesses with the bench environment) ----------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()


def cmd_seed(args) -> None:
    _django()
    from canonical.models import Carrier, Shipment
    from hub.connections.models import Connection, Subscription
    from hub.connections.services import api_client_create, connection_save
    from hub.core.services import periodic_tasks_sync

    started = time.monotonic()
    periodic_tasks_sync()
    key = api_client_create(name="bench-admin", admin=True).key
    carrier = Carrier.objects.create(scac=SCAC, name="Bench Freight")
    connection_save(
        data={
            "slug": INBOUND_SLUG,
            "system": "carrier",
            "connector": "canonical",
            "config": {},
            "carrier": carrier,
        }
    )
    sink = connection_save(
        data={
            "slug": SINK_SLUG,
            "system": "partner",
            "connector": "webhook",
            "config": {"url": args.sink_url, "max_attempts": 8, "backoff_base_s": 1, "timeout_s": 10},
        },
        secret="bench-webhook-secret",
    )
    Subscription.objects.create(connection=sink, event_types=[])
    made = 0
    while made < args.shipments:
        n = min(5000, args.shipments - made)
        Shipment.objects.bulk_create(
            [Shipment(reference=shipment_ref(made + i), carrier=carrier, mode="TL") for i in range(n)]
        )
        made += n
    assert Connection.objects.filter(slug=INBOUND_SLUG).exists()
    print(json.dumps({"key": key, "shipments": made, "seconds": round(time.monotonic() - started, 2)}))


def cmd_dbstats(args) -> None:
    _django()
    from django.db import connection
    from django.db.models import Count, Sum

    from canonical.models import ShipmentEvent
    from hub.deadletters.models import DeadLetter
    from hub.inbox.models import InboundMessage
    from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent

    def by(qs, field):
        return {row[field]: row["n"] for row in qs.values(field).annotate(n=Count("id")).order_by(field)}

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
    out = {
        "inbound_messages": by(InboundMessage.objects, "status"),
        "inbound_events": InboundMessage.objects.aggregate(
            applied=Sum("events_applied"), duplicate=Sum("events_duplicate"), failed=Sum("events_failed")
        ),
        "shipment_events": ShipmentEvent.objects.count(),
        "outbox_events": OutboxEvent.objects.count(),
        "deliveries": by(Delivery.objects, "status"),
        "delivery_attempts": DeliveryAttempt.objects.count(),
        "dead_letters": by(DeadLetter.objects, "stage"),
        "dead_letter_reasons": list(
            DeadLetter.objects.values("stage", "reason").annotate(n=Count("id")).order_by("-n")[:5]
        ),
        "db_size_mb": round(size / 2**20, 1),
        "stage_latency_ms": _stage_latency(connection),
    }
    print(json.dumps(out, default=str))


STAGES_SQL = """
WITH t AS (
  SELECT e.data->'event'->'details'->>'phase' AS phase,
         extract(epoch FROM m.received_at) - (e.data->'event'->'details'->>'sent_at')::float8 AS web,
         extract(epoch FROM m.processed_at - m.received_at) AS inbox,
         extract(epoch FROM d.delivered_at - e.created_at) AS outbox
  FROM outbox_outboxevent e
  JOIN inbox_inboundmessage m ON m.id = e.message_id
  JOIN outbox_delivery d ON d.event_id = e.id
  WHERE d.delivered_at IS NOT NULL AND e.data->'event'->'details' ? 'sent_at'
)
SELECT phase, count(*),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY web), percentile_cont(0.95) WITHIN GROUP (ORDER BY web),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY inbox), percentile_cont(0.95) WITHIN GROUP (ORDER BY inbox),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY outbox), percentile_cont(0.95) WITHIN GROUP (ORDER BY outbox)
FROM t GROUP BY phase ORDER BY phase
"""


def _stage_latency(connection) -> dict:
    """Where the time goes, per phase, from the database's own timestamps: client send -> stored
    (web), stored -> processed (inbox: wake-up, queueing, claim, apply), event written -> delivered
    (outbox: wake-up, queueing, claim, HTTP, record)."""
    with connection.cursor() as cursor:
        cursor.execute(STAGES_SQL)
        rows = cursor.fetchall()
    out = {}
    for phase, n, *values in rows:
        ms = [round(v * 1000, 1) if v is not None else None for v in values]
        out[phase] = {
            "n": n,
            "web_p50": ms[0],
            "web_p95": ms[1],
            "inbox_p50": ms[2],
            "inbox_p95": ms[3],
            "outbox_p50": ms[4],
            "outbox_p95": ms[5],
        }
    return out


def _classify(sql: str) -> str:
    head = sql.lstrip().split(None, 1)[0].upper()
    if head in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return "savepoint"
    if head == "SELECT" and " FOR " in sql and "UPDATE" in sql[-80:]:
        return "select_for_update"
    return head.lower()


def _template(sql: str) -> str:
    import re

    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r"\"s\d+_x\d+\"|s\d+_x\d+", "<sp>", sql)
    sql = re.sub(r"IN \((\?, )*\?\)", "IN (...)", sql)
    sql = re.sub(r"VALUES \(.*\)", "VALUES (...)", sql)
    return sql[:150]


def _query_summary(queries: list[dict], per: int) -> dict:
    """Queries per unit (message, event, delivery, request) by kind and by statement shape, with the
    wall time the client waited for each (round trip included)."""
    kinds: Counter = Counter()
    kind_s: Counter = Counter()
    templates: Counter = Counter()
    template_s: Counter = Counter()
    for q in queries:
        kind, template, took = _classify(q["sql"]), _template(q["sql"]), float(q["time"])
        kinds[kind] += 1
        kind_s[kind] += took
        templates[template] += 1
        template_s[template] += took
    return {
        "queries_per_unit": round(len(queries) / per, 2),
        "by_kind_per_unit": {k: round(v / per, 2) for k, v in kinds.most_common()},
        "db_ms_per_unit": round(sum(kind_s.values()) * 1000 / per, 3),
        "db_ms_by_kind_per_unit": {k: round(v * 1000 / per, 3) for k, v in kind_s.most_common()},
        "top_templates_per_unit": [
            [round(n / per, 2), round(template_s[t] * 1000 / per, 3), t] for t, n in templates.most_common(20)
        ],
    }


@contextlib.contextmanager
def _capture():
    """CaptureQueriesContext on a cleared log: the log is a deque capped at 9,000 entries, and once
    full its length stops growing, which makes CaptureQueriesContext see nothing. Requests clear the
    log on request_started; that is disconnected while capturing. The queries are read after the block."""
    from django.core import signals
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    class Captured:
        captured_queries: list[dict] = []

    signals.request_started.disconnect(reset_queries)
    reset_queries()
    holder = Captured()
    try:
        with CaptureQueriesContext(connection) as ctx:
            yield holder
        # captured_queries slices the live log: copy it before anything clears the log
        holder.captured_queries = list(ctx.captured_queries)
    finally:
        signals.request_started.connect(reset_queries)


def _cprofile_top(prof, n: int = 30) -> list[str]:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    out2 = io.StringIO()
    pstats.Stats(prof, stream=out2).sort_stats("cumulative").print_stats(n)
    return ["== by tottime ==", *lines, "== by cumulative ==", *out2.getvalue().splitlines()]


class _CacheOps:
    """Counts Django cache calls (Redis round trips: wake-up flags, rate-limit counters)."""

    NAMES = ("add", "get", "set", "incr", "delete", "get_many", "set_many")

    def __init__(self) -> None:
        from django.core.cache.backends.redis import RedisCache

        self.counts: Counter = Counter()
        for name in self.NAMES:
            original = getattr(RedisCache, name)

            def wrapper(cache_self, *a, _name=name, _original=original, **kw):
                self.counts[_name] += 1
                return _original(cache_self, *a, **kw)

            setattr(RedisCache, name, wrapper)

    def take(self, per: int) -> dict:
        out = {k: round(v / per, 2) for k, v in self.counts.most_common()}
        self.counts.clear()
        return out


def cmd_profile(args) -> None:
    """Per-event cost of the inbox worker, the outbox sender and the inbound request (see --help)."""
    _django()
    import cProfile

    from django.test import Client
    from django.utils import timezone

    from canonical.models import Carrier, Shipment
    from hub.connections.models import Connection
    from hub.inbox import services as inbox
    from hub.inbox.models import InboundMessage
    from hub.outbox import services as outbox

    inbox._send_wake = lambda: None  # no broker traffic: this process calls the services itself
    outbox._send_wake = lambda countdown=None: None
    cache_ops = _CacheOps()

    carrier = Carrier.objects.get(scac=SCAC)
    conn = Connection.objects.get(slug=INBOUND_SLUG)
    first = args.first_shipment
    n_ship = SHIPMENTS_PER_CHUNK
    Shipment.objects.bulk_create(
        [Shipment(reference=shipment_ref(first + i), carrier=carrier, mode="TL") for i in range(n_ship)],
        ignore_conflicts=True,
    )
    # 160 shipments' lifecycles shuffled together: timelines grow to 10 events as in the benchmark
    events = [
        ev
        for ev, dup in event_stream(f"profile{first}", first, 1600, 10, 0.0, seed=7, chunk_ships=160)
        if not dup
    ]
    singles, batched = events[:1200], events[1200:1600]
    out: dict = {"events_per_shipment": 10}

    def receive(body: bytes):
        return inbox.inbound_message_receive(
            connection=conn,
            body=body,
            content_type="application/json",
            headers={},
            idempotency_key=None,
            correlation_id="profile",
        )

    single_ids = [receive(json.dumps(ev).encode()).message.pk for ev in singles]
    batch_ids = [receive(json.dumps(batched[i : i + 100]).encode()).message.pk for i in range(0, 400, 100)]
    # claim exactly these (other phases may have left messages waiting): what inbound_batch_claim does
    InboundMessage.objects.filter(id__in=single_ids + batch_ids).update(
        status=InboundMessage.Status.PROCESSING, claimed_until=timezone.now() + timedelta(minutes=30)
    )
    subs = outbox.subscriptions_active()
    cache_ops.counts.clear()

    # 1. single-event messages: queries and time (first 400 with query capture, 400 plain, 400 cProfile)
    with _capture() as ctx:
        t0 = time.perf_counter()
        for mid in single_ids[:400]:
            inbox.inbound_message_process(message_id=mid, subscriptions=subs)
        captured_s = time.perf_counter() - t0
    single_cache = cache_ops.take(400)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for mid in single_ids[400:800]:
        inbox.inbound_message_process(message_id=mid, subscriptions=subs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out["inbox_single"] = {
        **_query_summary(ctx.captured_queries, 400),
        "wall_ms_per_event": round(wall * 1000 / 400, 3),
        "python_cpu_ms_per_event": round(cpu * 1000 / 400, 3),
        "wall_ms_per_event_with_capture": round(captured_s * 1000 / 400, 3),
        "cache_calls_per_unit": single_cache,
    }
    # wall-clock profile (shows the waits on PostgreSQL) and CPU-time profile (only this process's CPU)
    prof = cProfile.Profile()
    prof.enable()
    for mid in single_ids[800:1000]:
        inbox.inbound_message_process(message_id=mid, subscriptions=subs)
    prof.disable()
    out["inbox_single_cprofile"] = _cprofile_top(prof)
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for mid in single_ids[1000:]:
        inbox.inbound_message_process(message_id=mid, subscriptions=subs)
    prof.disable()
    out["inbox_single_cprofile_cpu"] = _cprofile_top(prof)

    # 2. batch messages of 100 events
    cache_ops.counts.clear()
    with _capture() as ctx:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for mid in batch_ids:
            inbox.inbound_message_process(message_id=mid, subscriptions=subs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    n_ev = len(batched)
    out["inbox_batch100"] = {
        **_query_summary(ctx.captured_queries, n_ev),
        "wall_ms_per_event_with_capture": round(wall * 1000 / n_ev, 3),
        "python_cpu_ms_per_event_with_capture": round(cpu * 1000 / n_ev, 3),
        "cache_calls_per_unit": cache_ops.take(n_ev),
    }

    # 3. outbox: claim + send the deliveries just created (to the running sink)
    sent = 0
    cache_ops.counts.clear()
    queries: list[dict] = []
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    prof = cProfile.Profile()
    rounds = 0
    while True:
        with _capture() as ctx:
            claim = outbox.delivery_batch_claim()
            if claim:
                if rounds == 2:
                    prof.enable()
                outbox.delivery_batch_send(claim)
                if rounds == 2:
                    prof.disable()
        queries.extend(ctx.captured_queries)
        if not claim:
            break
        rounds += 1
        sent += len(claim.ids)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out["outbox"] = {
        "deliveries": sent,
        **_query_summary(queries, max(1, sent)),
        "wall_ms_per_delivery_with_capture": round(wall * 1000 / max(1, sent), 3),
        "python_cpu_ms_per_delivery_with_capture": round(cpu * 1000 / max(1, sent), 3),
        "cache_calls_per_unit": cache_ops.take(max(1, sent)),
    }
    out["outbox_cprofile_one_round_of_50"] = _cprofile_top(prof)

    # 4. the inbound web request, through Django's test client (middleware + DRF + store)
    client = Client()
    more = [ev for ev, dup in event_stream(f"profile-web{first}", first, 600, 10, 0.0, seed=8) if not dup]
    headers = {"HTTP_AUTHORIZATION": f"Token {args.key}"}
    path = f"/api/v1/inbound/{INBOUND_SLUG}/"
    cache_ops.counts.clear()
    codes: Counter = Counter()
    with _capture() as ctx:
        for ev in more[:200]:
            codes[
                client.post(path, data=json.dumps(ev), content_type="application/json", **headers).status_code
            ] += 1
    request_cache = cache_ops.take(200)
    request_queries = ctx.captured_queries
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for ev in more[200:400]:
        r = client.post(path, data=json.dumps(ev), content_type="application/json", **headers)
        assert r.status_code == 202, r.content
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    prof = cProfile.Profile(time.process_time)  # CPU time: where the web process's CPU goes
    prof.enable()
    for ev in more[400:600]:
        client.post(path, data=json.dumps(ev), content_type="application/json", **headers)
    prof.disable()
    out["inbound_request"] = {
        **_query_summary(request_queries, 200),
        "http_statuses": dict(codes),
        "wall_ms_per_request": round(wall * 1000 / 200, 3),
        "python_cpu_ms_per_request": round(cpu * 1000 / 200, 3),
        "cache_calls_per_unit": request_cache,
    }
    out["inbound_request_cprofile_cpu"] = _cprofile_top(prof, 40)
    print(json.dumps(out))


# --- Load clients (forked processes) ----------------------------------------------------------------

_CLIENT_WORK: list[list] = []  # set before forking: the requests of each client


def _client_main(index: int, port: int, key: str, go, results, pace, flow) -> None:
    """POST this client's requests.

    ``pace`` = (start time, interval between this client's sends) for an open-loop paced stream;
    ``flow`` = (sink port, phase, window, shared posted-events counter): wait while more than ``window``
    posted events are not yet at the sink (a bounded backlog, as a well-behaved sender keeps).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    work = _CLIENT_WORK[index]
    path = f"/api/v1/inbound/{INBOUND_SLUG}/"
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
        body = json.dumps(payload).encode()
        for _attempt in range(3):
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                resp.read()
                statuses[resp.status] += 1
                if resp.will_close:
                    conn.close()
                break
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
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
    port: int, key: str, work: list[list], pace_rate: float | None = None, flow: tuple | None = None
) -> dict:
    """Run one forked client per element of ``work``; returns merged figures."""
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
        p = ctx.Process(target=_client_main, args=(i, port, key, go, results, pace, flow), daemon=True)
        p.start()
        procs.append(p)
    _ACTIVE_CLIENTS.extend(procs)
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
        _ACTIVE_CLIENTS.clear()
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


_ACTIVE_CLIENTS: list = []

# --- Process management and sampling ----------------------------------------------------------------


class Sampler(threading.Thread):
    """Samples RSS and CPU time of process groups (leader + descendants) every ``interval`` seconds."""

    def __init__(self, groups: dict, interval: float) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.groups = groups  # name -> callable returning root pids (descendants are added)
        self.interval = interval
        self.lock = threading.Lock()
        self.cpu: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.peak: dict[str, int] = dict.fromkeys(groups, 0)
        self.series: dict[str, list[tuple[float, int]]] = {g: [] for g in groups}
        self.stop_event = threading.Event()

    def _procs(self, name: str) -> list:
        procs = []
        for pid in self.groups[name]():
            try:
                root = self.psutil.Process(pid)
                procs.append(root)
                procs.extend(root.children(recursive=True))
            except self.psutil.Error:
                continue
        return procs

    def sample(self) -> None:
        now = time.time()
        with self.lock:
            for name in self.groups:
                rss = 0
                for proc in self._procs(name):
                    try:
                        with proc.oneshot():
                            rss += proc.memory_info().rss
                            times = proc.cpu_times()
                            self.cpu[name][proc.pid] = times.user + times.system
                    except self.psutil.Error:
                        continue
                if name != "postgres":
                    self.series[name].append((now, rss))
                    self.peak[name] = max(self.peak[name], rss)

    def cpu_totals(self) -> dict[str, float]:
        self.sample()
        with self.lock:
            totals = {name: sum(per_pid.values()) for name, per_pid in self.cpu.items()}
        times = self.psutil.cpu_times()
        totals["_system_busy"] = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return totals

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            with contextlib.suppress(Exception):
                self.sample()


def pg_backend_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline", "name"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if cmd.startswith("postgres:") and f" {DB_NAME} " in cmd:
            pids.append(proc.pid)
    return pids


# --- The benchmark ----------------------------------------------------------------------------------


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def drop_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def flush_redis() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"crossdock-bench-{self.stamp}-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "SECRET_KEY": "bench-" + "x" * 40,
            "CROSSDOCK_ENCRYPTION_KEY": encryption_key(),
            "CROSSDOCK_ALLOW_PRIVATE_NETWORKS": "1",
            "CROSSDOCK_API_RATE": "100000000/min",
            "CROSSDOCK_INBOUND_RATE": "100000000/min",
            "CROSSDOCK_CACHE_PREFIX": "crossdock-bench",
            "CROSSDOCK_VAR_DIR": str(self.log_dir / "var"),
            "CROSSDOCK_LOG_LEVEL": args.log_level.upper(),
            "DJANGO_SETTINGS_MODULE": "hub.settings",
            "PYTHONUNBUFFERED": "1",
        }
        self.stack = Stack(self.env, self.log_dir)
        self.sampler: Sampler | None = None
        self.key = ""
        self.web_port = free_port()
        self.sink_port = free_port()
        self.next_ship = 0
        self.results: dict = {
            "started_at": self.stamp,
            "command": " ".join([Path(PY).name, *sys.argv]),
            "mode": "soak"
            if args.soak
            else "profile"
            if args.profile_only
            else "quick"
            if args.quick
            else "full",
            "config": {k: v for k, v in vars(args).items() if k != "func"},
            "machine": self.machine(),
            "code": self.code_version(),
            "phases": {},
            "log_dir": str(self.log_dir),
        }

    # -- setup --
    @staticmethod
    def machine() -> dict:
        import psutil

        return {
            "nproc": os.cpu_count(),
            "mem_total_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
        }

    @staticmethod
    def code_version() -> dict:
        def git(*cmd: str) -> str:
            out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
            return out.stdout.strip()

        return {
            "commit": git("rev-parse", "HEAD"),
            "modified_tracked_files": [
                line[3:] for line in git("status", "--porcelain").splitlines() if line[:2] != "??"
            ],
        }

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def manage(self, *cmd: str) -> str:
        out = subprocess.run(
            [PY, "manage.py", *cmd], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise RuntimeError(
                f"manage.py {' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
            )
        return out.stdout

    def internal(self, *cmd: str) -> dict:
        out = subprocess.run(
            [PY, str(Path(__file__).resolve()), *cmd],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        (self.log_dir / f"{cmd[0].strip('_')}.log").write_text(out.stdout + out.stderr)
        if out.returncode:
            raise RuntimeError(f"{cmd[0]} failed:\n{out.stderr[-4000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def alloc_shipments(self, n_unique: int) -> int:
        first = self.next_ship
        self.next_ship += shipments_needed(n_unique, self.args.per_shipment)
        return first

    def start_stack(self, shipments: int, services: bool = True) -> None:
        a = self.args
        self.log(f"logs in {self.log_dir}")
        (self.log_dir / "var" / "static").mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        recreate_database()
        flush_redis()
        self.manage("migrate", "--noinput", "--skip-checks")
        self.log(f"database {DB_NAME} recreated and migrated in {time.monotonic() - t0:.1f}s")
        self.stack.start("sink", [PY, str(Path(__file__).resolve()), "_sink", "--port", str(self.sink_port)])
        seeded = self.internal(
            "_seed", "--shipments", str(shipments), "--sink-url", f"http://127.0.0.1:{self.sink_port}/hook"
        )
        self.key = seeded["key"]
        self.log(f"seeded {seeded['shipments']} shipments in {seeded['seconds']}s")
        if not services:
            return
        self.stack.start("web", web_cmd(self.web_port, a.web_workers))
        for i in range(a.celery_workers):
            self.stack.start(f"celery-worker-{i}", worker_cmd(f"bench{i}", a.celery_concurrency, a.log_level))
        if a.beat:
            self.stack.start("celery-beat", beat_cmd(self.log_dir / "beat-schedule", a.log_level))
        deadline = time.monotonic() + 60
        while True:
            self.stack.check_alive()
            with contextlib.suppress(OSError, ValueError):
                if (
                    http_json(self.web_port, "/health/")[0] == 200
                    and http_json(self.sink_port, "/stats")[0] == 200
                ):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("web or sink not ready after 60 s")
            time.sleep(0.3)
        procs = self.stack.procs
        self.sampler = Sampler(
            {
                "web": lambda: [procs["web"].pid] if "web" in procs else [],
                "worker": lambda: [p.pid for n, p in list(procs.items()) if n.startswith("celery-worker")],
                "beat": lambda: [procs["celery-beat"].pid] if "celery-beat" in procs else [],
                "sink": lambda: [procs["sink"].pid] if "sink" in procs else [],
                "postgres": pg_backend_pids,
            },
            interval=a.sample_every,
        )
        self.sampler.start()
        self.log(f"stack up in {time.monotonic() - t0:.1f}s (web :{self.web_port}, sink :{self.sink_port})")

    def sink_stats(self) -> dict:
        return http_json(self.sink_port, "/stats")[1]

    def wait_delivered(self, phase: str, expected: int, stall_s: float) -> dict:
        """Wait until the sink holds ``expected`` unique events of ``phase`` or progress stalls."""
        last_count, last_change = -1, time.monotonic()
        while True:
            stats = self.sink_stats()["phases"].get(phase, {"unique": 0})
            if stats["unique"] >= expected:
                return stats
            if stats["unique"] != last_count:
                last_count, last_change = stats["unique"], time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                self.log(f"  {phase}: stalled at {stats['unique']}/{expected} for {stall_s:.0f}s; giving up")
                return stats
            self.stack.check_alive()
            time.sleep(0.2)

    # -- phases --
    def phase(
        self,
        name: str,
        n_events: int,
        batch: int,
        paused: bool = False,
        rate: float | None = None,
        window: int = 0,
        drain: bool = True,
    ) -> dict:
        a = self.args
        first_ship = self.alloc_shipments(n_events)
        stream = list(
            event_stream(
                name, first_ship, n_events, a.per_shipment, a.dup_rate, seed=zlib.crc32(name.encode())
            )
        )
        n_unique = sum(1 for _, dup in stream if not dup)
        events = [ev for ev, _ in stream]
        requests = [events[i : i + batch] for i in range(0, len(events), batch)] if batch > 1 else events
        k = a.paced_clients if rate else a.clients
        work = [requests[i::k] for i in range(k)]
        self.log(
            f"phase {name}: {len(events)} events ({n_unique} unique) in {len(requests)} requests from {k} clients"
            + (f", paced at {rate:.0f}/s" if rate else "")
            + (", workers paused" if paused else "")
            + (f", at most {window} events in flight" if window else "")
            + ("" if drain else ", not drained")
        )
        cpu0, load0 = self.sampler.cpu_totals(), os.getloadavg()
        if paused:
            time.sleep(1.5)  # let the last attempts of the previous phase commit before freezing
            self.stack.pause_workers()
        flow = (self.sink_port, name, window) if window else None
        client = run_clients(self.web_port, self.key, work, pace_rate=rate, flow=flow)
        cpu_ingest = self.sampler.cpu_totals()
        resumed_at = None
        if paused and drain:
            resumed_at = time.time()
            self.stack.resume_workers()
        sink = self.wait_delivered(name, n_unique, a.stall_seconds) if drain else {"unique": 0}
        cpu1, load1 = self.sampler.cpu_totals(), os.getloadavg()
        wall = client["last"] - client["first"]
        res = {
            "events_posted": len(events),
            "unique_events": n_unique,
            "duplicates_posted": len(events) - n_unique,
            "requests": len(requests),
            "batch_size": batch,
            "clients": k,
            "workers_paused_during_ingest": paused,
            "in_flight_window": window or None,
            "drained": drain,
            "http_statuses": client["statuses"],
            "http_errors": client["errors"],
            "http_ms": client["http_ms"],
            "ingest_wall_s": round(wall, 3),
            "ingest_req_s": round(len(requests) / wall, 1),
            "ingest_events_s": round(len(events) / wall, 1),
            "delivered_unique": sink["unique"],
            "missing": n_unique - sink["unique"] if drain else None,
            "redelivered_same_key": sink.get("redelivered_same_key", 0),
            "applied_twice": sink.get("applied_twice", 0),
            "loadavg_before": [round(x, 2) for x in load0],
            "loadavg_after": [round(x, 2) for x in load1],
        }
        if sink.get("last"):
            if paused:
                res["backlog_drain_s"] = round(sink["last"] - resumed_at, 3)
                res["backlog_drain_events_s"] = round(sink["unique"] / (sink["last"] - resumed_at), 1)
            else:
                res["e2e_s"] = round(sink["last"] - client["first"], 3)
                res["e2e_events_s"] = round(sink["unique"] / (sink["last"] - client["first"]), 1)
        if rate:
            lat = [x * 1000 for x in http_json(self.sink_port, f"/latencies?phase={name}")[1]]
            res.update(
                offered_rate=rate,
                achieved_send_rate=round(len(requests) / wall, 1),
                client_max_behind_s=round(client["max_behind_s"], 3),
                latency_ms={
                    "n": len(lat),
                    "p50": round(pct(lat, 50), 1) if lat else None,
                    "p95": round(pct(lat, 95), 1) if lat else None,
                    "p99": round(pct(lat, 99), 1) if lat else None,
                    "max": round(max(lat), 1) if lat else None,
                    "mean": round(statistics.fmean(lat), 1) if lat else None,
                },
            )
        res["cpu_s_ingest"] = self._cpu_delta(cpu0, cpu_ingest, client["client_cpu_s"], wall)
        res["cpu_s_total"] = self._cpu_delta(cpu0, cpu1, client["client_cpu_s"], None)
        n = max(1, sink["unique"] if drain else n_unique)
        tot = res["cpu_s_total"]
        res["cpu_ms_per_unique_event"] = {
            g: round(tot[g] * 1000 / n, 3) for g in ("web", "worker", "postgres", "sink", "beat")
        }
        res["web_cpu_ms_per_request_during_ingest"] = round(
            res["cpu_s_ingest"]["web"] * 1000 / len(requests), 3
        )
        self.results["phases"][name] = res
        self.log("  " + self._phase_line(name, res))
        return res

    def _cpu_delta(self, c0: dict, c1: dict, client_cpu: float, wall: float | None) -> dict:
        out = {g: round(c1.get(g, 0) - c0.get(g, 0), 2) for g in c1}
        out["clients"] = client_cpu
        busy = out.pop("_system_busy")
        ours = sum(v for g, v in out.items())
        out["other_processes_on_machine"] = round(max(0.0, busy - ours), 2)
        out["machine_busy"] = round(busy, 2)
        return out

    @staticmethod
    def _phase_line(name: str, r: dict) -> str:
        parts = [f"ingest {r['ingest_req_s']} req/s, {r['ingest_events_s']} events/s"]
        if "e2e_events_s" in r:
            parts.append(f"e2e {r['e2e_events_s']} events/s")
        if "backlog_drain_events_s" in r:
            parts.append(f"backlog drain {r['backlog_drain_events_s']} events/s")
        if "latency_ms" in r:
            lm = r["latency_ms"]
            parts.append(f"latency p50 {lm['p50']} p95 {lm['p95']} p99 {lm['p99']} ms")
        parts.append(f"delivered {r['delivered_unique']}/{r['unique_events']}")
        return "; ".join(parts)

    def run_main(self) -> None:
        a = self.args
        quick = a.quick
        n_batch = a.events or (1500 if quick else 6000)
        n_single = a.single_events or (400 if quick else 1500)
        latency_s = a.latency_seconds or (5 if quick else 10)
        plan = [
            dict(name="warmup", n_events=200, batch=50),
            dict(name="single", n_events=n_single, batch=1),
        ]
        if a.paused_phases:
            plan.append(dict(name="single_paused", n_events=n_single, batch=1, paused=True))
        plan += [
            dict(name="batch", n_events=n_batch, batch=a.batch_size, window=a.window),
            dict(name="latency_low", n_events=int(a.low_rate * latency_s * 2), batch=1, rate=a.low_rate),
            dict(name="latency", n_events=int(a.rate * latency_s), batch=1, rate=a.rate),
        ]
        if a.paused_phases:
            # Last: a burst of batches at full speed with the workers paused (the web tier alone).
            # Draining it is opt-in (--burst-drain): one claim takes up to 100 such messages, more work
            # than a drain task's time limit (see docs/benchmarks.md).
            plan.append(
                dict(
                    name="batch_burst",
                    n_events=a.burst_events or (5000 if quick else 30000),
                    batch=a.batch_size,
                    paused=True,
                    drain=a.burst_drain,
                )
            )
        if a.phases:
            wanted = set(a.phases.split(","))
            plan = [p for p in plan if p["name"] in wanted]
        total_shipments = sum(shipments_needed(p["n_events"], a.per_shipment) for p in plan)
        total_shipments += SHIPMENTS_PER_CHUNK * 2  # profile
        self.start_stack(total_shipments)
        for spec in plan:
            self.phase(**spec)
        self.finish_common()
        if a.profile:
            self.log("stopping web and workers for the profile (sink stays up)")
            self.stack.stop("celery")
            self.stack.stop("web")
            self.run_profile()

    def run_profile(self) -> None:
        first = self.alloc_shipments(SHIPMENTS_PER_CHUNK * self.args.per_shipment * 2)
        self.log("profiling the worker path in a Django process (CaptureQueriesContext + cProfile)")
        prof = self.internal("_profile", "--first-shipment", str(first), "--key", self.key)
        self.results["profile"] = prof
        (self.log_dir / "profile.json").write_text(json.dumps(prof, indent=1))
        for part in ("inbound_request", "inbox_single", "inbox_batch100", "outbox"):
            p = prof[part]
            self.log(f"  {part}: {p['queries_per_unit']} queries/unit, {p['by_kind_per_unit']}")

    def run_profile_only(self) -> None:
        self.start_stack(SHIPMENTS_PER_CHUNK * 2, services=False)
        self.run_profile()

    def finish_common(self) -> None:
        s = self.sink_stats()
        self.results["sink_totals"] = s
        phases = {k: v for k, v in self.results["phases"].items() if v.get("drained", True)}
        expected = sum(p["unique_events"] for p in phases.values())
        got = sum(p["delivered_unique"] for p in phases.values())
        self.results["exactly_once"] = {
            "expected_unique_events": expected,
            "delivered_unique_events": got,
            "missing": expected - got,
            "applied_twice_under_different_keys": sum(p["applied_twice"] for p in phases.values()),
            "redelivered_with_same_key": sum(p["redelivered_same_key"] for p in phases.values()),
            "out_of_sequence_per_shipment": s["out_of_order"],
            "sink_requests": s["requests"],
            "ok": expected == got and all(p["applied_twice"] == 0 for p in phases.values()),
        }
        time.sleep(2)  # let the last attempts commit (the sink counts a delivery before the worker does)
        self.results["db"] = self.internal("_dbstats")
        self.results["rss"] = self.rss_summary()
        self.results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    def rss_summary(self, since: float = 0.0) -> dict:
        """Peak RSS per group, and the median of the first vs the last quarter of the samples taken
        after ``since`` (growth_pct: how much the last quarter's median exceeds the first's)."""
        out = {}
        for g, series in self.sampler.series.items():
            values = [v for t, v in series if t >= since]
            if not values:
                continue
            q = max(1, len(values) // 4)
            first_q, last_q = statistics.median(values[:q]), statistics.median(values[-q:])
            out[g] = {
                "peak_mb": round(self.sampler.peak[g] / 2**20, 1),
                "first_quartile_median_mb": round(first_q / 2**20, 1),
                "last_quartile_median_mb": round(last_q / 2**20, 1),
                "growth_pct": round((last_q - first_q) / first_q * 100, 1) if first_q else None,
                "samples": len(values),
            }
        return out

    def run_soak(self) -> None:
        a = self.args
        n_total = a.soak
        first_ship = 0
        n_unique = round(n_total / (1 + a.dup_rate))
        self.start_stack(shipments_needed(n_unique, a.per_shipment) + SHIPMENTS_PER_CHUNK)
        self.phase("warmup", 200, 50)
        first_ship = self.alloc_shipments(n_unique)
        self.log(
            f"soak: up to {n_unique} unique events (+{a.dup_rate:.0%} duplicates) in batches of {a.batch_size}, "
            f"at most {a.window} in flight, for at most {a.max_seconds}s"
        )
        stream = event_stream("soak", first_ship, n_unique, a.per_shipment, a.dup_rate, seed=11)
        lock = threading.Lock()
        state = {"posted": 0, "posted_unique": 0, "delivered": 0, "errors": 0, "done": False, "first": None}
        stop = threading.Event()
        deadline = time.monotonic() + a.max_seconds

        def next_batch():
            with lock:
                batch, uniq = [], 0
                for ev, dup in stream:
                    batch.append(ev)
                    uniq += not dup
                    if len(batch) >= a.batch_size:
                        break
                state["posted_unique"] += uniq
                state["posted"] += len(batch)
                return batch

        def sender():
            conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=120)
            headers = {"Authorization": f"Token {self.key}", "Content-Type": "application/json"}
            while not stop.is_set():
                if state["posted_unique"] - state["delivered"] > a.window:
                    time.sleep(0.05)
                    continue
                batch = next_batch()
                if not batch:
                    return
                now = time.time()
                state["first"] = state["first"] or now
                for ev in batch:
                    ev["details"]["sent_at"] = now
                body = json.dumps(batch).encode()
                for _attempt in range(3):
                    try:
                        conn.request("POST", f"/api/v1/inbound/{INBOUND_SLUG}/", body, headers)
                        resp = conn.getresponse()
                        resp.read()
                        if resp.will_close:
                            conn.close()
                        if resp.status >= 300:
                            state["errors"] += 1
                        break
                    except (OSError, http.client.HTTPException):
                        state["errors"] += 1
                        conn.close()

        cpu0 = self.sampler.cpu_totals()
        threads = [threading.Thread(target=sender, daemon=True) for _ in range(a.clients)]
        t_start = time.time()
        for t in threads:
            t.start()
        progress: list[tuple[float, int]] = []
        last_log = 0.0
        while True:
            stats = self.sink_stats()["phases"].get("soak", {"unique": 0})
            state["delivered"] = stats["unique"]
            progress.append((time.time() - t_start, stats["unique"]))
            senders_done = not any(t.is_alive() for t in threads)
            if senders_done and stats["unique"] >= state["posted_unique"]:
                break
            if time.monotonic() > deadline:
                self.log("soak: max duration reached, stopping")
                break
            if time.monotonic() - last_log > 15:
                last_log = time.monotonic()
                rss = {g: round(s[-1][1] / 2**20) for g, s in self.sampler.series.items() if s}
                self.log(f"  soak: {stats['unique']} delivered, {state['posted']} posted, RSS MB {rss}")
            self.stack.check_alive()
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(10)
        # let what is in flight land (bounded), so the exactly-once figures are for a settled state
        settle = self.wait_delivered("soak", state["posted_unique"], min(30.0, a.stall_seconds))
        cpu1 = self.sampler.cpu_totals()
        elapsed = (settle.get("last") or time.time()) - (state["first"] or t_start)
        self.results["phases"]["soak"] = {
            "target_events": n_total,
            "events_posted": state["posted"],
            "unique_events": state["posted_unique"],
            "duplicates_posted": state["posted"] - state["posted_unique"],
            "delivered_unique": settle["unique"],
            "missing": state["posted_unique"] - settle["unique"],
            "redelivered_same_key": settle.get("redelivered_same_key", 0),
            "applied_twice": settle.get("applied_twice", 0),
            "http_errors": state["errors"],
            "e2e_s": round(elapsed, 1),
            "e2e_events_s": round(settle["unique"] / elapsed, 1) if elapsed > 0 else None,
            "reached_target": state["posted"] >= n_total,
            "cpu_s_total": self._cpu_delta(cpu0, cpu1, 0.0, None),
            "cpu_ms_per_unique_event": {
                g: round((cpu1.get(g, 0) - cpu0.get(g, 0)) * 1000 / max(1, settle["unique"]), 3)
                for g in ("web", "worker", "postgres", "sink", "beat")
            },
            "progress": progress[:: max(1, len(progress) // 200)],
        }
        self.finish_common()
        self.results["rss"] = self.rss_summary(since=t_start)
        self.results["rss_series_mb"] = {
            g: [(round(t - t_start, 1), round(v / 2**20, 1)) for t, v in s[:: max(1, len(s) // 300)]]
            for g, s in self.sampler.series.items()
        }
        # the sink is the benchmark's own and keeps every id by design: not part of the verdict
        flat = {
            g: r["growth_pct"] is not None and r["growth_pct"] <= 10
            for g, r in self.results["rss"].items()
            if g != "sink"
        }
        self.results["rss_flat"] = flat
        # a soak cut short by --max-seconds: the RSS trend per delivered event over the second half of
        # the soak (the first half holds the processes' warm-up), projected to N events
        rate = self.results["phases"]["soak"]["e2e_events_s"] or 0
        trend = {}
        for g, series in self.sampler.series.items():
            pts = [(t - t_start, v / 2**20) for t, v in series if t >= t_start]
            pts = pts[len(pts) // 2 :]
            if len(pts) < 6 or not rate:
                continue
            slope = statistics.linear_regression([x for x, _ in pts], [y for _, y in pts]).slope  # MB/s
            trend[g] = {
                "window_s": [round(pts[0][0], 1), round(pts[-1][0], 1)],
                "mb_per_100k_events": round(slope / rate * 100_000, 2),
                f"projected_growth_mb_over_{n_total}_events": round(slope / rate * n_total, 1),
            }
        self.results["rss_trend"] = trend

    def cleanup(self) -> None:
        if self.sampler:
            self.sampler.stop_event.set()
        for p in list(_ACTIVE_CLIENTS):
            with contextlib.suppress(Exception):
                p.terminate()
        self.stack.stop()
        with contextlib.suppress(Exception):
            flush_redis()
        if not self.args.keep_db:
            with contextlib.suppress(Exception):
                drop_database()

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.stamp}.json"
        path.write_text(json.dumps(self.results, indent=1, default=str))
        return path

    def table(self) -> str:
        r = self.results
        ph = r["phases"]
        rows = []

        def row(name, target, value, ok):
            mark = "" if ok is None else ("yes" if ok else "NO")
            rows.append((name, target, "-" if value is None else str(value), mark))

        if "single" in ph:
            v = ph["single"]["ingest_req_s"]
            row("single-event ingest, req/s (workers running)", ">= 1,500", v, v >= 1500)
        if "single_paused" in ph:
            v = ph["single_paused"]["ingest_req_s"]
            row("single-event ingest, req/s (workers paused)", ">= 1,500", v, v >= 1500)
        if "batch_burst" in ph:
            v = ph["batch_burst"]["ingest_events_s"]
            row("batched ingest, events/s (burst, workers paused)", ">= 20,000", v, v >= 20000)
        for name in ("single", "batch", "soak"):
            if name in ph and ph[name].get("e2e_events_s") is not None:
                v = ph[name]["e2e_events_s"]
                row(f"end-to-end events/s ({name})", ">= 1,000", v, v >= 1000)
        for name in ("single_paused", "batch_burst"):
            if name in ph and ph[name].get("backlog_drain_events_s") is not None:
                row(
                    f"backlog drain events/s, workers alone ({name})",
                    "-",
                    ph[name]["backlog_drain_events_s"],
                    None,
                )
        for name in ("latency_low", "latency"):
            if name not in ph:
                continue
            lm = ph[name]["latency_ms"]
            row(
                f"latency p50/p95/p99 ms, offered {ph[name]['offered_rate']:.0f}/s, "
                f"sent {ph[name]['achieved_send_rate']}/s",
                "p95 <= 250 at 200/s",
                f"{lm['p50']} / {lm['p95']} / {lm['p99']}",
                lm["p95"] is not None and lm["p95"] <= 250 if name == "latency" else None,
            )
            st = r.get("db", {}).get("stage_latency_ms", {}).get(name)
            if st:
                row(
                    f"  split p50 (p95) ms: web / inbox / outbox ({name})",
                    "-",
                    f"{st['web_p50']} ({st['web_p95']}) / {st['inbox_p50']} ({st['inbox_p95']}) / "
                    f"{st['outbox_p50']} ({st['outbox_p95']})",
                    None,
                )
        if "soak" in ph:
            sk = ph["soak"]
            row(
                "soak: events streamed (unique delivered) in the time bound",
                f"{sk['target_events']:,}",
                f"{sk['events_posted']:,} ({sk['delivered_unique']:,}) in {sk['e2e_s']}s",
                sk["reached_target"],
            )
            for g, tr in r.get("rss_trend", {}).items():
                if g in ("web", "worker"):
                    row(f"soak RSS {g} trend, MB per 100k events", "~0", tr["mb_per_100k_events"], None)
            for g, flat in r.get("rss_flat", {}).items():
                m = r["rss"][g]
                row(
                    f"soak RSS {g} flat (first vs last quartile median MB)",
                    "flat (<= 10%)",
                    f"{m['first_quartile_median_mb']} -> {m['last_quartile_median_mb']} ({m['growth_pct']}%)",
                    flat,
                )
        for g, m in r.get("rss", {}).items() if "soak" not in ph else ():
            row(
                f"RSS {g}: peak MB (growth first->last quartile)",
                "flat",
                f"{m['peak_mb']} ({m['growth_pct']}%)",
                None,
            )
        for name in ("single", "batch", "soak"):
            if name in ph and "cpu_ms_per_unique_event" in ph[name]:
                c = ph[name]["cpu_ms_per_unique_event"]
                row(
                    f"CPU ms per event, worker / web / postgres ({name})",
                    "-",
                    f"{c['worker']} / {c['web']} / {c['postgres']}",
                    None,
                )
        eo = r.get("exactly_once", {})
        row(
            "sink got every unique event exactly once",
            "yes",
            f"{eo.get('delivered_unique_events')}/{eo.get('expected_unique_events')}, twice-applied "
            f"{eo.get('applied_twice_under_different_keys')}, same-key redeliveries {eo.get('redelivered_with_same_key')}",
            eo.get("ok"),
        )
        widths = [
            max(len(str(x[i])) for x in [*rows, ("figure", "target", "measured", "met")]) for i in range(4)
        ]
        lines = [
            "  ".join(
                str(c).ljust(w) for c, w in zip(("figure", "target", "measured", "met"), widths, strict=True)
            )
        ]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(x, widths, strict=True)) for x in rows]
        return "\n".join(lines)


def cmd_run(args) -> int:
    bench = Bench(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    code = 0
    try:
        if args.soak:
            bench.run_soak()
        elif args.profile_only:
            bench.run_profile_only()
        else:
            bench.run_main()
    except KeyboardInterrupt:
        bench.log("interrupted: cleaning up")
        bench.results["error"] = "interrupted"
        code = 130
    except Exception as exc:
        bench.log(f"failed: {type(exc).__name__}: {exc}")
        bench.results["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    finally:
        bench.cleanup()
    path = bench.write()
    if bench.results.get("phases"):
        print()
        print(bench.table())
    print(f"\nresults: {path.relative_to(ROOT)}\nlogs: {bench.log_dir}")
    if code == 0 and bench.results.get("exactly_once", {}).get("ok") is False:
        code = 2  # the run completed but the sink did not get every unique event exactly once
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        sub = argparse.ArgumentParser()
        sub.add_argument("cmd")
        sub.add_argument("--port", type=int, default=0)
        sub.add_argument("--shipments", type=int, default=0)
        sub.add_argument("--sink-url", default="")
        sub.add_argument("--first-shipment", type=int, default=0)
        sub.add_argument("--key", default="")
        ns = sub.parse_args(argv)
        {
            "_sink": lambda: sink_serve(ns.port),
            "_seed": lambda: cmd_seed(ns),
            "_dbstats": lambda: cmd_dbstats(ns),
            "_profile": lambda: cmd_profile(ns),
        }[ns.cmd]()
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--events", type=int, default=0, help="events in the batch phase (default 6000, quick 1500)"
    )
    p.add_argument(
        "--single-events", type=int, default=0, help="events in each single-event phase (1500, quick 400)"
    )
    p.add_argument("--quick", action="store_true", help="a small run (~3 minutes on 2 cores)")
    p.add_argument("--clients", type=int, default=4, help="concurrent client processes (soak: threads)")
    p.add_argument("--batch-size", type=int, default=250, help="events per request in batched phases")
    p.add_argument("--per-shipment", type=int, default=10, help="milestones per shipment")
    p.add_argument("--dup-rate", type=float, default=0.05, help="share of events re-sent as duplicates")
    p.add_argument("--rate", type=float, default=200.0, help="offered events/s in the latency phase")
    p.add_argument(
        "--latency-seconds",
        type=float,
        default=0,
        help="latency phase length in seconds (10, quick 5; latency_low runs twice as long)",
    )
    p.add_argument("--paced-clients", type=int, default=2, help="client processes in the latency phase")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers")
    p.add_argument(
        "--celery-workers", type=int, default=1, help="celery worker processes (each with children)"
    )
    p.add_argument("--celery-concurrency", type=int, default=2, help="prefork children per celery worker")
    p.add_argument(
        "--no-beat", dest="beat", action="store_false", help="do not run celery beat (the sweeper)"
    )
    p.add_argument(
        "--no-paused-phases",
        dest="paused_phases",
        action="store_false",
        help="skip single_paused and batch_burst",
    )
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profile phase")
    p.add_argument("--profile-only", action="store_true", help="only seed the database and run the profile")
    p.add_argument(
        "--window",
        type=int,
        default=1000,
        help="batch and soak phases: max events posted but not yet delivered",
    )
    p.add_argument("--low-rate", type=float, default=20.0, help="offered events/s of the latency_low phase")
    p.add_argument("--burst-events", type=int, default=0, help="events in batch_burst (30000, quick 5000)")
    p.add_argument(
        "--phases",
        default="",
        help="comma-separated subset of warmup,single,single_paused,batch,latency_low,latency,batch_burst",
    )
    p.add_argument(
        "--burst-drain",
        action="store_true",
        help="resume the workers after batch_burst and wait for its delivery (reproduces the drain bug)",
    )
    p.add_argument("--soak", type=int, default=0, metavar="N", help="soak mode: stream N events (batched)")
    p.add_argument(
        "--max-seconds", type=float, default=600, help="soak: stop streaming after this many seconds"
    )
    p.add_argument("--sample-every", type=float, default=0.5, help="seconds between RSS/CPU samples")
    p.add_argument(
        "--stall-seconds", type=float, default=90, help="give up waiting after this long without progress"
    )
    p.add_argument("--log-level", default="info", help="log level of web and workers")
    p.add_argument("--keep-db", action="store_true", help=f"keep database {DB_NAME} after the run")
    args = p.parse_args(argv)
    if args.soak and args.sample_every == 0.5:
        args.sample_every = 5.0
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
