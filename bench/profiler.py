"""Per-event cost of the hub's paths, measured in a Django process on the benchmark's database.

``bench/pipeline.py _profile`` (run by the benchmark after web and workers stop, its sink still up):
queries per message/event/delivery/request by kind and statement (CaptureQueriesContext), Redis
calls, wall and CPU time, and cProfile listings of the inbox worker (single-event and 100-event
messages), the outbox sender and the inbound request.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from datetime import timedelta

from bench.load import SHIPMENTS_PER_CHUNK, event_stream, shipment_ref
from bench.runner import INBOUND_SLUG, SCAC
from bench.seed import django_setup


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
    django_setup()
    import cProfile

    from django.test import Client
    from django.utils import timezone

    from canonical.models import Carrier, Shipment
    from hub.connections.models import Connection
    from hub.core import work
    from hub.inbox import services as inbox
    from hub.inbox.models import InboundMessage
    from hub.outbox import services as outbox

    work.sender_set(lambda *_: None)  # no broker traffic: this process calls the services itself
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
