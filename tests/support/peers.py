"""Running the peer bring-up scripts (peers/<name>.sh) from tests: stdin closed, as in CI."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

PEERS = Path(__file__).resolve().parents[2] / "peers"
#: The warehouse the tests' Karrio connections ship from (their ``shipper`` config).
SHIPPER = {
    "person_name": "Dock 4",
    "company_name": "Crossdock Warehouse",
    "address_line1": "1 Dock St",
    "city": "Montreal",
    "postal_code": "H2B1A0",
    "state_code": "QC",
    "country_code": "CA",
}


class PeerApi:
    """JSON reads and writes against a peer's REST API: ``self.api`` (a ``requests.Session`` carrying
    the credentials) at ``self.url``; an HTTP error fails the call."""

    url: str
    api: Any  # requests.Session

    def get(self, path: str, **params: Any) -> dict:
        response = self.api.get(f"{self.url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> dict:
        response = self.api.post(f"{self.url}{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()


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


def peer_script_or_fail(name: str, verb: str, *, timeout: float = 900) -> str:
    """``peer_script``, failing the test (rather than raising) when the script fails."""
    try:
        return peer_script(name, verb, timeout=timeout)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def peer_ready(name: str, *, timeout: float = 900) -> dict[str, str]:
    """Bring the peer up (``ensure``) and to its starting data (``reset``), print how long that took
    for the session log, and return its ``env``."""
    started = time.monotonic()
    peer_script(name, "ensure", timeout=timeout)
    peer_script(name, "reset", timeout=timeout)
    print(f"\n[{name} peer] ensure + reset in {time.monotonic() - started:.1f}s")
    return peer_script_env(name)


def peer_script_env(name: str) -> dict[str, str]:
    """``peers/<name>.sh env`` as a dict (URLs and credentials)."""
    return dict(line.split("=", 1) for line in peer_script(name, "env").splitlines() if "=" in line)
