"""The `tryton` connector's reads for reconciliation: invoice lines in the shape the hub compares
(pure; ``invoices_read``, ``sales_invoices`` and ``invoice.recreate`` run against the peer in
tests/reconciliation/live)."""

from __future__ import annotations

from decimal import Decimal

from connectors.tryton.operations import invoice_lines_normalize


def test_tryton_lines_are_normalised_with_freight_flagged():
    rows = [
        {"id": 1, "type": "line", "origin": "sale.line,4", "product": {"id": 11, "code": "WIDGET"},
         "description": "Widget", "quantity": 3.0, "unit_price": Decimal("20.0000"), "amount": Decimal("60.00")},
        {"id": 2, "type": "comment", "description": "thanks"},
        {"id": 3, "type": "line", "origin": "sale.line,5", "product": {"id": 12, "code": "FREIGHT"},
         "description": "Freight", "quantity": 1.0, "unit_price": Decimal("10"), "amount": Decimal("10.00")},
        {"id": 4, "type": "line", "origin": None, "product": {"id": 12, "code": "FREIGHT"},
         "description": "Freight", "quantity": 1.0, "unit_price": Decimal("2"), "amount": Decimal("2.00")},
    ]  # fmt: skip
    lines = invoice_lines_normalize(rows, freight_ids={3}, freight_products={12})
    assert [(line["key"], line["amount"], line["freight"]) for line in lines] == [
        ("WIDGET", "60.00", False),
        ("freight", "10.00", True),
        ("freight", "2.00", True),
    ]
    assert lines[0]["quantity"] == "3.0" and lines[0]["unit_price"] == "20.0000"
