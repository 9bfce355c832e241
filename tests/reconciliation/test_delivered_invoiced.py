"""delivered_invoiced: the billing rules for one shipment (pure), as the check applies them to
what the hub and the ERP say (the ERP side in live/test_delivered_invoiced.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from reconciliation import services
from reconciliation.checks.base import NotRepairable
from reconciliation.checks.delivered_invoiced import Facts, compare
from reconciliation.models import Discrepancy
from tests.factories.pipeline import ConnectionFactory

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
SLA = timedelta(hours=48)
POSTED = {"id": 31, "number": "INV-31", "state": "posted", "total_amount": "70.00", "currency": "USD"}
DRAFT = {**POSTED, "number": None, "state": "draft"}

DELIVERED = Facts(
    reference="SHP-1",
    status="DELIVERED",
    needs_pod=True,
    delivered_at=NOW - timedelta(hours=60),
    pod_received_at=NOW - timedelta(hours=50),
    erp_invoices=[DRAFT],
    hub_invoices=[],
    open_exceptions=[],
    sale_id=5,
)


def test_delivered_with_pod_and_invoiced_agrees():
    finding = compare(replace(DELIVERED, erp_invoices=[POSTED], hub_invoices=["INV-31"]), now=NOW, sla=SLA)
    assert finding.ok and finding.external_ids == ("31",)


def test_not_invoiced_within_the_sla_is_not_due_yet():
    assert compare(replace(DELIVERED, pod_received_at=NOW - timedelta(hours=47)), now=NOW, sla=SLA).ok


def test_not_invoiced_past_the_sla_is_repairable_and_an_error_past_twice_the_sla():
    finding = compare(DELIVERED, now=NOW, sla=SLA)
    assert (finding.ok, finding.kind, finding.severity, finding.repairable) == (
        False,
        "not_invoiced",
        "warning",
        True,
    )
    assert finding.expected["pod_received_at"] == DELIVERED.pod_received_at.isoformat()
    assert finding.found == {"sale_id": 5, "erp_invoices": [DRAFT]}
    assert "50 h after delivery" in finding.summary
    late = compare(
        replace(DELIVERED, delivered_at=NOW - timedelta(hours=99), pod_received_at=NOW - timedelta(hours=97)),
        now=NOW,
        sla=SLA,
    )
    assert late.severity == "error"


def test_an_open_exception_holds_billing_and_is_not_repairable():
    finding = compare(replace(DELIVERED, open_exceptions=["DAMAGED"]), now=NOW, sla=SLA)
    assert (finding.kind, finding.repairable) == ("billing_held", False)


def test_invoiced_without_pod_is_an_error_not_repairable():
    finding = compare(
        replace(
            DELIVERED, status="IN_TRANSIT", delivered_at=None, pod_received_at=None, erp_invoices=[POSTED]
        ),
        now=NOW,
        sla=SLA,
    )
    assert (finding.kind, finding.severity, finding.repairable) == ("invoiced_without_pod", "error", False)
    assert "INV-31" in finding.summary
    hub_only = compare(replace(DELIVERED, pod_received_at=None, hub_invoices=["INV-31"]), now=NOW, sla=SLA)
    assert hub_only.kind == "invoiced_without_pod"


def test_a_customer_who_does_not_wait_for_pod_is_invoiced_on_delivery():
    no_pod = replace(DELIVERED, needs_pod=False, pod_received_at=None)
    assert compare(replace(no_pod, erp_invoices=[POSTED]), now=NOW, sla=SLA).ok
    assert compare(no_pod, now=NOW, sla=SLA).kind == "not_invoiced"


def test_not_delivered_and_not_invoiced_agrees_and_a_hub_invoice_the_erp_lost_is_said_so():
    assert compare(replace(DELIVERED, status="IN_TRANSIT", pod_received_at=None), now=NOW, sla=SLA).ok
    lost = compare(
        replace(DELIVERED, hub_invoices=["INV-31"], erp_invoices=[{**POSTED, "state": "cancelled"}]),
        now=NOW,
        sla=SLA,
    )
    assert (lost.kind, lost.repairable) == ("erp_invoice_not_posted", False)


@pytest.mark.django_db
def test_an_erp_connection_that_cannot_list_invoices_fails_the_run_saying_why():
    ConnectionFactory(slug="erp-hook", system="erp", connector="webhook")
    run = services.run_start(check="delivered_invoiced")
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "erp-hook uses the webhook connector, which cannot list invoices" in run.error


@pytest.mark.django_db
def test_only_not_invoiced_is_repaired():
    discrepancy = Discrepancy.objects.create(
        check_name="delivered_invoiced",
        business_key="SHP-9",
        kind="invoiced_without_pod",
        summary="invoiced without POD",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )
    with pytest.raises(NotRepairable, match="invoiced_without_pod is for ops"):
        services.discrepancy_repair(discrepancy_id=discrepancy.pk, actor="ops", reason="try")
    discrepancy.refresh_from_db()
    assert discrepancy.status == "open"
