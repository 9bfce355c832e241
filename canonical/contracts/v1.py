"""Canonical milestone event, contract v1 (ARCHITECTURE.md, "Canonical milestone event").

Changing a field's meaning needs a v2 module beside this one; adding an optional field does not.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EventType(StrEnum):
    ORDER_RELEASED = "ORDER_RELEASED"
    TENDER_ACCEPTED = "TENDER_ACCEPTED"
    TENDER_REJECTED = "TENDER_REJECTED"
    ARRIVED_AT_PICKUP = "ARRIVED_AT_PICKUP"
    DEPARTED_PICKUP = "DEPARTED_PICKUP"
    IN_TRANSIT = "IN_TRANSIT"
    DELAYED = "DELAYED"
    CUSTOMS_HOLD = "CUSTOMS_HOLD"
    CUSTOMS_RELEASED = "CUSTOMS_RELEASED"
    ARRIVED_AT_DELIVERY = "ARRIVED_AT_DELIVERY"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    POD_RECEIVED = "POD_RECEIVED"
    MISSED_PICKUP = "MISSED_PICKUP"
    DAMAGED = "DAMAGED"
    REFUSED = "REFUSED"
    EXCEPTION_RESOLVED = "EXCEPTION_RESOLVED"
    FREIGHT_ADJUSTMENT = "FREIGHT_ADJUSTMENT"
    INVOICE_APPROVED = "INVOICE_APPROVED"
    CANCELLED = "CANCELLED"


class ShipmentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=64)


class LocationRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    lat: Decimal | None = Field(default=None, ge=-90, le=90)
    lon: Decimal | None = Field(default=None, ge=-180, le=180)


class MilestoneEvent(BaseModel):
    """One milestone. ``event_id`` is the source's id and the natural idempotency key."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    event_type: EventType
    occurred_at: datetime
    shipment: ShipmentRef
    stop_sequence: int | None = Field(default=None, ge=1, le=999)
    location: LocationRef | None = None
    reason_code: str | None = Field(default=None, max_length=16)
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must include a UTC offset (e.g. 2026-11-20T14:05:00Z)")
        return value.astimezone(UTC)


def semantic_key(event: MilestoneEvent, *, source: str) -> str:
    """The event-level dedupe key: the source's event id, else shipment + type + stop + time.

    The same milestone carried in two messages or batches gets the same key, so it is applied once.
    Keys are bounded in length (hashed when long) to fit the unique index.
    """
    if event.event_id:
        raw = f"id:{source}:{event.event_id}"
    else:
        stop = event.stop_sequence if event.stop_sequence is not None else "-"
        raw = (
            f"nat:{event.shipment.reference}:{event.event_type.value}:{stop}:{event.occurred_at.isoformat()}"
        )
    if len(raw) <= 200:
        return raw
    return raw[:120] + ":" + hashlib.sha256(raw.encode()).hexdigest()


class ExternalRefDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(min_length=1, max_length=40)
    external_id: str = Field(min_length=1, max_length=200)


class CustomerDoc(BaseModel):
    """The order's customer, upserted by ``code`` (the ERP's customer id is a good code)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)
    billing_address: str = ""
    external_refs: list[ExternalRefDoc] = Field(default_factory=list)


class AddressDoc(BaseModel):
    """A ship-to/ship-from place, upserted as a canonical Location by ``code``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    address_line: str = Field(default="", max_length=200)
    city: str = Field(default="", max_length=100)
    region: str = Field(default="", max_length=100)
    postal_code: str = Field(default="", max_length=20)
    country: str = Field(default="", max_length=2)


class OrderLineDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    line_number: int = Field(ge=1)
    sku: str = Field(min_length=1, max_length=64)
    product_name: str = Field(default="", max_length=200)
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal = Field(ge=0)
    unit_of_measure: str = Field(default="EA", max_length=16)


class OrderDocument(BaseModel):
    """A confirmed sales order from an ERP (``kind: "order"``), upserted by ``reference``.

    Products are upserted by SKU (name kept when already known); ``external_refs`` link the order to
    its ids in the source system (``system`` = the connector key, e.g. ``tryton``).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: str = Field(pattern="^order$")
    reference: str = Field(min_length=1, max_length=64)
    status: str = Field(default="CONFIRMED", pattern="^(DRAFT|CONFIRMED|CANCELLED)$")
    customer: CustomerDoc
    ordered_at: datetime | None = None
    requested_delivery_date: date | None = None
    currency: str = Field(default="USD", pattern="^[A-Z]{3}$")
    ship_to: AddressDoc | None = None
    notes: str = ""
    lines: list[OrderLineDoc] = Field(min_length=1)
    external_refs: list[ExternalRefDoc] = Field(default_factory=list)

    @field_validator("ordered_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("must include a UTC offset (e.g. 2026-11-20T14:05:00Z)")
        return value


class CarrierRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    scac: str = Field(min_length=2, max_length=4)


class StopDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    sequence: int = Field(ge=1, le=999)
    kind: str = Field(pattern="^(PICKUP|DELIVERY)$")
    location: AddressDoc
    planned_start: datetime | None = None
    planned_end: datetime | None = None


class ShipmentDocument(BaseModel):
    """A shipment tendered by a partner (an X12 204 from a 3PL, ``kind: "shipment"``), upserted by
    reference with its stops; ``purpose: CANCELLATION`` cancels it through the state machine. Partner
    detail beyond these fields (parties, references, equipment) is kept on the message, not applied."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    kind: str = Field(pattern="^shipment$")
    reference: str = Field(min_length=1, max_length=64)
    purpose: str = Field(default="ORIGINAL", pattern="^(ORIGINAL|CHANGE|REPLACE|CANCELLATION)$")
    carrier: CarrierRef | None = None
    stops: list[StopDoc] = Field(default_factory=list)
    source: dict[str, Any] = Field(default_factory=dict)


class ChargeDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    kind: str = Field(pattern="^(LINEHAUL|FUEL|ACCESSORIAL|DETENTION|ADJUSTMENT|OTHER)$")
    amount: Decimal
    code: str = ""
    description: str = ""


class FreightChargeDocument(BaseModel):
    """A carrier's freight invoice for one shipment (an X12 210, ``kind: "freight_charge"``): its
    charges are recorded on the shipment once per invoice, for audit against the expected cost."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    kind: str = Field(pattern="^freight_charge$")
    invoice_number: str = Field(min_length=1, max_length=40)
    shipment: ShipmentRef
    carrier: CarrierRef | None = None
    currency: str = Field(pattern="^[A-Z]{3}$")
    total: Decimal | None = None
    totals_agree: bool = True
    charges: list[ChargeDoc] = Field(min_length=1)


class AckedSet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    control_number: str
    status: str
    codes: list[str] = Field(default_factory=list)
    segment_errors: list[dict[str, Any]] = Field(default_factory=list)


class FunctionalAckDocument(BaseModel):
    """A partner's 997 for a group Crossdock sent (``kind: "functional_ack"``): accepted groups are
    recorded; a rejected one is dead-lettered naming the sets and segment errors."""

    model_config = ConfigDict(extra="ignore")
    kind: str = Field(pattern="^functional_ack$")
    acknowledged: dict[str, str]
    status: str = Field(pattern="^[AEPRMWX]$")
    sets: list[AckedSet] = Field(default_factory=list)


DOCUMENT_CONTRACTS: dict[str, type[BaseModel]] = {
    "milestone": MilestoneEvent,
    "order": OrderDocument,
    "shipment": ShipmentDocument,
    "freight_charge": FreightChargeDocument,
    "functional_ack": FunctionalAckDocument,
}
