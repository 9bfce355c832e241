"""ERP orders through the inbox (contract v1 OrderDocument): created with customer, ship-to and
products, unchanged on a repeat, updated when the ERP changes it, never regressing the hub's status."""

from __future__ import annotations

import copy
import json

import pytest

from canonical.models import Customer, ExternalRef, Location, Order, Product
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox

pytestmark = pytest.mark.django_db

ORDER = {
    "kind": "order",
    "reference": "SO-7001",
    "customer": {
        "code": "TRY-12",
        "name": "ACME Corp",
        "email": "ops@acme.example",
        "external_refs": [{"system": "tryton", "external_id": "party:12"}],
    },
    "ordered_at": "2026-11-20T09:00:00Z",
    "currency": "USD",
    "ship_to": {"code": "TRY-ADDR-7", "name": "ACME Dock 2", "city": "Ottawa", "country": "CA"},
    "lines": [
        {"line_number": 1, "sku": "WIDGET", "product_name": "Widget", "quantity": "5", "unit_price": "20.00"},
        {"line_number": 2, "sku": "GADGET", "quantity": "1", "unit_price": "99.50"},
    ],
    "external_refs": [{"system": "tryton", "external_id": "sale:7"}],
}


def _process(doc, key):
    connection = Connection.objects.filter(slug="erp-in").first() or connection_save(
        data={"slug": "erp-in", "system": "erp", "connector": "canonical", "config": {}}
    )
    received = inbox.inbound_message_receive(
        connection=connection,
        body=json.dumps(doc).encode(),
        content_type="application/json",
        headers={},
        idempotency_key=key,
        correlation_id="corr-order",
    )
    assert received.message.pk in inbox.inbound_batch_claim()
    return inbox.inbound_message_process(message_id=received.message.pk)


def test_an_order_document_creates_the_order_its_customer_ship_to_products_and_refs():
    message = _process(ORDER, "k1")
    assert (message.status, message.events_applied) == ("processed", 1)
    order = Order.objects.get(reference="SO-7001")
    assert (order.customer.code, order.customer.email, order.ship_to.city, order.status) == (
        "TRY-12",
        "ops@acme.example",
        "Ottawa",
        "CONFIRMED",
    )
    assert [
        (line.line_number, line.product.sku, str(line.quantity))
        for line in order.lines.order_by("line_number")
    ] == [
        (1, "WIDGET", "5.000"),
        (2, "GADGET", "1.000"),
    ]
    assert Product.objects.get(sku="GADGET").name == "GADGET"  # no name sent: the SKU stands in
    refs = set(ExternalRef.objects.values_list("system", "entity", "external_id"))
    assert refs == {("tryton", "order", "sale:7"), ("tryton", "customer", "party:12")}


def test_the_same_order_again_is_a_duplicate_and_a_change_updates_it():
    _process(ORDER, "k1")
    again = _process(ORDER, "k2")
    assert (again.events_applied, again.events_duplicate) == (0, 1)

    changed = copy.deepcopy(ORDER)
    changed["lines"] = changed["lines"][:1]
    changed["lines"][0]["quantity"] = "7"
    message = _process(changed, "k3")
    assert message.events_applied == 1
    order = Order.objects.get(reference="SO-7001")
    assert [(line.product.sku, str(line.quantity)) for line in order.lines.all()] == [("WIDGET", "7.000")]
    assert (Customer.objects.count(), Location.objects.count(), Order.objects.count()) == (1, 1, 1)


def test_a_resent_order_does_not_regress_a_shipped_order_but_a_cancellation_is_taken():
    _process(ORDER, "k1")
    Order.objects.filter(reference="SO-7001").update(status="SHIPPED")
    resent = copy.deepcopy(ORDER)
    resent["notes"] = "call before delivery"
    _process(resent, "k2")
    order = Order.objects.get(reference="SO-7001")
    assert (order.status, order.notes) == ("SHIPPED", "call before delivery")
    cancelled = copy.deepcopy(resent)
    cancelled["status"] = "CANCELLED"
    _process(cancelled, "k3")
    assert Order.objects.get(reference="SO-7001").status == "CANCELLED"


def test_an_invalid_order_is_dead_lettered_at_validate_naming_the_field():
    bad = copy.deepcopy(ORDER)
    bad["lines"][1]["quantity"] = "0"
    message = _process(bad, "k1")
    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "validate"
    assert letter.reason == "lines.1.quantity: Input should be greater than 0"
    assert not Order.objects.exists()


def test_an_external_id_already_linked_to_another_order_is_dead_lettered_at_apply():
    _process(ORDER, "k1")
    other = copy.deepcopy(ORDER)
    other["reference"] = "SO-7002"
    message = _process(other, "k2")
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.reason) == (
        "apply",
        "external id tryton:sale:7 already belongs to another order",
    )
    assert not Order.objects.filter(reference="SO-7002").exists()  # the whole document rolled back
