"""The reconciliation benchmark: ``shipment_status`` over N hub shipments against a fake Karrio.

    .venv/bin/python bench/reconcile.py [--shipments N] [--quick] [--seed S] [--keep-db]

What it does (all on 127.0.0.1):
- drops and recreates its own database ``crossdock_rbench`` and migrates it (Redis db 15 is the
  broker the run's queued task is sent to; no worker takes it, and the db is flushed at the end);
- generates a data set from ``--seed``: shipment ``i`` is booked in the TMS as ``shp_rb<i>`` with
  tracker ``trk_rb<i>`` (picked up, then in transit); the hub holds the same two milestones under the
  dedupe keys Karrio's webhook would have given them, and status IN_TRANSIT. Drift, chosen by the
  seed: 1 % of trackers also hold an ``out_for_delivery`` event the hub lacks, 0.5 % of shipments are
  cancelled in the TMS only (both ``missed_milestone``), 0.5 % are DELIVERED in the hub (a partner's
  POD: ahead of the TMS, not a discrepancy) and 0.1 % are gone from the TMS (``not_in_tms``);
- bulk-creates the hub's shipments, TMS refs and timelines, a ``karrio`` TMS connection pointing at
  the fake, and the check's options (that connection, ``crm: false``: the check's existing option to
  leave the CRM side out, so only the hub and the TMS are compared);
- starts the fake Karrio in its own process (``_karrio``): ``GET /v1/shipments?id=...``,
  ``GET /v1/shipments/<id>`` and ``GET /v1/trackers/<id>``, answered from the same data set;
- runs the check in this process as the worker would (``services.run_start`` + ``run_execute``),
  sampling this process's RSS (alone, psutil) and the fake's;
- compares the open discrepancies with the generated truth: the same keys, every one
  ``missed_milestone``, ``not_in_tms`` and the number examined as generated.

Results: a table on stdout and JSON in var/reports/reconcile-<timestamp>.json. Exit status: 0, 1 (the
run failed), 2 (the discrepancies do not match the generated truth), 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo root

from bench.report import render
from bench.runner import Bench, drop_database, flush_redis, recreate_database, run_reported
from bench.sampler import Sampler
from bench.seed import django_setup
from bench.sink import JSONHandler, listen
from bench.stack import PY, ROOT, Stack, encryption_key, free_port, hub_env, manage

DB_NAME = "crossdock_rbench"
REDIS_DB = 15
REPORTS_DIR = ROOT / "var" / "reports"
TMS_SLUG = "rbench-tms"
CHECK = "shipment_status"
TARGET_S = 120.0  # 100k shipments reconciled in under 2 minutes
TARGET_RSS_MB = 300.0
MISSED_SHARE, CANCELLED_SHARE, AHEAD_SHARE, GONE_SHARE = 0.01, 0.005, 0.005, 0.001
T0 = datetime(2030, 3, 1, 10, 0, tzinfo=UTC)


# --- The generated data set (the same in this process and in the fake) ------------------------------


class DataSet:
    """Shipment ``i`` of ``n``, in the hub and in the TMS, and where they disagree (the truth)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        drifting = random.Random(seed).sample(
            range(n),
            int(n * MISSED_SHARE) + int(n * CANCELLED_SHARE) + int(n * AHEAD_SHARE) + int(n * GONE_SHARE),
        )
        cut = [int(n * MISSED_SHARE), int(n * CANCELLED_SHARE), int(n * AHEAD_SHARE)]
        self.missed = frozenset(drifting[: cut[0]])
        self.cancelled = frozenset(drifting[cut[0] : cut[0] + cut[1]])
        self.ahead = frozenset(drifting[cut[0] + cut[1] : sum(cut)])
        self.gone = frozenset(drifting[sum(cut) :])

    @staticmethod
    def reference(i: int) -> str:
        return f"RB-{i:07d}"

    @staticmethod
    def shipment_id(i: int) -> str:
        return f"shp_rb{i:07d}"

    @staticmethod
    def tracker_id(i: int) -> str:
        return f"trk_rb{i:07d}"

    @staticmethod
    def index(external_id: str) -> int:
        """The shipment of a TMS id, or -1 for an id not of this data set."""
        digits = external_id[6:]
        return int(digits) if external_id[:6] in ("shp_rb", "trk_rb") and digits.isdigit() else -1

    def tracker_events(self, i: int) -> list[dict]:
        """Karrio's tracking events, newest first: (status, code, days after T0)."""
        steps = [("picked_up", "PU", 0), ("in_transit", "IT", 1)]
        if i in self.missed:
            steps.append(("out_for_delivery", "OFD", 2))
        return [
            {
                "status": status,
                "code": code,
                "description": status.replace("_", " "),
                "timestamp": (T0 + timedelta(days=day, minutes=i % 1440)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "location": "MONTREAL QC",
            }
            for status, code, day in reversed(steps)
        ]

    def hub_event_keys(self, i: int) -> list[tuple[str, str, datetime]]:
        """(dedupe key, event type, time) of the milestones the hub holds: the ones Karrio's webhook
        gave it (semantic_key of the mapped event: ``id:<connection>:<tracker>/<timestamp>/<code>``)."""
        out = []
        for event in self.tracker_events(i):
            if event["code"] == "OFD":
                continue  # the webhook that never reached the hub
            event_type = {"PU": "DEPARTED_PICKUP", "IT": "IN_TRANSIT"}[event["code"]]
            key = f"id:{TMS_SLUG}:{self.tracker_id(i)}/{event['timestamp']}/{event['code']}"
            out.append((key, event_type, datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))))
        return out

    def shipment(self, i: int) -> dict | None:
        if i in self.gone or not 0 <= i < self.n:
            return None
        return {
            "id": self.shipment_id(i),
            "object_type": "shipment",
            "status": "cancelled" if i in self.cancelled else "in_transit",
            "reference": self.reference(i),
            "tracking_number": f"RB{i:010d}",
            "tracker_id": self.tracker_id(i),
            "service": "offline_standard",
            "carrier_name": "offline",
            "created_at": T0.isoformat(),
            "metadata": {},
        }

    def tracker(self, i: int) -> dict | None:
        if i in self.gone or not 0 <= i < self.n:
            return None
        events = self.tracker_events(i)
        return {
            "id": self.tracker_id(i),
            "object_type": "tracker",
            "tracking_number": f"RB{i:010d}",
            "carrier_name": "offline",
            "carrier_id": "offline",
            "status": events[0]["status"],
            "events": events,
            "delivered": False,
            "metadata": {"crossdock_reference": self.reference(i)},
        }

    def expected(self) -> dict:
        return {
            "discrepancies": sorted(self.reference(i) for i in self.missed | self.cancelled),
            "not_in_tms": len(self.gone),
            "delivered_in_hub_only": len(self.ahead),  # ahead of the TMS: must not be discrepancies
            "examined": self.n - len(self.gone),
        }


# --- The fake Karrio (its own process) ---------------------------------------------------------------


def fake_karrio_serve(port: int, n: int, seed: int) -> None:
    data = DataSet(n, seed)

    class Handler(JSONHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            segments = [unquote(s) for s in parts.path.strip("/").split("/")]
            if segments == ["v1", "shipments"]:
                query = parse_qs(parts.query)
                ids = [i for value in query.get("id", []) for i in value.split(",") if i]
                found = [data.shipment(DataSet.index(i)) for i in ids]
                results = [s for s in found if s is not None]
                body = {"count": len(results), "next": None, "previous": None, "results": results}
                return self._reply(200, json.dumps(body).encode())
            if len(segments) == 3 and segments[:2] == ["v1", "shipments"]:
                record = data.shipment(DataSet.index(segments[2]))
            elif len(segments) == 3 and segments[:2] == ["v1", "trackers"]:
                record = data.tracker(DataSet.index(segments[2]))
            else:
                return self._reply(404, b'{"errors": [{"code": "not_found", "message": "no such path"}]}')
            if record is None:
                return self._reply(404, b'{"errors": [{"code": "not_found", "message": "Not found"}]}')
            return self._reply(200, json.dumps(record).encode())

    listen(port, Handler).serve_forever()


# --- Seeding (this process, Django set up) -----------------------------------------------------------


def seed(data: DataSet, karrio_url: str, options: dict) -> dict:
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from canonical.models import ExternalRef, Shipment, ShipmentEvent
    from hub.connections.services import connection_save
    from reconciliation.services import check_config

    started = time.monotonic()
    connection_save(
        data={
            "slug": TMS_SLUG,
            "system": "tms",
            "connector": "karrio",
            "config": {
                "url": karrio_url,
                "carrier_id": "offline",
                "service": "offline_standard",
                "shipper": {
                    "person_name": "Dock 4",
                    "address_line1": "1 Dock St",
                    "city": "Montreal",
                    "postal_code": "H2B1A0",
                    "country_code": "CA",
                },
            },
        },
        secret=json.dumps({"api_key": "key_rbench", "webhook_secret": "whsec_rbench"}),
    )
    config = check_config(CHECK)
    config.options = {"connections": {"tms": TMS_SLUG}, "crm": False, **options}
    config.save()
    content_type = ContentType.objects.get_for_model(Shipment)
    chunk = 5000
    for first in range(0, data.n, chunk):
        indexes = range(first, min(data.n, first + chunk))
        shipments = Shipment.objects.bulk_create(
            [
                Shipment(
                    reference=data.reference(i),
                    status="DELIVERED" if i in data.ahead else "IN_TRANSIT",
                    mode="TL",
                )
                for i in indexes
            ]
        )
        ExternalRef.objects.bulk_create(
            [
                ExternalRef(
                    system="karrio",
                    entity="shipment",
                    external_id=data.shipment_id(i),
                    content_type=content_type,
                    object_id=shipment.pk,
                )
                for i, shipment in zip(indexes, shipments, strict=True)
            ]
        )
        ShipmentEvent.objects.bulk_create(
            [
                ShipmentEvent(
                    shipment=shipment,
                    event_type=event_type,
                    occurred_at=occurred_at,
                    source_system=TMS_SLUG,
                    source_event_id=key.split(":", 2)[2],
                    dedupe_key=key,
                )
                for i, shipment in zip(indexes, shipments, strict=True)
                for key, event_type, occurred_at in data.hub_event_keys(i)
            ]
        )
    # changed an hour ago: past the check's grace, within its window for the delivered ones
    Shipment.objects.update(updated_at=datetime.now(UTC) - timedelta(hours=1))
    with connection.cursor() as cursor:  # what autovacuum does after a bulk load
        cursor.execute("ANALYZE")
    return {"seconds": round(time.monotonic() - started, 1)}


# --- The run -----------------------------------------------------------------------------------------


class ReconcileBench:
    def __init__(self, args) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"crossdock-rbench-{self.stamp}-"))
        self.env = hub_env(
            dict(os.environ),
            "rbench",
            database_url=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
            encryption_key=encryption_key(),
            var_dir=self.log_dir / "var",
            log_level="WARNING",
        )
        self.stack = Stack(self.env, self.log_dir)
        self.sampler: Sampler | None = None
        self.results: dict = {
            "started_at": self.stamp,
            "command": " ".join([Path(PY).name, *sys.argv]),
            "mode": "quick" if args.quick else "full",
            "config": vars(args),
            "machine": Bench.machine(),
            "code": Bench.code_version(),
            "log_dir": str(self.log_dir),
        }

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def run(self) -> None:
        args = self.args
        data = DataSet(args.shipments, args.seed)
        self.log(f"database {DB_NAME}: recreate and migrate")
        recreate_database(DB_NAME)
        flush_redis(REDIS_DB)
        manage(self.env, "migrate", "--noinput")
        port = free_port()
        self.stack.start(
            "karrio",
            [PY, str(Path(__file__).resolve()), "_karrio", "--port", str(port),
             "--shipments", str(args.shipments), "--seed", str(args.seed)],
        )  # fmt: skip
        os.environ.update(self.env)
        django_setup()
        from django.db import connection

        from reconciliation import services
        from reconciliation.models import Discrepancy

        self.log(f"seeding {args.shipments:,} shipments")
        options = {"tms_concurrency": args.tms_concurrency} if args.tms_concurrency else {}
        self.results["seed"] = seed(data, f"http://127.0.0.1:{port}", options)
        self.stack.check_alive()
        connection.close()  # the run opens its own, as a worker's task would
        self.sampler = Sampler(
            {"bench": lambda: [os.getpid()], "karrio_fake": lambda: [self.stack.procs["karrio"].pid]},
            args.sample_every,
            alone=frozenset({"bench"}),
        )
        self.sampler.sample()
        rss_before = self.sampler.peak["bench"]
        self.sampler.start()
        cpu0 = self.sampler.cpu_totals()
        self.log(f"running {CHECK}")
        started = time.monotonic()
        run = services.run_start(check=CHECK, actor="bench:reconcile")
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            run = profiler.runcall(services.run_execute, run_id=run.pk)
            listing = self.log_dir / "profile.txt"
            with listing.open("w") as out:
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
            self.results["profile"] = str(listing)
        else:
            run = services.run_execute(run_id=run.pk)
        wall = time.monotonic() - started
        cpu1 = self.sampler.cpu_totals()
        self.sampler.stop_event.set()
        self.sampler.join(5)
        self.stack.check_alive()
        found = dict(
            Discrepancy.objects.filter(check_name=CHECK, status__in=Discrepancy.OPEN_STATUSES).values_list(
                "business_key", "kind"
            )
        )
        expected = data.expected()
        totals = (run.report or {}).get("totals", {})
        correct = {
            "same_keys": sorted(found) == expected["discrepancies"],
            "all_missed_milestone": set(found.values()) <= {"missed_milestone"},
            "not_in_tms": totals.get("not_in_tms", 0) == expected["not_in_tms"],
            "examined": run.examined == expected["examined"],
        }
        self.results["run"] = {
            "status": run.status,
            "error": run.error,
            "examined": run.examined,
            "ok": run.ok,
            "new": run.new,
            "totals": totals,
            "wall_s": round(wall, 2),
            "records_per_s": round(args.shipments / wall, 1),
            "cpu_s": {g: round(cpu1[g] - cpu0[g], 2) for g in ("bench", "karrio_fake")},
        }
        self.results["rss_mb"] = {
            "bench_before_run": round(rss_before / 2**20, 1),
            "bench_peak": round(self.sampler.peak["bench"] / 2**20, 1),
            "karrio_fake_peak": round(self.sampler.peak["karrio_fake"] / 2**20, 1),
        }
        self.results["correctness"] = {
            "ok": all(correct.values()) and run.status == "succeeded",
            "checks": correct,
            "expected_discrepancies": len(expected["discrepancies"]),
            "found_discrepancies": len(found),
            "missing": sorted(set(expected["discrepancies"]) - set(found))[:10],
            "unexpected": sorted(set(found) - set(expected["discrepancies"]))[:10],
            "expected_totals": {k: v for k, v in expected.items() if k != "discrepancies"},
        }

    def cleanup(self) -> None:
        if self.sampler:
            self.sampler.stop_event.set()
        self.stack.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            flush_redis(REDIS_DB)
        if not self.args.keep_db:
            with contextlib.suppress(Exception):
                drop_database(DB_NAME)

    def write(self) -> Path:
        REPORTS_DIR.mkdir(parents=True, exist_ok=True)
        path = REPORTS_DIR / f"reconcile-{self.stamp}.json"
        path.write_text(json.dumps(self.results, indent=1, default=str))
        return path

    def table(self) -> str:
        r, rss, ok = (
            self.results.get("run", {}),
            self.results.get("rss_mb", {}),
            self.results.get("correctness", {}),
        )
        n = self.args.shipments
        rows = [
            (f"{CHECK}: {n:,} shipments, wall s", f"< {TARGET_S:.0f} for 100k", r.get("wall_s"),
             r.get("wall_s", 1e9) * 100_000 / n < TARGET_S if r else None),
            ("records/s", f">= {100_000 / TARGET_S:.0f}", r.get("records_per_s"), None),
            ("peak RSS of the run's process, MB (before the run)", f"< {TARGET_RSS_MB:.0f}",
             f"{rss.get('bench_peak')} ({rss.get('bench_before_run')})",
             rss.get("bench_peak", 1e9) < TARGET_RSS_MB if rss else None),
            ("peak RSS of the fake Karrio, MB", "-", rss.get("karrio_fake_peak"), None),
            ("CPU s: run's process / fake Karrio", "-",
             f"{r.get('cpu_s', {}).get('bench')} / {r.get('cpu_s', {}).get('karrio_fake')}", None),
            ("discrepancies found = generated truth", "exact",
             f"{ok.get('found_discrepancies')}/{ok.get('expected_discrepancies')}, "
             f"not_in_tms {r.get('totals', {}).get('not_in_tms', 0)}, "
             f"delivered in the hub only {len(DataSet(n, self.args.seed).ahead)} (none reported)", ok.get("ok")),
        ]  # fmt: skip
        return render([(*row[:3], "" if row[3] is None else "yes" if row[3] else "NO") for row in rows])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", nargs="?", default="run", help=argparse.SUPPRESS)  # _karrio: the fake (internal)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--shipments", type=int, default=0, help="hub shipments (default 100000, quick 10000)")
    p.add_argument("--quick", action="store_true", help="10,000 shipments")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data set")
    p.add_argument("--sample-every", type=float, default=0.2, help="seconds between RSS samples")
    p.add_argument(
        "--tms-concurrency", type=int, default=0, help="the check's tms_concurrency (default: its own)"
    )
    p.add_argument("--profile", action="store_true", help="cProfile the run (listing in the log dir)")
    p.add_argument("--keep-db", action="store_true", help=f"keep database {DB_NAME} after the run")
    args = p.parse_args(argv)
    args.shipments = args.shipments or (10_000 if args.quick else 100_000)
    if args.cmd == "_karrio":
        fake_karrio_serve(args.port, args.shipments, args.seed)
        return 0
    bench = ReconcileBench(args)
    code, path = run_reported(bench, bench.run)
    if bench.results.get("run"):
        print()
        print(bench.table())
    print(f"\nresults: {path.relative_to(ROOT)}\nlogs: {bench.log_dir}")
    if code == 0 and not bench.results.get("correctness", {}).get("ok"):
        code = 2
    return code


if __name__ == "__main__":
    sys.exit(main())
