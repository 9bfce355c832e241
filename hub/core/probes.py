"""Probes of the hub's backing services. Each returns (ok, detail) and never raises.

They sit in core because the worker's ``hub.core.ping`` task runs one as well as ``/health/``
(:mod:`hub.ops.health`), which decides who sees the detail.
"""

from __future__ import annotations

from celery import current_app  # celery_app.py's app: hub/__init__.py loads it
from django.db import connection

BROKER_TIMEOUT_S = 2.0  # seconds a /health/ probe waits for the broker before calling it down


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, f"database unreachable: {type(exc).__name__}: {exc}".strip()
    return True, "ok"


def check_broker() -> tuple[bool, str]:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S, interval_start=0, interval_step=0)
            # ensure_connection only opens a socket; a command proves a Redis server answers.
            client = getattr(conn.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}: {exc}".strip()
    return True, "ok"
