"""order-to-ship end to end against the live peers: a sale confirmed in Tryton is polled into a
canonical order, the trigger starts the run, and the run books one Karrio order and shipment, links
the Karrio ids back onto the Tryton sale and its shipment, and shows the customer and the shipment's
status in the CRM. Every claim is read back from the peer's own API."""

from __future__ import annotations

import pytest

from canonical.models import ExternalRef, Order, Shipment
from hub.ledger.models import SideEffect
from hub.workflows.models import WorkflowRun, WorkflowStep
from tests.flows.conftest import crm_accounts, crm_notes

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_a_confirmed_sale_is_booked_in_karrio_linked_back_in_tryton_and_shown_in_the_crm(hub):
    sale = hub.sale(lines=(("WIDGET", 3), ("CABLE", 20)))

    assert hub.poll() >= 1  # the shared ERP may hand over another session's sale as well
    order = Order.objects.get(reference=sale.order)
    assert (order.status, order.lines.count()) == ("CONFIRMED", 2)
    assert ExternalRef.objects.filter(system="tryton", entity="order", external_id=str(sale.id)).exists()

    hub.settle()

    run = hub.run("order_to_ship", sale.order)
    assert run.status == WorkflowRun.Status.COMPLETED, (
        run.error,
        list(run.steps.values("name", "status", "error")),
    )
    assert [s.status for s in run.steps.order_by("sequence")] == [WorkflowStep.Status.DONE] * 3
    booked = run.context["book_tms_shipment"]

    # Karrio: one order (its order_id is the canonical order) and one bought shipment for it.
    orders = hub.karrio.records("orders", order_id=sale.order)
    shipments = hub.karrio.records("shipments", reference=sale.shipment)
    assert (len(orders), len(shipments)) == (1, 1)
    (karrio_shipment,) = shipments
    assert karrio_shipment["id"] == booked["tms_shipment_id"]
    assert karrio_shipment["status"] == "created"  # bought: label and tracker, not a draft
    assert [s["id"] for s in orders[0]["shipments"]] == [karrio_shipment["id"]]
    assert sorted((item["sku"], item["quantity"]) for item in orders[0]["line_items"]) == [
        ("CABLE", 20),
        ("WIDGET", 3),
    ]

    # The canonical shipment: booked (Karrio's own purchase webhook applied), its TMS id and rate.
    shipment = Shipment.objects.get(reference=sale.shipment)
    assert shipment.status == Shipment.Status.TENDER_ACCEPTED
    assert shipment.tracking_number == karrio_shipment["tracking_number"]
    assert shipment.expected_freight_cost == 10
    assert ExternalRef.objects.filter(
        system="karrio", entity="shipment", external_id=karrio_shipment["id"], object_id=shipment.pk
    ).exists()
    assert Order.objects.get(reference=sale.order).status == Order.Status.RELEASED

    # Tryton: the sale carries the Karrio shipment id, its customer shipment the tracking number.
    tryton_sale = hub.sale_read(sale.id, ["reference", "shipments"])
    assert tryton_sale["reference"] == karrio_shipment["id"]
    stock = hub.tryton.call("model.stock.shipment.out.read", tryton_sale["shipments"], ["reference"])
    assert [row["reference"] for row in stock] == [karrio_shipment["tracking_number"]]

    # The CRM: one account for the customer, with one note showing the booked shipment.
    code = sale.customer_code
    (account,) = crm_accounts(hub.crm_api, code)
    assert account["id"] == run.context["show_in_crm"]["account"]
    notes = crm_notes(hub.crm_api, account["id"], sale.shipment)
    assert len(notes) == 1
    assert notes[0].startswith(f"Shipment {sale.shipment}: TENDER_ACCEPTED")

    # Running the whole flow's writes again (a redelivered task, the sweeper) changes nothing anywhere.
    hub.poll()
    hub.settle()
    assert WorkflowRun.objects.filter(flow="order_to_ship").count() == 1
    assert SideEffect.objects.filter(operation="shipment.create").count() == 1
    assert len(hub.karrio.records("shipments", reference=sale.shipment)) == 1
    assert len(crm_accounts(hub.crm_api, code)) == 1
    assert len(crm_notes(hub.crm_api, account["id"], sale.shipment)) == 1
