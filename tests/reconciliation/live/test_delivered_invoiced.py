"""delivered_invoiced against the live Tryton: a shipment delivered with POD whose invoice was never
posted (ship-to-invoice switched off) is found past its SLA; the repair posts the sale's invoice in
Tryton once, through the ledger; a second run finds nothing and writes nothing."""

from __future__ import annotations

import pytest

from canonical.errors import ConflictError
from canonical.models import Invoice
from hub.ledger.models import SideEffect
from hub.workflows.models import WorkflowRun
from hub.workflows.triggers import flow_config_save
from reconciliation import services
from reconciliation.models import Discrepancy
from tests.flows.conftest import SLUGS, money
from tests.reconciliation.live.billing import configure, deliver, run

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_a_delivered_shipment_not_invoiced_is_found_and_repaired_once(hub):
    roles = {role: SLUGS[role] for role in ("erp", "tms", "crm")}
    flow_config_save(flow="ship_to_invoice", enabled=False, connections=roles)
    configure("delivered_invoiced", sla_hours=24)
    sale, _ = hub.ship(lines=(("WIDGET", 3),))
    deliver(hub, sale.shipment, hours_ago=30)
    hub.settle()
    assert not WorkflowRun.objects.filter(flow="ship_to_invoice").exists()
    assert hub.posted_invoices(sale.id) == []

    first = run("delivered_invoiced", sale.shipment)
    assert (first.examined, first.new) == (1, 1)
    found = Discrepancy.objects.get(check_name="delivered_invoiced", business_key=sale.shipment)
    assert (found.kind, found.severity, found.repairable, found.status) == (
        "not_invoiced",
        "warning",
        True,
        "open",
    )
    assert found.expected["pod_required"] is True and found.expected["pod_received_at"]
    assert found.found["sale_id"] == sale.id
    assert [i["state"] for i in found.found["erp_invoices"]] == ["draft"]

    plan = services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="look", dry_run=True)
    assert plan.repair["plan"]["writes"][0]["payload"] == {
        "sale_id": sale.id,
        "freight_amount": "10.00",
        "currency": "USD",
    }
    assert not SideEffect.objects.filter(operation="invoice.post").exists()

    repaired = services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="bill it")
    assert repaired.status == "repaired"
    (write,) = repaired.repair["writes"]
    (posted,) = hub.posted_invoices(sale.id)
    assert write["external_id"] == str(posted["id"])
    assert money(posted["total_amount"]) == money("70.00")  # 3 x 20.00 + Karrio's 10.00 freight
    invoice = Invoice.objects.get(reference=posted["number"])
    assert sum(money(line.quantity * line.unit_price) for line in invoice.lines.all()) == money("70.00")
    assert SideEffect.objects.filter(operation="invoice.post").count() == 1

    second = run("delivered_invoiced", sale.shipment)
    assert (second.examined, second.ok, second.new, second.still_open) == (1, 1, 0, 0)
    assert Discrepancy.objects.filter(check_name="delivered_invoiced").count() == 1
    with pytest.raises(ConflictError):
        services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="again")
    assert SideEffect.objects.filter(operation="invoice.post").count() == 1
    assert len(hub.posted_invoices(sale.id)) == 1
    assert len(hub.invoices(sale.party_id)) == 1
