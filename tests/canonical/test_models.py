"""The canonical model's rules: what PostgreSQL refuses whatever the code path, and what the services add."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical import services
from canonical.errors import ConflictError, ValidationFailed
from canonical.models import (
    Carrier,
    Customer,
    ExternalRef,
    Invoice,
    InvoiceLine,
    Order,
    OrderLine,
    Shipment,
    ShipmentException,
    ShipmentLine,
    Stop,
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
from tests.factories.extra import InvoiceLineFactory, external_ref_add

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def assert_db_refuses(create, constraint: str) -> None:
    """``create()`` fails in PostgreSQL with ``constraint``; the surrounding transaction stays usable."""
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        create()


# --- Database constraints ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "key"),
    [
        (CustomerFactory, "code"),
        (LocationFactory, "code"),
        (CarrierFactory, "scac"),
        (ProductFactory, "sku"),
        (OrderFactory, "reference"),
        (ShipmentFactory, "reference"),
        (InvoiceFactory, "reference"),
    ],
    ids=["customer", "location", "carrier", "product", "order", "shipment", "invoice"],
)
def test_business_keys_are_unique_in_the_database(factory, key):
    existing = factory()
    model = type(existing)
    assert_db_refuses(lambda: factory(**{key: getattr(existing, key)}), f"{model._meta.db_table}_{key}_key")
    assert model.objects.filter(**{key: getattr(existing, key)}).count() == 1


@pytest.mark.parametrize("scac", ["ab", "A", "AB1C", "A-B"])
def test_carrier_scac_must_be_two_to_four_capital_letters(scac):
    assert_db_refuses(lambda: Carrier.objects.create(scac=scac, name="Bad"), "canonical_carrier_scac_format")


@pytest.mark.parametrize("scac", ["AB", "ACM", "ACME"])
def test_carrier_scac_of_two_to_four_capitals_is_stored(scac):
    assert Carrier.objects.create(scac=scac, name="Good").pk is not None


@pytest.mark.parametrize(
    ("create", "constraint"),
    [
        (lambda: OrderFactory(currency="usd"), "canonical_order_currency_iso"),
        (lambda: ShipmentFactory(currency="U$D"), "canonical_shipment_currency_iso"),
        (lambda: InvoiceFactory(currency="EU"), "canonical_invoice_currency_iso"),
    ],
    ids=["order", "shipment", "invoice"],
)
def test_currency_must_be_an_iso_4217_code(create, constraint):
    assert_db_refuses(create, constraint)


@pytest.mark.parametrize("quantity", [Decimal("0"), Decimal("-1")])
def test_order_line_quantity_must_be_positive(quantity):
    assert_db_refuses(lambda: OrderLineFactory(quantity=quantity), "canonical_orderline_qty_positive")


def test_invoice_line_quantity_must_be_positive():
    assert_db_refuses(lambda: InvoiceLineFactory(quantity=Decimal("0")), "canonical_invoiceline_qty_positive")


def test_shipment_line_quantity_must_be_positive():
    shipment, line = ShipmentFactory(), OrderLineFactory()
    assert_db_refuses(
        lambda: ShipmentLine.objects.create(shipment=shipment, order_line=line, quantity=Decimal("0")),
        "canonical_shipmentline_qty_positive",
    )


def test_stop_window_must_not_end_before_it_starts():
    assert_db_refuses(
        lambda: StopFactory(planned_start=NOON, planned_end=NOON - dt.timedelta(minutes=1)),
        "canonical_stop_window_order",
    )
    assert StopFactory(planned_start=NOON, planned_end=NOON).planned_end == NOON


def test_only_one_open_exception_per_shipment_and_kind():
    first = ShipmentExceptionFactory(kind="DELAYED")
    assert_db_refuses(
        lambda: ShipmentExceptionFactory(shipment=first.shipment, kind="DELAYED"),
        "canonical_exception_one_open_uniq",
    )
    other_kind = ShipmentExceptionFactory(shipment=first.shipment, kind="CUSTOMS_HOLD")
    assert other_kind.status == "OPEN"


def test_a_second_exception_of_a_kind_may_open_after_the_first_is_resolved():
    first = ShipmentExceptionFactory(kind="DELAYED")
    ShipmentException.objects.filter(pk=first.pk).update(status="RESOLVED", resolved_at=NOON)
    second = ShipmentExceptionFactory(shipment=first.shipment, kind="DELAYED")
    assert ShipmentException.objects.filter(shipment=first.shipment, kind="DELAYED").count() == 2
    assert second.status == "OPEN"


def test_resolved_exception_needs_resolved_at_and_open_one_has_none():
    assert_db_refuses(
        lambda: ShipmentExceptionFactory(status="RESOLVED", resolved_at=None),
        "canonical_exception_resolved_has_time",
    )
    assert_db_refuses(
        lambda: ShipmentExceptionFactory(status="OPEN", resolved_at=NOON),
        "canonical_exception_resolved_has_time",
    )


@pytest.mark.parametrize("kind", ["CREDIT_NOTE", "DEBIT_NOTE"])
def test_credit_or_debit_note_must_name_the_invoice_it_corrects(kind):
    assert_db_refuses(lambda: InvoiceFactory(kind=kind, corrects=None), "canonical_invoice_note_corrects")
    original = InvoiceFactory()
    assert InvoiceFactory(kind=kind, corrects=original).corrects == original


def test_external_ref_is_unique_per_system_entity_and_external_id():
    first, second = CustomerFactory(), CustomerFactory()
    external_ref_add(first, system="erp", external_id="C-1")
    assert_db_refuses(
        lambda: external_ref_add(second, system="erp", external_id="C-1"),
        "canonical_extref_system_entity_id_uniq",
    )
    # The same id in another system, or for another entity, is someone else's id space.
    external_ref_add(second, system="crm", external_id="C-1")
    external_ref_add(CarrierFactory(), system="erp", external_id="C-1")
    assert ExternalRef.objects.filter(external_id="C-1").count() == 3


# --- Services ---------------------------------------------------------------------------------------


def test_record_create_raises_validation_failed_naming_a_missing_field():
    with pytest.raises(ValidationFailed) as info:
        services.record_create(model=Customer, data={"code": "NONAME"})
    assert [e["field"] for e in info.value.errors] == ["name"]
    assert not Customer.objects.filter(code="NONAME").exists()


def test_record_create_names_the_field_of_a_violated_check_constraint():
    with pytest.raises(ValidationFailed) as info:
        services.record_create(model=Carrier, data={"scac": "ab", "name": "Lower"})
    assert info.value.errors == [{"field": "scac", "message": "scac must be 2 to 4 capital letters"}]


def test_record_create_names_the_business_key_when_it_is_taken():
    CustomerFactory(code="TAKEN")
    with pytest.raises(ValidationFailed) as info:
        services.record_create(model=Customer, data={"code": "TAKEN", "name": "Again"})
    assert [e["field"] for e in info.value.errors] == ["code"]


def test_record_create_attaches_external_refs():
    customer = services.record_create(
        model=Customer,
        data={"code": "NEW", "name": "New"},
        external_refs=[{"system": "erp", "external_id": "42"}],
    )
    assert [(r.system, r.entity, r.external_id) for r in customer.external_refs.all()] == [
        ("erp", "customer", "42")
    ]


def test_external_refs_attach_is_idempotent():
    carrier = CarrierFactory()
    refs = [{"system": "tms", "external_id": "CAR-7"}]
    services.external_refs_attach(record=carrier, refs=refs)
    services.external_refs_attach(record=carrier, refs=refs)
    assert carrier.external_refs.count() == 1


def test_external_refs_attach_conflicts_when_the_id_belongs_to_another_record():
    owner, newcomer = CarrierFactory(), CarrierFactory()
    services.external_refs_attach(record=owner, refs=[{"system": "tms", "external_id": "CAR-7"}])
    with pytest.raises(ConflictError) as info:
        services.external_refs_attach(record=newcomer, refs=[{"system": "tms", "external_id": "CAR-7"}])
    assert info.value.errors[0]["field"] == "external_refs"
    assert newcomer.external_refs.count() == 0
    assert ExternalRef.objects.get(system="tms", external_id="CAR-7").object_id == owner.pk


def test_order_save_names_the_nested_line_field():
    customer, product = CustomerFactory(), ProductFactory()
    lines = [
        {"line_number": 1, "product": product, "quantity": Decimal("1"), "unit_price": Decimal("1")},
        {"line_number": 2, "product": product, "quantity": Decimal("0"), "unit_price": Decimal("1")},
    ]
    with pytest.raises(ValidationFailed) as info:
        services.order_save(data={"reference": "SO-NESTED", "customer": customer}, lines=lines)
    assert [e["field"] for e in info.value.errors] == ["lines[1].quantity"]
    assert not Order.objects.filter(reference="SO-NESTED").exists()


def test_order_save_replaces_lines_by_line_number():
    order = OrderFactory()
    keep, drop = OrderLineFactory(order=order, line_number=1), OrderLineFactory(order=order, line_number=2)
    services.order_save(
        instance=order,
        data={},
        lines=[
            {"line_number": 1, "product": keep.product, "quantity": Decimal("5"), "unit_price": Decimal("2")}
        ],
    )
    assert list(order.lines.values_list("pk", "quantity")) == [(keep.pk, Decimal("5.000"))]
    assert not OrderLine.objects.filter(pk=drop.pk).exists()


def test_shipment_save_starts_at_sequence_zero_and_bumps_it_on_every_update():
    shipment = services.shipment_save(data={"reference": "SHP-SEQ", "carrier": CarrierFactory()})
    assert shipment.sequence == 0
    shipment = services.shipment_save(instance=shipment, data={"tracking_number": "T1"})
    assert shipment.sequence == 1
    shipment = services.shipment_save(
        instance=shipment,
        data={},
        stops=[{"sequence": 1, "kind": Stop.Kind.PICKUP, "location": LocationFactory()}],
    )
    assert shipment.sequence == 2
    assert Shipment.objects.get(pk=shipment.pk).sequence == 2


def test_shipment_save_names_the_nested_stop_field():
    location = LocationFactory()
    stops = [
        {
            "sequence": 1,
            "kind": Stop.Kind.PICKUP,
            "location": location,
            "planned_start": NOON,
            "planned_end": NOON - dt.timedelta(hours=1),
        }
    ]
    with pytest.raises(ValidationFailed) as info:
        services.shipment_save(data={"reference": "SHP-WIN"}, stops=stops)
    assert [e["field"] for e in info.value.errors] == ["stops[0].planned_end"]


@pytest.mark.parametrize("status", [Invoice.Status.POSTED, Invoice.Status.PAID])
def test_invoice_save_refuses_line_changes_on_a_posted_invoice(status):
    invoice = InvoiceFactory(status=status)
    line = InvoiceLineFactory(invoice=invoice, line_number=1, unit_price=Decimal("10.00"))
    with pytest.raises(ConflictError) as info:
        services.invoice_save(
            instance=invoice,
            data={},
            lines=[{"line_number": 1, "description": "changed", "unit_price": Decimal("99.00")}],
        )
    assert info.value.errors == [{"field": "lines", "message": "invoice already posted"}]
    line.refresh_from_db()
    assert line.unit_price == Decimal("10.00")


def test_invoice_save_allows_line_changes_while_draft_and_header_changes_once_posted():
    invoice = InvoiceFactory(status=Invoice.Status.DRAFT)
    services.invoice_save(
        instance=invoice,
        data={},
        lines=[{"line_number": 1, "description": "Linehaul", "unit_price": Decimal("5")}],
    )
    assert InvoiceLine.objects.get(invoice=invoice).unit_price == Decimal("5.00")
    services.invoice_save(instance=invoice, data={"status": Invoice.Status.POSTED})
    services.invoice_save(instance=invoice, data={"status": Invoice.Status.PAID})
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_opening_a_second_open_exception_of_a_kind_is_a_conflict():
    shipment = ShipmentFactory()
    services.shipment_exception_open(data={"shipment": shipment, "kind": "DELAYED"})
    with pytest.raises(ConflictError):
        services.shipment_exception_open(data={"shipment": shipment, "kind": "DELAYED"})
    assert ShipmentException.objects.filter(shipment=shipment).count() == 1


def test_resolving_an_exception_stamps_resolved_at_and_reopening_clears_it():
    exception = services.shipment_exception_open(data={"shipment": ShipmentFactory(), "kind": "DAMAGED"})
    assert exception.status == "OPEN"
    before = timezone.now()
    services.shipment_exception_update(instance=exception, data={"status": "RESOLVED"})
    exception.refresh_from_db()
    assert exception.resolved_at is not None and exception.resolved_at >= before
    services.shipment_exception_update(instance=exception, data={"status": "OPEN"})
    exception.refresh_from_db()
    assert (exception.status, exception.resolved_at) == ("OPEN", None)


@pytest.mark.django_db
def test_bulk_update_rows_writes_each_objects_own_values_including_nulls_and_json():
    from canonical.dbutil import bulk_update_rows
    from canonical.models import Shipment
    from tests.factories.canonical import ShipmentFactory

    first, second = ShipmentFactory(), ShipmentFactory(sequence=4)
    first.status, first.sequence, first.delivered_at = "IN_TRANSIT", 7, None
    second.status, second.sequence, second.delivered_at = "DELIVERED", 9, timezone.now()
    assert bulk_update_rows(Shipment, [first, second], ["status", "sequence", "delivered_at"]) == 2
    rows = {s.pk: s for s in Shipment.objects.filter(pk__in=[first.pk, second.pk])}
    assert (rows[first.pk].status, rows[first.pk].sequence, rows[first.pk].delivered_at) == (
        "IN_TRANSIT",
        7,
        None,
    )
    assert (rows[second.pk].status, rows[second.pk].sequence) == ("DELIVERED", 9)
    assert rows[second.pk].delivered_at == second.delivered_at
