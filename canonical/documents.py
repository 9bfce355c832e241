"""Applying inbound business documents other than milestones (contract v1: ``OrderDocument``,
``ShipmentDocument``, ``FreightChargeDocument``, ``FunctionalAckDocument``).

An ERP's orders arrive through the inbox like milestones do (a poll stores each sale as a message);
these services turn one validated document into canonical rows, idempotently: applying the same
document again changes nothing and says so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from canonical.contracts.v1 import (
    EventType,
    FreightChargeDocument,
    FunctionalAckDocument,
    MilestoneEvent,
    OrderDocument,
    ShipmentDocument,
    ShipmentRef,
)
from canonical.errors import ConflictError
from canonical.milestones import UnknownShipmentError, shipment_apply_milestone
from canonical.models import Carrier, Customer, FreightCharge, Location, Order, Product, Shipment
from canonical.services import (
    external_refs_attach,
    order_save,
    record_create,
    record_update,
    shipment_save,
)

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


# --- Partner documents: shipments tendered by a 3PL, carriers' freight invoices, acknowledgements ---


def _carrier(scac: str) -> Carrier:
    carrier = Carrier.objects.filter(scac=scac).first()
    if carrier is None:
        carrier = record_create(model=Carrier, data={"scac": scac, "name": scac})
    return carrier


def shipment_document_apply(*, document: ShipmentDocument, source: str) -> tuple[Shipment | None, bool]:
    """Upsert a tendered shipment by reference with its stops (locations by code).

    A CANCELLATION cancels the shipment through the state machine (a CANCELLED milestone), so it is
    idempotent and never regresses. Returns ``(shipment, changed)``.
    """
    doc = document
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(reference=doc.reference).first()
        if doc.purpose == "CANCELLATION":
            if shipment is None:
                raise UnknownShipmentError(doc.reference)
            event = MilestoneEvent(
                event_type=EventType.CANCELLED,
                occurred_at=timezone.now(),
                shipment=ShipmentRef(reference=doc.reference),
                event_id=f"tender-cancel:{doc.reference}:{doc.source.get('control_number', '')}",
            )
            result = shipment_apply_milestone(event=event, source=source)
            return shipment, not result.duplicate
        data: dict[str, Any] = {"reference": doc.reference}
        if doc.carrier is not None:
            data["carrier"] = _carrier(doc.carrier.scac)
        stops = [
            {
                "sequence": stop.sequence,
                "kind": stop.kind,
                "location": _upsert(
                    Location, stop.location.code, stop.location.model_dump(exclude={"code"}), []
                ),
                "planned_start": stop.planned_start,
                "planned_end": stop.planned_end,
            }
            for stop in doc.stops
        ]
        if shipment is not None and _same_shipment(shipment, data, stops):
            return shipment, False
        return shipment_save(instance=shipment, data=data, stops=stops), True


def _same_shipment(shipment: Shipment, data: dict[str, Any], stops: list[dict[str, Any]]) -> bool:
    if any(getattr(shipment, name) != value for name, value in data.items()):
        return False
    stored = {
        (stop.sequence, stop.kind, stop.location_id, stop.planned_start, stop.planned_end)
        for stop in shipment.stops.all()
    }
    wanted = {
        (stop["sequence"], stop["kind"], stop["location"].pk, stop["planned_start"], stop["planned_end"])
        for stop in stops
    }
    return stored == wanted


def freight_charge_document_apply(*, document: FreightChargeDocument, source: str) -> tuple[Shipment, bool]:
    """Record a carrier invoice's charges on its shipment, once per invoice line.

    Raises UnknownShipmentError when the shipment is not known yet (the message waits and is
    replayed when it appears). Returns ``(shipment, changed)``; a resent invoice changes nothing.
    """
    doc = document
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(reference=doc.shipment.reference).first()
        if shipment is None:
            raise UnknownShipmentError(doc.shipment.reference)
        changed = False
        for index, charge in enumerate(doc.charges, start=1):
            _charge, created = FreightCharge.objects.get_or_create(
                shipment=shipment,
                source_system=source,
                source_ref=f"{doc.invoice_number}:{index}",
                defaults={
                    "kind": charge.kind,
                    "amount": charge.amount,
                    "currency": doc.currency,
                    "description": (charge.description or charge.code or f"invoice {doc.invoice_number}")[
                        :200
                    ],
                },
            )
            changed = changed or created
    return shipment, changed


def functional_ack_check(*, document: FunctionalAckDocument) -> None:
    """Accept a partner's 997 for a group Crossdock sent; raise ConflictError naming what the partner
    rejected (sets, segments, codes) so it is dead-lettered for an operator."""
    doc = document
    if doc.status in ("A", "E"):
        return
    group = f"{doc.acknowledged.get('functional_id', '?')} {doc.acknowledged.get('control_number', '?')}"
    rejected = []
    for acked in doc.sets:
        if acked.status in ("A", "E"):
            continue
        errors = ", ".join(
            f"{err.get('segment', '?')} at {err.get('position', '?')} code {err.get('code', '?')}"
            for err in acked.segment_errors
        )
        codes = ",".join(acked.codes)
        rejected.append(
            f"set {acked.id} {acked.control_number} {acked.status}"
            + (f" codes {codes}" if codes else "")
            + (f" ({errors})" if errors else "")
        )
    detail = f"partner acknowledged group {group} with {doc.status}"
    raise ConflictError(detail + (": " + "; ".join(rejected) if rejected else ""))
