"""invoice_amounts: the hub's invoice lines and total against the ERP's invoice, line by line
(the comparison and the hub side on real PostgreSQL; the ERP side in live/test_invoice_amounts.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from hub.workflows.flows.common import lines_total
from hub.workflows.flows.ship_to_invoice import invoice_lines
from reconciliation import services
from reconciliation.checks.base import NotRepairable
from reconciliation.checks.invoice_amounts import compare, expected_of, found_of
from reconciliation.models import Discrepancy
from tests.factories.canonical import InvoiceFactory, OrderFactory, OrderLineFactory, ProductFactory
from tests.factories.extra import InvoiceLineFactory


def _erp(state="posted", widget="60.00", freight="10.00", currency="USD", **extra):
    lines = [
        {"key": "WIDGET", "quantity": "3", "unit_price": str(Decimal(widget) / 3), "amount": widget},
        {"key": "freight", "quantity": "1", "unit_price": freight, "amount": freight},
    ]
    total = str(Decimal(widget) + Decimal(freight))
    return found_of(
        {
            "id": 7,
            "number": "INV-7",
            "state": state,
            "currency": currency,
            "untaxed_amount": total,
            "tax_amount": "0.00",
            "total_amount": total,
            "lines": lines,
            **extra,
        }
    )


EXPECTED = {
    "number": "INV-7",
    "currency": "USD",
    "total": "70.00",
    "lines": [
        {"key": "WIDGET", "quantity": "3", "unit_price": "20.00", "amount": "60.00"},
        {"key": "freight", "quantity": "1", "unit_price": "10.00", "amount": "10.00"},
    ],
}


def test_the_same_lines_and_total_agree():
    finding = compare("INV-7", EXPECTED, _erp())
    assert finding.ok and finding.external_ids == ("7",)


def test_an_amount_edited_in_the_erp_is_shown_per_line():
    finding = compare("INV-7", EXPECTED, _erp(widget="75.00"))
    assert (finding.ok, finding.kind, finding.severity, finding.repairable) == (
        False,
        "amounts_differ",
        "error",
        False,
    )
    assert finding.found["differences"] == [
        {
            "line": "WIDGET",
            "expected": {"quantity": "3", "amount": "60.00"},
            "found": {"quantity": "3", "amount": "75.00"},
        }
    ]
    assert (finding.expected["total"], finding.found["total"]) == ("70.00", "85.00")
    assert "hub 70.00, ERP 85.00" in finding.summary


def test_a_line_on_one_side_only_is_a_difference():
    erp = _erp()
    erp["lines"] = erp["lines"][:1]
    erp["total"] = "60.00"
    (difference,) = compare("INV-7", EXPECTED, erp).found["differences"]
    assert difference == {"line": "freight", "expected": {"quantity": "1", "amount": "10.00"}, "found": None}


def test_a_cancelled_or_missing_erp_invoice_is_an_error():
    cancelled = compare("INV-7", EXPECTED, _erp(state="cancelled"))
    assert (cancelled.kind, cancelled.severity, cancelled.repairable) == ("cancelled_in_erp", "error", True)
    assert "cancelled in the ERP" in cancelled.summary
    assert compare("INV-7", EXPECTED, None).kind == "missing_in_erp"
    assert compare("INV-7", EXPECTED, _erp(currency="EUR")).kind == "currency_differs"


def test_erp_taxes_are_shown_but_not_compared():
    finding = compare("INV-7", EXPECTED, _erp(tax_amount="7.00", total_amount="77.00"))
    assert finding.ok


@pytest.mark.django_db
def test_the_hub_bills_the_order_lines_and_the_tms_freight_and_compares_them_by_key():
    order = OrderFactory(currency="USD")
    widget = ProductFactory(sku="WIDGET", name="Widget")
    OrderLineFactory(
        order=order, line_number=1, product=widget, quantity=Decimal("3"), unit_price=Decimal("20.00")
    )
    OrderLineFactory(order=order, line_number=2, quantity=Decimal("2"), unit_price=Decimal("7.25"))

    lines = invoice_lines(order, freight=Decimal("10.00"), erp_lines=[])
    assert [(line["line_number"], line["quantity"], line["unit_price"]) for line in lines] == [
        (1, Decimal("3.000"), Decimal("20.00")),
        (2, Decimal("2.000"), Decimal("7.25")),
        (3, Decimal("1"), Decimal("10.00")),
    ]
    assert lines_total(lines) == Decimal("84.50")
    # No freight known to the hub: the freight line the ERP billed from the sale.
    erp_lines = [{"key": "freight", "amount": "15.00", "freight": True}, {"key": "WIDGET", "amount": "60"}]
    assert invoice_lines(order, freight=None, erp_lines=erp_lines)[-1]["unit_price"] == Decimal("15.00")
    assert len(invoice_lines(order, freight=None, erp_lines=[])) == 2

    invoice = InvoiceFactory(reference="INV-9", currency="USD")
    for line in lines:
        InvoiceLineFactory(invoice=invoice, **line)
    expected = expected_of(invoice, list(invoice.lines.select_related("product")))
    assert expected["total"] == "84.50"
    assert [line["key"] for line in expected["lines"]] == ["WIDGET", lines[1]["product"].sku, "freight"]


@pytest.mark.django_db
def test_an_amount_difference_is_not_repairable():
    discrepancy = Discrepancy.objects.create(
        check_name="invoice_amounts",
        business_key="INV-7",
        kind="amounts_differ",
        summary="amounts differ",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )
    with pytest.raises(NotRepairable, match="a posted invoice cannot change"):
        services.discrepancy_repair(discrepancy_id=discrepancy.pk, actor="ops", reason="try")
