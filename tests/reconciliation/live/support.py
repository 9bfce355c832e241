"""Running a check the way the worker does, reading what it recorded, and switching Karrio's webhook
off for a while."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from reconciliation import services
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun


def run_check(
    check: str, *, scope: dict[str, Any] | None = None, options: dict | None = None
) -> ReconciliationRun:
    if options is not None:
        CheckConfig.objects.update_or_create(check_name=check, defaults={"options": options})
    run = services.run_start(check=check, scope=scope or {}, actor="tests")
    done = services.run_execute(run_id=run.pk)
    assert done is not None and done.status == ReconciliationRun.Status.SUCCEEDED, done and done.error
    return done


def configure(check: str, *, auto_repair: bool, **options: Any) -> CheckConfig:
    config = services.check_config(check)
    CheckConfig.objects.filter(pk=config.pk).update(auto_repair=auto_repair, options=options)
    return config


def execute(check: str, *references: str) -> ReconciliationRun:
    """One run of ``check`` limited to ``references``, executed here (as the worker would)."""
    run = services.run_start(check=check, scope={"references": list(references)}, actor="ops:tests")
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ReconciliationRun.Status.SUCCEEDED, run.error
    return run


def discrepancies(check: str, key: str) -> list[Discrepancy]:
    return list(Discrepancy.objects.filter(check_name=check, business_key=key).order_by("created_at"))


@contextmanager
def webhook_off(hub):
    """Karrio keeps its subscription to the hub but sends nothing (as if the hub were unreachable)."""
    hook = hub.karrio_webhook["id"]
    url = f"{hub.karrio.url}/v1/webhooks/{hook}"
    response = hub.karrio.api.patch(url, json={"disabled": True}, timeout=30)
    response.raise_for_status()
    assert response.json()["disabled"] is True
    try:
        yield
    finally:
        hub.karrio.api.patch(url, json={"disabled": False}, timeout=30).raise_for_status()
