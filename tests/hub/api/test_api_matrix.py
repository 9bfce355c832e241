"""The generic API matrix (NetBox ``APIViewTestCases`` style): every canonical resource gets the same
checks for authentication, reads, writes, validation problems, filters and query counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.utils import timezone
from rest_framework.test import APIClient

from canonical.models import (
    Carrier,
    Customer,
    Invoice,
    Location,
    Order,
    Product,
    Shipment,
    ShipmentException,
)
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
    StopFactory,
)
from tests.factories.extra import (
    FreightChargeFactory,
    InvoiceLineFactory,
    ShipmentEventFactory,
    ShipmentLineFactory,
    external_ref_add,
)

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Queries one list request may make, whatever the number of rows: auth, count, page, and one per
# prefetched relation. The real proof of "no N+1" is that 2 and 6 rows cost the same.
LIST_QUERY_BOUND = 12


# --- Record makers: one record with the nested children its representation shows ----------------


def make_order(**kwargs: Any) -> Order:
    order = OrderFactory(ship_from=LocationFactory(), ship_to=LocationFactory(), **kwargs)
    OrderLineFactory.create_batch(2, order=order)
    return order


def make_shipment(**kwargs: Any) -> Shipment:
    shipment = ShipmentFactory(**kwargs)
    StopFactory(shipment=shipment, sequence=1)
    StopFactory(shipment=shipment, sequence=2, kind="DELIVERY")
    ShipmentLineFactory(shipment=shipment)
    ShipmentEventFactory(shipment=shipment)
    ShipmentExceptionFactory(shipment=shipment)
    FreightChargeFactory(shipment=shipment)
    return shipment


def make_invoice(**kwargs: Any) -> Invoice:
    invoice = InvoiceFactory(order=OrderFactory(), shipment=ShipmentFactory(), **kwargs)
    InvoiceLineFactory.create_batch(2, invoice=invoice)
    return invoice


def make_exception(**kwargs: Any) -> ShipmentException:
    return ShipmentExceptionFactory(**kwargs)


# --- Create bodies: (body, check of the stored record) ----------------------------------------------

Check = Callable[[models.Model], None]


def _no_check(record: models.Model) -> None:
    return None


def customer_body() -> tuple[dict, Check]:
    return {"code": "NEWCUST", "name": "New Customer"}, _no_check


def location_body() -> tuple[dict, Check]:
    return {"code": "USCHI", "name": "Chicago, IL"}, _no_check


def carrier_body() -> tuple[dict, Check]:
    return {"scac": "NEWC", "name": "New Carrier"}, _no_check


def product_body() -> tuple[dict, Check]:
    return {"sku": "NEW-SKU-1", "name": "Widget"}, _no_check


def order_body(by_id: bool = False) -> tuple[dict, Check]:
    customer, location, product = CustomerFactory(), LocationFactory(), ProductFactory()
    body = {
        "reference": "SO-NEW-1",
        "customer": str(customer.pk) if by_id else customer.code,
        "ship_to": str(location.pk) if by_id else location.code,
        "lines": [
            {
                "line_number": 1,
                "product": str(product.pk) if by_id else product.sku,
                "quantity": "2",
                "unit_price": "5.00",
            }
        ],
    }

    def check(order: Order) -> None:
        assert order.customer == customer
        assert order.ship_to == location
        assert [(line.product, line.quantity) for line in order.lines.all()] == [(product, Decimal("2"))]

    return body, check


def shipment_body(by_id: bool = False) -> tuple[dict, Check]:
    carrier = CarrierFactory()
    body = {"reference": "SHP-NEW-1", "carrier": str(carrier.pk) if by_id else carrier.scac}

    def check(shipment: Shipment) -> None:
        assert shipment.carrier == carrier
        assert shipment.status == Shipment.Status.PLANNED

    return body, check


def invoice_body(by_id: bool = False) -> tuple[dict, Check]:
    customer, order, shipment = CustomerFactory(), OrderFactory(), ShipmentFactory()
    body = {
        "reference": "INV-NEW-1",
        "customer": str(customer.pk) if by_id else customer.code,
        "order": str(order.pk) if by_id else order.reference,
        "shipment": str(shipment.pk) if by_id else shipment.reference,
        "lines": [{"line_number": 1, "description": "Linehaul", "quantity": "1", "unit_price": "250.00"}],
    }

    def check(invoice: Invoice) -> None:
        assert (invoice.customer, invoice.order, invoice.shipment) == (customer, order, shipment)
        assert invoice.lines.get().unit_price == Decimal("250.00")

    return body, check


def exception_body(by_id: bool = False) -> tuple[dict, Check]:
    shipment = ShipmentFactory()
    body = {
        "shipment": str(shipment.pk) if by_id else shipment.reference,
        "kind": "DELAYED",
        "opened_at": "2026-11-20T14:05:00Z",
    }

    def check(exception: ShipmentException) -> None:
        assert exception.shipment == shipment
        assert exception.status == ShipmentException.Status.OPEN

    return body, check


@dataclass(frozen=True)
class Resource:
    name: str
    model: type[models.Model]
    make: Callable[..., models.Model]
    #: the business-key filter parameter and how to read its value from a record
    key_param: str
    key_of: Callable[[Any], str]
    #: a filter parameter, the factory kwargs of a record that matches it, and the value to ask for
    flag: tuple[str, dict[str, Any], str]
    create: Callable[..., tuple[dict, Check]]
    patch: dict[str, Any]
    patched: Callable[[Any], Any]
    creates_by_id: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


RESOURCES = [
    Resource(
        name="customers",
        model=Customer,
        make=lambda **kw: CustomerFactory(**kw),
        key_param="code",
        key_of=lambda r: r.code,
        flag=("active", {"active": False}, "false"),
        create=customer_body,
        patch={"name": "Renamed Customer"},
        patched=lambda r: r.name == "Renamed Customer",
    ),
    Resource(
        name="locations",
        model=Location,
        make=lambda **kw: LocationFactory(**kw),
        key_param="code",
        key_of=lambda r: r.code,
        flag=("country", {"country": "CA"}, "CA"),
        create=location_body,
        patch={"city": "Peoria"},
        patched=lambda r: r.city == "Peoria",
    ),
    Resource(
        name="carriers",
        model=Carrier,
        make=lambda **kw: CarrierFactory(**kw),
        key_param="scac",
        key_of=lambda r: r.scac,
        flag=("active", {"active": False}, "false"),
        create=carrier_body,
        patch={"name": "Renamed Carrier"},
        patched=lambda r: r.name == "Renamed Carrier",
    ),
    Resource(
        name="products",
        model=Product,
        make=lambda **kw: ProductFactory(**kw),
        key_param="sku",
        key_of=lambda r: r.sku,
        flag=("active", {"active": False}, "false"),
        create=product_body,
        patch={"weight_kg": "1.250"},
        patched=lambda r: r.weight_kg == Decimal("1.250"),
    ),
    Resource(
        name="orders",
        model=Order,
        make=make_order,
        key_param="reference",
        key_of=lambda r: r.reference,
        flag=("status", {"status": "CANCELLED"}, "CANCELLED"),
        create=order_body,
        patch={"notes": "call before delivery"},
        patched=lambda r: r.notes == "call before delivery" and r.lines.count() == 2,
        creates_by_id=True,
    ),
    Resource(
        name="shipments",
        model=Shipment,
        make=make_shipment,
        key_param="reference",
        key_of=lambda r: r.reference,
        flag=("status", {"status": "IN_TRANSIT"}, "IN_TRANSIT"),
        create=shipment_body,
        patch={"tracking_number": "1Z999AA10123456784"},
        patched=lambda r: r.tracking_number == "1Z999AA10123456784" and r.stops.count() == 2,
        creates_by_id=True,
    ),
    Resource(
        name="invoices",
        model=Invoice,
        make=make_invoice,
        key_param="reference",
        key_of=lambda r: r.reference,
        flag=("status", {"status": "POSTED"}, "POSTED"),
        create=invoice_body,
        patch={"hold_reason": "awaiting proof of delivery"},
        patched=lambda r: r.hold_reason == "awaiting proof of delivery" and r.lines.count() == 2,
        creates_by_id=True,
    ),
    Resource(
        name="exceptions",
        model=ShipmentException,
        make=make_exception,
        key_param="shipment",
        key_of=lambda r: r.shipment.reference,
        flag=(
            "status",
            {"status": "RESOLVED", "resolved_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
            "RESOLVED",
        ),
        create=exception_body,
        patch={"description": "truck broke down near Joliet"},
        patched=lambda r: r.description == "truck broke down near Joliet",
        creates_by_id=True,
    ),
]
BY_NAME = {resource.name: resource for resource in RESOURCES}


def list_url(resource: Resource) -> str:
    return f"/api/v1/{resource.name}/"


def detail_url(resource: Resource, record: models.Model) -> str:
    return f"/api/v1/{resource.name}/{record.pk}/"


def ids(response) -> set[str]:
    return {row["id"] for row in response.json()["results"]}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:crossdock:problem:")
    return body


parametrize_resources = pytest.mark.parametrize("resource", RESOURCES, ids=str)


# --- Authentication ---------------------------------------------------------------------------------


@parametrize_resources
def test_anonymous_list_is_401_problem_with_www_authenticate(resource, anonymous):
    resource.make()
    response = anonymous.get(list_url(resource))
    body = assert_problem(response, 401)
    assert body["type"].endswith(":not-authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


@parametrize_resources
def test_anonymous_detail_is_401_problem_with_www_authenticate(resource, anonymous):
    record = resource.make()
    response = anonymous.get(detail_url(resource, record))
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")
    assert str(record.pk) not in response.content.decode()


@parametrize_resources
def test_a_bad_api_key_is_401(resource, admin_caller):
    resource.make()
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {admin_caller.key}x")
    body = assert_problem(http.get(list_url(resource)), 401)
    assert body["type"].endswith(":authentication-failed")


# --- Reads -----------------------------------------------------------------------------------------


@parametrize_resources
def test_admin_list_is_paginated(resource, admin_caller):
    records = [resource.make() for _ in range(3)]
    response = admin_caller.http.get(list_url(resource), {"page_size": 2})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None
    second = admin_caller.http.get(body["next"]).json()
    assert ids(response) | {row["id"] for row in second["results"]} == {str(r.pk) for r in records}


@parametrize_resources
def test_admin_detail_is_200(resource, admin_caller):
    record = resource.make()
    response = admin_caller.http.get(detail_url(resource, record))
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(record.pk)


@parametrize_resources
def test_each_record_shows_its_external_refs(resource, admin_caller):
    record = resource.make()
    external_ref_add(record, system="erp", external_id="E-1")
    external_ref_add(record, system="crm", external_id="C-9")
    expected = [{"system": "crm", "external_id": "C-9"}, {"system": "erp", "external_id": "E-1"}]
    detail = admin_caller.http.get(detail_url(resource, record)).json()
    assert detail["external_refs"] == expected
    listed = admin_caller.http.get(list_url(resource)).json()["results"]
    assert [row["external_refs"] for row in listed if row["id"] == str(record.pk)] == [expected]


# --- Writes ----------------------------------------------------------------------------------------


@parametrize_resources
def test_admin_creates_with_related_records_by_business_key(resource, admin_caller):
    body, check = resource.create()
    response = admin_caller.http.post(list_url(resource), body, format="json")
    assert response.status_code == 201, response.content
    record = resource.model.objects.get(pk=response.json()["id"])
    check(record)
    # Reads render related records by business key, so a body round-trips.
    for name, value in body.items():
        if isinstance(value, str) and name != "opened_at":
            assert response.json()[name] == value


@pytest.mark.parametrize("resource", [r for r in RESOURCES if r.creates_by_id], ids=str)
def test_admin_creates_with_related_records_by_id(resource, admin_caller):
    body, check = resource.create(by_id=True)
    response = admin_caller.http.post(list_url(resource), body, format="json")
    assert response.status_code == 201, response.content
    check(resource.model.objects.get(pk=response.json()["id"]))


@parametrize_resources
def test_admin_patch_changes_only_the_given_fields_and_persists(resource, admin_caller):
    record = resource.make()
    response = admin_caller.http.patch(detail_url(resource, record), resource.patch, format="json")
    assert response.status_code == 200, response.content
    for name, value in resource.patch.items():
        assert response.json()[name] == value
    record.refresh_from_db()
    assert resource.patched(record)


@parametrize_resources
def test_delete_is_405_problem_and_keeps_the_record(resource, admin_caller):
    record = resource.make()
    response = admin_caller.http.delete(detail_url(resource, record))
    body = assert_problem(response, 405)
    assert body["type"].endswith(":method-not-allowed")
    assert resource.model.objects.filter(pk=record.pk).exists()


# --- Validation problems -----------------------------------------------------------------------------


def _line(product: str, quantity: str = "1") -> dict:
    return {"product": product, "quantity": quantity, "unit_price": "1.00"}


def invalid_cases() -> list:
    """(resource, body builder, the field the problem must name)."""

    def order_with_lines(*lines: dict) -> dict:
        customer = CustomerFactory()
        numbered = [{"line_number": i + 1, **line} for i, line in enumerate(lines)]
        return {"reference": "SO-BAD", "customer": customer.code, "lines": numbered}

    def shipment_with_stops(*stops: dict) -> dict:
        numbered = [{"sequence": i + 1, "kind": "PICKUP", **stop} for i, stop in enumerate(stops)]
        return {"reference": "SHP-BAD", "stops": numbered}

    def invoice(**fields: Any) -> dict:
        return {"reference": "INV-BAD", "customer": CustomerFactory().code, **fields}

    return [
        ("customers", lambda: {"code": "C1", "name": "C", "email": "not-an-email"}, "email"),
        ("customers", lambda: {"code": "C1"}, "name"),
        ("customers", lambda: {"code": CustomerFactory().code, "name": "Duplicate"}, "code"),
        ("locations", lambda: {"code": "L1", "name": "Nowhere", "latitude": "95"}, "latitude"),
        ("locations", lambda: {"code": "L1", "name": "Nowhere", "country": "us"}, "country"),
        ("carriers", lambda: {"scac": "ab1", "name": "Lower-case"}, "scac"),
        ("carriers", lambda: {"scac": CarrierFactory().scac, "name": "Duplicate"}, "scac"),
        ("products", lambda: {"sku": "S1", "name": "Heavy", "weight_kg": "-1"}, "weight_kg"),
        ("orders", lambda: {"reference": "SO-BAD", "customer": "NOPE"}, "customer"),
        ("orders", lambda: {**order_with_lines(), "currency": "usd"}, "currency"),
        (
            "orders",
            lambda: order_with_lines(_line(ProductFactory().sku), _line("NO-SUCH-SKU")),
            "lines[1].product",
        ),
        ("orders", lambda: order_with_lines(_line(ProductFactory().sku, quantity="0")), "lines[0].quantity"),
        ("shipments", lambda: {"reference": "SHP-BAD", "carrier": "ZZZZ"}, "carrier"),
        ("shipments", lambda: shipment_with_stops({"location": "NO-SUCH-LOC"}), "stops[0].location"),
        (
            "shipments",
            lambda: shipment_with_stops(
                {"location": LocationFactory().code},
                {
                    "location": LocationFactory().code,
                    "planned_start": "2026-11-20T10:00:00Z",
                    "planned_end": "2026-11-20T09:00:00Z",
                },
            ),
            "stops[1].planned_end",
        ),
        (
            "shipments",
            lambda: {
                "reference": "SHP-BAD",
                "lines": [{"order": OrderFactory().reference, "line_number": 7, "quantity": "1"}],
            },
            "lines[0].line_number",
        ),
        ("invoices", lambda: invoice(kind="CREDIT_NOTE"), "corrects"),
        (
            "invoices",
            lambda: invoice(
                lines=[{"line_number": 1, "description": "Fuel", "quantity": "0", "unit_price": "1"}]
            ),
            "lines[0].quantity",
        ),
        (
            "exceptions",
            lambda: {"shipment": "SHP-NONE", "kind": "DELAYED", "opened_at": "2026-01-01T00:00Z"},
            "shipment",
        ),
        (
            "exceptions",
            lambda: {
                "shipment": ShipmentFactory().reference,
                "kind": "ALIENS",
                "opened_at": "2026-01-01T00:00Z",
            },
            "kind",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "make_body", "field_name"),
    invalid_cases(),
    ids=[f"{name}-{field_name}-{i}" for i, (name, _, field_name) in enumerate(invalid_cases())],
)
def test_invalid_body_is_400_problem_naming_the_field(name, make_body, field_name, admin_caller):
    resource = BY_NAME[name]
    request_body = make_body()
    before = resource.model.objects.count()
    response = admin_caller.http.post(list_url(resource), request_body, format="json")
    body = assert_problem(response, 400)
    assert body["type"].endswith(":validation-error")
    assert field_name in [error["field"] for error in body["errors"]], body
    assert field_name in body["detail"]
    assert resource.model.objects.count() == before


# --- Filters ---------------------------------------------------------------------------------------


@parametrize_resources
def test_business_key_filter_returns_only_the_matching_record(resource, admin_caller):
    wanted, other = resource.make(), resource.make()
    response = admin_caller.http.get(list_url(resource), {resource.key_param: resource.key_of(wanted)})
    assert response.status_code == 200, response.content
    assert ids(response) == {str(wanted.pk)}
    assert str(other.pk) not in ids(response)


@parametrize_resources
def test_status_filter_returns_only_matching_records(resource, admin_caller):
    param, kwargs, value = resource.flag
    wanted, other = resource.make(**kwargs), resource.make()
    response = admin_caller.http.get(list_url(resource), {param: value})
    assert response.status_code == 200, response.content
    assert ids(response) == {str(wanted.pk)}
    assert str(other.pk) not in ids(response)


@parametrize_resources
def test_updated_after_filter_excludes_older_records(resource, admin_caller):
    old, recent = resource.make(), resource.make()
    resource.model.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=3))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    response = admin_caller.http.get(list_url(resource), {"updated_after": since})
    assert response.status_code == 200, response.content
    assert ids(response) == {str(recent.pk)}


@parametrize_resources
def test_garbage_updated_after_is_400_naming_the_parameter(resource, admin_caller):
    resource.make()
    response = admin_caller.http.get(list_url(resource), {"updated_after": "last tuesday"})
    body = assert_problem(response, 400)
    assert [error["field"] for error in body["errors"]] == ["updated_after"]


@parametrize_resources
def test_external_id_filter_finds_the_record_linked_in_that_system(resource, admin_caller):
    wanted, same_id_other_system, other = resource.make(), resource.make(), resource.make()
    external_ref_add(wanted, system="erp", external_id="X-100")
    external_ref_add(same_id_other_system, system="crm", external_id="X-100")
    external_ref_add(other, system="erp", external_id="X-200")
    response = admin_caller.http.get(list_url(resource), {"external_system": "erp", "external_id": "X-100"})
    assert response.status_code == 200, response.content
    assert ids(response) == {str(wanted.pk)}
    by_system = admin_caller.http.get(list_url(resource), {"external_system": "erp"})
    assert ids(by_system) == {str(wanted.pk), str(other.pk)}


# --- Query counts ----------------------------------------------------------------------------------


@parametrize_resources
def test_list_query_count_does_not_grow_with_rows(resource, admin_caller, django_assert_max_num_queries):
    for i in range(2):
        external_ref_add(resource.make(), system="erp", external_id=f"few-{i}")
    admin_caller.http.get(list_url(resource))  # first use stamps last_used_at: not part of the count
    with django_assert_max_num_queries(LIST_QUERY_BOUND) as few:
        response = admin_caller.http.get(list_url(resource))
    assert response.json()["count"] == 2

    for i in range(4):
        external_ref_add(resource.make(), system="erp", external_id=f"more-{i}")
    with django_assert_max_num_queries(LIST_QUERY_BOUND) as many:
        response = admin_caller.http.get(list_url(resource))
    assert response.json()["count"] == 6
    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"] for q in many.captured_queries]


# --- Resource-specific write rules ------------------------------------------------------------------


def test_second_open_exception_of_a_kind_is_409_conflict(admin_caller):
    existing = ShipmentExceptionFactory(kind="DELAYED")
    body = {"shipment": existing.shipment.reference, "kind": "DELAYED", "opened_at": "2026-11-20T14:05:00Z"}
    response = admin_caller.http.post("/api/v1/exceptions/", body, format="json")
    problem = assert_problem(response, 409)
    assert problem["type"].endswith(":conflict")
    assert ShipmentException.objects.filter(shipment=existing.shipment).count() == 1


def test_patching_an_exception_resolved_stamps_resolved_at(admin_caller):
    exception = ShipmentExceptionFactory()
    response = admin_caller.http.patch(
        f"/api/v1/exceptions/{exception.pk}/", {"status": "RESOLVED"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["resolved_at"] is not None
    exception.refresh_from_db()
    assert exception.status == "RESOLVED" and exception.resolved_at is not None


def test_patching_a_shipment_bumps_its_sequence_but_not_its_status(admin_caller):
    shipment = make_shipment(status="IN_TRANSIT")
    url = f"/api/v1/shipments/{shipment.pk}/"
    first = admin_caller.http.patch(url, {"tracking_number": "T-1", "status": "PLANNED"}, format="json")
    second = admin_caller.http.patch(url, {"tracking_number": "T-2"}, format="json")
    assert (first.json()["sequence"], second.json()["sequence"]) == (1, 2)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.sequence) == ("IN_TRANSIT", 2)


def test_changing_lines_of_a_posted_invoice_is_409_conflict(admin_caller):
    invoice = make_invoice(status="POSTED")
    lines = [{"line_number": 1, "description": "Rebate", "quantity": "1", "unit_price": "1.00"}]
    response = admin_caller.http.patch(f"/api/v1/invoices/{invoice.pk}/", {"lines": lines}, format="json")
    problem = assert_problem(response, 409)
    assert [error["field"] for error in problem["errors"]] == ["lines"]
    assert invoice.lines.count() == 2


def test_shipment_read_shows_nested_stops_lines_events_and_open_exceptions(admin_caller):
    shipment = make_shipment()
    body = admin_caller.http.get(f"/api/v1/shipments/{shipment.pk}/").json()
    assert [stop["sequence"] for stop in body["stops"]] == [1, 2]
    assert len(body["lines"]) == 1 and body["lines"][0]["order"]
    assert [(e["event_type"], e["late"]) for e in body["events"]] == [("IN_TRANSIT", False)]
    assert body["open_exceptions"] == ["DELAYED"]
    assert body["carrier"] == shipment.carrier.scac


def test_create_links_the_given_external_refs_and_shows_them(admin_caller):
    body = {"scac": "XREF", "name": "Linked", "external_refs": [{"system": "tms", "external_id": "T-1"}]}
    response = admin_caller.http.post("/api/v1/carriers/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["external_refs"] == [{"system": "tms", "external_id": "T-1"}]
    carrier = Carrier.objects.get(scac="XREF")
    assert [(r.system, r.entity, r.external_id) for r in carrier.external_refs.all()] == [
        ("tms", "carrier", "T-1")
    ]


def test_external_ref_of_another_record_is_409_and_nothing_is_created(admin_caller):
    external_ref_add(CarrierFactory(), system="tms", external_id="T-1")
    body = {"scac": "XREF", "name": "Thief", "external_refs": [{"system": "tms", "external_id": "T-1"}]}
    response = admin_caller.http.post("/api/v1/carriers/", body, format="json")
    problem = assert_problem(response, 409)
    assert [error["field"] for error in problem["errors"]] == ["external_refs"]
    assert not Carrier.objects.filter(scac="XREF").exists()
