"""Partner clients get serializers without the other side's money (API matrix style).

A carrier partner must not see the customer's sale prices, invoice amounts or billing terms; a
customer partner must not see freight cost or the carrier's charges. Admin clients see every field.
The rule lives in one place: ``hub.api.v1.serializers.canonical.PARTNER_HIDDEN_FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub.api.v1.serializers import canonical as s
from tests.factories.canonical import (
    CarrierFactory,
    CustomerFactory,
    InvoiceFactory,
    OrderFactory,
    OrderLineFactory,
    ShipmentFactory,
)
from tests.factories.extra import FreightChargeFactory, InvoiceLineFactory, ShipmentLineFactory

pytestmark = pytest.mark.django_db


@dataclass
class Deal:
    """One customer's order shipped by one carrier, with freight charges and an invoice."""

    carrier: object
    customer: object
    order: object
    shipment: object
    invoice: object

    def record(self, resource: str):
        return {
            "carriers": self.carrier,
            "customers": self.customer,
            "orders": self.order,
            "shipments": self.shipment,
            "invoices": self.invoice,
        }[resource]


@pytest.fixture
def deal() -> Deal:
    carrier, customer = CarrierFactory(scac="FAST"), CustomerFactory(code="CUST-1", billing_address="1 Main")
    order = OrderFactory(customer=customer)
    line = OrderLineFactory(order=order)
    shipment = ShipmentFactory(carrier=carrier, customer=customer, expected_freight_cost="410.00")
    ShipmentLineFactory(shipment=shipment, order_line=line)
    FreightChargeFactory(shipment=shipment)
    invoice = InvoiceFactory(customer=customer, order=order, shipment=shipment)
    InvoiceLineFactory(invoice=invoice)
    return Deal(carrier=carrier, customer=customer, order=order, shipment=shipment, invoice=invoice)


# (role, resource, field path): every field a partner role must not see. Dotted paths name a field of
# each item of a nested list ("lines.unit_price"). Written out here, not read from the code, so a
# field dropped from the rule fails a test.
HIDDEN = [
    ("carrier", "orders", "lines.unit_price"),
    ("carrier", "customers", "billing_address"),
    ("carrier", "customers", "hold_invoice_until_pod"),
    ("customer", "shipments", "expected_freight_cost"),
    ("customer", "shipments", "charges"),
]
# A carrier is never shown an invoice (scoping); its field set hides amounts anyway, in depth.
HIDDEN_IF_SHOWN = [
    ("carrier", "invoices", "lines.unit_price"),
    ("carrier", "invoices", "lines.amount"),
    ("carrier", "invoices", "total"),
]


SERIALIZERS = {
    "orders": s.OrderSerializer,
    "customers": s.CustomerSerializer,
    "shipments": s.ShipmentSerializer,
    "invoices": s.InvoiceSerializer,
}


def _partner(make_caller, deal: Deal, role: str):
    code = deal.carrier.scac if role == "carrier" else deal.customer.code
    return make_caller(f"partner-{role}", partner_code=code)


def _has(row: dict, path: str) -> bool:
    head, _, rest = path.partition(".")
    if head not in row:
        return False
    if not rest:
        return True
    items = row[head]
    assert items, f"{head} is empty: the test data must have one to check {path}"
    return any(_has(item, rest) for item in items)


@pytest.mark.parametrize(("role", "resource", "path"), HIDDEN, ids=lambda v: v)
def test_partner_detail_and_list_lack_the_other_sides_money(role, resource, path, deal, make_caller):
    partner = _partner(make_caller, deal, role)
    record = deal.record(resource)
    detail = partner.http.get(f"/api/v1/{resource}/{record.pk}/")
    assert detail.status_code == 200, detail.content
    assert not _has(detail.json(), path), detail.json()
    listed = partner.http.get(f"/api/v1/{resource}/")
    assert listed.status_code == 200, listed.content
    rows = [row for row in listed.json()["results"] if row["id"] == str(record.pk)]
    assert rows and not _has(rows[0], path), rows


@pytest.mark.parametrize(("role", "resource", "path"), HIDDEN + HIDDEN_IF_SHOWN, ids=lambda v: v)
def test_admin_sees_the_fields_partners_do_not(role, resource, path, deal, admin_caller):
    record = deal.record(resource)
    detail = admin_caller.http.get(f"/api/v1/{resource}/{record.pk}/")
    assert detail.status_code == 200, detail.content
    assert _has(detail.json(), path), detail.json()


@pytest.mark.parametrize(("role", "resource", "path"), HIDDEN + HIDDEN_IF_SHOWN, ids=lambda v: v)
def test_the_rule_names_each_hidden_field(role, resource, path):
    assert path in s.PARTNER_HIDDEN_FIELDS[role][SERIALIZERS[resource]]


def test_carrier_keeps_its_own_freight_figures_and_customer_its_prices(deal, make_caller):
    carrier = _partner(make_caller, deal, "carrier")
    shipment = carrier.http.get(f"/api/v1/shipments/{deal.shipment.pk}/").json()
    assert shipment["expected_freight_cost"] == "410.00"
    assert shipment["charges"][0]["amount"] == "100.00"
    customer = _partner(make_caller, deal, "customer")
    order = customer.http.get(f"/api/v1/orders/{deal.order.pk}/").json()
    assert "unit_price" in order["lines"][0]
    invoice = customer.http.get(f"/api/v1/invoices/{deal.invoice.pk}/").json()
    assert "total" in invoice and "unit_price" in invoice["lines"][0]


def test_carrier_never_sees_invoices_at_all(deal, make_caller):
    carrier = _partner(make_caller, deal, "carrier")
    assert carrier.http.get(f"/api/v1/invoices/{deal.invoice.pk}/").status_code == 404
