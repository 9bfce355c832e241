"""ship-to-invoice against the live peers: no invoice is posted in Tryton before proof of delivery
(for customers who require it) nor while a shipment exception is open; then the sale's invoice is
posted exactly once, with the freight Karrio charged on its freight line and as the shipment's
cost. A customer who does not wait for POD is invoiced on delivery. Counted in Tryton."""

from __future__ import annotations

import pytest

from canonical.models import Invoice, Order
from hub.ledger.models import SideEffect
from tests.flows.conftest import money, tracking_event

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _freight_line(hub, invoice: dict) -> dict:
    lines = hub.tryton.call(
        "model.account.invoice.line.read",
        invoice["lines"],
        ["product.code", "quantity", "unit_price", "amount"],
    )
    (freight,) = [line for line in lines if (line.get("product.") or {}).get("code") == "FREIGHT"]
    return freight


def test_billing_waits_for_pod_and_open_exceptions_then_posts_one_invoice_with_the_tms_freight(hub):
    sale, _ = hub.ship(lines=(("WIDGET", 3),))
    tracker = hub.karrio_shipment(sale)["tracker_id"]
    hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    hub.karrio.inject(tracker, "delivered", tracking_event(2, "delivered", "DL"), delivered=True)
    hub.settle()

    run = hub.run("ship_to_invoice", sale.shipment)
    assert (run.status, run.current_step) == ("waiting", "await_delivery")
    assert run.steps.get(name="await_delivery").waiting_for == f"proof of delivery for {sale.shipment}"
    assert hub.posted_invoices(sale.id) == []  # delivered, no POD: nothing billed

    # The consignee reports damage after delivery: an open exception holds billing, POD or not.
    hub.milestone(sale.shipment, "DAMAGED", "2030-03-02T15:00:00Z", reason_code="DMG")
    hub.milestone(sale.shipment, "POD_RECEIVED", "2030-03-02T16:00:00Z")
    hub.settle()
    run.refresh_from_db()
    assert (run.status, run.current_step) == ("waiting", "billing_hold")
    assert run.steps.get(name="billing_hold").waiting_for == "billing held: open exception(s) DAMAGED"
    assert hub.posted_invoices(sale.id) == []

    hub.milestone(
        sale.shipment, "EXCEPTION_RESOLVED", "2030-03-03T09:00:00Z", details={"exception": "DAMAGED"}
    )
    hub.settle()

    run.refresh_from_db()
    assert run.status == "completed", (run.error, list(run.steps.values("name", "status", "error")))
    (invoice,) = hub.posted_invoices(sale.id)
    assert money(_freight_line(hub, invoice)["amount"]) == money("10.00")  # Karrio's rate, not Tryton's 15
    assert money(invoice["total_amount"]) == money("70.00")  # 3 x 20.00 + 10.00 freight
    stock_ids = hub.sale_read(sale.id, ["shipments"])["shipments"]
    (stock,) = hub.tryton.call("model.stock.shipment.out.read", stock_ids, ["cost", "cost_edit"])
    assert (money(stock["cost"]), stock["cost_edit"]) == (money("10.00"), True)
    canonical = Invoice.objects.get(kind=Invoice.Kind.INVOICE)
    assert (canonical.reference, canonical.status) == (invoice["number"], "POSTED")
    # The hub records what it billed: the order's line and the TMS freight, as Tryton posted them.
    lines = [(line.quantity, line.unit_price) for line in canonical.lines.order_by("line_number")]
    assert [(money(q), money(p)) for q, p in lines] == [(money(3), money(20)), (money(1), money(10))]
    assert sum(money(q * p) for q, p in lines) == money(invoice["total_amount"])
    assert Order.objects.get(reference=sale.order).status == Order.Status.INVOICED

    # Again (a redelivered wake-up, another milestone): still one invoice, nothing re-posted.
    hub.milestone(sale.shipment, "POD_RECEIVED", "2030-03-03T10:00:00Z")
    hub.settle()
    assert len(hub.posted_invoices(sale.id)) == 1
    assert len(hub.invoices(sale.party_id)) == 1
    assert SideEffect.objects.get(operation="invoice.post").attempts == 1


def test_a_customer_who_does_not_wait_for_pod_is_invoiced_on_delivery(hub):
    sale = hub.sale_delivered_without_pod_hold(lines=(("WIDGET", 2),))
    hub.settle()

    run = hub.run("ship_to_invoice", sale.shipment)
    assert run.status == "completed", (run.error, list(run.steps.values("name", "status", "error")))
    assert run.context["await_delivery"]["pod_required"] is False
    assert run.context["await_delivery"]["pod_received_at"] is None
    (invoice,) = hub.posted_invoices(sale.id)
    assert money(invoice["total_amount"]) == money("50.00")  # 2 x 20.00 + 10.00 freight
    assert len(hub.invoices(sale.party_id)) == 1
