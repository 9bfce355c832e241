"""What the `tryton` connector does in Tryton: polling sales and the five writes.

All I/O goes through ``client.TrytonClient`` (which uses only the hub's HTTP client). Every write is
written as "make Tryton look like this" rather than "do this once": each step reads first and only
writes what differs, so running an operation again after a timeout or a crash finishes the job
instead of repeating it. ``lookup_*`` only read.

Payload conventions (canonical JSON from the hub): a sale is named by ``sale_id`` (int),
``sale_number`` (str) or ``sale`` (an int is an id, a string a number); money is a decimal string or
number; ``currency`` an ISO code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import OperationResult, PollResult
from connectors.errors import PermanentError, TransientError
from connectors.mapping import MappingSet
from connectors.tryton.client import TrytonClient, jsonable, nest
from connectors.tryton.translate import is_freight_line, write_targets

# What a polled sale carries: one search_read per page reads all of it through dotted fields.
_ADDRESS = ("street", "city", "postal_code", "country.code", "subdivision.code", "party_name", "full_address")
SALE_FIELDS: tuple[str, ...] = (
    "number",
    "reference",
    "description",
    "comment",
    "state",
    "shipment_state",
    "invoice_state",
    "sale_date",
    "shipping_date",
    "create_date",
    "write_date",
    "last_modified_at",
    "currency.code",
    "untaxed_amount",
    "total_amount",
    "carrier.party.name",
    "party.name",
    "party.code",
    "party.email",
    "party.phone",
    "party.contact_mechanisms.type",
    "party.contact_mechanisms.value",
    *(f"party.addresses.{name}" for name in _ADDRESS),
    *(f"invoice_address.{name}" for name in _ADDRESS),
    *(f"shipment_address.{name}" for name in _ADDRESS),
    "lines.sequence",
    "lines.type",
    "lines.product.code",
    "lines.product.name",
    "lines.description",
    "lines.quantity",
    "lines.unit.symbol",
    "lines.unit_price",
    "lines.amount",
    "lines.shipment_cost",
)
_SALE_ORDER = [["last_modified_at", "ASC"], ["id", "ASC"]]
_OPEN_INVOICE = ("draft", "validated")
_DONE_INVOICE = ("posted", "paid")


# --- Poll ------------------------------------------------------------------------------------------------


def cursor_format(modified_at: dt.datetime, sale_id: int) -> str:
    """``<last_modified_at, naive UTC ISO, microseconds>|<sale id>``: the last sale handed over."""
    return f"{modified_at.isoformat(timespec='microseconds')}|{sale_id}"


def cursor_parse(cursor: str | None) -> tuple[dt.datetime, int] | None:
    if not cursor:
        return None
    stamp, _, sale_id = cursor.partition("|")
    try:
        return dt.datetime.fromisoformat(stamp), int(sale_id)
    except ValueError:
        raise PermanentError(
            f"unreadable Tryton poll cursor {cursor!r}; expected '<ISO timestamp>|<id>'"
        ) from None


def sales_poll(client: TrytonClient, config: Any, cursor: str | None) -> PollResult:
    """One page of sales in ``config.poll_states`` modified after ``cursor``, oldest first.

    Order and cursor are (last_modified_at, id): sales modified in one transaction share a timestamp,
    and the id tie-break hands each over exactly once, even across pages.

    Settling: Tryton stamps a write with its transaction's *start*, so a long transaction can commit
    a timestamp older than one already handed over. Sales modified less than ``config.settle_s``
    seconds before the server's clock (its HTTP ``Date``) are left for the next poll, so such a
    transaction has that long to commit before the cursor passes its timestamp.
    """
    after = cursor_parse(cursor)
    domain: list[Any] = [["state", "in", list(config.poll_states)]]
    if config.company is not None:
        domain.append(["company", "=", config.company])
    if after is not None:
        stamp, sale_id = after
        domain.append(
            [
                "OR",
                [["last_modified_at", ">", stamp]],
                [["last_modified_at", "=", stamp], ["id", ">", sale_id]],
            ]
        )
    answer = client.call_answer(
        "model.sale.sale.search_read", domain, 0, config.page_size, _SALE_ORDER, list(SALE_FIELDS)
    )
    cutoff = None
    if config.settle_s and answer.server_time is not None:
        cutoff = answer.server_time - dt.timedelta(seconds=config.settle_s)
    messages: list[bytes] = []
    next_cursor = cursor
    for row in answer.result:
        modified_at = row["last_modified_at"]
        if cutoff is not None and modified_at > cutoff:
            break  # ordered by time: every later row is too fresh as well
        messages.append(sale_message(sale_document(row)))
        next_cursor = cursor_format(modified_at, row["id"])
    return PollResult(messages=messages, cursor=next_cursor)


def sale_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sale row read with ``SALE_FIELDS`` as the JSON document a poll hands over."""
    return jsonable(nest(row))


def sale_message(document: Mapping[str, Any]) -> bytes:
    """The exact bytes a poll stores for a sale document (its natural id is the sale and its
    ``last_modified_at``, so the same sale read twice is one message)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


# --- Listing (reads for reconciliation) -------------------------------------------------------------


def sales_domain(
    config: Any, *, modified_before: dt.datetime, modified_since: dt.datetime | None, after_id: int = 0
) -> list[Any]:
    """The sales a poll would hand over (``config.poll_states``, the company) last changed in
    ``[modified_since, modified_before]`` (naive UTC, Tryton's clock) with an id above ``after_id``."""
    domain: list[Any] = [
        ["state", "in", list(config.poll_states)],
        ["last_modified_at", "<=", modified_before],
    ]
    if modified_since is not None:
        domain.append(["last_modified_at", ">=", modified_since])
    if config.company is not None:
        domain.append(["company", "=", config.company])
    if after_id:
        domain.append(["id", ">", int(after_id)])
    return domain


def sales_page(
    client: TrytonClient,
    config: Any,
    *,
    modified_before: dt.datetime,
    modified_since: dt.datetime | None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """One keyset page of sales (``sales_domain``) by id, each as the document a poll hands over.
    The next page starts after the last id returned; an empty list is the end."""
    domain = sales_domain(
        config, modified_before=modified_before, modified_since=modified_since, after_id=after_id
    )
    rows = client.call("model.sale.sale.search_read", domain, 0, limit, [["id", "ASC"]], list(SALE_FIELDS))
    return [sale_document(row) for row in rows]


def sales_count(
    client: TrytonClient, config: Any, *, modified_before: dt.datetime, modified_since: dt.datetime | None
) -> int:
    """How many sales ``sales_page`` would go through (one count on the server)."""
    domain = sales_domain(config, modified_before=modified_before, modified_since=modified_since)
    return int(client.call("model.sale.sale.search_count", domain))


def sale_read(client: TrytonClient, sale_id: int) -> dict[str, Any] | None:
    """One sale as the document a poll hands over, whatever its state; None when Tryton has none."""
    rows = client.call(
        "model.sale.sale.search_read", [["id", "=", int(sale_id)]], 0, 1, None, list(SALE_FIELDS)
    )
    return sale_document(rows[0]) if rows else None


# --- Shared reads ----------------------------------------------------------------------------------------


def _money(payload: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise PermanentError(f"payload has no {name}")
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"payload {name} {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise PermanentError(f"payload {name} must be a non-negative number, got {value!r}")
    return amount


def _sale_domain(payload: Mapping[str, Any]) -> tuple[list[Any], str]:
    sale_id, number = payload.get("sale_id"), payload.get("sale_number")
    generic = payload.get("sale")
    if sale_id is None and number is None and generic is not None:
        if isinstance(generic, int) and not isinstance(generic, bool):
            sale_id = generic
        else:
            number = str(generic)
    if sale_id is not None:
        try:
            return [["id", "=", int(sale_id)]], f"sale id {sale_id}"
        except (TypeError, ValueError):
            raise PermanentError(f"payload sale_id {sale_id!r} is not an integer") from None
    if number:
        return [["number", "=", str(number)]], f"sale number {number!r}"
    raise PermanentError("payload names no sale (sale_id, sale_number or sale)")


_SALE_OP_FIELDS = [
    "number",
    "state",
    "reference",
    "description",
    "comment",
    "party",
    "currency.code",
    "shipments",
    "invoices",
    "carrier.party.name",
    "carrier.carrier_product",
    "lines.shipment_cost",
]


def sale_get(client: TrytonClient, payload: Mapping[str, Any]) -> dict[str, Any]:
    domain, label = _sale_domain(payload)
    rows = client.call("model.sale.sale.search_read", domain, 0, 2, None, _SALE_OP_FIELDS)
    if not rows:
        raise PermanentError(f"Tryton has no {label}")
    if len(rows) > 1:
        raise PermanentError(f"{label} matches several Tryton sales; send sale_id")
    return nest(rows[0])


def _shipments(client: TrytonClient, sale: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sale's customer shipments that are not cancelled, by id."""
    ids = sale.get("shipments") or []
    if not ids:
        return []
    rows = client.call(
        "model.stock.shipment.out.read",
        ids,
        ["number", "state", "reference", "cost", "cost_used", "cost_edit", "cost_currency_used.code"],
    )
    return sorted((nest(row) for row in rows if row["state"] != "cancelled"), key=lambda row: row["id"])


def _no_shipment(sale: Mapping[str, Any]) -> Exception:
    if sale["state"] == "confirmed":
        return TransientError(f"sale {sale['number']} is confirmed but not processed yet: no shipment")
    return PermanentError(f"sale {sale['number']} has no customer shipment")


# --- sale.link_shipment ----------------------------------------------------------------------------------


def _link_plan(
    client: TrytonClient, payload: Mapping[str, Any], mappings: MappingSet
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    if not payload.get("tms_shipment_id"):
        raise PermanentError("payload has no tms_shipment_id")
    writes = write_targets(
        mappings,
        {
            "tms_shipment_id": payload.get("tms_shipment_id"),
            "tracking_number": payload.get("tracking_number"),
        },
    )
    sale = sale_get(client, payload)
    shipments = _shipments(client, sale)
    if writes["shipment"] and not shipments:
        raise _no_shipment(sale)
    sale_changes = {k: v for k, v in writes["sale"].items() if sale.get(k) != v}
    shipment_changes = writes["shipment"]
    return sale, shipments, sale_changes, shipment_changes


def _link_result(
    sale: Mapping[str, Any], shipments: list[dict], payload: Mapping[str, Any]
) -> OperationResult:
    return OperationResult(
        external_id=str(sale["id"]),
        data={
            "sale_id": sale["id"],
            "sale_number": sale["number"],
            "shipment_ids": [s["id"] for s in shipments],
            "tms_shipment_id": payload.get("tms_shipment_id"),
            "tracking_number": payload.get("tracking_number"),
            "carrier": payload.get("carrier"),
            "tryton_carrier": (sale.get("carrier") or {}).get("party", {}).get("name"),
        },
    )


def link_shipment(client: TrytonClient, payload: Mapping[str, Any], mappings: MappingSet) -> OperationResult:
    """Write the TMS shipment id on the sale and the tracking number on its customer shipments.

    Targets come from the outbound field map (default ``sale.reference`` and ``shipment.reference``;
    Tryton shows the sale reference in the shipment's and invoice's origins). The TMS carrier name
    is echoed, not written: an 8.0 shipment has no free-text carrier field, and changing its
    ``carrier`` would re-price it. Idempotent.
    """
    sale, shipments, sale_changes, shipment_changes = _link_plan(client, payload, mappings)
    if sale_changes:
        client.call("model.sale.sale.write", [sale["id"]], sale_changes)
    stale = [s["id"] for s in shipments if any(s.get(k) != v for k, v in shipment_changes.items())]
    if stale:
        client.call("model.stock.shipment.out.write", stale, shipment_changes)
    return _link_result(sale, shipments, payload)


def link_shipment_lookup(
    client: TrytonClient, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    sale, shipments, sale_changes, shipment_changes = _link_plan(client, payload, mappings)
    if sale_changes or any(s.get(k) != v for s in shipments for k, v in shipment_changes.items()):
        return None
    return _link_result(sale, shipments, payload)


# --- shipment.record_cost --------------------------------------------------------------------------------


def _currency_id(client: TrytonClient, code: str) -> int:
    ids = client.call("model.currency.currency.search", [["code", "=", code]], 0, 1, None)
    if not ids:
        raise PermanentError(f"Tryton has no currency {code!r}")
    return ids[0]


def _cost_plan(client: TrytonClient, payload: Mapping[str, Any]) -> tuple[dict, dict, Decimal, str]:
    amount = _money(payload, "amount")
    assert amount is not None
    sale = sale_get(client, payload)
    currency = str(payload.get("currency") or sale["currency"]["code"]).upper()
    shipments = _shipments(client, sale)
    if not shipments:
        raise _no_shipment(sale)
    wanted = payload.get("shipment_id")
    if wanted is not None:
        matching = [s for s in shipments if str(s["id"]) == str(wanted)]
        if not matching:
            raise PermanentError(f"shipment {wanted} is not a customer shipment of sale {sale['number']}")
        shipment = matching[0]
    elif len(shipments) > 1:
        raise PermanentError(
            f"sale {sale['number']} has {len(shipments)} customer shipments; name one with shipment_id"
        )
    else:
        shipment = shipments[0]
    return sale, shipment, amount, currency


def _cost_recorded(shipment: Mapping[str, Any], amount: Decimal, currency: str) -> bool:
    cost = shipment.get("cost")
    return (
        bool(shipment.get("cost_edit"))
        and cost is not None
        and Decimal(cost) == amount
        and (shipment.get("cost_currency_used") or {}).get("code") == currency
    )


def _cost_result(sale: Mapping[str, Any], shipment: Mapping[str, Any]) -> OperationResult:
    return OperationResult(
        external_id=str(shipment["id"]),
        data={
            "sale_id": sale["id"],
            "shipment_id": shipment["id"],
            "shipment_number": shipment.get("number"),
            "cost": str(shipment["cost"]) if shipment.get("cost") is not None else None,
            "currency": (shipment.get("cost_currency_used") or {}).get("code"),
        },
    )


def record_cost(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Record the freight the TMS paid as the sale's customer shipment cost (``cost_edit`` on,
    ``cost_used``, ``cost_currency_used``; Tryton stores it in ``cost``). Idempotent."""
    sale, shipment, amount, currency = _cost_plan(client, payload)
    if not _cost_recorded(shipment, amount, currency):
        client.call(
            "model.stock.shipment.out.write",
            [shipment["id"]],
            {"cost_edit": True, "cost_used": amount, "cost_currency_used": _currency_id(client, currency)},
        )
        shipment = next(s for s in _shipments(client, sale) if s["id"] == shipment["id"])
    return _cost_result(sale, shipment)


def record_cost_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    sale, shipment, amount, currency = _cost_plan(client, payload)
    return _cost_result(sale, shipment) if _cost_recorded(shipment, amount, currency) else None


# --- invoice.post ----------------------------------------------------------------------------------------

_INVOICE_FIELDS = ["number", "state", "type", "total_amount", "currency.code", "party", "reference"]


def _sale_invoices(client: TrytonClient, sale: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids = sale.get("invoices") or []
    if not ids:
        return []
    rows = [nest(row) for row in client.call("model.account.invoice.read", ids, _INVOICE_FIELDS)]
    return sorted(
        (row for row in rows if row["type"] == "out" and row["state"] != "cancelled"), key=lambda r: r["id"]
    )


def _invoice_result(
    client: TrytonClient, invoices: list[dict[str, Any]], sale: Mapping[str, Any], freight: Decimal | None
) -> OperationResult:
    first = invoices[0]
    (read,) = invoices_read(client, [first["id"]])
    return OperationResult(
        external_id=str(first["id"]),
        data={
            "invoice_id": first["id"],
            "number": first["number"],
            "state": first["state"],
            "total_amount": str(first["total_amount"]),
            "untaxed_amount": read["untaxed_amount"],
            "tax_amount": read["tax_amount"],
            "currency": (first.get("currency") or {}).get("code"),
            "sale_id": sale["id"],
            "sale_number": sale["number"],
            "freight_amount": str(freight) if freight is not None else None,
            "invoice_ids": [invoice["id"] for invoice in invoices],
            "lines": read["lines"],
        },
    )


def _freight_set(
    client: TrytonClient, sale: Mapping[str, Any], invoice: Mapping[str, Any], amount: Decimal
) -> None:
    """Make the draft invoice's freight line (from the sale's freight line) total ``amount``; add one
    with the carrier's product when the invoice has none (a sale quoted without shipment cost)."""
    freight_origins = {f"sale.line,{line['id']}" for line in sale.get("lines") or [] if is_freight_line(line)}
    (full,) = client.call(
        "model.account.invoice.read", [invoice["id"]], ["lines", "party", "currency", "company"]
    )
    lines = client.call(
        "model.account.invoice.line.read", full["lines"], ["origin", "quantity", "unit_price"]
    )
    freight_lines = [line for line in lines if line.get("origin") in freight_origins]
    if freight_lines:
        line = freight_lines[0]
        quantity = Decimal(str(line["quantity"] or 1))
        unit_price = amount / quantity
        if line["unit_price"] is None or Decimal(line["unit_price"]) * quantity != amount:
            client.call("model.account.invoice.line.write", [line["id"]], {"unit_price": unit_price})
        return
    product_id = (sale.get("carrier") or {}).get("carrier_product")
    if not product_id:
        raise PermanentError(
            f"sale {sale['number']}'s invoice has no freight line and the sale has no carrier to take "
            "the freight product from"
        )
    (product,) = client.call(
        "model.product.product.read", [product_id], ["default_uom", "account_category.account_revenue"]
    )
    account = (product.get("account_category.") or {}).get("account_revenue")
    if not account:
        raise PermanentError(f"the carrier's freight product {product_id} has no revenue account")
    client.call(
        "model.account.invoice.line.create",
        [
            {
                "invoice": invoice["id"],
                "invoice_type": "out",
                "type": "line",
                "party": full["party"],
                "currency": full["currency"],
                "company": full["company"],
                "product": product_id,
                "description": "Freight",
                "quantity": 1.0,
                "unit": product["default_uom"],
                "unit_price": amount,
                "account": account,
            }
        ],
    )


def invoice_post(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Post the sale's customer invoice, first setting its freight line to ``freight_amount``.

    Idempotent: an invoice already posted is returned as it is (a posted invoice cannot change).
    Transient while the sale has no invoice yet (Tryton makes it when it processes the sale, or at
    shipment with invoice method "shipment").
    """
    freight = _money(payload, "freight_amount", required=False)
    sale = sale_get(client, payload)
    invoices = _sale_invoices(client, sale)
    if not invoices:
        raise TransientError(f"sale {sale['number']} has no customer invoice yet")
    open_invoices = [invoice for invoice in invoices if invoice["state"] in _OPEN_INVOICE]
    if open_invoices:
        currency = payload.get("currency")
        if freight is not None:
            target = open_invoices[0]
            if currency and str(currency).upper() != (target.get("currency") or {}).get("code"):
                raise PermanentError(
                    f"freight in {currency} cannot go on invoice in {target['currency']['code']}"
                )
            _freight_set(client, sale, target, freight)
        # post validates a draft itself; fresh_session: the client logs in again on a 401.
        client.call("model.account.invoice.post", [invoice["id"] for invoice in open_invoices])
        invoices = _sale_invoices(client, sale)
    return _invoice_result(client, invoices, sale, freight)


def invoice_post_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    sale = sale_get(client, payload)
    invoices = _sale_invoices(client, sale)
    if not invoices or any(invoice["state"] in _OPEN_INVOICE for invoice in invoices):
        return None
    return _invoice_result(client, invoices, sale, _money(payload, "freight_amount", required=False))


# --- invoice.recreate ------------------------------------------------------------------------------------


def _recreate_plan(client: TrytonClient, payload: Mapping[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """The sale, the cancelled invoice to bill again, and whether Tryton recreated it already."""
    cancelled_id = payload.get("invoice_id")
    try:
        cancelled_id = int(cancelled_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PermanentError(f"payload invoice_id {cancelled_id!r} is not an invoice id") from None
    domain, label = _sale_domain(payload)
    rows = client.call(
        "model.sale.sale.search_read", domain, 0, 2, None, [*_SALE_OP_FIELDS, "invoices_recreated"]
    )
    if len(rows) != 1:
        raise PermanentError(f"Tryton has no single {label}")
    sale = nest(rows[0])
    if cancelled_id not in (sale.get("invoices") or []):
        raise PermanentError(f"invoice {cancelled_id} is not an invoice of sale {sale['number']}")
    (state,) = client.call("model.account.invoice.read", [cancelled_id], ["state"])
    if state["state"] != "cancelled":
        raise PermanentError(
            f"invoice {cancelled_id} is {state['state']}, not cancelled: nothing to bill again"
        )
    return sale, cancelled_id, cancelled_id in (sale.get("invoices_recreated") or [])


def invoice_recreate(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Bill a sale again for a customer invoice cancelled in Tryton, then post the new invoice.

    Tryton's own way: the sale's "Handle Invoice Exception" wizard with the cancelled invoice to
    recreate (the sale makes a new draft invoice of its lines), then ``invoice.post`` of the sale
    (``freight_amount`` set on its freight line first). The answer is ``invoice.post``'s for the new
    invoice, with ``recreates`` naming the cancelled one.

    Idempotent: an invoice recreated already is not recreated again (Tryton records it on the sale),
    and the post is ``invoice.post``'s, which leaves a posted invoice as it is.
    """
    sale, cancelled_id, recreated = _recreate_plan(client, payload)
    if not recreated:
        context = {"active_model": "sale.sale", "active_id": sale["id"], "active_ids": [sale["id"]]}
        session_id, _start, _end = client.call("wizard.sale.handle.invoice.exception.create", context=context)
        try:
            client.call(
                "wizard.sale.handle.invoice.exception.execute",
                session_id,
                {
                    "ask": {
                        "recreate_invoices": [cancelled_id],
                        "ignore_invoices": [],
                        "domain_invoices": [cancelled_id],
                    }
                },
                "handle",
                context=context,
            )
        finally:
            client.call("wizard.sale.handle.invoice.exception.delete", session_id, context=context)
    result = invoice_post(client, {**payload, "sale_id": sale["id"]})
    return OperationResult(external_id=result.external_id, data={**result.data, "recreates": cancelled_id})


def invoice_recreate_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    sale, cancelled_id, recreated = _recreate_plan(client, payload)
    if not recreated:
        return None
    found = invoice_post_lookup(client, {**payload, "sale_id": sale["id"]})
    if found is None:
        return None
    return OperationResult(external_id=found.external_id, data={**found.data, "recreates": cancelled_id})


# --- invoice.credit --------------------------------------------------------------------------------------

_LINE_FIELDS = ["origin", "product.code", "quantity", "unit_price", "amount", "type"]


def _credit_find(client: TrytonClient, reference: str, party: int) -> dict[str, Any] | None:
    rows = client.call(
        "model.account.invoice.search_read",
        [
            ["type", "=", "out"],
            ["reference", "=", reference],
            ["party", "=", party],
            ["state", "!=", "cancelled"],
        ],
        0,
        2,
        [["id", "ASC"]],
        _INVOICE_FIELDS,
    )
    return nest(rows[0]) if rows else None


def _credit_result(credit: Mapping[str, Any], original: Mapping[str, Any], reference: str) -> OperationResult:
    return OperationResult(
        external_id=str(credit["id"]),
        data={
            "credit_note_id": credit["id"],
            "number": credit["number"],
            "state": credit["state"],
            "total_amount": str(credit["total_amount"]),
            "currency": (credit.get("currency") or {}).get("code"),
            "credited_invoice_id": original["id"],
            "credited_invoice_number": original["number"],
            "adjustment_reference": reference,
        },
    )


def _original(client: TrytonClient, payload: Mapping[str, Any]) -> dict[str, Any]:
    invoice_id = payload.get("invoice_id")
    if invoice_id is None or invoice_id == "":
        raise PermanentError("payload has no invoice_id")
    try:
        invoice_id = int(invoice_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PermanentError(f"payload invoice_id {invoice_id!r} is not an invoice id") from None
    rows = client.call(
        "model.account.invoice.search_read",
        [["id", "=", invoice_id]],
        0,
        1,
        None,
        [*_INVOICE_FIELDS, "lines", "sales"],
    )
    if not rows:
        raise PermanentError(f"Tryton has no invoice {invoice_id} (payload invoice_id)")
    return nest(rows[0])


def _credit_targets(
    client: TrytonClient, original: Mapping[str, Any], payload: Mapping[str, Any]
) -> dict[int, tuple[Decimal, Decimal | None]] | None:
    """Which original lines to credit and how: {original line id: (quantity, unit price or None to
    keep the line's)}. None: credit the whole invoice."""
    amount = _money(payload, "amount", required=False)
    wanted = payload.get("lines")
    if amount is None and not wanted:
        return None
    if amount is not None and wanted:
        raise PermanentError("payload has both amount and lines; send one")
    lines = [
        nest(line) for line in client.call("model.account.invoice.line.read", original["lines"], _LINE_FIELDS)
    ]
    lines = [line for line in lines if line["type"] == "line"]
    if amount is not None:
        wanted = (
            [{"sku": payload["sku"], "amount": amount}]
            if payload.get("sku")
            else [{"freight": True, "amount": amount}]
        )
    targets: dict[int, tuple[Decimal, Decimal | None]] = {}
    freight_ids = _freight_invoice_lines(client, lines)
    for index, item in enumerate(wanted or []):
        if not isinstance(item, Mapping):
            raise PermanentError(f"payload lines.{index} must be an object with sku and amount or quantity")
        if item.get("freight"):
            candidates = [line for line in lines if line["id"] in freight_ids]
            label = "a freight line"
        else:
            sku = str(item.get("sku") or "")
            candidates = [line for line in lines if (line.get("product") or {}).get("code") == sku]
            label = f"a line for {sku!r}"
        candidates = [line for line in candidates if line["id"] not in targets]
        if not candidates:
            raise PermanentError(
                f"invoice {original['number']} has no {label} to credit (payload lines.{index})"
            )
        line = candidates[0]
        item_amount = _money(item, "amount", required=False)
        quantity = _money(item, "quantity", required=False)
        if (item_amount is None) == (quantity is None):
            raise PermanentError(f"payload lines.{index}: send exactly one of amount or quantity")
        if item_amount is not None:
            if item_amount <= 0 or item_amount > Decimal(line["amount"]):
                raise PermanentError(
                    f"credit of {item_amount} on {label} must be above 0 and at most its {line['amount']}"
                )
            targets[line["id"]] = (Decimal(-1), item_amount)
        else:
            assert quantity is not None
            if quantity <= 0 or quantity > Decimal(str(line["quantity"])):
                raise PermanentError(
                    f"credit of {quantity} units on {label} must be above 0 and at most its {line['quantity']}"
                )
            targets[line["id"]] = (-quantity, None)
    return targets


def _freight_invoice_lines(client: TrytonClient, lines: list[dict[str, Any]]) -> set[int]:
    """Invoice lines that invoice a sale's freight line (their origin sale line has shipment_cost)."""
    sale_lines = {
        int(line["origin"].split(",")[1]): line["id"]
        for line in lines
        if isinstance(line.get("origin"), str) and line["origin"].startswith("sale.line,")
    }
    if not sale_lines:
        return set()
    rows = client.call("model.sale.line.read", list(sale_lines), ["shipment_cost"])
    return {sale_lines[row["id"]] for row in rows if is_freight_line(row)}


def _credit_draft(client: TrytonClient, original: Mapping[str, Any], reference: str) -> int:
    """A draft credit note of ``original`` carrying ``reference``: adopted when an earlier attempt
    created it (with or without the reference written), else made by the credit wizard."""
    origins = [f"account.invoice.line,{line_id}" for line_id in original["lines"]]
    orphans = client.call(
        "model.account.invoice.search",
        [["state", "=", "draft"], ["reference", "=", None], ["lines.origin", "in", origins]],
        0,
        1,
        [["id", "ASC"]],
    )
    if orphans:
        credit_id = orphans[0]
    else:
        wizard_context = {
            "active_model": "account.invoice",
            "active_id": original["id"],
            "active_ids": [original["id"]],
        }
        session_id, _start, _end = client.call("wizard.account.invoice.credit.create", context=wizard_context)
        try:
            outcome = client.call(
                "wizard.account.invoice.credit.execute",
                session_id,
                {"start": {"with_refund": False, "invoice_date": None}},
                "credit",
                context=wizard_context,
            )
        finally:
            client.call("wizard.account.invoice.credit.delete", session_id, context=wizard_context)
        try:
            (credit_id,) = outcome["actions"][0][1]["res_id"]
        except (KeyError, IndexError, TypeError, ValueError):
            raise PermanentError(f"the credit wizard answered unexpectedly: {str(outcome)[:300]}") from None
    # Written at once: from here on lookup and a re-run find this credit note by its reference.
    client.call(
        "model.account.invoice.write",
        [credit_id],
        {"reference": reference, "description": f"Credit {reference} on {original['number']}"},
    )
    return credit_id


def _credit_shape(
    client: TrytonClient, credit_id: int, targets: dict[int, tuple[Decimal, Decimal | None]] | None
) -> None:
    """Make the draft credit note's lines match ``targets`` (keyed by the original line each credits)."""
    if targets is None:
        return
    (credit,) = client.call("model.account.invoice.read", [credit_id], ["lines"])
    lines = client.call(
        "model.account.invoice.line.read", credit["lines"], ["origin", "quantity", "unit_price"]
    )
    drop = []
    for line in lines:
        origin = line.get("origin") or ""
        original_id = int(origin.split(",")[1]) if origin.startswith("account.invoice.line,") else None
        if original_id not in targets:
            drop.append(line["id"])
            continue
        quantity, unit_price = targets[original_id]
        changes: dict[str, Any] = {}
        if Decimal(str(line["quantity"])) != quantity:
            changes["quantity"] = float(quantity)
        if unit_price is not None and Decimal(line["unit_price"]) != unit_price:
            changes["unit_price"] = unit_price
        if changes:
            client.call("model.account.invoice.line.write", [line["id"]], changes)
    if drop:
        client.call("model.account.invoice.line.delete", drop)


def invoice_credit(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Credit a posted customer invoice with Tryton's credit wizard, then post the credit note.

    ``amount`` credits that much on the invoice's freight line (or on the line of ``sku``);
    ``lines`` = [{sku, amount | quantity}] credits per line; neither credits the whole invoice. The
    wizard copies every line negated; the copy is then cut down to the requested lines, so the
    credit note keeps its link to the original (each line's origin is the line it credits).
    The credit note's ``reference`` is ``adjustment_reference``: lookup and re-runs find it by that.
    """
    reference = str(payload.get("adjustment_reference") or "").strip()
    if not reference:
        raise PermanentError("payload has no adjustment_reference")
    original = _original(client, payload)
    existing = _credit_find(client, reference, original["party"])
    if existing is not None and existing["state"] in _DONE_INVOICE:
        return _credit_result(existing, original, reference)
    if original["state"] not in _DONE_INVOICE:
        raise PermanentError(
            f"invoice {original['id']} is {original['state']}; only posted invoices are credited"
        )
    targets = _credit_targets(client, original, payload)
    credit_id = existing["id"] if existing is not None else _credit_draft(client, original, reference)
    _credit_shape(client, credit_id, targets)
    client.call("model.account.invoice.post", [credit_id])
    credit = _credit_find(client, reference, original["party"])
    assert credit is not None
    return _credit_result(credit, original, reference)


def invoice_credit_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    reference = str(payload.get("adjustment_reference") or "").strip()
    if not reference:
        raise PermanentError("payload has no adjustment_reference")
    original = _original(client, payload)
    existing = _credit_find(client, reference, original["party"])
    if existing is None or existing["state"] not in _DONE_INVOICE:
        return None
    return _credit_result(existing, original, reference)


# --- invoice.debit ---------------------------------------------------------------------------------------

# Invoice header fields a debit note takes from the invoice it corrects (those Tryton's own credit
# copies: Invoice._credit), so it is billed, booked and paid like the original.
_DEBIT_HEADER = (
    "company",
    "tax_identifier",
    "party",
    "party_tax_identifier",
    "invoice_address",
    "currency",
    "journal",
    "account",
    "payment_term",
)
_DEBIT_LINE_FIELDS = [*_LINE_FIELDS, "unit", "account", "taxes", "description"]


def _debit_amount(payload: Mapping[str, Any]) -> Decimal:
    amount = _money(payload, "amount")
    assert amount is not None
    if amount <= 0:
        raise PermanentError(f"payload amount must be above 0 for a debit note, got {payload['amount']!r}")
    return amount


def _debit_description(reference: str, original: Mapping[str, Any]) -> str:
    return f"Debit {reference} on {original['number']}"


def _debit_find(client: TrytonClient, reference: str, original: Mapping[str, Any]) -> dict[str, Any] | None:
    """The debit note of ``reference`` on ``original``: found by its reference and party, as credit
    notes are, and by the description that names both, so neither a credit note with the same
    reference nor a sale's own invoice (which carries the sale's reference) is taken for it."""
    rows = client.call(
        "model.account.invoice.search_read",
        [
            ["type", "=", "out"],
            ["reference", "=", reference],
            ["party", "=", original["party"]],
            ["description", "=", _debit_description(reference, original)],
            ["state", "!=", "cancelled"],
        ],
        0,
        2,
        [["id", "ASC"]],
        _INVOICE_FIELDS,
    )
    return nest(rows[0]) if rows else None


def _debit_result(debit: Mapping[str, Any], original: Mapping[str, Any], reference: str) -> OperationResult:
    return OperationResult(
        external_id=str(debit["id"]),
        data={
            "debit_note_id": debit["id"],
            "kind": "debit_note",
            "number": debit["number"],
            "state": debit["state"],
            "total_amount": str(debit["total_amount"]),
            "currency": (debit.get("currency") or {}).get("code"),
            "corrects": {"invoice_id": original["id"], "number": original["number"]},
            "adjustment_reference": reference,
        },
    )


def _debit_line(
    client: TrytonClient, original: Mapping[str, Any], payload: Mapping[str, Any], amount: Decimal
) -> dict[str, Any]:
    """The one line of the debit note: ``amount`` on the original's freight line (or the line of
    ``sku``), with its product, unit, account and taxes and that line as its origin (Tryton then
    lists the original under the debit note's ``origin_invoices``). When the original has no such
    line, the line is made from the product: the carrier's freight product of the invoice's sale,
    or the product with code ``sku``."""
    lines = [
        nest(line)
        for line in client.call("model.account.invoice.line.read", original["lines"], _DEBIT_LINE_FIELDS)
    ]
    lines = [line for line in lines if line["type"] == "line" and line.get("product")]
    sku = str(payload.get("sku") or "").strip()
    if sku:
        candidates = [line for line in lines if line["product"]["code"] == sku]
        product_id = None
    else:
        freight_ids = _freight_invoice_lines(client, lines)
        product_id = _carrier_product(client, original)
        candidates = [
            line for line in lines if line["id"] in freight_ids or line["product"]["id"] == product_id
        ]
    values: dict[str, Any] = {"type": "line", "quantity": 1.0, "unit_price": amount}
    if candidates:
        line = candidates[0]
        return {
            **values,
            "product": line["product"]["id"],
            "unit": line["unit"],
            "account": line["account"],
            "description": line.get("description") or "",
            "taxes": [["add", line.get("taxes") or []]],
            "origin": f"account.invoice.line,{line['id']}",
        }
    if sku:
        found = client.call("model.product.product.search", [["code", "=", sku]], 0, 2, None)
        if len(found) != 1:
            what = "no product" if not found else "several products"
            raise PermanentError(f"payload sku {sku!r}: Tryton has {what} with that code")
        product_id = found[0]
    if not product_id:
        raise PermanentError(
            f"invoice {original['number']} has no freight line and its sale no carrier to take the "
            "freight product from; send sku"
        )
    (product,) = client.call(
        "model.product.product.read",
        [product_id],
        [
            "rec_name",
            "default_uom",
            "account_category.account_revenue",
            "account_category.customer_taxes_used",
        ],
    )
    category = product.get("account_category.") or {}
    account = category.get("account_revenue")
    if not account:
        raise PermanentError(f"product {product['rec_name']} has no revenue account to book a debit note on")
    return {
        **values,
        "product": product_id,
        "unit": product["default_uom"],
        "account": account,
        "description": product["rec_name"],
        "taxes": [["add", category.get("customer_taxes_used") or []]],
    }


def _carrier_product(client: TrytonClient, original: Mapping[str, Any]) -> int | None:
    """The freight product of the carrier on the sale the invoice came from, if any."""
    sale_ids = original.get("sales") or []
    if not sale_ids:
        return None
    rows = client.call("model.sale.sale.read", sale_ids, ["carrier.carrier_product"])
    products = [(row.get("carrier.") or {}).get("carrier_product") for row in rows]
    return next((product for product in products if product), None)


def _debit_create(
    client: TrytonClient, original: Mapping[str, Any], reference: str, line: dict[str, Any]
) -> int:
    """A draft debit note made in one call (header, reference and its line in one transaction), so
    an interrupted attempt leaves either nothing or a draft that lookup and a re-run find."""
    (header,) = client.call("model.account.invoice.read", [original["id"]], list(_DEBIT_HEADER))
    common = {"party": header["party"], "currency": header["currency"], "company": header["company"]}
    (debit_id,) = client.call(
        "model.account.invoice.create",
        [
            {
                **{name: header[name] for name in _DEBIT_HEADER},
                "type": "out",
                "reference": reference,
                "description": _debit_description(reference, original),
                "lines": [["create", [{**line, **common, "invoice_type": "out"}]]],
            }
        ],
    )
    return debit_id


def _debit_shape(client: TrytonClient, debit_id: int, line: dict[str, Any]) -> None:
    """Make a draft debit note left by an earlier attempt hold exactly the planned line."""
    (debit,) = client.call(
        "model.account.invoice.read", [debit_id], ["lines", "party", "currency", "company"]
    )
    current = client.call(
        "model.account.invoice.line.read", debit["lines"], ["product", "quantity", "unit_price"]
    )
    keep = next((row for row in current if row["product"] == line["product"]), None)
    drop = [row["id"] for row in current if row is not keep]
    if drop:
        client.call("model.account.invoice.line.delete", drop)
    if keep is None:
        common = {"party": debit["party"], "currency": debit["currency"], "company": debit["company"]}
        client.call(
            "model.account.invoice.line.create",
            [{**line, **common, "invoice": debit_id, "invoice_type": "out"}],
        )
    elif Decimal(str(keep["quantity"])) != 1 or Decimal(keep["unit_price"] or 0) != line["unit_price"]:
        client.call(
            "model.account.invoice.line.write",
            [keep["id"]],
            {"quantity": 1.0, "unit_price": line["unit_price"]},
        )


def invoice_debit(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Bill an increase found after a customer invoice was posted as a debit note, and post it.

    The debit note is a customer invoice (Tryton has no separate debit note type; its positive total
    takes the invoice sequence) with one line: ``amount`` on the freight product, or on ``sku``
    (see ``_debit_line``). It has the original's party, addresses, currency, payment term, journal
    and receivable account; its ``reference`` is ``adjustment_reference`` and its description names
    the original invoice: lookup and re-runs find it by that reference, as credit notes are found.

    Idempotent: a posted debit note with the reference is returned as it is (even if this payload's
    amount differs: a posted invoice cannot change); a draft one left by an interrupted attempt is
    adopted, made to hold the requested line and posted.
    """
    reference = str(payload.get("adjustment_reference") or "").strip()
    if not reference:
        raise PermanentError("payload has no adjustment_reference")
    amount = _debit_amount(payload)
    original = _original(client, payload)
    existing = _debit_find(client, reference, original)
    if existing is not None and existing["state"] in _DONE_INVOICE:
        return _debit_result(existing, original, reference)
    if original["type"] != "out":
        raise PermanentError(
            f"payload invoice_id {original['id']} is a supplier invoice; debit notes bill customers"
        )
    if original["state"] not in _DONE_INVOICE:
        raise PermanentError(
            f"payload invoice_id {original['id']} is {original['state']}; only posted invoices take a debit note"
        )
    line = _debit_line(client, original, payload, amount)
    if existing is None:
        debit_id = _debit_create(client, original, reference, line)
    else:
        debit_id = existing["id"]
        _debit_shape(client, debit_id, line)
    client.call("model.account.invoice.post", [debit_id])
    debit = _debit_find(client, reference, original)
    assert debit is not None
    return _debit_result(debit, original, reference)


def invoice_debit_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    reference = str(payload.get("adjustment_reference") or "").strip()
    if not reference:
        raise PermanentError("payload has no adjustment_reference")
    original = _original(client, payload)
    existing = _debit_find(client, reference, original)
    if existing is None or existing["state"] not in _DONE_INVOICE:
        return None
    return _debit_result(existing, original, reference)


# --- Master data reads (reconciliation) ------------------------------------------------------------------

PARTY_FIELDS = ["code", "name", "email", "phone", "active"]
PRODUCT_FIELDS = ["code", "name", "active"]
ADDRESS_FIELDS = [*_ADDRESS, "party"]


def parties_read(client: TrytonClient, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Parties by id (inactive ones too); ids Tryton does not have are absent. One call; only reads."""
    if not ids:
        return {}
    rows = client.call(
        "model.party.party.search_read",
        [["id", "in", ids], ["active", "in", [True, False]]],
        0,
        None,
        None,
        PARTY_FIELDS,
    )
    return {row["id"]: nest(row) for row in rows}


def products_by_code(client: TrytonClient, codes: list[str]) -> dict[str, dict[str, Any]]:
    """Product variants by code (inactive ones too). One call; only reads."""
    if not codes:
        return {}
    rows = client.call(
        "model.product.product.search_read",
        [["code", "in", codes], ["active", "in", [True, False]]],
        0,
        None,
        [["id", "ASC"]],
        PRODUCT_FIELDS,
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(row["code"], row)
    return found


def addresses_read(client: TrytonClient, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Party addresses by id (inactive ones too). One call; only reads."""
    if not ids:
        return {}
    rows = client.call(
        "model.party.address.search_read",
        [["id", "in", ids], ["active", "in", [True, False]]],
        0,
        None,
        None,
        ADDRESS_FIELDS,
    )
    return {row["id"]: nest(row) for row in rows}


# --- Reading invoices (reconciliation) ------------------------------------------------------------------

INVOICE_READ_FIELDS = [
    "number",
    "state",
    "type",
    "reference",
    "currency.code",
    "untaxed_amount",
    "tax_amount",
    "total_amount",
    "lines",
    "sales",
]
_READ_LINE_FIELDS = ["origin", "type", "product.code", "description", "quantity", "unit_price", "amount"]
FREIGHT_KEY = "freight"  # the key of a freight line in invoice_lines_normalize


def _decimal_text(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)))


def invoice_lines_normalize(
    lines: list[Mapping[str, Any]], *, freight_ids: set[int], freight_products: set[int]
) -> list[dict[str, Any]]:
    """Tryton invoice line rows (nested reads) to the shape the hub compares, in line order; only
    product lines (``type`` line). Pure.

    Each line: ``key`` (``freight`` for a freight line, else the product code, else the
    description), ``sku``, ``description``, ``quantity``, ``unit_price``, ``amount`` (decimal
    strings) and ``freight``. A line is freight when it invoices a sale's freight line
    (``freight_ids``) or, having no sale line as origin, is for the sale carrier's product
    (``freight_products``: the line ``invoice.post`` adds to an invoice without one).
    """
    out = []
    for line in lines:
        if line.get("type", "line") != "line":
            continue
        product = line.get("product") or {}
        origin = line.get("origin") or ""
        freight = line["id"] in freight_ids or (
            not str(origin).startswith("sale.line,") and product.get("id") in freight_products
        )
        sku = product.get("code") or None
        description = str(line.get("description") or "")
        out.append(
            {
                "key": FREIGHT_KEY if freight else (sku or description),
                "sku": sku,
                "description": description,
                "quantity": _decimal_text(line.get("quantity")),
                "unit_price": _decimal_text(line.get("unit_price")),
                "amount": _decimal_text(line.get("amount")),
                "freight": freight,
            }
        )
    return out


def invoices_read(client: TrytonClient, ids: list[int]) -> list[dict[str, Any]]:
    """Invoices by id, in any state (cancelled included), each with its lines normalised
    (``invoice_lines_normalize``); ids Tryton does not have are left out. Reads only, four calls
    whatever the number of ids (so a caller pages through ids in bounded batches).

    Each: ``id``, ``number``, ``state``, ``type``, ``reference``, ``currency``, ``untaxed_amount``,
    ``tax_amount``, ``total_amount`` (decimal strings), ``sale_ids`` and ``lines``.
    """
    if not ids:
        return []
    rows = [
        nest(row)
        for row in client.call(
            "model.account.invoice.search_read",
            [["id", "in", [int(i) for i in ids]]],
            0,
            None,
            [["id", "ASC"]],
            INVOICE_READ_FIELDS,
        )
    ]
    line_ids = [line_id for row in rows for line_id in row.get("lines") or []]
    lines = (
        [nest(line) for line in client.call("model.account.invoice.line.read", line_ids, _READ_LINE_FIELDS)]
        if line_ids
        else []
    )
    freight_ids = _freight_invoice_lines(client, lines)
    sale_ids = sorted({sale_id for row in rows for sale_id in row.get("sales") or []})
    carrier_products = {}
    if sale_ids:
        for sale in client.call("model.sale.sale.read", sale_ids, ["carrier.carrier_product"]):
            carrier_products[sale["id"]] = (sale.get("carrier.") or {}).get("carrier_product")
    by_id = {line["id"]: line for line in lines}
    out = []
    for row in rows:
        products = {carrier_products.get(sale_id) for sale_id in row.get("sales") or []} - {None}
        out.append(
            {
                "id": row["id"],
                "number": row.get("number"),
                "state": row["state"],
                "type": row["type"],
                "reference": row.get("reference"),
                "currency": (row.get("currency") or {}).get("code"),
                "untaxed_amount": _decimal_text(row.get("untaxed_amount")),
                "tax_amount": _decimal_text(row.get("tax_amount")),
                "total_amount": _decimal_text(row.get("total_amount")),
                "sale_ids": list(row.get("sales") or []),
                "lines": invoice_lines_normalize(
                    [by_id[i] for i in row.get("lines") or [] if i in by_id],
                    freight_ids=freight_ids,
                    freight_products=products,
                ),
            }
        )
    return out


def sales_invoices(client: TrytonClient, sale_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The customer invoices (type out, any state) of each sale, by sale id, oldest first: ``id``,
    ``number``, ``state``, ``total_amount``, ``currency``. Sales Tryton does not have are left
    out. Reads only, two calls whatever the number of sales."""
    if not sale_ids:
        return {}
    sales = client.call(
        "model.sale.sale.search_read",
        [["id", "in", [int(i) for i in sale_ids]]],
        0,
        None,
        [["id", "ASC"]],
        ["invoices"],
    )
    invoice_ids = sorted({i for sale in sales for i in sale.get("invoices") or []})
    invoices = {}
    if invoice_ids:
        for row in client.call(
            "model.account.invoice.read",
            invoice_ids,
            ["number", "state", "type", "total_amount", "currency.code"],
        ):
            row = nest(row)
            if row["type"] == "out":
                invoices[row["id"]] = {
                    "id": row["id"],
                    "number": row.get("number"),
                    "state": row["state"],
                    "total_amount": _decimal_text(row.get("total_amount")),
                    "currency": (row.get("currency") or {}).get("code"),
                }
    return {
        sale["id"]: [invoices[i] for i in sorted(sale.get("invoices") or []) if i in invoices]
        for sale in sales
    }
