"""Partner clients see only their own records: another partner's record is absent (404), never 403."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from canonical.models import Carrier, Location, Order, Shipment
from tests.factories.canonical import (
    CarrierFactory,
    CustomerFactory,
    InvoiceFactory,
    LocationFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    ShipmentExceptionFactory,
    ShipmentFactory,
)
from tests.factories.extra import ShipmentLineFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@dataclass
class Side:
    """One partner's records: a carrier and a customer sharing one shipment, its order and invoice."""

    carrier: object
    customer: object
    shipment: object
    order: object
    invoice: object
    exception: object

    def record(self, resource: str):
        return {
            "carriers": self.carrier,
            "customers": self.customer,
            "shipments": self.shipment,
            "orders": self.order,
            "invoices": self.invoice,
            "exceptions": self.exception,
        }[resource]


def _side(scac: str, code: str) -> Side:
    carrier, customer = CarrierFactory(scac=scac), CustomerFactory(code=code)
    shipment = ShipmentFactory(carrier=carrier, customer=customer)
    order = OrderFactory(customer=customer)
    ShipmentLineFactory(shipment=shipment, order_line=OrderLineFactory(order=order))
    return Side(
        carrier=carrier,
        customer=customer,
        shipment=shipment,
        order=order,
        invoice=InvoiceFactory(customer=customer, order=order, shipment=shipment),
        exception=ShipmentExceptionFactory(shipment=shipment),
    )


@pytest.fixture
def own() -> Side:
    return _side("ACME", "CUST-OWN")


@pytest.fixture
def other() -> Side:
    return _side("BRVO", "CUST-OTHER")


@pytest.fixture(params=["carrier", "customer"])
def partner(request, make_caller, own, other):
    """A partner client bound to ``own``'s carrier (by SCAC) or customer (by code)."""
    code = own.carrier.scac if request.param == "carrier" else own.customer.code
    caller = make_caller(f"partner-{request.param}", partner_code=code)
    bound = caller.client.carrier if request.param == "carrier" else caller.client.customer
    assert bound is not None and caller.client.role == "partner"
    return caller


SCOPED = ["shipments", "orders", "invoices", "exceptions", "carriers", "customers"]


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def _carrier_reading_invoices(resource, partner) -> bool:
    # Invoices are the customer's billing data: a carrier partner sees none, even on its shipments.
    return resource == "invoices" and partner.client.carrier is not None


@pytest.mark.parametrize("resource", SCOPED)
def test_partner_list_shows_own_records_and_not_another_partners(resource, partner, own, other):
    listed = _ids(partner.http.get(f"/api/v1/{resource}/"))
    expected = set() if _carrier_reading_invoices(resource, partner) else {str(own.record(resource).pk)}
    assert listed == expected
    assert str(other.record(resource).pk) not in listed


@pytest.mark.parametrize("resource", SCOPED)
def test_partner_reads_its_own_record(resource, partner, own):
    response = partner.http.get(f"/api/v1/{resource}/{own.record(resource).pk}/")
    if _carrier_reading_invoices(resource, partner):
        assert response.status_code == 404, response.content
        return
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(own.record(resource).pk)


@pytest.mark.parametrize("resource", SCOPED)
def test_partner_gets_404_not_403_for_another_partners_record(resource, partner, other):
    response = partner.http.get(f"/api/v1/{resource}/{other.record(resource).pk}/")
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:crossdock:problem:not-found"


def test_partner_gets_404_for_another_carriers_shipment(make_caller, own, other):
    caller = make_caller("acme", partner_code=own.carrier.scac)
    assert caller.http.get(f"/api/v1/shipments/{other.shipment.pk}/").status_code == 404
    by_reference = caller.http.get("/api/v1/shipments/", {"reference": other.shipment.reference})
    assert by_reference.json()["count"] == 0


def test_customer_partner_gets_404_for_another_customers_invoice(make_caller, own, other):
    caller = make_caller("cust-own", partner_code=own.customer.code)
    assert caller.http.get(f"/api/v1/invoices/{other.invoice.pk}/").status_code == 404
    by_reference = caller.http.get("/api/v1/invoices/", {"reference": other.invoice.reference})
    assert by_reference.json()["count"] == 0


@pytest.mark.parametrize("resource", ["locations", "products"])
def test_partner_reads_shared_reference_data(resource, partner):
    factory = LocationFactory if resource == "locations" else ProductFactory
    records = factory.create_batch(2)
    assert _ids(partner.http.get(f"/api/v1/{resource}/")) >= {str(r.pk) for r in records}
    assert partner.http.get(f"/api/v1/{resource}/{records[0].pk}/").status_code == 200


@pytest.mark.parametrize(
    ("model", "resource", "body"),
    [
        (Shipment, "shipments", {"reference": "SHP-PARTNER", "carrier": "ACME"}),
        (Carrier, "carriers", {"scac": "NEWP", "name": "Partner-made"}),
        (Location, "locations", {"code": "LOC-PARTNER", "name": "Partner-made"}),
        (Order, "orders", {"reference": "SO-PARTNER", "customer": "CUST-OWN"}),
    ],
)
def test_partner_cannot_create_records(model, resource, body, partner):
    before = model.objects.count()
    response = partner.http.post(f"/api/v1/{resource}/", body, format="json")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:crossdock:problem:permission-denied"
    assert model.objects.count() == before


@pytest.mark.parametrize("resource", ["shipments", "orders", "invoices", "exceptions"])
def test_partner_cannot_patch_its_own_record(resource, partner, own):
    record = own.record(resource)
    before = record.updated_at
    response = partner.http.patch(f"/api/v1/{resource}/{record.pk}/", {"currency": "EUR"}, format="json")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    record.refresh_from_db()
    assert record.updated_at == before


@pytest.mark.parametrize("resource", SCOPED)
def test_admin_sees_every_partners_records(resource, admin_caller, own, other):
    listed = _ids(admin_caller.http.get(f"/api/v1/{resource}/"))
    assert {str(own.record(resource).pk), str(other.record(resource).pk)} <= listed
    detail = admin_caller.http.get(f"/api/v1/{resource}/{other.record(resource).pk}/")
    assert detail.status_code == 200
