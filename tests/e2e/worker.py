"""A real Celery worker process for end-to-end tests.

The worker is `celery -A celery_app worker` in its own process, consuming the real Redis broker and
reading the pytest-django test database, so the tests that use it must commit their data
(``@pytest.mark.django_db(transaction=True)``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from celery_app import app

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30  # seconds for the worker to report ready


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """One `celery worker` process group. ``env`` adds or overrides environment variables (e.g.
    ``{"CROSSDOCK_DELIVERY_LEASE_S": "3"}``); it can be started again after ``stop``/``kill``.
    ``private_networks`` lifts the outbound SSRF guard in the worker (its receiver is on 127.0.0.1);
    otherwise the worker has it on, whatever the calling environment says."""

    _started = itertools.count(1)

    def __init__(
        self,
        *,
        concurrency: int = 2,
        log_path: Path,
        env: dict[str, str] | None = None,
        private_networks: bool = False,
    ) -> None:
        self.concurrency = concurrency
        self.log_path = log_path
        self.env = {
            "CROSSDOCK_ALLOW_PRIVATE_NETWORKS": "1" if private_networks else "0",
            **{name: str(value) for name, value in (env or {}).items()},
        }
        self.proc: subprocess.Popen | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log_since(self, offset: int) -> bytes:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read()

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1", **self.env}
        queues = ",".join(q.name for q in settings.CELERY_TASK_QUEUES)
        # A restart appends to the same log: only what this start writes may say "ready.".
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_app",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "-Q",
                queues,
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"e2e-{os.getpid()}-{next(self._started)}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child holds its own copy
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}; see {self.log_path}")
            if b"ready." in self._log_since(offset):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker not ready within {START_TIMEOUT_S}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group: pool children die too
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A running worker for the whole session; queues are purged first so stale messages never run."""
    with django_db_blocker.unblock():
        app.control.purge()
        # The e2e tests deliver to a sink on 127.0.0.1: the worker opts in to private networks.
        worker = WorkerProcess(
            log_path=tmp_path_factory.mktemp("celery") / "worker.log", private_networks=True
        )
        worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker_with_env(celery_worker_process, tmp_path):
    """Start workers with extra environment: ``start({"CROSSDOCK_BREAKER_MIN_CALLS": "2"})``.

    The session worker is stopped first (it would otherwise take the same queues with the default
    settings) and started again when the test ends, after every worker started here is stopped.
    """
    started: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        celery_worker_process.stop()
        worker = WorkerProcess(
            log_path=tmp_path / f"worker-{len(started) + 1}.log", env=env, private_networks=True
        )  # like the session worker: the sink is on 127.0.0.1
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    if not celery_worker_process.alive:
        celery_worker_process.start()
