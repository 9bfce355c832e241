"""`./crossdock up --alone` end to end, on the embedded default (SQLite and the filesystem broker).

The README's main command runs as a subprocess in a temporary ``CROSSDOCK_VAR_DIR`` on ports of its
own, so it never touches the test database, Redis or a developer's ``./var``. The test waits for the
ready block, uses what it printed (admin login, API key, URLs), sends Ctrl-C (SIGINT) and checks that
the script exits 0 and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WEB_PORT = 8100
FLOWER_PORT = 5600
READY_TIMEOUT_S = 90  # seconds from start to the ready block (migrations on a fresh SQLite file)
STOP_TIMEOUT_S = 30  # seconds the script may take to stop everything after SIGINT
HTTP_TIMEOUT_S = 10
READY_LINE = "Ctrl-C stops everything."
# Variables that select PostgreSQL and Redis; without them the settings use the embedded default.
SERVER_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CROSSDOCK_REDIS_URL",
    "SECRET_KEY",
    "CROSSDOCK_ENCRYPTION_KEY",
)


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SERVER_VARIABLES and name.removesuffix("_FILE") not in SERVER_VARIABLES
    }
    env.update(
        CROSSDOCK_VAR_DIR=str(var_dir),
        CROSSDOCK_PORT=str(WEB_PORT),
        CROSSDOCK_FLOWER_PORT=str(FLOWER_PORT),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _processes_with_var_dir(var_dir: Path) -> dict[int, str]:
    """Every live process (pid -> command line) whose environment has this CROSSDOCK_VAR_DIR.

    The script exports it, so gunicorn, the Celery processes and all their children carry it.
    """
    marker = f"CROSSDOCK_VAR_DIR={var_dir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()  # empty for a zombie
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class UpProcess:
    """`./crossdock up --no-install` with its output collected line by line."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [str(ROOT / "crossdock"), "up", "--alone", "--no-install"],
            cwd=var_dir.parent,  # the script must work from any directory
            env=_embedded_env(var_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # A shell that started pytest in the background may have left SIGINT ignored, and bash
            # cannot trap a signal ignored on entry: give the script the default disposition.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {text!r} from ./crossdock up within {timeout}s; output:\n{self.output}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                pytest.fail(
                    f"./crossdock up exited with {self.proc.returncode} before {text!r}; output:\n{self.output}"
                )
            self.lines.append(line)
            if text in line:
                return

    def printed(self, pattern: str) -> str:
        match = re.search(pattern, self.output, re.MULTILINE)
        assert match, f"{pattern!r} not in the output of ./crossdock up:\n{self.output}"
        return match.group(1)

    def drain(self) -> None:
        while True:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)


def _get_eventually(url: str, timeout: float, **kwargs) -> requests.Response:
    """GET until it answers 200 or the timeout passes (Flower may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)
            if response.status_code == 200 or time.monotonic() > deadline:
                return response
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _log_text(var_dir: Path, name: str) -> str:
    path = var_dir / "log" / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_up_serves_the_embedded_default_and_stops_cleanly_on_ctrl_c(tmp_path):
    var_dir = (tmp_path / "var").resolve()
    started = time.monotonic()
    up = UpProcess(var_dir)
    try:
        up.wait_for_line(READY_LINE, READY_TIMEOUT_S)
        ready_after = time.monotonic() - started
        print(f"./crossdock up was ready after {ready_after:.1f}s")

        base = f"http://127.0.0.1:{WEB_PORT}"
        username = up.printed(r"login: (\S+) / \S+$")
        password = up.printed(r"login: \S+ / (\S+)$")
        api_key = up.printed(r"API key \(admin\):\s+(\S+)")
        assert f"{base}/admin/" in up.output
        assert f"{base}/api/docs/" in up.output
        assert f"{base}/health/" in up.output
        assert f"http://127.0.0.1:{FLOWER_PORT}/" in up.output
        assert str(var_dir / "log") in up.output

        health = requests.get(f"{base}/health/", timeout=HTTP_TIMEOUT_S)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert requests.get(f"{base}/admin/login/", timeout=HTTP_TIMEOUT_S).status_code == 200
        assert requests.get(f"{base}/api/docs/", timeout=HTTP_TIMEOUT_S).status_code == 200

        customers = requests.get(
            f"{base}/api/v1/customers/", headers={"Authorization": f"Token {api_key}"}, timeout=HTTP_TIMEOUT_S
        )
        assert customers.status_code == 200, customers.text
        anonymous = requests.get(f"{base}/api/v1/customers/", timeout=HTTP_TIMEOUT_S)
        assert anonymous.status_code == 401

        # Flower listens on loopback only, behind the printed admin login (HTTP basic auth).
        flower_url = f"http://127.0.0.1:{FLOWER_PORT}/"
        assert re.search(
            rf"Flower:\s+{re.escape(flower_url)}\s+login: {username} / {re.escape(password)}$",
            up.output,
            re.M,
        )
        flower = _get_eventually(flower_url, timeout=20, auth=(username, password))
        assert flower.status_code == 200, flower.text
        assert requests.get(flower_url, timeout=HTTP_TIMEOUT_S).status_code == 401
        assert requests.get(flower_url, timeout=HTTP_TIMEOUT_S, auth=(username, "wrong")).status_code == 401
        assert requests.get(f"{flower_url}api/workers", timeout=HTTP_TIMEOUT_S).status_code == 401
        flower_cmd = next(cmd for cmd in _processes_with_var_dir(var_dir).values() if " flower " in cmd)
        assert "--address=127.0.0.1" in flower_cmd
        assert password not in flower_cmd  # the credentials are not on the command line

        # The printed admin login works through the real login form (CSRF cookie + token).
        session = requests.Session()
        form = session.get(f"{base}/admin/login/", timeout=HTTP_TIMEOUT_S)
        assert form.status_code == 200
        login = session.post(
            f"{base}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "username": username,
                "password": password,
                "next": "/admin/",
            },
            timeout=HTTP_TIMEOUT_S,
        )
        assert login.status_code == 200
        assert login.url == f"{base}/admin/", f"login did not reach the admin index: {login.url}"
        assert "/admin/logout/" in login.text

        # The worker is a real process consuming the filesystem broker under the var dir.
        token = f"up-e2e-{uuid.uuid4().hex}"
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import celery_app; from hub.core.tasks import ping_task; ping_task.delay({token!r})",
            ],
            cwd=ROOT,
            env=_embedded_env(var_dir),
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while f"'token': '{token}', 'database': 'ok'" not in _log_text(var_dir, "worker"):
            assert time.monotonic() < deadline, "the worker did not run the ping task:\n" + _log_text(
                var_dir, "worker"
            )
            time.sleep(0.5)

        leaders = {int(p.read_text()) for p in (var_dir / "run").glob("*.pid")}
        assert len(leaders) >= 5, f"pid files: {sorted((var_dir / 'run').iterdir())}"  # script + 4
        running = _processes_with_var_dir(var_dir)
        assert any("gunicorn" in cmd for cmd in running.values()), running
        assert sum("celery_app" in cmd for cmd in running.values()) >= 3, running  # worker, beat, flower

        # Ctrl-C: everything stops and the script exits 0.
        up.proc.send_signal(signal.SIGINT)
        try:
            returncode = up.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"./crossdock up still running {STOP_TIMEOUT_S}s after SIGINT:\n{up.output}")
        up.drain()
        assert returncode == 0, up.output
        assert not [pid for pid in leaders if _pid_alive(pid)]
        leftovers = _processes_with_var_dir(var_dir)
        assert not leftovers, f"processes left after Ctrl-C: {leftovers}"
        assert not list((var_dir / "run").glob("*.pid"))
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)
        for pid in _processes_with_var_dir(var_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
