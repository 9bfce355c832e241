"""The ops console (Django admin): every registered model lists, searches (by business key and by
external id) and opens; writes go through the services and show their errors; data owned elsewhere
(another system, milestones) is read-only; API client keys are shown once and stored as digests."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import connection, models
from django.forms import SplitDateTimeField
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from canonical import services
from canonical.models import (
    Carrier,
    Customer,
    ExternalRef,
    FreightCharge,
    Invoice,
    Location,
    Order,
    OrderLine,
    Price,
    Product,
    Rate,
    Shipment,
    ShipmentEvent,
    ShipmentException,
)
from hub.connections.models import ApiClient
from hub.connections.services import api_client_create
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
    PriceFactory,
    RateFactory,
    ShipmentEventFactory,
    ShipmentLineFactory,
    external_ref_add,
)

pytestmark = pytest.mark.django_db

# Queries one shipment list page may make whatever the number of rows: session, user, the page,
# the filtered count, prefetched refs, and the sidebar filters' choices (carriers, dates, systems).
SHIPMENT_LIST_QUERY_BOUND = 12


def admin_url(model: type[models.Model], view: str, *args: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def form_data(page) -> dict[str, Any]:
    """The POST data of an admin form page as the browser would send it unchanged."""
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, SplitDateTimeField):
            widget = getattr(field.widget, "widget", field.widget)
            day, time = widget.decompress(value) if value else (None, None)
            data[f"{name}_0"] = "" if day is None else day.isoformat()
            data[f"{name}_1"] = "" if time is None else time.isoformat()
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else str(value)
    return data


def inline_management_data(page) -> dict[str, str]:
    """Management forms for every inline on the page, submitting no rows (existing rows untouched)."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def result_pks(response) -> set:
    return {obj.pk for obj in response.context["cl"].result_list}


# --- Record makers: ``tag`` makes business keys and external ids distinct ("KQ" vs "XZ") ---------


def _with_ref(record: Any, *, system: str, external_id: str) -> Any:
    """``record``, linked to its id in ``system``."""
    external_ref_add(record, system=system, external_id=external_id)
    return record


def make_customer(tag: str) -> Customer:
    return _with_ref(CustomerFactory(code=f"CU-{tag}"), system="tryton", external_id=f"party-{tag}")


def make_location(tag: str) -> Location:
    return _with_ref(LocationFactory(code=f"LOC-{tag}"), system="tryton", external_id=f"address-{tag}")


def make_carrier(tag: str) -> Carrier:
    return _with_ref(CarrierFactory(scac=tag * 2), system="karrio", external_id=f"carrier-{tag}")


def make_product(tag: str) -> Product:
    return _with_ref(ProductFactory(sku=f"SKU-{tag}"), system="tryton", external_id=f"product-{tag}")


def make_price(tag: str) -> Price:
    return PriceFactory(product=make_product(tag), customer=make_customer(tag))


def make_rate(tag: str) -> Rate:
    return RateFactory(carrier=make_carrier(tag))


def make_order(tag: str) -> Order:
    order = OrderFactory(reference=f"SO-{tag}", ship_from=LocationFactory(), ship_to=LocationFactory())
    OrderLineFactory.create_batch(2, order=order)
    external_ref_add(order, system="tryton", external_id=f"sale-{tag}")
    return order


def make_shipment(tag: str) -> Shipment:
    shipment = ShipmentFactory(reference=f"SHP-{tag}", tracking_number=f"1Z{tag}")
    StopFactory(shipment=shipment, sequence=1)
    StopFactory(shipment=shipment, sequence=2, kind="DELIVERY")
    ShipmentLineFactory(shipment=shipment)
    ShipmentEventFactory(shipment=shipment)
    ShipmentExceptionFactory(shipment=shipment)
    FreightChargeFactory(shipment=shipment)
    external_ref_add(shipment, system="karrio", external_id=f"tms-{tag}")
    return shipment


def make_exception(tag: str) -> ShipmentException:
    return _with_ref(
        ShipmentExceptionFactory(shipment=ShipmentFactory(reference=f"SHP-{tag}")),
        system="crm",
        external_id=f"case-{tag}",
    )


def make_invoice(tag: str) -> Invoice:
    invoice = InvoiceFactory(reference=f"INV-{tag}", order=OrderFactory(), shipment=ShipmentFactory())
    InvoiceLineFactory.create_batch(2, invoice=invoice)
    external_ref_add(invoice, system="tryton", external_id=f"account-invoice-{tag}")
    return invoice


def make_charge(tag: str) -> FreightCharge:
    shipment = ShipmentFactory(reference=f"SHP-{tag}")
    external_ref_add(shipment, system="karrio", external_id=f"tms-{tag}")
    return FreightChargeFactory(shipment=shipment, invoice_line=InvoiceLineFactory())


def make_event(tag: str) -> ShipmentEvent:
    return ShipmentEventFactory(
        shipment=ShipmentFactory(reference=f"SHP-{tag}"), source_event_id=f"evt-{tag}"
    )


def make_external_ref(tag: str) -> ExternalRef:
    return external_ref_add(CustomerFactory(), system="tryton", external_id=f"party-{tag}")


def make_api_client(tag: str) -> ApiClient:
    return api_client_create(name=f"client-{tag}", admin=True).client


@dataclass(frozen=True)
class Case:
    model: type[models.Model]
    make: Callable[[str], models.Model]
    key: Callable[[Any], str]  # what an operator types to find it by its business key
    external: Callable[[Any], str] | None = None  # ... and by an id another system gives it


CASES = [
    Case(Customer, make_customer, lambda o: o.code, lambda o: o.external_refs.get().external_id),
    Case(Location, make_location, lambda o: o.code, lambda o: o.external_refs.get().external_id),
    Case(Carrier, make_carrier, lambda o: o.scac, lambda o: o.external_refs.get().external_id),
    Case(Product, make_product, lambda o: o.sku, lambda o: o.external_refs.get().external_id),
    Case(Price, make_price, lambda o: o.product.sku, lambda o: o.product.external_refs.get().external_id),
    Case(Rate, make_rate, lambda o: o.carrier.scac, lambda o: o.carrier.external_refs.get().external_id),
    Case(Order, make_order, lambda o: o.reference, lambda o: o.external_refs.get().external_id),
    Case(Shipment, make_shipment, lambda o: o.reference, lambda o: o.external_refs.get().external_id),
    Case(
        ShipmentException,
        make_exception,
        lambda o: o.shipment.reference,
        lambda o: o.external_refs.get().external_id,
    ),
    Case(Invoice, make_invoice, lambda o: o.reference, lambda o: o.external_refs.get().external_id),
    Case(
        FreightCharge,
        make_charge,
        lambda o: o.shipment.reference,
        lambda o: o.shipment.external_refs.get().external_id,
    ),
    Case(ShipmentEvent, make_event, lambda o: o.shipment.reference, lambda o: o.source_event_id),
    Case(ExternalRef, make_external_ref, lambda o: o.external_id),
    Case(ApiClient, make_api_client, lambda o: o.name),
]
CASE_IDS = [case.model.__name__ for case in CASES]


def test_every_canonical_model_and_the_api_client_is_registered():
    registered = set(admin.site._registry)
    expected = {case.model for case in CASES}
    assert expected <= registered


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_changelist_lists_the_rows(admin_client, case):
    first, second = case.make("KQ"), case.make("XZ")

    response = admin_client.get(admin_url(case.model, "changelist"))

    assert response.status_code == 200
    assert {first.pk, second.pk} <= result_pks(response)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_search_by_business_key_finds_the_row(admin_client, case):
    wanted, other = case.make("KQ"), case.make("XZ")

    response = admin_client.get(admin_url(case.model, "changelist"), {"q": case.key(wanted)})

    assert response.status_code == 200
    found = result_pks(response)
    assert wanted.pk in found
    assert other.pk not in found


@pytest.mark.parametrize("case", [c for c in CASES if c.external], ids=lambda c: c.model.__name__)
def test_search_by_external_id_finds_the_row(admin_client, case):
    wanted, other = case.make("KQ"), case.make("XZ")

    response = admin_client.get(admin_url(case.model, "changelist"), {"q": case.external(wanted)})

    assert response.status_code == 200
    found = result_pks(response)
    assert wanted.pk in found
    assert other.pk not in found


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_change_page_loads(admin_client, case):
    record = case.make("KQ")

    response = admin_client.get(admin_url(case.model, "change", record.pk))

    assert response.status_code == 200
    assert case.key(record) in response.content.decode()


@pytest.mark.parametrize(
    "model", [Customer, Location, Carrier, Product, Price, Rate, Order, Shipment, Invoice, FreightCharge]
)
def test_add_page_loads(admin_client, model):
    assert admin_client.get(admin_url(model, "add")).status_code == 200


# --- Lists: links, counts, no N+1 -----------------------------------------------------------------


def test_lists_link_related_records_to_their_change_pages(admin_client):
    shipment = make_shipment("KQ")
    invoice = InvoiceFactory(shipment=shipment, order=OrderFactory())

    shipments = admin_client.get(admin_url(Shipment, "changelist")).content.decode()
    invoices = admin_client.get(admin_url(Invoice, "changelist")).content.decode()

    assert admin_url(Carrier, "change", shipment.carrier.pk) in shipments
    assert admin_url(Customer, "change", shipment.customer.pk) in shipments
    assert admin_url(Shipment, "change", shipment.pk) in invoices
    assert admin_url(Order, "change", invoice.order.pk) in invoices
    assert admin_url(Customer, "change", invoice.customer.pk) in invoices


def _links(page, target: str) -> list[str]:
    return [
        html.unescape(url)
        for url in re.findall(rf'href="([^"]*{re.escape(target)}[^"]*)"', page.content.decode())
    ]


def test_open_exception_count_and_record_links_lead_to_filtered_lists(admin_client):
    shipment = ShipmentFactory()
    exception = ShipmentExceptionFactory(shipment=shipment)
    ShipmentExceptionFactory(shipment=ShipmentFactory())  # another shipment's
    order = OrderFactory(customer=shipment.customer)
    OrderFactory()  # another customer's

    listing = admin_client.get(admin_url(Shipment, "changelist"))
    (exceptions_url,) = {url for url in _links(listing, "/shipmentexception/?") if str(shipment.pk) in url}
    customer_page = admin_client.get(admin_url(Customer, "change", shipment.customer.pk))
    (orders_url,) = _links(customer_page, "/order/?")

    assert result_pks(admin_client.get(exceptions_url)) == {exception.pk}
    assert result_pks(admin_client.get(orders_url)) == {order.pk}


def test_shipment_list_counts_only_open_exceptions_even_when_the_search_joins_refs(admin_client):
    shipment = ShipmentFactory(reference="SHP-KQ")
    ShipmentExceptionFactory(shipment=shipment, kind="DELAYED")
    ShipmentExceptionFactory(shipment=shipment, kind="DAMAGED")
    ShipmentExceptionFactory(
        shipment=shipment, kind="CUSTOMS_HOLD", status="RESOLVED", resolved_at=timezone.now()
    )
    # Two refs that both match the search: a JOIN-based count would double.
    external_ref_add(shipment, system="karrio", external_id="tms-KQ-1")
    external_ref_add(shipment, system="tryton", external_id="tms-KQ-2")

    response = admin_client.get(admin_url(Shipment, "changelist"), {"q": "tms-KQ"})

    rows = list(response.context["cl"].result_list)
    assert [row.pk for row in rows] == [shipment.pk]
    assert rows[0].open_exception_count == 2


def _shipments_with_children(count: int, offset: int) -> None:
    for index in range(offset, offset + count):
        shipment = ShipmentFactory()  # each with its own carrier and customer
        ShipmentExceptionFactory(shipment=shipment)
        ShipmentExceptionFactory(
            shipment=shipment, kind="REFUSED", status="RESOLVED", resolved_at=timezone.now()
        )
        external_ref_add(shipment, system="karrio", external_id=f"tms-{index}")
        external_ref_add(shipment, system="tryton", external_id=f"sale-{index}")


def test_shipment_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    url = admin_url(Shipment, "changelist")
    _shipments_with_children(2, offset=0)
    admin_client.get(url)  # warm the content-type cache and the session

    with CaptureQueriesContext(connection) as two_rows:
        admin_client.get(url)
    _shipments_with_children(8, offset=2)
    with CaptureQueriesContext(connection) as ten_rows:
        response = admin_client.get(url)

    assert len(response.context["cl"].result_list) == 10
    assert len(ten_rows) == len(two_rows)
    with django_assert_max_num_queries(SHIPMENT_LIST_QUERY_BOUND):
        admin_client.get(url)


@pytest.mark.parametrize("model", [Order, Invoice, ShipmentException, FreightCharge, ShipmentEvent, Price])
def test_other_changelists_do_not_query_per_row(admin_client, model):
    makers = {
        Order: make_order,
        Invoice: make_invoice,
        ShipmentException: make_exception,
        FreightCharge: make_charge,
        ShipmentEvent: make_event,
        Price: make_price,
    }
    url = admin_url(model, "changelist")
    makers[model]("A0")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as one_row:
        admin_client.get(url)
    for tag in ("B1", "C2", "D3", "E4"):
        makers[model](tag)
    with CaptureQueriesContext(connection) as five_rows:
        admin_client.get(url)

    assert len(five_rows) == len(one_row)


# --- Writes go through services; their errors are shown, nothing is saved -------------------------


def test_adding_a_customer_goes_through_record_create(admin_client):
    page = admin_client.get(admin_url(Customer, "add"))
    data = {**form_data(page), **inline_management_data(page), "code": "CU-NEW", "name": "New Co"}

    with mock.patch.object(services, "record_create", wraps=services.record_create) as spy:
        response = admin_client.post(admin_url(Customer, "add"), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    spy.assert_called_once()
    customer = Customer.objects.get(code="CU-NEW")
    assert response["Location"] == admin_url(Customer, "changelist")
    assert customer.name == "New Co"


def test_editing_a_customer_goes_through_record_update(admin_client):
    customer = CustomerFactory(name="Old name")
    url = admin_url(Customer, "change", customer.pk)
    page = admin_client.get(url)
    data = {**form_data(page), **inline_management_data(page), "name": "New name"}

    with mock.patch.object(services, "record_update", wraps=services.record_update) as spy:
        response = admin_client.post(url, data)

    assert response.status_code == 302
    spy.assert_called_once()
    assert spy.call_args.kwargs["data"] == {"name": "New name"}
    customer.refresh_from_db()
    assert customer.name == "New name"


def test_adding_an_order_with_lines_uses_order_save_and_saves_the_inline_rows(admin_client):
    customer, product = CustomerFactory(), ProductFactory()
    page = admin_client.get(admin_url(Order, "add"))
    data = {
        **form_data(page),
        **inline_management_data(page),
        "reference": "SO-NEW",
        "customer": str(customer.pk),
        "lines-TOTAL_FORMS": "1",
        "lines-0-line_number": "1",
        "lines-0-product": str(product.pk),
        "lines-0-quantity": "3",
        "lines-0-unit_price": "4.50",
    }

    with mock.patch.object(services, "order_save", wraps=services.order_save) as spy:
        response = admin_client.post(admin_url(Order, "add"), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    spy.assert_called_once()
    order = Order.objects.get(reference="SO-NEW")
    line = order.lines.get()
    assert (line.product, line.quantity, line.unit_price) == (product, Decimal("3"), Decimal("4.50"))


def test_a_carrier_with_a_lowercase_scac_is_refused_and_not_created(admin_client):
    response = admin_client.post(
        admin_url(Carrier, "add"), {"scac": "ab1", "name": "Bad Carrier", "active": "on"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "scac must be 2 to 4 capital letters" in str(errors)
    assert not Carrier.objects.exists()


def test_a_second_open_exception_of_the_same_kind_shows_the_service_error_and_creates_nothing(admin_client):
    shipment = ShipmentFactory()
    ShipmentExceptionFactory(shipment=shipment, kind="DELAYED")
    page = admin_client.get(admin_url(ShipmentException, "add"), {"shipment": shipment.pk})
    data = {**form_data(page), **inline_management_data(page), "kind": "DELAYED"}

    with mock.patch.object(
        services, "shipment_exception_open", wraps=services.shipment_exception_open
    ) as spy:
        response = admin_client.post(admin_url(ShipmentException, "add"), data)

    spy.assert_called_once()
    assert response.status_code == 200
    assert any("already has an open exception" in text for text in message_texts(response))
    form = response.context["adminform"].form
    assert "already has an open exception" in str(form.non_field_errors())
    assert form["kind"].value() == "DELAYED"  # the operator's input is kept
    assert ShipmentException.objects.filter(shipment=shipment).count() == 1


def test_reopening_an_exception_that_would_duplicate_an_open_one_is_refused(admin_client):
    shipment = ShipmentFactory()
    resolved = ShipmentExceptionFactory(
        shipment=shipment, kind="DELAYED", status="RESOLVED", resolved_at=timezone.now()
    )
    ShipmentExceptionFactory(shipment=shipment, kind="DELAYED")
    url = admin_url(ShipmentException, "change", resolved.pk)
    page = admin_client.get(url)
    data = {**form_data(page), **inline_management_data(page), "status": "OPEN"}

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert any("already has an open exception" in text for text in message_texts(response))
    resolved.refresh_from_db()
    assert resolved.status == "RESOLVED"
    assert resolved.resolved_at is not None


def test_adding_an_exception_opens_it_through_the_service(admin_client):
    shipment = ShipmentFactory()
    page = admin_client.get(admin_url(ShipmentException, "add"), {"shipment": shipment.pk})
    form = page.context["adminform"].form
    assert "status" not in form.fields  # a new exception is always OPEN
    data = {**form_data(page), **inline_management_data(page), "kind": "DAMAGED", "description": "Crushed"}

    response = admin_client.post(admin_url(ShipmentException, "add"), data)

    assert response.status_code == 302
    exception = ShipmentException.objects.get(shipment=shipment)
    assert (exception.kind, exception.status, exception.description) == ("DAMAGED", "OPEN", "Crushed")


def test_resolve_action_resolves_open_exceptions_through_the_service(admin_client):
    exception = ShipmentExceptionFactory()

    with mock.patch.object(
        services, "shipment_exception_update", wraps=services.shipment_exception_update
    ) as spy:
        response = admin_client.post(
            admin_url(ShipmentException, "changelist"),
            {"action": "resolve_selected", "_selected_action": [str(exception.pk)]},
        )

    assert response.status_code == 302
    spy.assert_called_once()
    exception.refresh_from_db()
    assert exception.status == "RESOLVED"
    assert exception.resolved_at is not None


def test_a_freight_charge_added_here_is_crossdocks(admin_client):
    shipment = ShipmentFactory()
    page = admin_client.get(admin_url(FreightCharge, "add"))
    data = {
        **form_data(page),
        **inline_management_data(page),
        "shipment": str(shipment.pk),
        "kind": "FUEL",
        "amount": "12.00",
        "currency": "USD",
    }

    response = admin_client.post(admin_url(FreightCharge, "add"), data)

    assert response.status_code == 302
    charge = FreightCharge.objects.get(shipment=shipment)
    assert (charge.amount, charge.source_system) == (Decimal("12.00"), "crossdock")


# --- Read-only where the data is owned elsewhere ---------------------------------------------------


def test_shipment_event_cannot_be_added_or_changed(admin_client):
    event = ShipmentEventFactory()

    assert admin_client.get(admin_url(ShipmentEvent, "add")).status_code == 403
    assert admin_client.post(admin_url(ShipmentEvent, "add"), {}).status_code == 403
    assert admin_client.post(admin_url(ShipmentEvent, "change", event.pk), {}).status_code == 403
    assert admin_client.get(admin_url(ShipmentEvent, "change", event.pk)).status_code == 200


def test_external_refs_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(admin_url(ExternalRef, "add")).status_code == 403


def test_shipment_status_milestone_fields_and_timeline_are_read_only(admin_client):
    shipment = ShipmentFactory(status="IN_TRANSIT", sequence=5)  # Crossdock's own: editable plan
    StopFactory(shipment=shipment, sequence=1)
    event = ShipmentEventFactory(shipment=shipment)
    ShipmentExceptionFactory(shipment=shipment)
    url = admin_url(Shipment, "change", shipment.pk)
    page = admin_client.get(url)
    # The read-only timeline still shows its rows.
    timeline_rows = next(i for i in page.context["inline_admin_formsets"] if i.formset.model is ShipmentEvent)
    assert [form.instance.pk for form in timeline_rows.formset.forms] == [event.pk]

    fields = page.context["adminform"].form.fields
    for name in ("status", "delivered_at", "pod_received_at", "sequence", "reference"):
        assert name not in fields
    inlines = {inline.formset.model: inline for inline in page.context["inline_admin_formsets"]}
    timeline = inlines[ShipmentEvent]
    assert not (
        timeline.has_add_permission or timeline.has_change_permission or timeline.has_delete_permission
    )
    assert inlines[ShipmentException].has_change_permission is False

    data = {
        **form_data(page),
        **inline_management_data(page),
        "status": "DELIVERED",
        "tracking_number": "1ZNEW",
    }
    with mock.patch.object(services, "shipment_save", wraps=services.shipment_save) as spy:
        response = admin_client.post(url, data)

    assert response.status_code == 302
    spy.assert_called_once()
    shipment.refresh_from_db()
    assert (shipment.status, shipment.tracking_number) == ("IN_TRANSIT", "1ZNEW")
    assert shipment.sequence == 6  # shipment_save counted the change for receivers


def test_business_key_is_read_only_after_creation(admin_client):
    customer = CustomerFactory()

    form = admin_client.get(admin_url(Customer, "change", customer.pk)).context["adminform"].form

    assert "code" not in form.fields
    assert "name" in form.fields


def test_erp_owned_customer_has_read_only_business_data_and_names_its_owner(admin_client):
    customer = CustomerFactory(name="Acme ERP", hold_invoice_until_pod=True)
    external_ref_add(customer, system="tryton", external_id="party-42")
    url = admin_url(Customer, "change", customer.pk)

    page = admin_client.get(url)

    form = page.context["adminform"].form
    assert "name" not in form.fields
    assert "email" not in form.fields
    assert "hold_invoice_until_pod" in form.fields  # Crossdock's own billing policy stays editable
    assert "tryton: its business data is read-only here" in page.content.decode()
    assert page.context["has_delete_permission"] is False

    data = {
        **form_data(page),
        **inline_management_data(page),
        "name": "Renamed",
        "hold_invoice_until_pod": "",
    }
    response = admin_client.post(url, data)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Acme ERP"
    assert customer.hold_invoice_until_pod is False


def test_a_crossdock_ref_does_not_make_a_record_read_only(admin_client):
    customer = CustomerFactory()
    external_ref_add(customer, system="crossdock", external_id="self-1")

    page = admin_client.get(admin_url(Customer, "change", customer.pk))

    assert "name" in page.context["adminform"].form.fields
    assert "Crossdock: edit it here." in page.content.decode()


def test_erp_owned_order_lines_are_read_only(admin_client):
    order = make_order("KQ")  # tryton sale

    page = admin_client.get(admin_url(Order, "change", order.pk))

    lines = next(i for i in page.context["inline_admin_formsets"] if i.formset.model is OrderLine)
    assert not (lines.has_add_permission or lines.has_change_permission or lines.has_delete_permission)
    assert "customer" not in page.context["adminform"].form.fields


def test_posted_invoice_lines_are_read_only(admin_client):
    invoice = InvoiceFactory(status="POSTED")
    InvoiceLineFactory(invoice=invoice)

    page = admin_client.get(admin_url(Invoice, "change", invoice.pk))

    lines = next(
        i for i in page.context["inline_admin_formsets"] if i.formset.model.__name__ == "InvoiceLine"
    )
    assert not (lines.has_add_permission or lines.has_change_permission)
    assert "status" in page.context["adminform"].form.fields  # the invoice itself is Crossdock's


def test_a_carrier_reported_charge_is_read_only(admin_client):
    charge = FreightChargeFactory(source_system="karrio")

    page = admin_client.get(admin_url(FreightCharge, "change", charge.pk))

    assert "amount" not in page.context["adminform"].form.fields
    assert "karrio: its business data is read-only here" in page.content.decode()


# --- API clients -----------------------------------------------------------------------------------


def _shown_key(response) -> str:
    match = re.search(r"<code>(cdk_[^<]+)</code>", " ".join(message_texts(response)))
    assert match, message_texts(response)
    return match.group(1)


def test_adding_a_partner_api_client_shows_the_key_once_and_stores_only_its_digest(admin_client):
    carrier = CarrierFactory(scac="ACME")

    response = admin_client.post(
        admin_url(ApiClient, "add"), {"name": "acme-tms", "role": "partner", "partner_code": "ACME"}
    )

    assert response.status_code == 302
    key = _shown_key(response)
    client = ApiClient.objects.get(name="acme-tms")
    assert client.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert (client.role, client.carrier, client.customer) == ("partner", carrier, None)
    assert key.startswith(client.key_prefix)

    first = admin_client.get(response["Location"]).content.decode()  # the message is shown here...
    again = admin_client.get(admin_url(ApiClient, "change", client.pk)).content.decode()
    listing = admin_client.get(admin_url(ApiClient, "changelist")).content.decode()
    assert key in first
    assert key not in again  # ...and never again
    for page in (first, again, listing):
        assert client.key_digest not in page
    assert admin_url(Carrier, "change", carrier.pk) in listing


def test_adding_an_admin_api_client_binds_nothing(admin_client):
    response = admin_client.post(
        admin_url(ApiClient, "add"), {"name": "ops", "role": "admin", "partner_code": ""}
    )

    assert response.status_code == 302
    client = ApiClient.objects.get(name="ops")
    assert (client.role, client.carrier, client.customer) == ("admin", None, None)


def test_adding_a_partner_client_with_an_unknown_code_shows_the_error_and_creates_nothing(admin_client):
    response = admin_client.post(
        admin_url(ApiClient, "add"), {"name": "ghost", "role": "partner", "partner_code": "NOPE"}
    )

    assert response.status_code == 200
    assert any("no carrier with SCAC 'NOPE'" in text for text in message_texts(response))
    assert not ApiClient.objects.exists()


def test_rotate_key_action_replaces_the_digest_and_shows_the_new_key(admin_client):
    client = api_client_create(name="erp", admin=True).client
    old_digest = client.key_digest

    response = admin_client.post(
        admin_url(ApiClient, "changelist"), {"action": "rotate_key", "_selected_action": [str(client.pk)]}
    )

    assert response.status_code == 302
    key = _shown_key(response)
    client.refresh_from_db()
    assert client.key_digest != old_digest
    assert client.key_digest == hashlib.sha256(key.encode()).hexdigest()


def test_deactivate_action_deactivates_the_client(admin_client):
    client = api_client_create(name="erp", admin=True).client

    response = admin_client.post(
        admin_url(ApiClient, "changelist"), {"action": "deactivate", "_selected_action": [str(client.pk)]}
    )

    assert response.status_code == 302
    client.refresh_from_db()
    assert client.is_active is False


def test_api_client_change_page_is_read_only_and_cannot_delete(admin_client):
    client = api_client_create(name="erp", admin=True).client
    url = admin_url(ApiClient, "change", client.pk)

    page = admin_client.get(url)

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert admin_client.post(url, {"name": "renamed"}).status_code == 403
    assert admin_client.get(admin_url(ApiClient, "delete", client.pk)).status_code == 403


def test_date_hierarchy_drilldown_works(admin_client):
    ShipmentFactory(planned_pickup_at=dt.datetime(2025, 3, 4, 10, tzinfo=dt.UTC))

    response = admin_client.get(
        admin_url(Shipment, "changelist"),
        {"planned_pickup_at__year": "2025", "planned_pickup_at__month": "3"},
    )

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
