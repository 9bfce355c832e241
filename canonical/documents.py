"""Applying inbound business documents other than milestones (contract v1 ``OrderDocument``).

An ERP's orders arrive through the inbox like milestones do (a poll stores each sale as a message);
these services turn one validated document into canonical rows, idempotently: applying the same
document again changes nothing and says so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from canonical.contracts.v1 import OrderDocument
from canonical.models import Customer, Location, Order, Product
from canonical.services import external_refs_attach, order_save, record_create, record_update

# An order the hub has moved on (shipped, delivered, invoiced) keeps its status when the ERP
# re-sends it; only a cancellation from the ERP is taken.
_ERP_SETTABLE = {Order.Status.DRAFT, Order.Status.CONFIRMED}


def _upsert[M: Customer | Location](model: type[M], key: str, data: dict[str, Any], refs: list[dict]) -> M:
    instance = model.objects.filter(code=key).first()
    if instance is None:
        return record_create(model=model, data={"code": key, **data}, external_refs=refs)
    if any(getattr(instance, name) != value for name, value in data.items()):
        return record_update(instance=instance, data=data, external_refs=refs)
    external_refs_attach(record=instance, refs=refs)
    return instance


def _product(sku: str, name: str, unit: str) -> Product:
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        product = record_create(
            model=Product, data={"sku": sku, "name": name or sku, "unit_of_measure": unit}
        )
    return product


def order_document_apply(*, document: OrderDocument) -> tuple[Order, bool]:
    """Upsert the order (by reference), its customer and ship-to (by code) and products (by SKU).

    Returns ``(order, changed)``; ``changed`` is False when the stored order already said the same.
    Raises ValidationFailed/ConflictError naming the field (e.g. an external id linked elsewhere).
    """
    doc = document
    with transaction.atomic():
        customer = _upsert(
            Customer,
            doc.customer.code,
            {
                "name": doc.customer.name,
                "email": doc.customer.email,
                "phone": doc.customer.phone,
                "billing_address": doc.customer.billing_address,
            },
            [ref.model_dump() for ref in doc.customer.external_refs],
        )
        ship_to = None
        if doc.ship_to is not None:
            ship_to = _upsert(Location, doc.ship_to.code, doc.ship_to.model_dump(exclude={"code"}), [])
        lines = [
            {
                "line_number": line.line_number,
                "product": _product(line.sku, line.product_name, line.unit_of_measure),
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in doc.lines
        ]
        order = Order.objects.select_for_update().filter(reference=doc.reference).first()
        data: dict[str, Any] = {
            "reference": doc.reference,
            "customer": customer,
            "ordered_at": doc.ordered_at,
            "requested_delivery_date": doc.requested_delivery_date,
            "currency": doc.currency,
            "ship_to": ship_to,
            "notes": doc.notes,
        }
        if order is None or order.status in _ERP_SETTABLE or doc.status == Order.Status.CANCELLED:
            data["status"] = doc.status
        refs = [ref.model_dump() for ref in doc.external_refs]
        if order is not None and _same(order, data, lines):
            external_refs_attach(record=order, refs=refs)
            return order, False
        return order_save(instance=order, data=data, lines=lines, external_refs=refs), True


def _same(order: Order, data: dict[str, Any], lines: list[dict[str, Any]]) -> bool:
    if any(getattr(order, name) != value for name, value in data.items()):
        return False
    stored = {
        (line.line_number, line.product_id, Decimal(line.quantity), Decimal(line.unit_price))
        for line in order.lines.all()
    }
    wanted = {
        (line["line_number"], line["product"].pk, Decimal(line["quantity"]), Decimal(line["unit_price"]))
        for line in lines
    }
    return stored == wanted
