"""Pure translation between Karrio's JSON and Crossdock's canonical documents (no I/O).

Outbound: a canonical order/shipment payload to the bodies of ``POST /v1/orders`` and
``POST /v1/shipments``, and Karrio's answers to the ledger's result data.
Inbound: one webhook document ``{"event": ..., "data": ...}`` to canonical milestone dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canonical.contracts.v1 import EventType
from canonical.states import EXCEPTION_OPENERS
from connectors.errors import MappingError, PermanentError
from connectors.mapping import MappingSet

IGNORE = "IGNORE"  # code-map value: a native status that is no milestone (label created, pending...)
REFERENCE_KEY = "crossdock_reference"  # Karrio metadata key holding the canonical shipment reference
ORDER_KEY = "crossdock_order"  # Karrio metadata key holding the canonical order reference

# Field-map names (connection mappings may repoint them) and their default source paths.
INBOUND_FIELDS = {
    "tracker_reference": f"metadata.{REFERENCE_KEY}",  # in a tracker: the canonical shipment reference
    "shipment_reference": "reference",  # in a shipment: the canonical shipment reference
}
CODE_SETS = ("tracker_status", "incident_reason", "shipment_event")

# Webhook events that carry no milestone. Orders are Crossdock's own writes echoed back; shipment
# status changes are reported by the tracker (with carrier time, place and reason) and, when a
# code map says so, by ``shipment_event``; tracker_created only holds the label-created event.
INFORMATIONAL_PREFIXES = ("order_", "pickup_", "batch_")
INFORMATIONAL_EVENTS = ("tracker_created",)
LOCATION_CODE_MAX = 40  # canonical LocationRef.code length
REASON_CODE_MAX = 16  # canonical MilestoneEvent.reason_code length
EVENT_ID_MAX = 200  # canonical MilestoneEvent.event_id length


# --- Outbound: canonical payload -> Karrio request bodies --------------------------------------------


class PayloadAddress(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    code: str = ""
    name: str = ""
    address_line: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


class PayloadCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    code: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""


class PayloadLine(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    line_number: int | None = None
    sku: str = Field(min_length=1)
    product_name: str = ""
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal | None = None
    weight_kg: Decimal | None = Field(default=None, gt=0)  # per unit


class OrderPayload(BaseModel):
    """What ``order.create`` and ``shipment.create`` accept: a canonical order (contract v1
    ``OrderDocument`` fields; extra ones are ignored) plus shipment fields for ``shipment.create``."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    reference: str = Field(min_length=1, max_length=64)
    order_reference: str | None = Field(default=None, min_length=1, max_length=64)
    customer: PayloadCustomer = Field(default_factory=PayloadCustomer)
    ship_to: PayloadAddress = Field(default_factory=PayloadAddress)
    currency: str = "USD"
    lines: list[PayloadLine] = Field(min_length=1)
    service: str | None = None
    weight_kg: Decimal | None = Field(default=None, gt=0)  # the parcel; default: sum of the lines

    @property
    def order_ref(self) -> str:
        return self.order_reference or self.reference


def payload_parse(payload: dict[str, Any]) -> OrderPayload:
    """Raises PermanentError naming every invalid field (the same payload can never succeed)."""
    try:
        return OrderPayload.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(payload)'}: {err['msg']}" for err in exc.errors()
        )
        raise PermanentError(f"invalid payload: {problems}") from None


def _quantity(line: PayloadLine) -> int:
    if line.quantity != line.quantity.to_integral_value():
        raise PermanentError(f"line {line.sku!r}: Karrio takes whole quantities, got {line.quantity}")
    return int(line.quantity)


def recipient(payload: OrderPayload) -> dict[str, Any]:
    """The canonical ship-to as a Karrio address; Karrio validates it (and names what is missing)."""
    to, customer = payload.ship_to, payload.customer
    address = {
        "person_name": to.name or customer.name,
        "company_name": customer.name if to.name and customer.name != to.name else "",
        "address_line1": to.address_line,
        "city": to.city,
        "state_code": to.region,
        "postal_code": to.postal_code,
        "country_code": to.country,
        "email": customer.email,
        "phone_number": customer.phone,
    }
    return {key: value for key, value in address.items() if value}


def _line_weight(line: PayloadLine, default_weight_kg: float) -> float:
    return float(line.weight_kg if line.weight_kg is not None else Decimal(str(default_weight_kg)))


def order_body(payload: OrderPayload, *, shipper: dict[str, Any], default_weight_kg: float) -> dict[str, Any]:
    """``POST /v1/orders``: order_id is the canonical order reference (Karrio does not dedupe it)."""
    items = []
    for line in payload.lines:
        item: dict[str, Any] = {
            "title": line.product_name or line.sku,
            "sku": line.sku,
            "quantity": _quantity(line),
            "weight": _line_weight(line, default_weight_kg),
            "weight_unit": "KG",
        }
        if line.unit_price is not None:
            item["value_amount"] = float(line.unit_price)
            item["value_currency"] = payload.currency
        if line.line_number is not None:
            item["metadata"] = {"line_number": line.line_number}
        items.append(item)
    return {
        "order_id": payload.order_ref,
        "source": "crossdock",
        "shipping_to": recipient(payload),
        "shipping_from": shipper,
        "line_items": items,
        "metadata": {ORDER_KEY: payload.order_ref},
    }


def shipment_body(
    payload: OrderPayload,
    *,
    order: dict[str, Any],
    shipper: dict[str, Any],
    carrier_id: str,
    service: str,
    default_weight_kg: float,
) -> dict[str, Any]:
    """``POST /v1/shipments`` with ``service`` set, which buys the label in the same call. Each
    parcel item points at its order line item (``parent_id``), matched by SKU in line order."""
    line_items: dict[str, deque] = defaultdict(deque)
    for item in order.get("line_items") or []:
        line_items[item.get("sku") or ""].append(item["id"])
    items = []
    for line in payload.lines:
        item = {
            "title": line.product_name or line.sku,
            "sku": line.sku,
            "quantity": _quantity(line),
            "weight": _line_weight(line, default_weight_kg),
            "weight_unit": "KG",
        }
        if line_items[line.sku]:
            item["parent_id"] = line_items[line.sku].popleft()
        items.append(item)
    weight = (
        float(payload.weight_kg)
        if payload.weight_kg is not None
        else sum(item["weight"] * item["quantity"] for item in items)
    )
    return {
        "shipper": shipper,
        "recipient": recipient(payload),
        "carrier_ids": [carrier_id],
        "service": service,
        "reference": payload.reference,
        "parcels": [{"weight": round(weight, 3), "weight_unit": "KG", "items": items}],
        "metadata": {REFERENCE_KEY: payload.reference, ORDER_KEY: payload.order_ref},
    }


def order_result_data(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order.get("order_id"),
        "status": order.get("status"),
        "line_items": [
            {"id": item.get("id"), "sku": item.get("sku"), "quantity": item.get("quantity")}
            for item in order.get("line_items") or []
        ],
    }


def shipment_result_data(shipment: dict[str, Any], *, order: dict[str, Any] | None) -> dict[str, Any]:
    rate = shipment.get("selected_rate") or {}
    return {
        "reference": shipment.get("reference"),
        "status": shipment.get("status"),
        "tracking_number": shipment.get("tracking_number"),
        "tracker_id": shipment.get("tracker_id"),
        "order_id": (order or {}).get("id") or shipment.get("order_id"),
        "order_reference": (order or {}).get("order_id"),
        "carrier_id": shipment.get("carrier_id"),
        "service": shipment.get("service") or rate.get("service"),
        "total_charge": rate.get("total_charge"),
        "currency": rate.get("currency"),
        "label_url": shipment.get("label_url"),
    }


# --- Inbound: webhook document -> canonical milestones -----------------------------------------------


def natural_key(document: Any) -> str | None:
    """A semantic key for a webhook (Karrio sends no event id): event, object id, status and, for a
    tracker, every tracking event it holds. A re-sent unchanged state gets the same key."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        return None
    event, data = document.get("event"), document["data"]
    if not isinstance(event, str) or not isinstance(data.get("id"), str):
        return None
    events = [
        [e.get("timestamp"), e.get("date"), e.get("time"), e.get("code"), e.get("status"), e.get("reason")]
        for e in _list(data.get("events"))
        if isinstance(e, dict)
    ]
    signature = json.dumps([event, data["id"], data.get("status"), sorted(events, key=str)], default=str)
    digest = hashlib.sha256(signature.encode()).hexdigest()[:32]
    return f"karrio:{event}:{data['id']}:{data.get('status')}:{digest}"[:EVENT_ID_MAX]


def _parse_time(value: Any, *, field: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise MappingError("no timestamp", field=field, value=value)
    text = value.strip()
    text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"unreadable timestamp {value!r}", field=field, value=value) from None
    # Karrio writes its own times in UTC; a carrier time without an offset is taken as UTC too.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _event_time(event: dict[str, Any], *, field: str) -> datetime:
    if event.get("timestamp"):
        return _parse_time(event["timestamp"], field=f"{field}.timestamp")
    if event.get("date"):
        text = f"{event['date']} {event.get('time') or '00:00'}"
        for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %I:%M %p", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
        raise MappingError(f"unreadable date/time {text!r}", field=f"{field}.date", value=text)
    raise MappingError("tracking event without timestamp or date", field=f"{field}.timestamp", value=None)


def _event_id(*parts: Any) -> str:
    raw = "/".join("" if part is None else str(part) for part in parts)
    if len(raw) <= EVENT_ID_MAX:
        return raw
    return raw[:120] + ":" + hashlib.sha256(raw.encode()).hexdigest()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _code_text(value: Any) -> str:
    """A carrier code or place as text ("" when absent or not a scalar: a malformed event)."""
    return str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _location(event: dict[str, Any]) -> dict[str, Any] | None:
    place = _code_text(event.get("location"))
    if not place:
        return None
    location: dict[str, Any] = {"code": place[:LOCATION_CODE_MAX], "name": place[:200]}
    if event.get("latitude") is not None and event.get("longitude") is not None:
        location["lat"], location["lon"] = str(event["latitude"]), str(event["longitude"])
    return location


def _event_type(mapped: str, *, field: str, native: Any) -> EventType:
    try:
        return EventType(mapped)
    except ValueError:
        raise MappingError(
            f"{native!r} maps to {mapped!r}, which is not a canonical event type", field=field, value=native
        ) from None


def _reference(data: dict[str, Any], mappings: MappingSet, name: str, what: str) -> str:
    path = mappings.path(name, INBOUND_FIELDS[name])
    value = mappings.get(data, name, INBOUND_FIELDS[name])
    if not isinstance(value, str) or not value.strip():
        raise MappingError(
            f"{what} {data.get('id')} has no shipment reference at {path!r} "
            "(bought outside Crossdock, or the fields map points elsewhere)",
            field=name,
            value=data.get("id"),
        )
    return value.strip()


def tracker_milestones(data: dict[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """Every tracking event the tracker holds, through ``tracker_status`` (then ``incident_reason``
    for exception types). Karrio sends the whole history each time; the hub drops the repeats by
    their event ids (tracker id, time, carrier code)."""
    if not isinstance(data.get("events") or [], list):
        raise MappingError(
            f"tracker {data.get('id')}: events should be a list", field="data.events", value=None
        )
    events = [e for e in data.get("events") or [] if isinstance(e, dict)]
    if not events:
        return []
    reference = _reference(data, mappings, "tracker_reference", "tracker")
    incident_table = mappings.codes.get("incident_reason") or {}
    milestones = []
    for index, event in enumerate(events):
        field = f"events.{index}"
        native = event.get("status") or event.get("code")
        mapped = mappings.code("tracker_status", native, field=f"{field}.status")
        if mapped == IGNORE:
            continue
        event_type = _event_type(mapped, field=f"{field}.status", native=native)
        reason = event.get("reason")
        if reason and event_type in EXCEPTION_OPENERS and str(reason).strip() in incident_table:
            mapped = mappings.code("incident_reason", reason, field=f"{field}.reason")
            event_type = _event_type(mapped, field=f"{field}.reason", native=reason)
        occurred_at = _event_time(event, field=field)
        code = _code_text(event.get("code"))
        details = {
            "karrio_status": event.get("status"),
            "description": event.get("description"),
            "tracking_number": data.get("tracking_number"),
            "tracker_id": data.get("id"),
            "carrier": data.get("carrier_name"),
        }
        if reason:
            details["reason"] = reason
        if code and len(code) > REASON_CODE_MAX:
            details["code"] = code
        milestone: dict[str, Any] = {
            # A carrier event is its time and code. Karrio's status is derived from them and can change
            # on a tracker refresh (the first in_transit becomes picked_up), so it joins the id only
            # when there is no code.
            "event_id": _event_id(
                data.get("id"), event.get("timestamp") or occurred_at.isoformat(), code or native
            ),
            "event_type": event_type.value,
            "occurred_at": occurred_at.isoformat(),
            "shipment": {"reference": reference},
            "details": {k: v for k, v in details.items() if v is not None},
        }
        if code and len(code) <= REASON_CODE_MAX:
            milestone["reason_code"] = code
        location = _location(event)
        if location:
            milestone["location"] = location
        milestones.append(milestone)
    return milestones


def shipment_milestones(event: str, data: dict[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """A ``shipment_*`` webhook through the ``shipment_event`` code map. Karrio's shipment payload
    carries no time of the change; ``created_at`` (the label purchase) is the only one, so it is
    the milestone's time (exact for a purchase; for a cancellation, flagged in ``details``)."""
    mapped = mappings.code("shipment_event", event, field="event")
    if mapped == IGNORE:
        return []
    reference = _reference(data, mappings, "shipment_reference", "shipment")
    occurred_at = _parse_time(data.get("created_at"), field="data.created_at")
    details = {
        "karrio_event": event,
        "karrio_status": data.get("status"),
        "karrio_shipment_id": data.get("id"),
        "tracking_number": data.get("tracking_number"),
        "service": data.get("service"),
    }
    if event != "shipment_purchased":
        details["occurred_at_is"] = "shipment created_at (Karrio sends no time for this change)"
    return [
        {
            "event_id": _event_id(data.get("id"), event),
            "event_type": _event_type(mapped, field="event", native=event).value,
            "occurred_at": occurred_at.isoformat(),
            "shipment": {"reference": reference},
            "details": {k: v for k, v in details.items() if v is not None},
        }
    ]


def webhook_to_milestones(document: dict[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """One Karrio webhook to canonical milestone dicts (an empty list for informational events).

    Raises MappingError naming the unmapped code or the missing field (stage ``map``).
    """
    event, data = document["event"], document["data"]
    if event == "tracker_updated":
        return tracker_milestones(data, mappings)
    if event.startswith("shipment_"):
        return shipment_milestones(event, data, mappings)
    if event in INFORMATIONAL_EVENTS or event.startswith(INFORMATIONAL_PREFIXES):
        return []
    raise MappingError(f"unknown Karrio webhook event {event!r}", field="event", value=event)
