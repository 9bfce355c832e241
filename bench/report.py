"""What a pipeline benchmark run reports: figures from its database, CPU and RSS, and the table.

``cmd_dbstats`` runs in a Django process on the benchmark's database (``bench/pipeline.py _dbstats``);
the rest works on the run's results and samples.
"""

from __future__ import annotations

import json
import statistics

from bench.sampler import Sampler
from bench.seed import django_setup

TARGETS = {
    "single_ingest_req_s": 1500,
    "e2e_events_s": 1000,
    "batch_ingest_events_s": 20000,
    "p95_ms_at_200": 250,
}


def cmd_dbstats(args) -> None:
    django_setup()
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


def cpu_delta(c0: dict, c1: dict, client_cpu: float, wall: float | None) -> dict:
    """CPU seconds per group between two ``Sampler.cpu_totals``, with the clients' and the rest of
    the machine's."""
    out = {g: round(c1.get(g, 0) - c0.get(g, 0), 2) for g in c1}
    out["clients"] = client_cpu
    busy = out.pop("_system_busy")
    ours = sum(v for g, v in out.items())
    out["other_processes_on_machine"] = round(max(0.0, busy - ours), 2)
    out["machine_busy"] = round(busy, 2)
    return out


def phase_line(name: str, r: dict) -> str:
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


def rss_summary(sampler: Sampler, since: float = 0.0) -> dict:
    """Peak RSS per group, and the median of the first vs the last quarter of the samples taken
    after ``since`` (growth_pct: how much the last quarter's median exceeds the first's)."""
    out = {}
    for g, series in sampler.series.items():
        values = [v for t, v in series if t >= since]
        if not values:
            continue
        q = max(1, len(values) // 4)
        first_q, last_q = statistics.median(values[:q]), statistics.median(values[-q:])
        out[g] = {
            "peak_mb": round(sampler.peak[g] / 2**20, 1),
            "first_quartile_median_mb": round(first_q / 2**20, 1),
            "last_quartile_median_mb": round(last_q / 2**20, 1),
            "growth_pct": round((last_q - first_q) / first_q * 100, 1) if first_q else None,
            "samples": len(values),
        }
    return out


def table(results: dict) -> str:
    """The figures against their targets, as printed at the end of a run."""
    r = results
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
    return render(rows)


def render(rows: list[tuple]) -> str:
    """Rows of (figure, target, measured, met) as an aligned text table."""
    header = ("figure", "target", "measured", "met")
    widths = [max(len(str(x[i])) for x in [*rows, header]) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(x, widths, strict=True)) for x in rows]
    return "\n".join(lines)
