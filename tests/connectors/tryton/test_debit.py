"""`invoice.debit` against the real Tryton 8.0 peer: a freight increase after posting becomes one posted
debit note (a customer invoice for just the adjustment, linked to the original), counted in Tryton
across repeats, a leftover draft and a crash between the write and the ledger's record."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from connectors import registry
from connectors.errors import PermanentError
from connectors.tryton import operations
from connectors.tryton.client import TrytonClient
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.ledger.services import Begun, side_effect_begin, side_effect_lease_expire, side_effect_perform
from hub.mappings.context import connection_context
from tests.connectors.tryton.peer import config_data, sale_confirmed

pytestmark = pytest.mark.peer

_HEADER = ["party", "invoice_address", "currency", "payment_term", "journal", "account", "company"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def posted_invoice(connector, ctx, tryton: TrytonClient, **sale_kwargs) -> int:
    """A posted customer invoice of a new sale (with a unique sale reference)."""
    sale = sale_confirmed(tryton, reference=unique("SO-DEBIT"), **sale_kwargs)
    return int(connector.operate("invoice.post", {"sale_id": sale["id"]}, ctx).external_id)


def notes(tryton: TrytonClient, reference: str) -> int:
    """How many invoices in Tryton carry ``reference`` (any type and state)."""
    return tryton.call("model.account.invoice.search_count", [["reference", "=", reference]])


def invoice_read(tryton: TrytonClient, invoice_id: int) -> dict:
    (row,) = tryton.call(
        "model.account.invoice.read",
        [invoice_id],
        [
            *_HEADER,
            "type",
            "state",
            "number",
            "reference",
            "description",
            "total_amount",
            "lines",
            "origin_invoices",
        ],
    )
    return row


def lines_of(tryton: TrytonClient, invoice: dict) -> list[tuple]:
    rows = tryton.call(
        "model.account.invoice.line.read", invoice["lines"], ["product.code", "quantity", "amount", "origin"]
    )
    return [(row["product."]["code"], row["quantity"], row["amount"], row["origin"]) for row in rows]


def test_a_debit_of_12_50_makes_one_posted_debit_note_for_the_invoices_party(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton, lines=[("WIDGET", 5)])  # 100 + freight 15
    original = invoice_read(tryton, invoice_id)
    payload = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "12.50"}
    assert connector.lookup("invoice.debit", payload, ctx) is None

    result = connector.operate("invoice.debit", payload, ctx)

    note = invoice_read(tryton, int(result.external_id))
    assert (note["type"], note["state"], note["total_amount"]) == ("out", "posted", Decimal("12.50"))
    assert {name: note[name] for name in _HEADER} == {name: original[name] for name in _HEADER}
    assert note["reference"] == payload["adjustment_reference"]
    assert original["number"] in note["description"]
    assert note["origin_invoices"] == [invoice_id]  # its line's origin is the original's freight line
    ((code, quantity, amount, origin),) = lines_of(tryton, note)  # only the adjustment, no copy
    assert (code, quantity, amount) == ("FREIGHT", 1.0, Decimal("12.50"))
    assert origin.startswith("account.invoice.line,")
    assert result.data == {
        "debit_note_id": note["id"],
        "kind": "debit_note",
        "number": note["number"],
        "state": "posted",
        "total_amount": "12.50",
        "currency": "USD",
        "corrects": {"invoice_id": invoice_id, "number": original["number"]},
        "adjustment_reference": payload["adjustment_reference"],
    }
    assert note["number"] != original["number"]
    after = invoice_read(tryton, invoice_id)  # the original stays as it was
    assert (after["state"], after["total_amount"]) == ("posted", original["total_amount"])
    assert connector.lookup("invoice.debit", payload, ctx) == result


def test_debiting_twice_leaves_one_debit_note(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton)
    payload = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "12.50"}

    first = connector.operate("invoice.debit", payload, ctx)
    second = connector.operate("invoice.debit", payload, ctx)

    assert second == first
    assert notes(tryton, payload["adjustment_reference"]) == 1


def test_a_credit_note_with_the_same_reference_is_not_taken_for_the_debit_note(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton)
    reference = unique("ADJ")
    connector.operate(
        "invoice.credit", {"invoice_id": invoice_id, "adjustment_reference": reference, "amount": "2"}, ctx
    )
    payload = {"invoice_id": invoice_id, "adjustment_reference": reference, "amount": "3"}
    assert connector.lookup("invoice.debit", payload, ctx) is None

    result = connector.operate("invoice.debit", payload, ctx)

    assert result.data["total_amount"] == "3.00"
    assert notes(tryton, reference) == 2  # the credit note and the debit note


def test_a_debit_on_a_sku_goes_on_that_product(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton, lines=[("WIDGET", 2)])
    on_the_invoice = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "4"}
    not_on_it = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "7.25"}

    widget = connector.operate("invoice.debit", {**on_the_invoice, "sku": "WIDGET"}, ctx)
    cable = connector.operate("invoice.debit", {**not_on_it, "sku": "CABLE"}, ctx)

    ((code, quantity, amount, origin),) = lines_of(tryton, invoice_read(tryton, int(widget.external_id)))
    assert (code, quantity, amount) == ("WIDGET", 1.0, Decimal("4.00"))
    assert origin.startswith("account.invoice.line,")
    ((code, quantity, amount, origin),) = lines_of(tryton, invoice_read(tryton, int(cable.external_id)))
    assert (code, quantity, amount, origin) == ("CABLE", 1.0, Decimal("7.25"), None)  # made from the product


def test_an_invoice_without_freight_line_takes_the_carriers_freight_product(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton, lines=[("WIDGET", 1)], shipment_cost=False)
    assert [line[0] for line in lines_of(tryton, invoice_read(tryton, invoice_id))] == ["WIDGET"]
    payload = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "9"}

    result = connector.operate("invoice.debit", payload, ctx)

    ((code, quantity, amount, _origin),) = lines_of(tryton, invoice_read(tryton, int(result.external_id)))
    assert (code, quantity, amount) == ("FREIGHT", 1.0, Decimal("9.00"))
    assert result.data["state"] == "posted"


def test_a_debit_is_refused_for_no_increase_an_unknown_or_unposted_invoice(connector, ctx, tryton):
    posted_id = posted_invoice(connector, ctx, tryton)
    (draft_id,) = sale_confirmed(tryton, reference=unique("SO-DEBIT"))["invoices"]
    reference = unique("ADJ")

    for amount in ("0", "-3", None):
        with pytest.raises(PermanentError, match="amount"):
            connector.operate(
                "invoice.debit",
                {"invoice_id": posted_id, "adjustment_reference": reference, "amount": amount},
                ctx,
            )
    with pytest.raises(PermanentError, match=r"no invoice 999999999 \(payload invoice_id\)"):
        connector.operate(
            "invoice.debit", {"invoice_id": 999999999, "adjustment_reference": reference, "amount": "1"}, ctx
        )
    with pytest.raises(PermanentError, match=f"payload invoice_id {draft_id} is draft; only posted invoices"):
        connector.operate(
            "invoice.debit", {"invoice_id": draft_id, "adjustment_reference": reference, "amount": "1"}, ctx
        )
    with pytest.raises(PermanentError, match="adjustment_reference"):
        connector.operate("invoice.debit", {"invoice_id": posted_id, "amount": "1"}, ctx)

    assert notes(tryton, reference) == 0
    assert invoice_read(tryton, draft_id)["state"] == "draft"


def test_a_draft_left_by_an_interrupted_attempt_is_adopted_and_posted(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton)
    reference = unique("ADJ")
    payload = {"invoice_id": invoice_id, "adjustment_reference": reference, "amount": "12.50"}
    # What an attempt that died between creating the draft and posting it leaves behind (with a
    # stale amount, as if the adjustment had been corrected since).
    original = operations._original(tryton, payload)
    line = operations._debit_line(tryton, original, payload, Decimal("99"))
    draft_id = operations._debit_create(tryton, original, reference, line)
    assert connector.lookup("invoice.debit", payload, ctx) is None  # a draft is not done yet

    result = connector.operate("invoice.debit", payload, ctx)

    assert result.external_id == str(draft_id)
    assert (result.data["state"], result.data["total_amount"]) == ("posted", "12.50")
    assert notes(tryton, reference) == 1


# --- Through the hub's side-effect ledger ----------------------------------------------------------------


@pytest.fixture
def connection(tryton_env) -> Connection:
    return connection_save(
        data={
            "slug": "tryton-debit",
            "system": "erp",
            "connector": "tryton",
            "config": config_data(tryton_env, settle_s=0),
            "poll_interval_s": 60,
        },
        secret=tryton_env["TRYTON_PASSWORD"],
    )


# The ledger refuses to run inside a transaction (its intent must commit before the write).
@pytest.mark.django_db(transaction=True)
def test_a_crash_after_debiting_is_found_by_lookup_and_debits_nothing_more(connection, tryton):
    connector = registry.get("tryton").instance()
    outbound = connection_context(connection, direction="outbound")
    sale = sale_confirmed(tryton, reference=unique("SO-DEBIT"))
    invoice_id = int(connector.operate("invoice.post", {"sale_id": sale["id"]}, outbound).external_id)
    reference = unique("ADJ")
    payload = {"invoice_id": invoice_id, "adjustment_reference": reference, "amount": "12.50"}
    begun = side_effect_begin(
        connection=connection, operation="invoice.debit", business_key=reference, payload=payload
    )
    assert isinstance(begun, Begun)
    written = connector.operate("invoice.debit", payload, outbound)  # written, never recorded
    side_effect_lease_expire(effect_id=begun.effect.pk)

    effect = side_effect_perform(
        connection=connection, operation="invoice.debit", business_key=reference, payload=payload
    )
    again = side_effect_perform(
        connection=connection, operation="invoice.debit", business_key=reference, payload=payload
    )

    assert (effect.status, effect.found_by_lookup, effect.external_id) == ("done", True, written.external_id)
    assert (effect.result["kind"], effect.result["total_amount"]) == ("debit_note", "12.50")
    assert effect.result["corrects"] == {
        "invoice_id": invoice_id,
        "number": written.data["corrects"]["number"],
    }
    assert again.external_id == effect.external_id
    assert notes(tryton, reference) == 1
