"""The `tryton` connector against the real Tryton 8.0 peer (peers/tryton.sh): polling confirmed sales,
the four writes read back from Tryton, session renewal and error classification."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest

from canonical.contracts.v1 import OrderDocument
from connectors.base import InboundRequest
from connectors.errors import AuthError, PermanentError
from connectors.tryton.client import TrytonClient
from connectors.tryton.operations import cursor_parse
from tests.connectors.tryton.peer import (
    drain,
    polled_ids,
    sale_confirmed,
    sale_create,
    sale_read,
    shipments_finish,
)

pytestmark = pytest.mark.peer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def invoice_lines(tryton: TrytonClient, invoice_id: int) -> list[dict]:
    (invoice,) = tryton.call("model.account.invoice.read", [invoice_id], ["lines"])
    return tryton.call(
        "model.account.invoice.line.read",
        invoice["lines"],
        ["product.code", "quantity", "unit_price", "amount"],
    )


def invoice_state(tryton: TrytonClient, invoice_id: int) -> dict:
    (row,) = tryton.call(
        "model.account.invoice.read", [invoice_id], ["state", "number", "total_amount", "reference"]
    )
    return row


# --- poll ----------------------------------------------------------------------------------------------


def test_poll_hands_over_a_newly_confirmed_sale_once_and_moves_the_cursor(connector, ctx, tryton):
    cursor = drain(connector, ctx)
    sale = sale_confirmed(tryton, party="Globex Ltd", lines=[("WIDGET", 2), ("CABLE", 7.5)])

    first = connector.poll(cursor, ctx)
    again = connector.poll(first.cursor, ctx)

    assert polled_ids(first) == [sale["id"]]
    assert cursor_parse(first.cursor) == (sale["last_modified_at"], sale["id"])
    assert (again.messages, again.cursor) == ([], first.cursor)
    request = InboundRequest(body=first.messages[0], content_type="application/json", headers={})
    (document,) = connector.parse(request, ctx.config).documents
    (order,) = connector.map(document, ctx.config, None)
    assert OrderDocument.model_validate(order).reference == sale["number"]
    assert [line["sku"] for line in order["lines"]] == ["WIDGET", "CABLE"]
    assert connector.natural_id(request, ctx.config) == f"sale:{sale['id']}:{document['last_modified_at']}"


def test_a_changed_sale_comes_again_with_a_new_natural_id(connector, ctx, tryton):
    cursor = drain(connector, ctx)
    sale = sale_confirmed(tryton)
    first = connector.poll(cursor, ctx)

    tryton.call("model.sale.sale.write", [sale["id"]], {"comment": "customer called"})
    second = connector.poll(first.cursor, ctx)

    assert polled_ids(first) == polled_ids(second) == [sale["id"]]
    ids = [
        connector.natural_id(InboundRequest(body=r.messages[0], content_type="", headers={}), ctx.config)
        for r in (first, second)
    ]
    assert ids[0] != ids[1]
    assert json.loads(second.messages[0])["comment"] == "customer called"
    assert connector.poll(second.cursor, ctx).messages == []


def test_draft_and_quoted_sales_are_not_polled(connector, ctx, tryton):
    cursor = drain(connector, ctx)
    sale_create(tryton)
    quoted = sale_create(tryton)
    tryton.call("model.sale.sale.quote", [quoted])

    assert connector.poll(cursor, ctx).messages == []


def test_sales_changed_in_one_transaction_are_handed_over_one_per_page(connector, ctx, make_ctx, tryton):
    cursor = drain(connector, ctx)
    ids = sorted(sale_confirmed(tryton)["id"] for _ in range(3))
    tryton.call("model.sale.sale.write", ids, {"comment": "batch"})  # one transaction: one timestamp
    stamps = {
        row["last_modified_at"] for row in tryton.call("model.sale.sale.read", ids, ["last_modified_at"])
    }
    assert len(stamps) == 1
    one_per_page = make_ctx(page_size=1)

    seen = []
    for _ in range(3):
        result = connector.poll(cursor, one_per_page)
        seen += polled_ids(result)
        cursor = result.cursor

    assert seen == ids
    assert connector.poll(cursor, one_per_page).messages == []


def test_a_sale_changed_within_the_settle_time_waits_for_a_later_poll(connector, ctx, make_ctx, tryton):
    cursor = drain(connector, ctx)
    settling = make_ctx(settle_s=3)
    sale = sale_confirmed(tryton)

    early = connector.poll(cursor, settling)
    assert (early.messages, early.cursor) == ([], cursor)
    deadline = time.monotonic() + 20
    later = early
    while not later.messages and time.monotonic() < deadline:
        time.sleep(1)
        later = connector.poll(cursor, settling)

    assert polled_ids(later) == [sale["id"]]


def test_a_configured_company_limits_the_poll_to_its_sales(connector, ctx, make_ctx, tryton):
    cursor = drain(connector, ctx)
    sale = sale_confirmed(tryton)

    assert polled_ids(connector.poll(cursor, make_ctx(company=1))) == [sale["id"]]
    assert connector.poll(cursor, make_ctx(company=999)).messages == []


# --- sale.link_shipment ---------------------------------------------------------------------------------


def test_link_shipment_writes_the_tms_id_on_the_sale_and_tracking_on_its_shipment(connector, ctx, tryton):
    sale = sale_confirmed(tryton)
    payload = {
        "sale_number": sale["number"],
        "tms_shipment_id": unique("SHP"),
        "tracking_number": unique("1Z"),
        "carrier": "UPS",
    }
    assert connector.lookup("sale.link_shipment", payload, ctx) is None

    result = connector.operate("sale.link_shipment", payload, ctx)

    after = sale_read(tryton, sale["id"])
    assert after["reference"] == payload["tms_shipment_id"]
    (shipment,) = tryton.call("model.stock.shipment.out.read", after["shipments"], ["reference", "origins"])
    assert shipment["reference"] == payload["tracking_number"]
    assert payload["tms_shipment_id"] in shipment["origins"]
    assert result.external_id == str(sale["id"])
    assert result.data["tryton_carrier"] == "Speedy Freight"
    assert connector.lookup("sale.link_shipment", payload, ctx) == result
    # Nothing left to write: running it again leaves the sale untouched.
    connector.operate("sale.link_shipment", payload, ctx)
    assert sale_read(tryton, sale["id"])["last_modified_at"] == after["last_modified_at"]


def test_link_shipment_for_an_unknown_sale_is_permanent(connector, ctx):
    with pytest.raises(PermanentError, match="Tryton has no sale number 'NO-SUCH'"):
        connector.operate("sale.link_shipment", {"sale_number": "NO-SUCH", "tms_shipment_id": "S"}, ctx)


# --- shipment.record_cost -------------------------------------------------------------------------------


def test_record_cost_stores_the_freight_paid_on_the_customer_shipment(connector, ctx, tryton):
    sale = sale_confirmed(tryton)
    payload = {"sale_id": sale["id"], "amount": "42.75", "currency": "USD"}
    assert connector.lookup("shipment.record_cost", payload, ctx) is None

    result = connector.operate("shipment.record_cost", payload, ctx)

    (shipment,) = tryton.call(
        "model.stock.shipment.out.read", sale["shipments"], ["cost", "cost_edit", "cost_currency_used.code"]
    )
    assert (shipment["cost"], shipment["cost_edit"]) == (Decimal("42.75"), True)
    assert shipment["cost_currency_used."]["code"] == "USD"
    assert result.data == {
        "sale_id": sale["id"],
        "shipment_id": sale["shipments"][0],
        "shipment_number": result.data["shipment_number"],
        "cost": "42.75",
        "currency": "USD",
    }
    assert connector.lookup("shipment.record_cost", payload, ctx) == result
    assert connector.lookup("shipment.record_cost", {**payload, "amount": "50"}, ctx) is None


def test_a_tryton_user_error_is_permanent_and_carries_trytons_message(connector, ctx, tryton):
    sale = sale_confirmed(tryton)

    with pytest.raises(PermanentError, match='exceeds the limit of "\\(None, 4\\)"') as caught:
        connector.operate("shipment.record_cost", {"sale_id": sale["id"], "amount": "1.123456789"}, ctx)

    assert "The number of digits in the value" in caught.value.detail
    assert type(caught.value) is PermanentError


# --- invoice.post ---------------------------------------------------------------------------------------


def test_invoice_post_sets_the_actual_freight_then_posts(connector, ctx, tryton):
    sale = sale_confirmed(tryton, lines=[("WIDGET", 5)])  # 5 x 20 + quoted freight 15
    payload = {"sale_id": sale["id"], "freight_amount": "37.20"}
    assert connector.lookup("invoice.post", payload, ctx) is None

    result = connector.operate("invoice.post", payload, ctx)

    (invoice_id,) = sale["invoices"]
    invoice = invoice_state(tryton, invoice_id)
    assert (invoice["state"], invoice["total_amount"]) == ("posted", Decimal("137.20"))
    assert invoice["number"].startswith("INV")
    amounts = {line["product."]["code"]: line["amount"] for line in invoice_lines(tryton, invoice_id)}
    assert amounts == {"WIDGET": Decimal("100.00"), "FREIGHT": Decimal("37.20")}
    assert result.external_id == str(invoice_id)
    assert (result.data["number"], result.data["state"], result.data["total_amount"]) == (
        invoice["number"],
        "posted",
        "137.20",
    )
    assert connector.lookup("invoice.post", payload, ctx) == result
    assert connector.operate("invoice.post", payload, ctx).external_id == str(invoice_id)
    posted = [["sales", "=", sale["id"]], ["state", "=", "posted"]]
    assert tryton.call("model.account.invoice.search_count", posted) == 1


def test_invoice_post_adds_a_freight_line_when_the_sale_was_quoted_without_one(connector, ctx, tryton):
    sale = sale_confirmed(tryton, lines=[("WIDGET", 1)], shipment_cost=False)

    connector.operate("invoice.post", {"sale": sale["number"], "freight_amount": "12.00"}, ctx)

    (invoice_id,) = sale["invoices"]
    lines = {line["product."]["code"]: line["amount"] for line in invoice_lines(tryton, invoice_id)}
    assert lines == {"WIDGET": Decimal("20.00"), "FREIGHT": Decimal("12.00")}
    assert invoice_state(tryton, invoice_id)["state"] == "posted"


def test_invoice_post_after_the_session_was_ended_logs_in_again(connector, ctx, tryton):
    sale = sale_confirmed(tryton)
    before = tryton.session()
    tryton.logout()  # the server forgets the token; the connector's cache still holds it

    result = connector.operate("invoice.post", {"sale_id": sale["id"]}, ctx)

    assert result.data["state"] == "posted"
    assert tryton.session().token != before.token


# --- invoice.credit -------------------------------------------------------------------------------------


def posted_invoice(connector, ctx, tryton, **sale_kwargs) -> int:
    sale = sale_confirmed(tryton, **sale_kwargs)
    return int(connector.operate("invoice.post", {"sale_id": sale["id"]}, ctx).external_id)


def credit_notes(tryton: TrytonClient, reference: str) -> list[dict]:
    ids = tryton.call("model.account.invoice.search", [["reference", "=", reference]], 0, None, None)
    return tryton.call("model.account.invoice.read", ids, ["state", "total_amount", "lines"])


def test_invoice_credit_of_an_amount_credits_the_freight_line(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton)
    payload = {"invoice_id": invoice_id, "adjustment_reference": unique("ADJ"), "amount": "5.00"}
    assert connector.lookup("invoice.credit", payload, ctx) is None

    result = connector.operate("invoice.credit", payload, ctx)

    (note,) = credit_notes(tryton, payload["adjustment_reference"])
    assert (note["state"], note["total_amount"]) == ("posted", Decimal("-5.00"))
    lines = invoice_lines(tryton, note["id"])
    assert [(line["product."]["code"], line["quantity"], line["unit_price"]) for line in lines] == [
        ("FREIGHT", -1.0, Decimal("5.00"))
    ]
    assert result.external_id == str(note["id"])
    assert result.data["credited_invoice_id"] == invoice_id
    assert result.data["number"].startswith("CN")
    assert connector.lookup("invoice.credit", payload, ctx) == result
    assert connector.operate("invoice.credit", payload, ctx) == result
    assert len(credit_notes(tryton, payload["adjustment_reference"])) == 1
    assert invoice_state(tryton, invoice_id)["state"] == "posted"  # the original stays as it was


def test_invoice_credit_by_lines_credits_units_of_a_product(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton, lines=[("WIDGET", 5), ("CABLE", 10)])
    payload = {
        "invoice_id": invoice_id,
        "adjustment_reference": unique("RMA"),
        "lines": [{"sku": "WIDGET", "quantity": 2}],
    }

    connector.operate("invoice.credit", payload, ctx)

    (note,) = credit_notes(tryton, payload["adjustment_reference"])
    assert note["total_amount"] == Decimal("-40.00")


def test_invoice_credit_without_amount_or_lines_credits_the_whole_invoice(connector, ctx, tryton):
    invoice_id = posted_invoice(connector, ctx, tryton)
    payload = {"invoice_id": invoice_id, "adjustment_reference": unique("FULL")}

    connector.operate("invoice.credit", payload, ctx)

    (note,) = credit_notes(tryton, payload["adjustment_reference"])
    assert note["total_amount"] == -invoice_state(tryton, invoice_id)["total_amount"]


def test_invoice_credit_refuses_a_draft_invoice_and_an_amount_above_the_line(connector, ctx, tryton):
    sale = sale_confirmed(tryton)
    (draft_id,) = sale["invoices"]
    posted_id = posted_invoice(connector, ctx, tryton)

    with pytest.raises(PermanentError, match="is draft; only posted invoices are credited"):
        connector.operate(
            "invoice.credit", {"invoice_id": draft_id, "adjustment_reference": unique("A")}, ctx
        )
    with pytest.raises(PermanentError, match=r"at most its 15\.00"):
        connector.operate(
            "invoice.credit",
            {"invoice_id": posted_id, "adjustment_reference": unique("A"), "amount": "99"},
            ctx,
        )


# --- sessions and credentials ---------------------------------------------------------------------------


def test_a_killed_session_is_renewed_and_the_call_repeated(connector, ctx, tryton):
    cursor = drain(connector, ctx)
    before = tryton.session()
    tryton.logout()

    assert connector.poll(cursor, ctx).messages == []
    assert tryton.session().token != before.token


def test_a_wrong_password_is_an_auth_error(connector, make_ctx):
    with pytest.raises(AuthError, match="refused the login of 'admin'"):
        connector.poll(None, make_ctx(password="not-the-password"))


def test_an_unknown_database_is_permanent(connector, make_ctx):
    with pytest.raises(PermanentError, match="no database 'no_such_db'"):
        connector.poll(None, make_ctx(database="no_such_db"))


def test_a_finished_shipment_can_still_take_tracking_and_cost(connector, ctx, tryton):
    sale = sale_confirmed(tryton)
    shipments_finish(tryton, sale["shipments"])

    connector.operate(
        "sale.link_shipment", {"sale_id": sale["id"], "tms_shipment_id": "S-1", "tracking_number": "T-1"}, ctx
    )
    connector.operate("shipment.record_cost", {"sale_id": sale["id"], "amount": "18"}, ctx)

    (shipment,) = tryton.call(
        "model.stock.shipment.out.read", sale["shipments"], ["state", "reference", "cost"]
    )
    assert (shipment["state"], shipment["reference"], shipment["cost"]) == ("done", "T-1", Decimal("18"))


def test_a_sale_not_processed_yet_has_no_shipment_to_link_and_says_so(connector, ctx, tryton):
    sale_id = sale_create(tryton)
    tryton.call("model.sale.sale.quote", [sale_id])

    with pytest.raises(PermanentError, match="has no customer shipment"):
        connector.operate(
            "sale.link_shipment", {"sale_id": sale_id, "tms_shipment_id": "S", "tracking_number": "T"}, ctx
        )
    tryton.call("model.sale.sale.confirm", [sale_id])
    assert sale_read(tryton, sale_id)["shipments"]  # confirming creates it
