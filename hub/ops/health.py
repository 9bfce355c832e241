"""Readiness checks (the probes of :mod:`hub.core.probes`). Each returns (ok, detail) and never raises.

Who sees what (``/health/``): every caller learns which part fails (``database``, ``broker``), and
the failing check's exception text goes to the log. The text itself (it can name hosts, ports, users)
is answered only to an admin API key or a superuser login. Not to loopback callers: behind a reverse
proxy on the same host every request arrives from 127.0.0.1. With the database down neither can be
verified (keys and sessions live there), so then the log is the place to read.
"""

from __future__ import annotations

import logging

from hub.connections.services import api_client_authenticate
from hub.core.probes import check_broker, check_database

logger = logging.getLogger(__name__)

CHECKS = {"database": check_database, "broker": check_broker}


def run_all() -> dict[str, tuple[bool, str]]:
    return {name: check() for name, check in CHECKS.items()}


def run_all_logged() -> dict[str, tuple[bool, str]]:
    """:func:`run_all`, logging each failing check's detail (a warning per failing part)."""
    results = run_all()
    for name, (ok, detail) in results.items():
        if not ok:
            logger.warning("health check %s failing: %s", name, detail)
    return results


def caller_sees_details(request) -> bool:
    """Whether ``request`` comes from an admin API key or an active superuser login. Never raises."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    try:
        if len(parts) == 2 and parts[0].lower() == "token":
            client = api_client_authenticate(key=parts[1])
            return client is not None and client.is_admin
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_active and user.is_superuser)
    except Exception:  # the database is down: nobody can be verified
        return False


def shown(results: dict[str, tuple[bool, str]], *, details: bool) -> dict[str, str]:
    """Each check as the caller may see it: ``ok``, and for a failing one its detail or ``failing``."""
    return {
        name: "ok" if ok else (detail if details else "failing") for name, (ok, detail) in results.items()
    }
