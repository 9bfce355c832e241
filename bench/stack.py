"""Process control shared by the benchmark (bench/pipeline.py) and the chaos soak (bench/chaos.py).

``Stack`` starts Crossdock's real processes (gunicorn, celery worker, celery beat) and helpers, each
in its own process group with its log in the run's log directory, and stops them by id. The command
lines of the web tier, a worker and beat live here so both tools run the same processes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def web_cmd(port: int, workers: int) -> list[str]:
    """gunicorn serving hub.wsgi with ``workers`` sync workers on 127.0.0.1:``port``."""
    return [
        PY, "-m", "gunicorn", "hub.wsgi:application",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--backlog", "2048",
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--no-control-socket",
    ]  # fmt: skip


def worker_cmd(hostname: str, concurrency: int, log_level: str) -> list[str]:
    """A celery worker (prefork, ``concurrency`` children) consuming every queue."""
    return [
        PY, "-m", "celery", "-A", "celery_app", "worker",
        "--pool", "prefork",
        "--concurrency", str(concurrency),
        "--hostname", f"{hostname}@%h",
        "--loglevel", log_level,
    ]  # fmt: skip


def beat_cmd(schedule: Path, log_level: str) -> list[str]:
    """celery beat (the pipeline sweeper and the other periodic tasks of hub/core/schedule.py)."""
    return [
        PY, "-m", "celery", "-A", "celery_app", "beat",
        "--loglevel", log_level,
        "--schedule", str(schedule),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this benchmark dies without cleaning up (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stack:
    """The processes this benchmark started, each in its own process group, stopped by id."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.paused = False

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process; a restart appends
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.procs[name] = proc
        return proc

    def names(self, prefix: str) -> list[str]:
        return [n for n in self.procs if n.startswith(prefix)]

    def signal_group(self, prefix: str, sig: int) -> None:
        for name in self.names(prefix):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)

    def pause_workers(self) -> None:
        self.signal_group("celery", signal.SIGSTOP)
        self.paused = True

    def resume_workers(self) -> None:
        self.signal_group("celery", signal.SIGCONT)
        self.paused = False

    def stop(self, prefix: str = "", grace_s: float = 8.0) -> None:
        if self.paused and (not prefix or prefix.startswith("celery")):
            # paused workers would start on the backlog if resumed: end them outright
            self.signal_group("celery", signal.SIGKILL)
            self.resume_workers()
        names = [n for n in self.names(prefix) if self.procs[n].poll() is None]
        for name in names:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for name in names:
            proc = self.procs[name]
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            # the group may hold children that outlive the leader: kill what is left of it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for name in list(self.procs):
            if name.startswith(prefix) and self.procs[name].poll() is not None:
                del self.procs[name]

    def kill(self, name: str) -> None:
        """SIGKILL the process group of ``name`` (the process and its children, e.g. a worker's pool)
        and reap it: ``kill -9``, nothing gets a chance to clean up."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def exited(self) -> dict[str, int]:
        """Processes that ended on their own, by name: their exit code."""
        return {name: proc.returncode for name, proc in list(self.procs.items()) if proc.poll() is not None}

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with code {proc.returncode}; log tail:\n{tail}")


def hub_env(
    inherited: dict,
    name: str,
    *,
    database_url: str,
    broker_url: str,
    encryption_key: str,
    var_dir: Path,
    log_level: str,
    **extra: str,
) -> dict:
    """The environment of the hub processes a tool starts: ``inherited`` plus its own database and
    broker, a secret key, cache prefix and var dir of its own (``name``), rate limits out of the way,
    private networks allowed (its receivers are on 127.0.0.1) and ``extra`` settings."""
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "SECRET_KEY": f"{name}-" + "x" * 40,
        "CROSSDOCK_ENCRYPTION_KEY": encryption_key,
        "CROSSDOCK_ALLOW_PRIVATE_NETWORKS": "1",
        "CROSSDOCK_API_RATE": "100000000/min",
        "CROSSDOCK_INBOUND_RATE": "100000000/min",
        "CROSSDOCK_CACHE_PREFIX": f"crossdock-{name}",
        "CROSSDOCK_VAR_DIR": str(var_dir),
        "CROSSDOCK_LOG_LEVEL": log_level,
        **extra,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict, *cmd: str, error: type[Exception] = RuntimeError) -> str:
    """``manage.py cmd`` with ``env``; its stdout, or ``error`` with the tail of its output."""
    out = subprocess.run(
        [PY, "manage.py", *cmd], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise error(f"manage.py {' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out.stdout


def http_json(port: int, path: str, timeout: float = 10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def encryption_key() -> str:
    if os.environ.get("CROSSDOCK_ENCRYPTION_KEY"):
        return os.environ["CROSSDOCK_ENCRYPTION_KEY"]
    path = Path("/tmp/enckey")
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# --- Private servers (the chaos soak restarts them: never the machine's shared ones) -----------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")  # initdb, pg_ctl, postgres of the installed server


def _as_postgres() -> dict:
    """Keyword arguments for subprocess: PostgreSQL refuses to run as root, so run as ``postgres``."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb) in ``base``, listening on 127.0.0.1:``port`` only,
    with its socket in ``base`` too. Durability settings are the defaults: a restart in ``immediate``
    mode is a crash as far as the database is concerned (WAL recovery on start)."""

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.data = base / "data"
        self.log = base / "postgres.log"

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        out = subprocess.run(
            [str(PG_BIN / cmd[0]), *cmd[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base,
            **_as_postgres(),
        )
        if out.returncode:
            raise RuntimeError(
                f"{cmd[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
            )

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=200"
            " -c shared_buffers=128MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``mode``: fast (clean shutdown) or immediate (no checkpoint: recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"


class PrivateRedis:
    """A ``redis-server`` on 127.0.0.1:``port`` without persistence, run by ``stack`` as ``redis``: a
    restart loses everything it held (queued Celery messages, the cache's wake-up flags)."""

    def __init__(self, stack: Stack, base: Path, port: int) -> None:
        self.stack, self.base, self.port = stack, base, port

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.stack.start(
            "redis",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base)],
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on :{self.port} does not answer after 30 s")

    def kill(self) -> None:
        self.stack.kill("redis")
