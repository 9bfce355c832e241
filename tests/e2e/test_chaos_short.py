"""The short chaos soak (bench/chaos.py --short) as a test: faults of every kind, then the invariants.

The soak starts its own PostgreSQL cluster (initdb) and its own redis-server on private ports, so it
never touches the test database or the shared Redis; it needs the PostgreSQL 15 server binaries and
``redis-server`` on the machine, which CI has. It runs as a subprocess; the test asserts its exit
status and reads the key figures from the results JSON it writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.stack import PG_BIN

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 900  # seconds: the short soak targets < 3 min; a loaded 2-core machine may take longer


@pytest.fixture
def chaos_results(tmp_path):
    if not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None:
        pytest.fail(f"the chaos soak needs {PG_BIN}/initdb and redis-server on the machine")
    before = set((ROOT / "bench" / "results").glob("chaos-short-*.json"))
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--short",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    (tmp_path / "chaos.log").write_text(run.stdout + run.stderr)
    made = sorted(set((ROOT / "bench" / "results").glob("chaos-short-*.json")) - before)
    assert made, (
        f"no results written; exit {run.returncode}; output tail:\n{(run.stdout + run.stderr)[-4000:]}"
    )
    results = json.loads(made[-1].read_text())
    made[-1].unlink()  # a CI run's figures are not kept in the tree
    return run, results


def test_short_chaos_soak_keeps_every_invariant(chaos_results):
    run, results = chaos_results
    tail = run.stdout[-6000:]
    assert run.returncode == 0, f"bench/chaos.py --short exited {run.returncode}:\n{tail}"
    assert results["quiescent"], tail
    faults = results["faults_by_kind"]
    for kind in ("worker_kill9", "web_restart", "redis_restart", "postgres_restart", "receiver_outage"):
        assert faults.get(kind, 0) >= 1, f"fault {kind} was not injected: {faults}"
    assert results["stream"]["duplicates_sent"] > 0 and results["stream"]["reordered"] > 0
    for name, sub in results["subscribers"].items():
        assert sub["lost"] == 0, f"{name}: {sub['lost']} events never delivered"
        assert sub["delivered"] == sub["expected"], (name, sub)
        assert sub["applied_twice"] == 0, f"{name}: events delivered under two idempotency keys"
        assert sub["redelivered_unexplained"] == 0, f"{name}: same-key redeliveries with no lost attempt"
        assert sub["out_of_order"] == 0, f"{name}: deliveries out of per-shipment order"
    db = results["db"]
    assert db["messages_stuck"] == 0 and db["deliveries_stuck"] == 0, db
    assert db["shipment_state_mismatches"] == 0, results["examples"].get("state_mismatch")
    assert db["dead_letters_unjustified"] == 0, results["examples"].get("dead_letters_unjustified")
    assert db["refused_for_good_dead_lettered"] == db["refused_for_good"] > 0, db
    assert all(results["invariants"].values()), results["invariants"]
