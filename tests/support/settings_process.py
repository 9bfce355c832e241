"""Starting the real settings module in a fresh interpreter, as a server would, with the test
environment changed: for the start-up checks of the env helpers, broker and production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup()"
TIMEOUT_S = 60  # seconds one interpreter may take to start and answer


def settings_run(
    code: str = SETUP,
    *,
    unset: Iterable[str] = (),
    unset_prefixes: tuple[str, ...] = (),
    **overrides: str | None,
) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (``DJANGO_SETTINGS_MODULE=hub.settings``, cwd the repository)
    with the test environment minus ``unset`` and every variable starting with ``unset_prefixes``,
    plus ``overrides`` (None unsets)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings"}
    for name in list(env):
        if name in unset or (unset_prefixes and name.startswith(unset_prefixes)):
            env.pop(name)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
