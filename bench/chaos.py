"""Chaos soak: Crossdock's real processes under faults, then every delivery checked against a rule.

    .venv/bin/python bench/chaos.py                  # 100,000 events (about 10-20 min on 2 cores)
    .venv/bin/python bench/chaos.py --short          # 3,000 events, one fault of each kind (CI)

It starts everything it needs and touches nothing shared (all on 127.0.0.1, in a temp directory):
- its OWN PostgreSQL cluster (initdb, private port and socket dir) and its OWN ``redis-server``
  (private port, no persistence), because it restarts both;
- gunicorn (web), two celery workers (prefork, --concurrency each) and celery beat (the sweeper);
- two webhook receivers in separate processes that log every request (Idempotency-Key, shipment,
  sequence number, source event id, answer): ``healthy`` answers 200; ``flaky`` answers a 5xx to 20% of
  requests, 503 to everything during one 30 s outage, and 422 for good to one event in POISON_EVERY
  (those must end as dead letters, and only those);
- a load generator: ``--events`` canonical milestone events (10 per shipment) POSTed in batches to
  ``/api/v1/inbound/<slug>/`` by ``--clients`` senders that retry each batch until it is accepted;
  ``--dup-rate`` of them are re-sends of an earlier event, ``--reorder-rate`` of the unique events are
  sent after a later milestone of their shipment;
- a fault injector: a worker ``kill -9``ed (its whole process group) every ``--kill-every`` seconds
  and restarted; at fixed points of the stream (share of events sent): the flaky receiver's outage
  (15%), web tier ``kill -9`` + restart (30%), Redis ``kill -9`` + restart, empty (50%), PostgreSQL
  ``pg_ctl stop -m immediate`` + start, i.e. crash recovery (70%).

Then it waits for quiescence (bounded by ``--quiesce-timeout``: it fails loudly after that) and checks
the invariants (see docs/reliability.md): nothing lost, nothing applied twice, per-shipment order,
final shipment states equal to the precedence rule of canonical/states.py applied to the event set
(not to what the run did), nothing stuck, dead letters only where the sink refused for good.
Prints a markdown table, writes bench/results/chaos-<timestamp>.json.
Exit status: 0 all invariants hold, 1 an invariant failed, 2 the run itself failed, 130 interrupted.
Subcommands prefixed with ``_`` are internal (receiver, seeding).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo root

from bench.load import Poster, lifecycle, milestone_event, shipment_ref
from bench.seed import django_setup, seed_hub
from bench.sink import JSONHandler, listen
from bench.stack import (
    PY,
    ROOT,
    PrivatePostgres,
    PrivateRedis,
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
# Variables that could point the run at the machine's shared servers: never inherited (nor *_FILE).
SERVER_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CROSSDOCK_REDIS_URL",
    "SECRET_KEY",
    "CROSSDOCK_ENCRYPTION_KEY",
)
DB_NAME = "crossdock_chaos"
INBOUND_SLUG = "chaos-in"
SUBSCRIBERS = ("healthy", "flaky")  # connection slugs chaos-<name>
SCAC = "CHAO"
POISON_EVERY = 500  # one source event in 500 (by CRC32 of its id) is refused for good (422) by flaky
FLAKY_5XX_RATE = 0.2  # share of the flaky receiver's requests answered 500/502/503 outside the outage
OUTAGE_S = 30.0  # seconds the flaky receiver answers 503 to everything
WAVE_SHIPMENTS = 50  # shipments of one sender whose events are interleaved (and reordered) together
REORDER_COMPENSATION = 1.2  # pushes per reordered event (see build_stream)
DUP_REACH = 300  # a duplicate is re-sent at most this many events after the original, same sender
# Faults at fixed points of the stream: (share of events sent, fault).
FAULT_POINTS = [
    (0.15, "receiver_outage"),
    (0.30, "web_restart"),
    (0.50, "redis_restart"),
    (0.70, "postgres_restart"),
]
REDIS_DOWN_S = 3.0  # seconds Redis stays down in its restart
POSTGRES_DOWN_S = 5.0  # seconds PostgreSQL stays down in its restart
POST_DEADLINE_S = 600.0  # seconds a sender keeps retrying one batch before it counts as rejected
# The subscribers' retry schedule and breaker window. With the default 30 s window, the circuit of a
# receiver that suddenly goes down opens only once failures outweigh the last 30 s of its successes
# (docs/reliability.md, "What the soak showed about the new breaker"): during the 30 s outage each
# due delivery spends many attempts and the back-off after them (ceiling base * 2^attempts) runs to
# minutes. A 5 s window opens it within seconds of the outage and still ignores the 20% failures.
WEBHOOK_CONFIG = {"max_attempts": 12, "backoff_base_s": 0.25, "timeout_s": 10, "breaker_window_s": 5}


def is_poison(source_event_id: str | None) -> bool:
    return bool(source_event_id) and zlib.crc32(source_event_id.encode()) % POISON_EVERY == 0


# --- Event stream -----------------------------------------------------------------------------------


def build_stream(
    n_events: int, per_shipment: int, dup_rate: float, reorder_rate: float, senders: int, seed: int
):
    """The events each sender posts, in order, and what the stream holds.

    ``n_events`` sends in all, ``round(n_events * dup_rate)`` of them re-sends of an earlier event of
    the same sender. Each shipment's milestones are in lifecycle order except ~``reorder_rate`` of
    them, pushed behind one to three later milestones; a sender interleaves the shipments of a wave.
    Shipment ``s`` belongs to sender ``s % senders``, so its events leave in exactly this order.
    """
    rng = random.Random(seed)
    n_dup = round(n_events * dup_rate)
    n_unique = n_events - n_dup
    steps = lifecycle(per_shipment)
    n_ships = math.ceil(n_unique / per_shipment)
    # a push of a shipment's last milestone moves nothing, and two pushed milestones can keep their
    # order: measured over seeds, pushing 1.2x the target share gives the target (the figure reported
    # is measured on the stream, below)
    push_p = min(1.0, reorder_rate * REORDER_COMPENSATION)
    unique: dict[str, dict] = {}
    streams: list[list[dict]] = [[] for _ in range(senders)]
    for c in range(senders):
        ships = list(range(c, n_ships, senders))
        for w in range(0, len(ships), WAVE_SHIPMENTS):
            queues = []
            for s in ships[w : w + WAVE_SHIPMENTS]:
                keyed = []
                for k, step in enumerate(steps):
                    if s * per_shipment + k >= n_unique:
                        break
                    event = milestone_event(f"E{s}-{k}", s, k, step, {"run": "chaos"})
                    unique[event["event_id"]] = {
                        "ship": s,
                        "k": k,
                        "type": step[0],
                        "at": event["occurred_at"],
                    }
                    push = rng.uniform(1.5, 3.99) if rng.random() < push_p else 0.0
                    keyed.append((k + push, event))
                keyed.sort(key=lambda t: t[0])
                queues.append([ev for _, ev in keyed])
            queues = [q for q in queues if q]
            while queues:
                q = rng.randrange(len(queues))
                streams[c].append(queues[q].pop(0))
                if not queues[q]:
                    queues.pop(q)
    # duplicates: spread over senders in proportion to their size
    sizes = [len(s) for s in streams]
    shares = [round(n_dup * size / sum(sizes)) for size in sizes[:-1]]
    shares.append(n_dup - sum(shares))
    for c, stream in enumerate(streams):
        want = shares[c]
        keyed = [(float(i), ev) for i, ev in enumerate(stream)]
        for i in rng.sample(range(len(stream)), min(want, len(stream))):
            keyed.append((rng.uniform(i + 0.5, min(len(stream), i + DUP_REACH)), stream[i]))
        keyed.sort(key=lambda t: t[0])
        streams[c] = [ev for _, ev in keyed]
    # measured, not assumed: first sends that leave after a later milestone of their shipment
    reordered = 0
    highest: dict[int, int] = {}
    seen: set[str] = set()
    for stream in streams:
        for ev in stream:
            if ev["event_id"] in seen:
                continue
            seen.add(ev["event_id"])
            info = unique[ev["event_id"]]
            if highest.get(info["ship"], -1) > info["k"]:
                reordered += 1
            highest[info["ship"]] = max(highest.get(info["ship"], -1), info["k"])
    return (
        streams,
        unique,
        {
            "events_sent": sum(len(s) for s in streams),
            "unique": len(unique),
            "duplicates_sent": sum(len(s) for s in streams) - len(unique),
            "reordered": reordered,
            "shipments": n_ships,
        },
    )


def expected_states(unique: dict[str, dict]) -> dict[str, dict]:
    """The fault-free outcome, per shipment reference, from the event set and the rules of
    canonical/states.py: status = highest precedence any event implies; open exceptions = replay of
    the timeline in event-time order; sequence = number of distinct events (each applied once)."""
    from canonical.contracts.v1 import EventType
    from canonical.states import PRECEDENCE, TimelineEntry, exception_episodes, next_status

    by_ship: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for event_id, info in unique.items():
        by_ship[info["ship"]].append((event_id, info))
    out = {}
    for ship, events in by_ship.items():
        status = PRECEDENCE[0]
        for _, info in events:
            status = next_status(status, EventType(info["type"]))
        timeline = [
            TimelineEntry(EventType(info["type"]), datetime.fromisoformat(info["at"]), event_id)
            for event_id, info in events
        ]
        still_open = sorted(e.kind for e in exception_episodes(timeline) if e.resolved_at is None)
        out[shipment_ref(ship)] = {"status": status, "sequence": len(events), "open_exceptions": still_open}
    return out


# --- Receiver (separate process) --------------------------------------------------------------------


def receiver_serve(port: int, mode: str, log_path: Path, seed: int) -> None:
    """A webhook receiver that logs every request as one JSON line
    ``[time, idempotency key, subject, sequence, source event id, shipment status, answer]``."""
    lock = threading.Lock()
    rng = random.Random(seed)
    log = open(log_path, "a", buffering=1 << 20)  # noqa: SIM115 - lives as long as the process
    state = {"requests": 0, "accepted": 0, "outage_until": 0.0, "answers": Counter()}
    accepted_keys: set[str] = set()
    accepted_sources: set[str] = set()

    class Handler(JSONHandler):
        def do_GET(self) -> None:
            with lock:
                log.flush()
                stats = {
                    "requests": state["requests"],
                    "accepted": state["accepted"],
                    "accepted_keys": len(accepted_keys),
                    "accepted_sources": len(accepted_sources),
                    "answers": dict(state["answers"]),
                }
            self._reply(200, json.dumps(stats).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/outage"):
                with lock:
                    state["outage_until"] = time.time() + float(json.loads(body)["seconds"])
                self._reply(200)
                return
            key = self.headers.get("Idempotency-Key")
            try:
                envelope = json.loads(body)
                subject, seq = envelope["subject"], int(envelope["sequence"])
                source = envelope["data"]["event"]["source_event_id"]
                status_after = envelope["data"]["shipment"]["status"]
            except (ValueError, KeyError, TypeError):
                subject, seq, source, status_after = None, None, None, None
            with lock:
                now = time.time()
                if mode == "healthy":
                    answer = 200
                elif now < state["outage_until"]:
                    answer = 503
                elif is_poison(source):
                    answer = 422
                elif rng.random() < FLAKY_5XX_RATE:
                    answer = rng.choice((500, 502, 503))
                else:
                    answer = 200
                if subject is None:
                    answer = 400
                state["requests"] += 1
                state["answers"][answer] += 1
                if answer == 200:
                    state["accepted"] += 1
                    accepted_keys.add(key)
                    accepted_sources.add(source)
                log.write(json.dumps([round(now, 3), key, subject, seq, source, status_after, answer]) + "\n")
            self._reply(answer)

    server = listen(port, Handler)

    def on_term(signum, frame):  # the run's end: write every line logged so far, then go
        with lock:
            log.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print(f"{mode} receiver on 127.0.0.1:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


# --- Seeding (Django, run as a subprocess with the run's environment) -------------------------------


def cmd_seed(ns) -> None:
    django_setup()
    urls = dict(zip(SUBSCRIBERS, ns.urls.split(","), strict=True))
    key = seed_hub(
        admin="chaos-admin",
        scac=SCAC,
        carrier_name="Chaos Freight",
        inbound_slug=INBOUND_SLUG,
        receivers=[
            (f"chaos-{name}", {"url": urls[name], **WEBHOOK_CONFIG}, f"chaos-{name}-secret")
            for name in SUBSCRIBERS
        ],
        shipments=ns.shipments,
    )
    print(json.dumps({"key": key}))


# --- The run ----------------------------------------------------------------------------------------


class RunFailed(Exception):
    """The run could not be carried out (as opposed to an invariant that does not hold)."""


class Chaos:
    def __init__(self, args, tmp: Path | None = None) -> None:
        """``tmp``: the directory of an earlier run, to verify it again (``--reverify``)."""
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.tmp = tmp or Path(tempfile.mkdtemp(prefix=f"crossdock-chaos-{self.stamp}-"))
        os.chmod(self.tmp, 0o755)  # the postgres user must reach its data directory inside
        self.log_dir = self.tmp / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.pg = PrivatePostgres(self.tmp / "pg", free_port())
        self.redis_port = free_port()
        self.web_port = free_port()
        self.receiver_ports = {name: free_port() for name in SUBSCRIBERS}
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name.removesuffix("_FILE") not in SERVER_VARIABLES
        }
        self.env = hub_env(
            inherited,
            "chaos",
            database_url=self.pg.url(DB_NAME),
            broker_url=f"redis://127.0.0.1:{self.redis_port}/0",
            encryption_key=self.run_key(),
            var_dir=self.tmp / "var",
            log_level="WARNING",
            CROSSDOCK_BROKER_VISIBILITY_TIMEOUT="60",
        )
        self.stack = Stack(self.env, self.log_dir)
        self.redis = PrivateRedis(self.stack, self.tmp / "redis", self.redis_port)
        self.key = ""
        self.lock = threading.Lock()
        # the injector (its own thread) and the supervisor (main thread) both stop and start
        # processes: one at a time, or one sees the process table change under it
        self.procs_lock = threading.RLock()
        self.faults: list[dict] = []
        self.unexpected_exits: list[dict] = []
        self.progress = {
            "sent": 0,
            "posted_batches": 0,
            "rejected_batches": 0,
            "load_done": False,
            "faults_done": False,
        }
        self.stop = threading.Event()
        self.t0 = self.t_load = time.monotonic()

    def run_key(self) -> str:
        """The run's secret-encryption key, kept in its temp dir: a resumed run must read the
        connection secrets the first one stored (with another key every delivery dead-letters)."""
        path = self.tmp / "encryption-key"
        if not path.exists():
            path.write_text(encryption_key())
        return path.read_text().strip()

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    # -- stack --
    def manage(self, *cmd: str) -> str:
        return manage(self.env, *cmd, error=RunFailed)

    def start_web(self) -> None:
        self.stack.start("web", web_cmd(self.web_port, self.args.web_workers))

    def start_worker(self, i: int) -> None:
        self.stack.start(
            f"celery-worker-{i}", worker_cmd(f"chaos{i}", self.args.celery_concurrency, "warning")
        )

    def setup(self, shipments: int) -> None:
        import subprocess

        import psycopg

        self.log(f"temp dir {self.tmp} (logs in {self.log_dir})")
        self.pg.init()
        self.pg.start()
        with psycopg.connect(self.pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        self.redis.start()
        self.log(f"private PostgreSQL :{self.pg.port} and Redis :{self.redis_port} up")
        self.manage("migrate", "--noinput", "--skip-checks")
        for name, port in self.receiver_ports.items():
            self.stack.start(
                f"receiver-{name}",
                [PY, str(Path(__file__).resolve()), "_receiver", "--port", str(port), "--mode", name,
                 "--log", str(self.log_dir / f"receiver-{name}.jsonl"), "--seed", str(self.args.seed)],
            )  # fmt: skip
        urls = ",".join(f"http://127.0.0.1:{self.receiver_ports[n]}/hook" for n in SUBSCRIBERS)
        out = subprocess.run(
            [PY, str(Path(__file__).resolve()), "_seed", "--shipments", str(shipments), "--urls", urls],
            cwd=ROOT, env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            raise RunFailed(f"seeding failed:\n{out.stderr[-4000:]}")
        self.key = json.loads(out.stdout.strip().splitlines()[-1])["key"]
        self.start_web()
        for i in range(self.args.celery_workers):
            self.start_worker(i)
        self.stack.start("celery-beat", beat_cmd(self.tmp / "beat-schedule", "warning"))
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError, ValueError):
                if http_json(self.web_port, "/health/")[0] == 200 and all(
                    http_json(p, "/stats")[0] == 200 for p in self.receiver_ports.values()
                ):
                    break
            if self.stack.exited():
                raise RunFailed(
                    f"a process exited during start-up: {self.stack.exited()} (see {self.log_dir})"
                )
            if time.monotonic() > deadline:
                raise RunFailed("web or receivers not ready after 90 s")
            time.sleep(0.3)
        self.log(f"stack up: web :{self.web_port}, {self.args.celery_workers} workers, beat, receivers")

    def supervise(self) -> None:
        """Restart what ended without being killed by the fault injector (a supervisor's job); each
        one is reported: a process that dies by itself under these faults is a finding."""
        with self.procs_lock:
            self._supervise()

    def _supervise(self) -> None:
        for name, code in self.stack.exited().items():
            if name.startswith("receiver"):
                raise RunFailed(f"{name} exited with {code}")
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-1500:]
            self.unexpected_exits.append(
                {"process": name, "code": code, "at_s": self.elapsed(), "log_tail": tail}
            )
            self.log(f"!! {name} exited by itself (code {code}); restarting it")
            del self.stack.procs[name]
            if name == "web":
                self.start_web()
            elif name.startswith("celery-worker-"):
                self.start_worker(int(name.rsplit("-", 1)[1]))
            elif name == "celery-beat":
                self.stack.start("celery-beat", beat_cmd(self.tmp / "beat-schedule", "warning"))
            elif name == "redis":
                self.redis.start()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t_load, 1)

    # -- faults --
    def fault(self, kind: str, **details) -> None:
        with self.lock:
            self.faults.append(
                {"kind": kind, "at_s": self.elapsed(), "sent": self.progress["sent"], **details}
            )
        self.log(f"fault: {kind} {details or ''} (sent {self.progress['sent']})")

    def inject(self, kind: str) -> None:
        with self.procs_lock:
            self._inject(kind)

    def _inject(self, kind: str) -> None:
        if kind == "receiver_outage":
            port = self.receiver_ports["flaky"]
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/outage", json.dumps({"seconds": OUTAGE_S}))
            conn.getresponse().read()
            conn.close()
            self.fault(kind, seconds=OUTAGE_S)
        elif kind == "web_restart":
            self.stack.kill("web")
            self.start_web()
            self.fault(kind, how="kill -9 of gunicorn master and workers, then a new gunicorn")
        elif kind == "redis_restart":
            self.redis.kill()
            time.sleep(REDIS_DOWN_S)
            self.redis.start()
            self.fault(kind, how=f"kill -9, down {REDIS_DOWN_S:.0f}s, restarted empty")
        elif kind == "postgres_restart":
            t = time.monotonic()
            self.pg.stop("immediate")
            time.sleep(POSTGRES_DOWN_S)
            self.pg.start()
            self.fault(
                kind,
                how=f"pg_ctl stop -m immediate, down {POSTGRES_DOWN_S:.0f}s, start (crash recovery)",
                down_s=round(time.monotonic() - t, 1),
            )

    def injector(self, n_sent_total: int) -> None:
        """Worker kills on a clock; the other faults at their share of the stream sent.

        This thread lives until the run stops: the processes it restarts get SIGTERM when the thread
        that started them ends (PR_SET_PDEATHSIG is per thread, see bench/stack.py)."""
        points = list(FAULT_POINTS)
        next_kill = time.monotonic() + self.args.kill_every
        victim = 0
        while not self.stop.is_set():
            try:
                if points and self.progress["sent"] >= points[0][0] * n_sent_total:
                    self.inject(points.pop(0)[1])
                if time.monotonic() >= next_kill and not (self.progress["load_done"] and not points):
                    name = f"celery-worker-{victim % self.args.celery_workers}"
                    with self.procs_lock:
                        self.stack.kill(name)
                        self.start_worker(victim % self.args.celery_workers)
                    self.fault("worker_kill9", worker=name)
                    victim += 1
                    next_kill += self.args.kill_every
                if self.progress["load_done"] and not points:
                    self.progress["faults_done"] = True
            except Exception as exc:
                self.log(f"!! fault injection failed: {exc!r}")
                with self.lock:
                    self.faults.append({"kind": "injector_error", "error": repr(exc), "at_s": self.elapsed()})
            self.stop.wait(0.2)

    # -- load --
    def sender(self, index: int, stream: list[dict], pace: dict, first_sends: set[str]) -> None:
        poster = Poster(
            self.web_port,
            f"/api/v1/inbound/{INBOUND_SLUG}/",
            {"Authorization": f"Token {self.key}", "Content-Type": "application/json"},
        )
        b = self.args.batch_size
        for i in range(0, len(stream), b):
            if self.stop.is_set():
                break
            batch = stream[i : i + b]
            with self.lock:  # open-loop pacing at --rate events/s over all senders
                due = pace["next"]
                pace["next"] = max(pace["next"], time.monotonic()) + len(batch) / self.args.rate
            while time.monotonic() < due or (pace["backlog"]() > self.args.window and not self.stop.is_set()):
                time.sleep(0.05)
            status = poster.post(json.dumps(batch).encode(), time.monotonic() + POST_DEADLINE_S)
            with self.lock:
                self.progress["sent"] += len(batch)
                self.progress["posted_batches"] += 1
                if not 200 <= status < 300:
                    self.progress["rejected_batches"] += 1
                    self.log(f"!! sender {index}: batch at {i} not accepted (last status {status})")
                for ev in batch:
                    first_sends.add(ev["event_id"])
        poster.close()
        with self.lock:
            for k, v in poster.statuses.items():
                self.sender_statuses[k] += v
            self.sender_errors += poster.errors
            self.sender_retries += poster.retries

    def receiver_stats(self) -> dict[str, dict]:
        return {name: http_json(port, "/stats")[1] for name, port in self.receiver_ports.items()}

    # -- database --
    def sql(self, query: str, params=None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.pg.url(DB_NAME), connect_timeout=10) as conn:
            return conn.execute(query, params).fetchall()

    def busy_counts(self) -> dict[str, int]:
        rows = self.sql(
            "SELECT 'inbound_' || status, count(*) FROM inbox_inboundmessage"
            " WHERE status IN ('received', 'processing') GROUP BY 1"
            " UNION ALL SELECT 'delivery_' || status, count(*) FROM outbox_delivery"
            " WHERE status IN ('pending', 'in_flight') GROUP BY 1"
        )
        return dict(rows)

    # -- the run --
    def run(self) -> dict:
        a = self.args
        streams, unique, stream_stats = build_stream(
            a.events, a.per_shipment, a.dup_rate, a.reorder_rate, a.clients, a.seed
        )
        expected_flaky = {e for e in unique if not is_poison(e)}
        self.log(
            f"stream: {stream_stats['events_sent']} events, {stream_stats['unique']} unique, "
            f"{stream_stats['duplicates_sent']} duplicates, {stream_stats['reordered']} reordered, "
            f"{stream_stats['shipments']} shipments, {len(unique) - len(expected_flaky)} poison for flaky"
        )
        # what an interrupted run still reports (the lists fill in as the run goes)
        self.report = {
            "stream": stream_stats,
            "faults": self.faults,
            "unexpected_exits": self.unexpected_exits,
        }
        self.setup(stream_stats["shipments"])
        self.sender_statuses: Counter = Counter()
        self.sender_errors = 0
        self.sender_retries = 0
        first_sends: set[str] = set()
        accepted = {"healthy": 0}
        pace = {"next": time.monotonic(), "backlog": lambda: len(first_sends) - accepted["healthy"]}
        self.t_load = time.monotonic()
        threads = [
            threading.Thread(target=self.sender, args=(i, s, pace, first_sends), daemon=True)
            for i, s in enumerate(streams)
        ]
        injector = threading.Thread(target=self.injector, args=(stream_stats["events_sent"],), daemon=True)
        for t in [*threads, injector]:
            t.start()
        timeline: list[dict] = []
        self.report["timeline"] = timeline
        last_log = 0.0
        load_deadline = time.monotonic() + a.max_load_seconds
        while any(t.is_alive() for t in threads) or not self.progress["faults_done"]:
            self.supervise()
            with contextlib.suppress(OSError, ValueError):
                stats = self.receiver_stats()
                accepted["healthy"] = stats["healthy"]["accepted_sources"]
                if time.monotonic() - last_log > 10:
                    last_log = time.monotonic()
                    point = {
                        "t": self.elapsed(),
                        "sent": self.progress["sent"],
                        **{f"{n}_accepted": s["accepted_sources"] for n, s in stats.items()},
                    }
                    timeline.append(point)
                    self.log(f"  {point}")
            if not any(t.is_alive() for t in threads):
                self.progress["load_done"] = True
            if not injector.is_alive():
                raise RunFailed("the fault injector stopped")
            if time.monotonic() > load_deadline:
                self.stop.set()
                raise RunFailed(f"load not done after {a.max_load_seconds}s (sent {self.progress['sent']})")
            time.sleep(0.5)
        self.progress["load_done"] = True
        load_s = self.report["load_s"] = self.elapsed()
        self.log(f"load done in {load_s}s; waiting for quiescence (at most {a.quiesce_timeout}s)")

        # quiescence: every expected delivery accepted and nothing waiting in the database
        deadline = time.monotonic() + a.quiesce_timeout
        quiescent, busy, stats = False, {}, {}
        while time.monotonic() < deadline:
            self.supervise()
            with contextlib.suppress(Exception):
                stats = self.receiver_stats()
                busy = self.busy_counts()
                if (
                    not busy
                    and stats["healthy"]["accepted_sources"] >= len(unique)
                    and stats["flaky"]["accepted_sources"] >= len(expected_flaky)
                ):
                    quiescent = True
                    break
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                self.log(
                    f"  draining: busy {busy}, accepted {[s.get('accepted_sources') for s in stats.values()]}"
                )
            time.sleep(1.0)
        quiesce_s = round(self.elapsed() - load_s, 1)
        if not quiescent:
            self.log(f"!! NOT QUIESCENT after {a.quiesce_timeout}s: busy {busy}")
        time.sleep(3.0)  # anything extra still on its way lands in the logs before they are read
        verdict = self.verify(unique, expected_flaky)
        return {
            "stream": stream_stats,
            "load_s": load_s,
            "quiesce_s": quiesce_s,
            "quiescent": quiescent,
            "busy_at_end": busy,
            "first_sends_accepted": len(first_sends),
            "sender": {
                "statuses": dict(self.sender_statuses),
                "connection_errors": self.sender_errors,
                "retries": self.sender_retries,
                "batches": self.progress["posted_batches"],
                "batches_not_accepted": self.progress["rejected_batches"],
            },
            "faults": self.faults,
            "faults_by_kind": dict(Counter(f["kind"] for f in self.faults)),
            "unexpected_exits": self.unexpected_exits,
            "timeline": timeline,
            **verdict,
        }

    def verify(self, unique: dict[str, dict], expected_flaky: set[str]) -> dict:
        """Compare what the receivers logged and what the database holds with the rules.

        An expected event a receiver never accepted is *lost* unless its delivery is still pending or
        in flight (then it is *backlog*: the run was cut before quiescence, which fails on its own).
        """
        with contextlib.suppress(OSError, ValueError):
            self.receiver_stats()  # flushes the receivers' logs (absent when re-verifying)
        deliveries = {
            str(did): {
                "delivered_attempts": ok,
                "status": status,
                "code": code,
                "slug": slug,
                "source": source,
            }
            for did, ok, status, code, slug, source in self.sql(
                "SELECT d.id, (SELECT count(*) FROM outbox_deliveryattempt a WHERE a.delivery_id = d.id"
                " AND a.outcome = 'delivered'), d.status, d.last_status_code, c.slug,"
                " e.data->'event'->>'source_event_id'"
                " FROM outbox_delivery d JOIN outbox_outboxevent e ON e.id = d.event_id"
                " JOIN connections_subscription s ON s.id = d.subscription_id"
                " JOIN connections_connection c ON c.id = s.connection_id"
            )
        }
        expected = expected_states(unique)
        waiting: dict[str, set[str]] = defaultdict(set)  # subscriber -> sources still pending/in flight
        recorded_delivered: dict[str, dict[str, bool]] = defaultdict(dict)
        for d in deliveries.values():
            recorded_delivered[d["slug"].removeprefix("chaos-")][d["source"]] = d["status"] == "delivered"
        in_inbox = set()  # events of inbound messages not processed yet (received/processing)
        for (body,) in self.sql(
            "SELECT body FROM inbox_inboundmessage WHERE status IN ('received', 'processing')"
        ):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                in_inbox.update(event["event_id"] for event in json.loads(bytes(body)))
        unsettled_ships = {shipment_ref(unique[e]["ship"]) for e in in_inbox if e in unique}
        for d in deliveries.values():
            if d["status"] in ("pending", "in_flight"):
                waiting[d["slug"].removeprefix("chaos-")].add(d["source"])
        per_subscriber = {}
        examples: dict[str, list] = defaultdict(list)
        for name in SUBSCRIBERS:
            want = set(unique) if name == "healthy" else expected_flaky
            accepted_times: Counter = Counter()  # 2xx answers per key
            accepted_key_at: dict[str, int] = {}
            source_keys: dict[str, set[str]] = defaultdict(set)
            max_seq: dict[str, int] = {}
            seqs: dict[str, set[int]] = defaultdict(set)
            last_status: dict[str, tuple[int, str]] = {}
            redelivered_after_2xx: Counter = Counter()
            out_of_order = 0
            requests = 0
            with open(self.log_dir / f"receiver-{name}.jsonl") as f:
                for line in f:
                    _, key, subject, seq, source, status_after, answer = json.loads(line)
                    requests += 1
                    if answer != 200:
                        continue
                    accepted_times[key] += 1
                    if key in accepted_key_at:
                        redelivered_after_2xx[key] += 1
                        continue
                    accepted_key_at[key] = seq
                    source_keys[source].add(key)
                    if seq < max_seq.get(subject, 0):
                        out_of_order += 1
                        examples[f"{name}_out_of_order"].append([subject, seq, max_seq[subject], key])
                    max_seq[subject] = max(max_seq.get(subject, 0), seq)
                    seqs[subject].add(seq)
                    if seq >= last_status.get(subject, (0, ""))[0]:
                        last_status[subject] = (seq, status_after)
            got = set(source_keys)
            backlog = (want - got) & (waiting[name] | in_inbox)
            # recorded as delivered but absent from the receiver's log: only a receiver that died
            # with unwritten lines explains it (see --reverify); counted as lost all the same
            unlogged = {src for src in want - got - backlog if recorded_delivered[name].get(src)}
            lost = want - got - backlog
            backlog_ships = {shipment_ref(unique[src]["ship"]) for src in backlog | unlogged}
            unexpected = got - want
            twice = {s: sorted(k) for s, k in source_keys.items() if len(k) > 1}
            # a 2xx Crossdock never recorded (the worker died, or the answer was lost on the way
            # back) explains a resend; a resend after a recorded delivery does not
            unexplained = [
                k
                for k in redelivered_after_2xx
                if accepted_times[k] <= deliveries.get(k, {}).get("delivered_attempts", 0)
            ]
            # sequence completeness (healthy: every sequence number 1..n of each shipment arrived)
            gaps = 0
            if name == "healthy":
                for ref, exp in expected.items():
                    if ref in backlog_ships:
                        continue
                    if seqs.get(ref, set()) != set(range(1, exp["sequence"] + 1)):
                        gaps += 1
                        examples["healthy_sequence_gaps"].append(ref)
            final_seen_mismatch = sum(
                1
                for ref, exp in expected.items()
                if name == "healthy"
                and ref not in backlog_ships
                and last_status.get(ref, (0, ""))[1] != exp["status"]
            )
            examples[f"{name}_lost"] = sorted(lost)[:20]
            examples[f"{name}_applied_twice"] = list(twice.items())[:20]
            examples[f"{name}_unexplained_redeliveries"] = unexplained[:20]
            per_subscriber[name] = {
                "requests": requests,
                "expected": len(want),
                "delivered": len(got & want),
                "lost": len(lost),
                "lost_but_recorded_delivered": len(unlogged),
                "backlog_at_end": len(backlog),
                "unexpected": len(unexpected),
                "applied_twice": len(twice),
                "redelivered_same_key_after_2xx": sum(redelivered_after_2xx.values()),
                "redelivered_unexplained": len(unexplained),
                "out_of_order": out_of_order,
                "sequence_gaps": gaps,
                "final_state_seen_mismatch": final_seen_mismatch,
            }

        # database: final states vs the rule, stuck work, dead letters
        shipments = {
            ref: {"status": status, "sequence": seq}
            for ref, status, seq in self.sql("SELECT reference, status, sequence FROM canonical_shipment")
        }
        events_per = dict(
            self.sql(
                "SELECT s.reference, count(*) FROM canonical_shipmentevent e"
                " JOIN canonical_shipment s ON s.id = e.shipment_id GROUP BY 1"
            )
        )
        open_exc: dict[str, list[str]] = defaultdict(list)
        for ref, kind in self.sql(
            "SELECT s.reference, x.kind FROM canonical_shipmentexception x"
            " JOIN canonical_shipment s ON s.id = x.shipment_id WHERE x.status = 'OPEN' ORDER BY 2"
        ):
            open_exc[ref].append(kind)
        state_mismatch = []
        for ref, exp in expected.items():
            if ref in unsettled_ships:
                continue  # some of its events are still in the inbox: not final yet
            got = shipments.get(ref, {})
            actual = {
                "status": got.get("status"),
                "sequence": got.get("sequence"),
                "open_exceptions": open_exc.get(ref, []),
            }
            if actual != exp or events_per.get(ref, 0) != exp["sequence"]:
                state_mismatch.append(
                    {"shipment": ref, "expected": exp, "actual": actual, "events": events_per.get(ref)}
                )
        inbound = dict(self.sql("SELECT status, count(*) FROM inbox_inboundmessage GROUP BY 1"))
        attempts = dict(self.sql("SELECT outcome, count(*) FROM outbox_deliveryattempt GROUP BY 1"))
        openings = sum(
            path.read_text(errors="replace").count("circuit opened")
            for path in self.log_dir.glob("celery-worker-*.log")
        )
        delivery_status = Counter()
        for d in deliveries.values():
            delivery_status[f"{d['slug']}:{d['status']}"] += 1
        letters = self.sql(
            "SELECT l.stage, l.reason, c.slug, l.delivery_id FROM deadletters_deadletter l"
            " JOIN connections_connection c ON c.id = l.connection_id"
        )
        dead = []
        for stage, reason, slug, delivery_id in letters:
            d = deliveries.get(str(delivery_id)) if delivery_id else None
            justified = bool(
                stage == "deliver"
                and slug == "chaos-flaky"
                and d
                and d["code"] == 422
                and is_poison(d["source"])
            )
            dead.append({"stage": stage, "connection": slug, "reason": reason[:160], "justified": justified})
        poison = set(unique) - expected_flaky
        poison_dead = {
            d["source"] for d in deliveries.values() if d["slug"] == "chaos-flaky" and d["status"] == "dead"
        } & poison
        poison_waiting = poison & (waiting["flaky"] | in_inbox)
        stuck = inbound.get("received", 0) + inbound.get("processing", 0)
        stuck_deliveries = sum(
            v for k, v in delivery_status.items() if k.endswith((":pending", ":in_flight"))
        )
        db = {
            "inbound_messages": inbound,
            "deliveries": dict(delivery_status),
            "delivery_attempts": attempts,
            "circuit_openings": openings,
            "messages_stuck": stuck,
            "deliveries_stuck": stuck_deliveries,
            "shipment_state_mismatches": len(state_mismatch),
            "shipments_not_final_events_in_inbox": len(unsettled_ships),
            "dead_letters": dict(Counter(f"{d['stage']}:{d['connection']}" for d in dead)),
            "dead_letters_unjustified": sum(not d["justified"] for d in dead),
            "refused_for_good": len(poison),
            "refused_for_good_dead_lettered": len(poison_dead),
            "refused_for_good_not_yet_attempted": len(poison_waiting),
        }
        examples["state_mismatch"] = state_mismatch[:20]
        examples["dead_letters_unjustified"] = [d for d in dead if not d["justified"]][:20]
        invariants = {
            "nothing lost": all(s["lost"] == 0 for s in per_subscriber.values()),
            "nothing applied twice (one key per event)": all(
                s["applied_twice"] == 0 for s in per_subscriber.values()
            ),
            "no unexpected delivery": all(s["unexpected"] == 0 for s in per_subscriber.values()),
            "same-key redeliveries explained by a lost attempt": all(
                s["redelivered_unexplained"] == 0 for s in per_subscriber.values()
            ),
            "per-shipment order": all(s["out_of_order"] == 0 for s in per_subscriber.values()),
            "sequence complete (healthy)": per_subscriber["healthy"]["sequence_gaps"] == 0,
            "final states = fault-free rule": not state_mismatch
            and per_subscriber["healthy"]["final_state_seen_mismatch"] == 0,
            "nothing stuck": stuck == 0 and stuck_deliveries == 0,
            "no failed inbound message": not inbound.get("failed") and not inbound.get("partial"),
            "dead letters only where refused for good": db["dead_letters_unjustified"] == 0
            and len(poison_dead) + len(poison_waiting) == len(poison),
        }
        return {"subscribers": per_subscriber, "db": db, "invariants": invariants, "examples": dict(examples)}

    def cleanup(self) -> None:
        self.stop.set()
        self.stack.stop()
        with contextlib.suppress(Exception):
            if self.pg.running():
                self.pg.stop("fast")


def table(r: dict) -> str:
    s, db, subs = r["stream"], r["db"], r["subscribers"]
    lines = [
        "| figure | value |",
        "|---|---|",
        f"| events sent | {s['events_sent']:,} |",
        f"| unique events | {s['unique']:,} ({s['shipments']:,} shipments) |",
        f"| duplicates sent | {s['duplicates_sent']:,} |",
        f"| reordered (sent after a later milestone of their shipment) | {s['reordered']:,} |",
        f"| load / drain to quiescence | {r['load_s']} s / {r['quiesce_s']} s |",
        f"| faults injected | {', '.join(f'{k} x{v}' for k, v in sorted(r['faults_by_kind'].items()))} |",
        f"| processes that died by themselves | {len(r['unexpected_exits'])} |",
        f"| sender retries / connection errors | {r['sender']['retries']:,} / {r['sender']['connection_errors']:,} |",
    ]
    for name, x in subs.items():
        lines += [
            f"| {name}: delivered / expected | {x['delivered']:,} / {x['expected']:,} (lost {x['lost']}, still queued {x['backlog_at_end']}) |",
            f"| {name}: requests received | {x['requests']:,} |",
            f"| {name}: same event under two keys | {x['applied_twice']} |",
            f"| {name}: same key again after a 2xx (unexplained) | {x['redelivered_same_key_after_2xx']} "
            f"({x['redelivered_unexplained']}) |",
            f"| {name}: out of order (per shipment, by sequence) | {x['out_of_order']} |",
        ]
    lines += [
        f"| healthy: shipments with a sequence gap | {subs['healthy']['sequence_gaps']} |",
        f"| final shipment states ≠ fault-free rule | {db['shipment_state_mismatches']} |",
        f"| messages stuck (received/processing) | {db['messages_stuck']} |",
        f"| deliveries stuck (pending/in flight) | {db['deliveries_stuck']} |",
        f"| inbound messages by status | {db['inbound_messages']} |",
        f"| dead letters by stage:connection | {db['dead_letters'] or 0} |",
        f"| delivery attempts by outcome | {db['delivery_attempts']} |",
        f"| circuit openings (worker logs) | {db['circuit_openings']} |",
        f"| dead letters unjustified | {db['dead_letters_unjustified']} |",
        f"| refused for good / dead-lettered | {db['refused_for_good']} / {db['refused_for_good_dead_lettered']} |",
        "",
        "| invariant | holds |",
        "|---|---|",
        *(f"| {k} | {'yes' if ok else '**NO**'} |" for k, ok in r["invariants"].items()),
    ]
    return "\n".join(lines)


def cmd_resume(path: Path, timeout_s: float) -> int:
    """Start the stack of a run that was cut (workers, beat, receivers on their old ports; no new
    load, no faults) on what it left, wait until nothing is queued, stop, then ``--reverify`` it:
    recovery after the whole stack stopped at once."""
    import re

    results = json.loads(path.read_text())
    args = argparse.Namespace(**results["config"])
    chaos = Chaos(args, tmp=Path(results["tmp_dir"]))
    for name in SUBSCRIBERS:
        first = (chaos.log_dir / f"receiver-{name}.log").read_text().splitlines()[0]
        chaos.receiver_ports[name] = int(re.search(r":(\d+)$", first).group(1))
    started = time.monotonic()
    try:
        chaos.pg.start()
        chaos.redis.start()
        for name, port in chaos.receiver_ports.items():
            chaos.stack.start(
                f"receiver-{name}",
                [PY, str(Path(__file__).resolve()), "_receiver", "--port", str(port), "--mode", name,
                 "--log", str(chaos.log_dir / f"receiver-{name}.jsonl"), "--seed", str(args.seed + 7)],
            )  # fmt: skip
        for i in range(args.celery_workers):
            chaos.start_worker(i)
        chaos.stack.start("celery-beat", beat_cmd(chaos.tmp / "beat-schedule", "warning"))
        chaos.log(f"resumed: {chaos.busy_counts()}")
        busy = {"?": 1}
        while busy and time.monotonic() - started < timeout_s:
            time.sleep(10)
            chaos.supervise()
            with contextlib.suppress(Exception):
                busy = chaos.busy_counts()
            chaos.log(f"  draining: {busy}")
        results["resume"] = {"drain_s": round(time.monotonic() - started, 1), "quiescent": not busy}
        results["quiescent"] = not busy
        path.write_text(json.dumps(results, indent=1, default=str))
    finally:
        chaos.cleanup()
    return cmd_reverify(path)


def cmd_reverify(path: Path) -> int:
    """Verify a finished (or interrupted) run again from what it left in its temp directory: its
    PostgreSQL cluster is started on a fresh port, the receivers' logs are read, the event stream is
    rebuilt from the recorded configuration (it is deterministic). Updates the results JSON."""
    results = json.loads(path.read_text())
    args = argparse.Namespace(**results["config"])
    chaos = Chaos(args, tmp=Path(results["tmp_dir"]))
    _, unique, stream_stats = build_stream(
        args.events, args.per_shipment, args.dup_rate, args.reorder_rate, args.clients, args.seed
    )
    chaos.pg.start()
    try:
        busy = chaos.busy_counts()
        # a run cut during the load: only the events Crossdock stored are expected anywhere
        stored = set()
        for (body,) in chaos.sql("SELECT body FROM inbox_inboundmessage"):
            stored.update(event["event_id"] for event in json.loads(bytes(body)))
        if len(stored) < len(unique):
            results["events_stored_when_cut"] = len(stored)
            unique = {event_id: info for event_id, info in unique.items() if event_id in stored}
        verdict = chaos.verify(unique, {e for e in unique if not is_poison(e)})
    finally:
        chaos.pg.stop("fast")
    results.update(verdict, stream=stream_stats, busy_at_end=busy, reverified_at=chaos.stamp)
    results["quiescent"] = not busy
    path.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({"subscribers": results["subscribers"], "db": results["db"]}, indent=1))
    print("\n".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in results["invariants"].items()))
    return 0 if all(results["invariants"].values()) and results["quiescent"] else 1


def cmd_run(args) -> int:
    if args.short:
        args.events = args.events or 3000
        args.rate = args.rate or 60.0
        args.quiesce_timeout = args.quiesce_timeout or 420
    args.events = args.events or 100_000
    args.rate = args.rate or 300.0
    args.quiesce_timeout = args.quiesce_timeout or 1800
    chaos = Chaos(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.time()
    results: dict = {
        "started_at": chaos.stamp,
        "command": " ".join(["python", *sys.argv]),
        "config": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": {"nproc": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "tmp_dir": str(chaos.tmp),
    }
    with contextlib.suppress(Exception):
        import subprocess

        results["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        results["modified_files"] = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split("\n")[:-1]
    code = 0
    try:
        results.update(chaos.run())
        if not results["quiescent"]:
            code = 1
        if not all(results["invariants"].values()):
            code = 1
    except KeyboardInterrupt:
        results.update(getattr(chaos, "report", {}))
        chaos.log("interrupted")
        code = 130
    except RunFailed as exc:
        chaos.log(f"RUN FAILED: {exc}")
        results["error"] = str(exc)
        code = 2
    except Exception as exc:  # a fault of this tool: keep what the run did (--reverify can check it)
        import traceback

        traceback.print_exc()
        results.update(getattr(chaos, "report", {}))
        results["error"] = repr(exc)
        code = 2
    finally:
        results["wall_s"] = round(time.time() - started, 1)
        results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        chaos.cleanup()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"chaos-{'short-' if args.short else ''}{chaos.stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    if "invariants" in results:
        print()
        print(table(results))
    kept = code != 0 or args.keep_tmp
    if not kept:
        import shutil

        shutil.rmtree(chaos.tmp, ignore_errors=True)
    where = (
        f"logs: {chaos.log_dir}" if kept else "temp dir removed (all invariants held; --keep-tmp keeps it)"
    )
    print(f"\nresults: {path}\n{where}\nexit {code}", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        sub = argparse.ArgumentParser()
        sub.add_argument("cmd")
        sub.add_argument("--port", type=int, default=0)
        sub.add_argument("--mode", default="healthy")
        sub.add_argument("--log", default="")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--shipments", type=int, default=0)
        sub.add_argument("--urls", default="")
        ns = sub.parse_args(argv)
        if ns.cmd == "_receiver":
            receiver_serve(ns.port, ns.mode, Path(ns.log), ns.seed + (1 if ns.mode == "flaky" else 0))
        elif ns.cmd == "_seed":
            cmd_seed(ns)
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--events", type=int, default=0, help="events sent, duplicates included (100000; short 3000)"
    )
    p.add_argument("--short", action="store_true", help="a few thousand events, one fault of each kind (CI)")
    p.add_argument("--dup-rate", type=float, default=0.10, help="share of the events sent that are re-sends")
    p.add_argument(
        "--reorder-rate", type=float, default=0.20, help="share of unique events sent out of order"
    )
    p.add_argument("--per-shipment", type=int, default=10, help="milestones per shipment")
    p.add_argument("--rate", type=float, default=0.0, help="offered events/s (300; short 60)")
    p.add_argument(
        "--window", type=int, default=4000, help="max events sent but not yet at the healthy receiver"
    )
    p.add_argument("--batch-size", type=int, default=10, help="events per POST")
    p.add_argument("--clients", type=int, default=4, help="concurrent senders (threads)")
    p.add_argument("--kill-every", type=float, default=10.0, help="seconds between worker kill -9s")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers")
    p.add_argument(
        "--celery-workers", type=int, default=2, help="celery worker processes (each killed in turn)"
    )
    p.add_argument("--celery-concurrency", type=int, default=2, help="prefork children per celery worker")
    p.add_argument("--max-load-seconds", type=float, default=3600, help="give up if sending takes longer")
    p.add_argument(
        "--quiesce-timeout", type=float, default=0, help="seconds to reach quiescence (1800; short 420)"
    )
    p.add_argument("--seed", type=int, default=20261203, help="seed of the stream and the flaky receiver")
    p.add_argument(
        "--keep-tmp",
        action="store_true",
        help="keep the temp dir (database, logs) when every invariant holds",
    )
    p.add_argument(
        "--resume", type=Path, metavar="RESULTS_JSON", help="drain a cut run's backlog, then verify"
    )
    p.add_argument("--reverify", type=Path, metavar="RESULTS_JSON", help="verify an earlier run again")
    args = p.parse_args(argv)
    if args.reverify:
        return cmd_reverify(args.reverify)
    if args.resume:
        return cmd_resume(args.resume, args.quiesce_timeout or 1800)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
