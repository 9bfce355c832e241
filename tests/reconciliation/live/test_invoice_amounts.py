"""invoice_amounts against the live Tryton: the hub's invoice equals the posted Tryton invoice line
by line; an invoice edited by hand in Tryton before it was posted, and one cancelled by hand after,
each open one discrepancy showing what each system says; a second run adds none. The cancelled one
is repaired once: the sale billed again in Tryton, the hub recording the new invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical.errors import ConflictError
from canonical.models import Invoice
from hub.ledger.models import SideEffect
from reconciliation import services
from reconciliation.models import Discrepancy
from tests.flows.conftest import money
from tests.reconciliation.live.billing import configure, deliver, run

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _invoiced(hub, sale) -> tuple[Invoice, dict]:
    """The flows take the sale to a posted invoice (delivered, POD); the hub's and Tryton's."""
    deliver(hub, sale.shipment)
    hub.settle()
    flow = hub.run("ship_to_invoice", sale.shipment)
    assert flow.status == "completed", (flow.error, list(flow.steps.values("name", "status", "error")))
    (posted,) = hub.posted_invoices(sale.id)
    invoice = Invoice.objects.get(shipment__reference=sale.shipment, kind=Invoice.Kind.INVOICE)
    return invoice, posted


def _tryton_lines(hub, invoice: dict) -> dict[str, Decimal]:
    rows = hub.tryton.call(
        "model.account.invoice.line.read", invoice["lines"], ["product.code", "amount", "type"]
    )
    return {row["product."]["code"]: money(row["amount"]) for row in rows if row["type"] == "line"}


def test_the_hub_records_the_posted_invoice_and_a_hand_cancelled_one_is_found(hub):
    configure("invoice_amounts")
    sale, _ = hub.ship(lines=(("WIDGET", 3),))
    invoice, posted = _invoiced(hub, sale)

    # The hub's lines and total are the posted Tryton invoice's.
    lines = {
        (line.product.sku if line.product_id else "FREIGHT"): money(line.quantity * line.unit_price)
        for line in invoice.lines.select_related("product")
    }
    assert lines == _tryton_lines(hub, posted) == {"WIDGET": money("60.00"), "FREIGHT": money("10.00")}
    assert sum(lines.values()) == money(posted["total_amount"]) == money("70.00")
    assert (invoice.currency, invoice.reference) == ("USD", posted["number"])
    first = run("invoice_amounts", invoice.reference)
    assert (first.examined, first.ok, first.new) == (1, 1, 0)

    # Accounting cancels the posted invoice in Tryton (allowing it in the company first, as a person
    # must; put back as it was after).
    (company,) = hub.tryton.call("model.company.company.search_read", [], 0, 1, None, ["cancel_invoice_out"])
    hub.tryton.call("model.company.company.write", [company["id"]], {"cancel_invoice_out": True})
    try:
        hub.tryton.call("model.account.invoice.cancel", [posted["id"]])
    finally:
        hub.tryton.call(
            "model.company.company.write",
            [company["id"]],
            {"cancel_invoice_out": company["cancel_invoice_out"]},
        )

    second = run("invoice_amounts", invoice.reference)
    assert (second.examined, second.new) == (1, 1)
    found = Discrepancy.objects.get(check_name="invoice_amounts", business_key=invoice.reference)
    assert (found.kind, found.severity, found.status, found.repairable) == (
        "cancelled_in_erp",
        "error",
        "open",
        True,
    )
    assert found.expected["total"] == "70.00" and found.found["state"] == "cancelled"
    assert found.external_ids == [str(posted["id"])]

    third = run("invoice_amounts", invoice.reference)
    assert (third.new, third.still_open) == (0, 1)
    assert Discrepancy.objects.filter(check_name="invoice_amounts").count() == 1

    # Ops repair it: Tryton bills the sale again (its invoice-exception wizard) and posts it.
    repaired = services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="cancelled in error")
    assert repaired.status == "repaired", repaired.repair
    (again,) = hub.posted_invoices(sale.id)
    assert again["id"] != posted["id"] and money(again["total_amount"]) == money("70.00")
    assert _tryton_lines(hub, again) == {"WIDGET": money("60.00"), "FREIGHT": money("10.00")}
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CANCELLED
    new = Invoice.objects.get(reference=again["number"])
    assert (new.status, new.shipment.reference, new.lines.count()) == ("POSTED", sale.shipment, 2)
    assert SideEffect.objects.filter(operation="invoice.recreate").count() == 1

    fourth = run("invoice_amounts", invoice.reference, new.reference)
    assert (fourth.examined, fourth.ok, fourth.new) == (1, 1, 0)
    with pytest.raises(ConflictError):
        services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="again")
    assert SideEffect.objects.filter(operation="invoice.recreate").count() == 1
    assert len(hub.posted_invoices(sale.id)) == 1


def test_an_invoice_edited_by_hand_in_tryton_before_posting_is_found_line_by_line(hub):
    configure("invoice_amounts")
    sale, _ = hub.ship(lines=(("WIDGET", 3),))
    # A clerk changes the widget's price on the draft invoice in Tryton (20.00 -> 25.00).
    (draft_id,) = hub.sale_read(sale.id, ["invoices"])["invoices"]
    (draft,) = hub.tryton.call("model.account.invoice.read", [draft_id], ["lines", "state"])
    assert draft["state"] == "draft"
    rows = hub.tryton.call("model.account.invoice.line.read", draft["lines"], ["product.code"])
    (widget,) = [row["id"] for row in rows if (row.get("product.") or {}).get("code") == "WIDGET"]
    hub.tryton.call("model.account.invoice.line.write", [widget], {"unit_price": Decimal("25")})

    invoice, posted = _invoiced(hub, sale)
    assert money(posted["total_amount"]) == money("85.00")  # 3 x 25.00 + 10.00 freight

    found_run = run("invoice_amounts", invoice.reference)
    assert (found_run.examined, found_run.new) == (1, 1)
    found = Discrepancy.objects.get(check_name="invoice_amounts", business_key=invoice.reference)
    assert (found.kind, found.severity) == ("amounts_differ", "error")
    assert (found.expected["total"], found.found["total"]) == ("70.00", "85.00")
    assert found.found["differences"] == [
        {
            "line": "WIDGET",
            "expected": {"quantity": "3", "amount": "60.00"},
            "found": {"quantity": "3", "amount": "75.00"},
        }
    ]
    again = run("invoice_amounts", invoice.reference)
    assert (again.new, again.still_open) == (0, 1)
