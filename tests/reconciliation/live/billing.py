"""Helpers of the billing checks' live tests (delivered_invoiced, invoice_amounts): deliver a
shipment as its carrier reports it, and run a check the way the worker does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciliation import services
from reconciliation.models import CheckConfig, ReconciliationRun
from tests.flows.conftest import SLUGS


def configure(check: str, **options) -> None:
    """The check reads the flows' ERP connection (the session's own), with ``options``."""
    CheckConfig.objects.update_or_create(
        check_name=check, defaults={"options": {"connections": {"erp": SLUGS["erp"]}, **options}}
    )


def run(check: str, *references: str) -> ReconciliationRun:
    started = services.run_start(check=check, scope={"references": list(references)})
    services.run_execute(run_id=started.pk)
    started.refresh_from_db()
    assert started.status == "succeeded", started.error
    return started


def iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def deliver(hub, shipment: str, *, hours_ago: float = 72) -> None:
    """Delivered and proof of delivery received ``hours_ago`` (the partner feed reports both)."""
    hub.milestone(shipment, "PICKED_UP", iso(hours_ago + 24))
    hub.milestone(shipment, "DELIVERED", iso(hours_ago))
    hub.milestone(shipment, "POD_RECEIVED", iso(hours_ago - 1))
