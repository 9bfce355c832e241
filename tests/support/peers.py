"""Running the peer bring-up scripts (peers/<name>.sh) from tests: stdin closed, as in CI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PEERS = Path(__file__).resolve().parents[2] / "peers"


def peer_script(name: str, verb: str, *, timeout: float = 900) -> str:
    """Run ``peers/<name>.sh <verb>`` and return its stdout; raise with the stderr tail on failure."""
    done = subprocess.run(
        ["bash", str(PEERS / f"{name}.sh"), verb],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"peers/{name}.sh {verb} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def peer_script_env(name: str) -> dict[str, str]:
    """``peers/<name>.sh env`` as a dict (URLs and credentials)."""
    return dict(line.split("=", 1) for line in peer_script(name, "env").splitlines() if "=" in line)
