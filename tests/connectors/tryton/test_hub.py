"""The `tryton` connector inside the hub, against the real peer: writes through the side-effect ledger
happen once in Tryton (counted in Tryton) across repeats, an operator's retry and a crash between
the write and its record; a poll through the inbox becomes one canonical order."""

from __future__ import annotations

import pytest

from canonical.models import ExternalRef, Order
from connectors import registry
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.inbox.models import InboundMessage
from hub.inbox.polling import connection_poll
from hub.inbox.services import inbox_drain
from hub.ledger.models import SideEffect
from hub.ledger.services import (
    Begun,
    side_effect_begin,
    side_effect_lease_expire,
    side_effect_perform,
    side_effect_retry,
)
from hub.mappings.context import connection_context
from tests.connectors.tryton.peer import config_data, drain, sale_confirmed

# The ledger refuses to run inside a transaction (its intent must commit before the write).
pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def connection(tryton_env) -> Connection:
    return connection_save(
        data={
            "slug": "tryton-erp",
            "system": "erp",
            "connector": "tryton",
            "config": config_data(tryton_env, settle_s=0),
            "poll_interval_s": 60,
        },
        secret=tryton_env["TRYTON_PASSWORD"],
    )


def posted_invoices(tryton, sale_id: int) -> int:
    return tryton.call(
        "model.account.invoice.search_count", [["sales", "=", sale_id], ["state", "in", ["posted", "paid"]]]
    )


def credit_notes(tryton, reference: str) -> int:
    return tryton.call("model.account.invoice.search_count", [["reference", "=", reference]])


def test_posting_the_same_invoice_twice_and_retrying_it_posts_one_invoice(connection, tryton):
    sale = sale_confirmed(tryton)
    key, payload = f"invoice.post:{sale['number']}", {"sale_id": sale["id"], "freight_amount": "21.00"}

    first = side_effect_perform(
        connection=connection, operation="invoice.post", business_key=key, payload=payload
    )
    second = side_effect_perform(
        connection=connection, operation="invoice.post", business_key=key, payload=payload
    )
    retried = side_effect_retry(effect_id=first.pk)

    (invoice_id,) = sale["invoices"]
    assert first.external_id == second.external_id == retried.external_id == str(invoice_id)
    assert (first.status, first.attempts, first.result["total_amount"]) == ("done", 1, "121.00")
    assert SideEffect.objects.get(pk=first.pk).attempts == 1  # the repeats called nothing
    assert posted_invoices(tryton, sale["id"]) == 1


def test_a_crash_after_posting_is_found_by_lookup_and_posts_nothing_more(connection, tryton):
    sale = sale_confirmed(tryton)
    key, payload = f"invoice.post:{sale['number']}", {"sale_id": sale["id"], "freight_amount": "30.00"}
    begun = side_effect_begin(
        connection=connection, operation="invoice.post", business_key=key, payload=payload
    )
    assert isinstance(begun, Begun)
    # The crashed worker posted in Tryton and died before the ledger recorded it.
    connector = registry.get("tryton").instance()
    connector.operate("invoice.post", payload, connection_context(connection, direction="outbound"))
    side_effect_lease_expire(effect_id=begun.effect.pk)

    effect = side_effect_perform(
        connection=connection, operation="invoice.post", business_key=key, payload=payload
    )

    (invoice_id,) = sale["invoices"]
    assert (effect.status, effect.found_by_lookup, effect.external_id) == ("done", True, str(invoice_id))
    assert effect.result["state"] == "posted"
    assert posted_invoices(tryton, sale["id"]) == 1


def test_a_crash_after_crediting_is_found_by_lookup_and_credits_nothing_more(connection, tryton):
    sale = sale_confirmed(tryton)
    outbound = connection_context(connection, direction="outbound")
    connector = registry.get("tryton").instance()
    invoice_id = int(connector.operate("invoice.post", {"sale_id": sale["id"]}, outbound).external_id)
    reference = f"ADJ-{sale['number']}"
    payload = {"invoice_id": invoice_id, "adjustment_reference": reference, "amount": "4.00"}
    begun = side_effect_begin(
        connection=connection, operation="invoice.credit", business_key=reference, payload=payload
    )
    assert isinstance(begun, Begun)
    connector.operate("invoice.credit", payload, outbound)  # written, never recorded
    side_effect_lease_expire(effect_id=begun.effect.pk)

    effect = side_effect_perform(
        connection=connection, operation="invoice.credit", business_key=reference, payload=payload
    )
    again = side_effect_perform(
        connection=connection, operation="invoice.credit", business_key=reference, payload=payload
    )

    assert (effect.status, effect.found_by_lookup, effect.result["total_amount"]) == ("done", True, "-4.00")
    assert again.external_id == effect.external_id
    assert credit_notes(tryton, reference) == 1


def test_a_polled_sale_becomes_one_canonical_order(connection, connector, ctx, tryton):
    Connection.objects.filter(pk=connection.pk).update(poll_cursor=drain(connector, ctx) or "")
    sale = sale_confirmed(tryton, party="Globex Ltd", lines=[("WIDGET", 4), ("CABLE", 20)])

    stored = connection_poll(connection_id=connection.pk)
    repeated = connection_poll(connection_id=connection.pk)
    inbox_drain(budget_s=30)

    assert (stored, repeated) == (1, 0)
    message = InboundMessage.objects.get(connection=connection)
    assert message.idempotency_key.startswith(f"sale:{sale['id']}:")
    assert message.status == InboundMessage.Status.PROCESSED, message.trace
    order = Order.objects.get(reference=sale["number"])
    assert (order.status, order.customer.code, order.lines.count()) == ("CONFIRMED", "TRY-4", 2)
    assert ExternalRef.objects.filter(system="tryton", entity="order", external_id=str(sale["id"])).exists()
