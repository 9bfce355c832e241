"""Pure translation between Tryton documents and canonical ones (no I/O).

Inbound: a polled sale (``sale.sale`` read with its party, addresses and lines, nested by
``client.nest``) becomes one ``OrderDocument`` dict (``kind: "order"``).

- Field sources come from the connection's inbound field map (defaults in
  ``mappings/inbound.json``). A source is a dotted path (``party.name``) or, when it contains braces,
  a template (``TRY-{party.code}``) whose placeholders are paths: a placeholder with no value leaves
  the whole field without a value. Line fields are named ``line.<field>`` and read from the sale line.
- Codes go through code maps, so an unknown one dead-letters at stage ``map`` naming it: the sale's
  ``state`` (``sale_state``) and each line's unit symbol (``unit``).
- Lines: sale lines of type ``line`` become order lines numbered 1..n in the sale's order. Skipped:
  comment/title/subtotal lines, and the **freight line** that ``sale_shipment_cost`` adds at quote
  time (a line with ``shipment_cost`` set). Freight is the TMS's business: the hub learns the real
  freight from the carrier side and writes it back with ``invoice.post``/``shipment.record_cost``;
  an order line for it would make the TMS ship a "FREIGHT" item. A product line without a product,
  or with a quantity that is not positive (a return), raises MappingError naming the line.
- ``external_refs``: the sale id for the order and the party id for the customer, under the system
  name ``ref_system`` (the config's, default ``tryton``).

Outbound: ``write_targets`` resolves where a canonical value is written in Tryton (the outbound
field map: ``tms_shipment_id`` -> ``sale.reference``, ``tracking_number`` -> ``shipment.reference``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.errors import MappingError
from connectors.mapping import MappingSet, dig

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_MISSING = object()

# The canonical fields an inbound field map may set (ConnectorSpec.mapping_targets).
INBOUND_FIELDS = (
    "reference",
    "customer.code",
    "customer.name",
    "customer.email",
    "customer.phone",
    "customer.billing_address",
    "ship_to.code",
    "ordered_at",
    "requested_delivery_date",
    "currency",
    "notes",
    "line.sku",
    "line.product_name",
)
# Where an operation may write (outbound field map values), by canonical field.
WRITABLE = {
    "tms_shipment_id": ("sale.reference", "sale.description", "sale.comment", "shipment.reference"),
    "tracking_number": ("shipment.reference", "sale.reference", "sale.description", "sale.comment"),
}
OUTBOUND_FIELDS = tuple(WRITABLE)


def source(document: Any, spec: str) -> Any:
    """A field map entry's value in ``document``: a dotted path, or a template with ``{path}``s."""
    if "{" not in spec:
        value = dig(document, spec, _MISSING)
        return None if value is _MISSING else value
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = dig(document, match.group(1).strip(), None)
        if value is None or value == "":
            missing = True
            return ""
        return str(value)

    text = _PLACEHOLDER.sub(fill, spec)
    return None if missing else text


def _field(document: Any, mappings: MappingSet, name: str, default: str) -> Any:
    return source(document, mappings.path(name, default))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _required(sale: Mapping[str, Any], mappings: MappingSet, name: str, default: str) -> str:
    value = _text(_field(sale, mappings, name, default))
    if not value:
        raise MappingError(
            f"sale {sale.get('id')}: no value for {name} (source {mappings.path(name, default)!r})",
            field=name,
            value=None,
        )
    return value


def _decimal(value: Any, *, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite():
        raise MappingError(f"{field}: {value!r} is not a number", field=field, value=value)
    return number


def _object(value: Any, *, field: str, sale: Mapping[str, Any]) -> Mapping[str, Any]:
    """``value`` when it is an object (or empty); else MappingError naming the field."""
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(
            f"sale {sale.get('id')}: {field} should be an object, found {type(value).__name__}",
            field=field,
            value=None,
        )
    return value


def _datetime(value: Any) -> str | None:
    """A Tryton date (``2026-11-26``: the business date, taken as midnight UTC) or timestamp."""
    text = _text(value)
    if not text:
        return None
    return text if "T" in text else f"{text}T00:00:00Z"


def _address(address: Mapping[str, Any] | None, sale: Mapping[str, Any], code: str | None) -> dict | None:
    address = _object(address, field="shipment_address", sale=sale)
    if not address or not code:
        return None
    street_lines = [line.strip() for line in _text(address.get("street")).splitlines() if line.strip()]
    subdivision = address.get("subdivision") or {}
    country = address.get("country") or {}
    name = _text(address.get("party_name")) or _text(dig(sale, "party.name")) or code
    return {
        "code": code,
        "name": name,
        "address_line": ", ".join(street_lines),
        "city": _text(address.get("city")),
        "region": _text(subdivision.get("code") if isinstance(subdivision, Mapping) else ""),
        "postal_code": _text(address.get("postal_code")),
        "country": _text(country.get("code") if isinstance(country, Mapping) else ""),
    }


def is_freight_line(line: Mapping[str, Any]) -> bool:
    """The line sale_shipment_cost added for the carrier's cost (it has ``shipment_cost`` set)."""
    return line.get("shipment_cost") is not None


def _lines(sale: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    sale_lines = sale.get("lines") or []
    if not isinstance(sale_lines, list):
        raise MappingError(
            f"sale {sale.get('id')}: lines should be a list, found {type(sale_lines).__name__}",
            field="lines",
            value=None,
        )
    for index, raw in enumerate(sale_lines):
        where = f"lines.{index}"
        line = _object(raw, field=where, sale=sale)
        if line.get("type", "line") != "line" or is_freight_line(line):
            continue
        if not line.get("product"):
            raise MappingError(
                f"sale {sale.get('id')}: line {line.get('id')} has no product, so no SKU",
                field=f"{where}.product",
                value=line.get("description"),
            )
        sku = _text(_field(line, mappings, "line.sku", "product.code"))
        if not sku:
            raise MappingError(
                f"sale {sale.get('id')}: line {line.get('id')}'s product has no code (the SKU)",
                field=f"{where}.product.code",
                value=dig(line, "product.id"),
            )
        quantity = _decimal(line.get("quantity"), field=f"{where}.quantity")
        if quantity <= 0:
            raise MappingError(
                f"sale {sale.get('id')}: line {line.get('id')} has quantity {quantity}; only positive "
                "quantities are orderable (a return line is not an order line)",
                field=f"{where}.quantity",
                value=str(quantity),
            )
        unit = mappings.code("unit", dig(line, "unit.symbol"), field=f"{where}.unit")
        lines.append(
            {
                "line_number": len(lines) + 1,
                "sku": sku,
                "product_name": _text(_field(line, mappings, "line.product_name", "product.name")),
                "quantity": str(quantity),
                "unit_price": str(_decimal(line.get("unit_price") or 0, field=f"{where}.unit_price")),
                "unit_of_measure": unit,
            }
        )
    if not lines:
        raise MappingError(
            f"sale {sale.get('id')} has no product lines besides freight", field="lines", value=None
        )
    return lines


def sale_to_order(
    sale: Mapping[str, Any], mappings: MappingSet, *, ref_system: str = "tryton"
) -> dict[str, Any]:
    """One polled sale to an ``OrderDocument`` dict. Raises MappingError naming the field or code."""
    status = mappings.code("sale_state", sale.get("state"), field="state")
    party = _object(sale.get("party"), field="party", sale=sale)
    customer = {
        "code": _required(sale, mappings, "customer.code", "TRY-{party.code}"),
        "name": _required(sale, mappings, "customer.name", "party.name"),
        "email": _text(_field(sale, mappings, "customer.email", "party.email")),
        "phone": _text(_field(sale, mappings, "customer.phone", "party.phone")),
        "billing_address": _text(
            _field(sale, mappings, "customer.billing_address", "invoice_address.full_address")
        ),
        "external_refs": [{"system": ref_system, "external_id": str(party.get("id"))}]
        if party.get("id") is not None
        else [],
    }
    ship_to_code = _text(_field(sale, mappings, "ship_to.code", "TRY-ADDR-{shipment_address.id}"))
    document: dict[str, Any] = {
        "kind": "order",
        "reference": _required(sale, mappings, "reference", "number"),
        "status": status,
        "customer": customer,
        "ordered_at": _datetime(_field(sale, mappings, "ordered_at", "sale_date")),
        "requested_delivery_date": _text(_field(sale, mappings, "requested_delivery_date", "shipping_date"))[
            :10
        ]
        or None,
        "currency": _required(sale, mappings, "currency", "currency.code"),
        "ship_to": _address(sale.get("shipment_address"), sale, ship_to_code or None),
        "notes": _text(_field(sale, mappings, "notes", "comment")),
        "lines": _lines(sale, mappings),
        "external_refs": [{"system": ref_system, "external_id": str(sale.get("id"))}],
    }
    return document


def write_targets(mappings: MappingSet, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Canonical values to Tryton writes, by target model (``sale`` / ``shipment``): field -> value.

    Reads the outbound field map (``tms_shipment_id`` -> ``sale.reference`` by default). Values that
    are None are not written. Raises MappingError for a target that is not writable.
    """
    writes: dict[str, dict[str, Any]] = {"sale": {}, "shipment": {}}
    defaults = {"tms_shipment_id": "sale.reference", "tracking_number": "shipment.reference"}
    for name, value in values.items():
        if value is None:
            continue
        target = mappings.path(name, defaults[name])
        if target not in WRITABLE[name]:
            raise MappingError(
                f"{name} cannot be written to {target!r}; expected one of {', '.join(WRITABLE[name])}",
                field=name,
                value=target,
            )
        model, _, field = target.partition(".")
        if field in writes[model] and writes[model][field] != value:
            raise MappingError(
                f"{name} and another field are both mapped to {target!r}", field=name, value=target
            )
        writes[model][field] = value
    return writes


# --- Master data, as the ERP says it (reconciliation) -------------------------------------------------

CUSTOMER_FIELDS = (("name", "party.name"), ("email", "party.email"), ("phone", "party.phone"))
LOCATION_FIELDS = ("address_line", "city", "region", "postal_code", "country")


def party_customer_fields(party: Mapping[str, Any], mappings: MappingSet) -> dict[str, str]:
    """The canonical customer fields a party alone decides, through the inbound field map: a field
    whose source reads anything but the party (the sale, its addresses) is left out. Pure."""
    values: dict[str, str] = {}
    for name, default in CUSTOMER_FIELDS:
        spec = mappings.path(f"customer.{name}", default)
        paths = _PLACEHOLDER.findall(spec) if "{" in spec else [spec]
        if not paths or not all(p.strip().startswith("party.") for p in paths):
            continue
        values[name] = _text(source({"party": party}, spec))
    return values


def address_location_fields(address: Mapping[str, Any]) -> dict[str, str]:
    """The canonical location fields of a ship-to a Tryton address becomes (``sale_to_order``), name
    left out (it comes from the sale's party when the address has none). Pure."""
    found = _address(address, {}, "-") or {}
    return {name: found.get(name, "") for name in LOCATION_FIELDS}
