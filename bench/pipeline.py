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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo root

# The parts: runner.py (the run and its phases), stack.py (processes), load.py (event stream and
# clients), sink.py (the recording sink), sampler.py (RSS/CPU), profiler.py (the profile step),
# report.py (database figures and the table), seed.py (seeding).
from bench.profiler import cmd_profile
from bench.report import cmd_dbstats, table
from bench.runner import DB_NAME, Bench, cmd_seed, run_reported
from bench.sink import phase_sink_serve
from bench.stack import ROOT


def cmd_run(args) -> int:
    bench = Bench(args)
    if args.soak:
        step = bench.run_soak
    elif args.profile_only:
        step = bench.run_profile_only
    else:
        step = bench.run_main
    code, path = run_reported(bench, step)
    if bench.results.get("phases"):
        print()
        print(table(bench.results))
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
            "_sink": lambda: phase_sink_serve(ns.port),
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
