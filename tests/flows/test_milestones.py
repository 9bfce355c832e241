"""Milestones from the live TMS: tracker events injected into Karrio reach the hub as Karrio's own
webhooks (to the live server), become the canonical timeline, and a CRM subscription writes each
status change as one note on the customer's account through the outbox. A redelivered webhook and
a late (out-of-order) carrier event neither regress the shipment nor add a second note."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from canonical.models import Shipment
from hub.connections.services import subscription_save
from hub.inbox.models import InboundMessage
from hub.outbox.models import Delivery
from hub.outbox.services import delivery_leases_expire
from tests.flows.conftest import SLUGS, crm_accounts, crm_notes, tracking_event

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _timeline(reference: str) -> list[tuple[str, bool]]:
    shipment = Shipment.objects.get(reference=reference)
    return list(shipment.events.order_by("occurred_at").values_list("event_type", "late"))


def _sequences(notes: list[str], reference: str) -> list[int]:
    marker = f"[crossdock shipment.status {reference}#"
    return sorted(int(note.split(marker)[1].strip().rstrip("]")) for note in notes)


def test_karrio_milestones_drive_the_timeline_and_one_crm_note_per_change(hub, live_server):
    subscription_save(data={"connection": hub.crm, "event_types": [], "description": "status notes"})
    sale, run = hub.ship()
    assert run.status == "completed", run.error
    tracker = hub.karrio_shipment(sale)["tracker_id"]

    hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    hub.karrio.inject(tracker, "in_transit", tracking_event(2, "in_transit", "AR", location="Kingston, ON"))
    hub.karrio.inject(tracker, "out_for_delivery", tracking_event(3, "out_for_delivery", "OD"))
    hub.settle()
    hub.deliver_outbox()

    shipment = Shipment.objects.get(reference=sale.shipment)
    assert shipment.status == Shipment.Status.OUT_FOR_DELIVERY
    assert _timeline(sale.shipment) == [
        ("TENDER_ACCEPTED", False),
        ("DEPARTED_PICKUP", False),
        ("IN_TRANSIT", False),
        ("OUT_FOR_DELIVERY", False),
    ]
    (account,) = crm_accounts(hub.crm_api, sale.customer_code)
    notes = crm_notes(hub.crm_api, account["id"], sale.shipment)
    # One note per change: order-to-ship's (the booked shipment) and one per tracker event.
    booked = run.context["show_in_crm"]["sequence"]
    assert run.context["show_in_crm"]["status"] == "TENDER_ACCEPTED"
    assert _sequences(notes, sale.shipment) == [booked, booked + 1, booked + 2, booked + 3]
    assert any(n.startswith(f"Shipment {sale.shipment}: OUT_FOR_DELIVERY") for n in notes)
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}

    # Karrio delivers its last tracker webhook again (a retry): stored once, nothing changes.
    last = next(
        message
        for message in InboundMessage.objects.filter(connection__slug=SLUGS["tms"]).order_by("-received_at")
        if json.loads(bytes(message.body))["data"].get("id") == tracker
    )
    assert json.loads(bytes(last.body))["data"]["status"] == "out_for_delivery"
    again = requests.post(
        f"{live_server.url}/api/v1/inbound/{SLUGS['tms']}/",
        data=bytes(last.body),
        headers={"Content-Type": "application/json", "X-Event-Id": hub.karrio_webhook["secret"]},
        timeout=30,
    )
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

    # A late carrier event: a scan from day 2 reported after the shipment went out for delivery.
    late = tracking_event(2, "in_transit", "DP", hour=18, location="Toronto, ON")
    hub.karrio.inject(tracker, "out_for_delivery", late)
    hub.settle()
    hub.deliver_outbox()
    hub.settle()
    hub.deliver_outbox()

    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.OUT_FOR_DELIVERY  # not regressed to IN_TRANSIT
    assert _timeline(sale.shipment) == [
        ("TENDER_ACCEPTED", False),
        ("DEPARTED_PICKUP", False),
        ("IN_TRANSIT", False),
        ("IN_TRANSIT", True),
        ("OUT_FOR_DELIVERY", False),
    ]
    notes = crm_notes(hub.crm_api, account["id"], sale.shipment)
    # Each change noted once, none twice; the late event's note shows the status it did not change.
    assert _sequences(notes, sale.shipment) == [booked + n for n in range(5)]
    newest = next(n for n in notes if f"{sale.shipment}#{booked + 4}]" in n)
    assert newest.startswith(f"Shipment {sale.shipment}: OUT_FOR_DELIVERY (IN_TRANSIT at Toronto")

    # The outbox worker dies after the CRM writes, before recording them: the deliveries go out
    # again when their leases expire, and the ledger keeps the CRM from getting a second note.
    Delivery.objects.update(
        status=Delivery.Status.IN_FLIGHT, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert delivery_leases_expire() == Delivery.objects.count() == 5  # booked + 4 tracker events
    hub.deliver_outbox()
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}
    assert _sequences(crm_notes(hub.crm_api, account["id"], sale.shipment), sale.shipment) == [
        booked + n for n in range(5)
    ]
