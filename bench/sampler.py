"""RSS and CPU time of the processes the pipeline benchmark runs (psutil), sampled in a thread."""

from __future__ import annotations

import contextlib
import threading
import time


class Sampler(threading.Thread):
    """Samples RSS and CPU time of process groups (leader + descendants) every ``interval`` seconds."""

    def __init__(self, groups: dict, interval: float, alone: frozenset[str] = frozenset()) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.groups = groups  # name -> callable returning root pids (descendants are added)
        self.alone = alone  # groups whose root pids are sampled without their descendants
        self.interval = interval
        self.lock = threading.Lock()
        self.cpu: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.peak: dict[str, int] = dict.fromkeys(groups, 0)
        self.series: dict[str, list[tuple[float, int]]] = {g: [] for g in groups}
        self.stop_event = threading.Event()

    def _procs(self, name: str) -> list:
        procs = []
        for pid in self.groups[name]():
            try:
                root = self.psutil.Process(pid)
                procs.append(root)
                if name not in self.alone:
                    procs.extend(root.children(recursive=True))
            except self.psutil.Error:
                continue
        return procs

    def sample(self) -> None:
        now = time.time()
        with self.lock:
            for name in self.groups:
                rss = 0
                for proc in self._procs(name):
                    try:
                        with proc.oneshot():
                            rss += proc.memory_info().rss
                            times = proc.cpu_times()
                            self.cpu[name][proc.pid] = times.user + times.system
                    except self.psutil.Error:
                        continue
                if name != "postgres":
                    self.series[name].append((now, rss))
                    self.peak[name] = max(self.peak[name], rss)

    def cpu_totals(self) -> dict[str, float]:
        self.sample()
        with self.lock:
            totals = {name: sum(per_pid.values()) for name, per_pid in self.cpu.items()}
        times = self.psutil.cpu_times()
        totals["_system_busy"] = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return totals

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            with contextlib.suppress(Exception):
                self.sample()


def pg_backend_pids(db_name: str) -> list[int]:
    """The PostgreSQL backends serving database ``db_name``."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline", "name"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if cmd.startswith("postgres:") and f" {db_name} " in cmd:
            pids.append(proc.pid)
    return pids
