"""The pipeline benchmark's run: the stack it starts, its phases, the soak and the profile step.

``Bench`` drops and recreates its own database on the machine's PostgreSQL, flushes its own Redis
db, starts the hub's processes and its sink (``bench/stack.py``), drives them with forked clients
(``bench/load.py``), samples RSS and CPU (``bench/sampler.py``) and collects the figures that
``bench/report.py`` prints. See bench/pipeline.py for the phases and options.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from bench.load import (
    ACTIVE_CLIENTS,
    SHIPMENTS_PER_CHUNK,
    event_stream,
    pct,
    post_retrying,
    run_clients,
    shipments_needed,
)
from bench.report import cpu_delta, phase_line, rss_summary
from bench.sampler import Sampler, pg_backend_pids
from bench.seed import django_setup, seed_hub
from bench.stack import (
    PY,
    ROOT,
    Stack,
    beat_cmd,
    encryption_key,
    free_port,
    http_json,
    hub_env,
    manage,
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
INBOUND_PATH = f"/api/v1/inbound/{INBOUND_SLUG}/"
PIPELINE = Path(__file__).resolve().parent / "pipeline.py"  # the entry point; runs the ``_`` subcommands


def cmd_seed(args) -> None:
    """``_seed``: the admin client, carrier, inbound connection, the sink's webhook connection and
    ``--shipments`` shipments (Django, on the benchmark's database)."""
    django_setup()
    from hub.connections.models import Connection

    for module in ("hub.connections.services", "hub.core.services"):
        importlib.import_module(module)  # before the clock starts: the seconds are the seeding's alone

    started = time.monotonic()
    key = seed_hub(
        admin="bench-admin",
        scac=SCAC,
        carrier_name="Bench Freight",
        inbound_slug=INBOUND_SLUG,
        receivers=[
            (
                SINK_SLUG,
                {"url": args.sink_url, "max_attempts": 8, "backoff_base_s": 1, "timeout_s": 10},
                "bench-webhook-secret",
            )
        ],
        shipments=args.shipments,
    )
    assert Connection.objects.filter(slug=INBOUND_SLUG).exists()
    print(
        json.dumps({"key": key, "shipments": args.shipments, "seconds": round(time.monotonic() - started, 2)})
    )


def run_reported(bench, step) -> tuple[int, Path]:
    """Run a benchmark's ``step`` with SIGTERM/SIGHUP as an interrupt, record any failure in its
    results, always clean up, and write the results. Returns (exit code, results path): 0, 1 on
    an error, 130 when interrupted."""

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    code = 0
    try:
        step()
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
    return code, bench.write()


def recreate_database(name: str = DB_NAME) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def drop_database(name: str = DB_NAME) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def flush_redis(db: int = REDIS_DB) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"crossdock-bench-{self.stamp}-"))
        self.env = hub_env(
            dict(os.environ),
            "bench",
            database_url=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
            encryption_key=encryption_key(),
            var_dir=self.log_dir / "var",
            log_level=args.log_level.upper(),
        )
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
        return manage(self.env, *cmd)

    def internal(self, *cmd: str) -> dict:
        out = subprocess.run(
            [PY, str(PIPELINE), *cmd],
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
        self.stack.start("sink", [PY, str(PIPELINE), "_sink", "--port", str(self.sink_port)])
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
                "postgres": lambda: pg_backend_pids(DB_NAME),
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
        client = run_clients(self.web_port, INBOUND_PATH, self.key, work, pace_rate=rate, flow=flow)
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
        res["cpu_s_ingest"] = cpu_delta(cpu0, cpu_ingest, client["client_cpu_s"], wall)
        res["cpu_s_total"] = cpu_delta(cpu0, cpu1, client["client_cpu_s"], None)
        n = max(1, sink["unique"] if drain else n_unique)
        tot = res["cpu_s_total"]
        res["cpu_ms_per_unique_event"] = {
            g: round(tot[g] * 1000 / n, 3) for g in ("web", "worker", "postgres", "sink", "beat")
        }
        res["web_cpu_ms_per_request_during_ingest"] = round(
            res["cpu_s_ingest"]["web"] * 1000 / len(requests), 3
        )
        self.results["phases"][name] = res
        self.log("  " + phase_line(name, res))
        return res

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
        self.results["rss"] = rss_summary(self.sampler)
        self.results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

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
                status, failed = post_retrying(conn, INBOUND_PATH, json.dumps(batch).encode(), headers)
                state["errors"] += failed + (status is not None and status >= 300)

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
            "cpu_s_total": cpu_delta(cpu0, cpu1, 0.0, None),
            "cpu_ms_per_unique_event": {
                g: round((cpu1.get(g, 0) - cpu0.get(g, 0)) * 1000 / max(1, settle["unique"]), 3)
                for g in ("web", "worker", "postgres", "sink", "beat")
            },
            "progress": progress[:: max(1, len(progress) // 200)],
        }
        self.finish_common()
        self.results["rss"] = rss_summary(self.sampler, since=t_start)
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
        for p in list(ACTIVE_CLIENTS):
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
