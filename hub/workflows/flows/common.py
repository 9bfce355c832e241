"""Shared pieces of the process flows: canonical payloads for the peers, and small canonical writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from canonical.contracts.v1 import EventType, MilestoneEvent, ShipmentRef
from canonical.milestones import shipment_apply_milestone
from canonical.models import Customer, ExternalRef, Invoice, Order, Shipment, ShipmentException
from canonical.services import external_refs_attach, invoice_save, shipment_save
from connectors.errors import PermanentError
from hub.connections.models import Connection
from hub.connections.services import connection_config


def ref_system(connection: Connection) -> str:
    """The system name the connection's records carry on external refs: the connector's
    ``ref_system`` setting where it has one (e.g. two Tryton instances), else its key."""
    config = connection_config(connection)
    return str(getattr(config, "ref_system", "") or connection.connector)


def role_system(connections: dict[str, str], role: str) -> str:
    """``ref_system`` of the connection a flow uses for ``role`` (erp, tms, crm)."""
    slug = connections.get(role)
    connection = Connection.objects.filter(slug=slug).first() if slug else None
    if connection is None:
        raise PermanentError(f"the flow has no {role} connection (got {slug!r})")
    return ref_system(connection)


def shipment_reference(order: Order) -> str:
    """The canonical shipment of an order placed by order-to-ship (one shipment per order)."""
    return f"SHP-{order.reference}"[:64]


def order_payload(order: Order, *, shipment_ref: str) -> dict[str, Any]:
    """A canonical order (contract v1 OrderDocument fields) plus the shipment reference."""
    customer = order.customer
    ship_to = order.ship_to
    return {
        "reference": shipment_ref,
        "order_reference": order.reference,
        "customer": {
            "code": customer.code,
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
        },
        "ship_to": {
            "code": ship_to.code,
            "name": ship_to.name,
            "address_line": ship_to.address_line,
            "city": ship_to.city,
            "region": ship_to.region,
            "postal_code": ship_to.postal_code,
            "country": ship_to.country,
        }
        if ship_to
        else {},
        "currency": order.currency,
        "lines": [
            {
                "line_number": line.line_number,
                "sku": line.product.sku,
                "product_name": line.product.name,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "weight_kg": str(line.product.weight_kg) if line.product.weight_kg else None,
            }
            for line in order.lines.select_related("product").order_by("line_number")
        ],
    }


def customer_payload(customer: Customer) -> dict[str, Any]:
    """A canonical customer (contract v1 CustomerDoc fields) for ``account.upsert``."""
    return {
        "code": customer.code,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "billing_address": customer.billing_address,
    }


def external_id(record, system: str) -> str | None:
    ref = ExternalRef.objects.filter(
        system=system, entity=type(record).__name__.lower(), object_id=record.pk
    ).first()
    return ref.external_id if ref else None


def erp_id(record, system: str, what: str) -> int:
    """The record's integer id in the ERP; PermanentError when it has none (nothing to write to)."""
    value = external_id(record, system)
    if value is None or not value.isdigit():
        raise PermanentError(f"{what} {record} has no {system} id (got {value!r})")
    return int(value)


def shipment_for_order(*, order: Order, reference: str) -> Shipment:
    """The canonical shipment of ``order`` (all its lines), created once and before the TMS booking,
    so the TMS's own webhooks about the booking (which can arrive while it is being made) find it."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().filter(reference=reference).first()
        if shipment is not None:
            return shipment
        return shipment_save(
            data={
                "reference": reference,
                "customer": order.customer,
                "currency": order.currency,
                "mode": Shipment.Mode.PARCEL,
            },
            lines=[{"order_line": line, "quantity": line.quantity} for line in order.lines.all()],
        )


def shipment_booked(
    *,
    shipment: Shipment,
    tms_system: str,
    tms_id: str,
    tracking_number: str,
    freight: Any,
    currency: str,
) -> Shipment:
    """Record what the TMS booked: its id (an external ref), tracking number and rate. Idempotent.

    The row is read again under its lock: a milestone may have been applied since ``shipment`` was
    loaded (the TMS's webhooks arrive while it books), and saving a stale copy would undo it.
    """
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        data: dict[str, Any] = {}
        if tracking_number and locked.tracking_number != tracking_number:
            data["tracking_number"] = tracking_number
        if freight not in (None, "") and locked.expected_freight_cost is None:
            data["expected_freight_cost"] = Decimal(str(freight))
            if currency:
                data["currency"] = currency
        refs = [{"system": tms_system, "external_id": tms_id}]
        if not data:
            external_refs_attach(record=locked, refs=refs)
            return locked
        return shipment_save(instance=locked, data=data, external_refs=refs)


def shipment_cancel(*, shipment: Shipment, why: str) -> None:
    """Cancel a canonical shipment through the state machine (idempotent: one CANCELLED event)."""
    shipment_apply_milestone(
        event=MilestoneEvent(
            event_type=EventType.CANCELLED,
            occurred_at=timezone.now(),
            shipment=ShipmentRef(reference=shipment.reference),
            event_id=f"workflow-cancel:{shipment.reference}",
            details={"reason": why},
        ),
        source="workflows",
    )


def open_exceptions(shipment: Shipment) -> list[str]:
    return sorted(
        shipment.exceptions.filter(status=ShipmentException.Status.OPEN).values_list("kind", flat=True)
    )


def invoice_record(
    *,
    reference: str,
    kind: str,
    order: Order | None,
    shipment: Shipment,
    currency: str,
    erp_system: str,
    erp_id: str,
    corrects: Invoice | None = None,
    lines: list[dict[str, Any]] | None = None,
) -> Invoice:
    """The canonical record of an invoice or note posted in the ERP (created once, by reference,
    with ``lines``: ``line_number``, ``description``, ``product``, ``quantity``, ``unit_price``).

    Raises PermanentError when the ERP gave this number to another of its invoices already: two ERP
    invoices must never become one canonical invoice (an ERP numbering fault for an operator to fix).
    """
    existing = Invoice.objects.filter(reference=reference).first()
    if existing is not None:
        if external_id(existing, erp_system) not in (None, erp_id):
            raise PermanentError(
                f"the ERP numbered invoice {erp_id} {reference}, the number of its invoice "
                f"{external_id(existing, erp_system)} already; fix the numbering in the ERP"
            )
        return existing
    return invoice_save(
        data={
            "reference": reference,
            "kind": kind,
            "status": Invoice.Status.POSTED,
            "customer": shipment.customer if order is None else order.customer,
            "order": order,
            "shipment": shipment,
            "currency": currency or (order.currency if order else shipment.currency),
            "issued_at": timezone.now(),
            "corrects": corrects,
        },
        lines=lines or [],
        external_refs=[{"system": erp_system, "external_id": erp_id}],
    )


FREIGHT_DESCRIPTION = "Freight"  # the description of an invoice's freight line (it has no product)


def lines_total(lines: list[dict[str, Any]]) -> Decimal:
    """An invoice's total from its lines: each line's quantity x unit price rounded to the cent
    (as the API's ``amount`` and the ERP round them), summed."""
    return sum(
        (
            (Decimal(str(line["quantity"])) * Decimal(str(line["unit_price"]))).quantize(Decimal("0.01"))
            for line in lines
        ),
        Decimal("0.00"),
    )
