"""shipment_status against the live peers: a Karrio tracker event whose webhook never reached the
hub is found and re-applied through the inbox (the CRM follows through its subscription), and a CRM
account left behind the hub gets the hub's status through the ledger. Each second run finds the
systems agreeing and writes nothing."""

from __future__ import annotations

import pytest

from canonical.models import Shipment
from connectors.bottlecrm.translate import status_sequence
from hub.connections.services import subscription_save
from hub.inbox.models import InboundMessage
from hub.ledger.models import SideEffect
from reconciliation import services
from reconciliation.models import Discrepancy
from tests.flows.conftest import SLUGS, crm_accounts, crm_notes, tracking_event
from tests.reconciliation.live.support import configure, discrepancies, execute, webhook_off

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]

CHECK = "shipment_status"
CONNECTIONS = {"tms": SLUGS["tms"], "crm": SLUGS["crm"]}


def _timeline(reference: str) -> list[str]:
    return list(
        Shipment.objects.get(reference=reference)
        .events.order_by("occurred_at")
        .values_list("event_type", flat=True)
    )


def _crm_statuses(hub, sale) -> list[str]:
    (account,) = crm_accounts(hub.crm_api, sale.customer_code)
    """The statuses of the shipment's notes on the customer's account, in sequence order."""
    notes = crm_notes(hub.crm_api, account["id"], sale.shipment)
    shown = sorted(
        (status_sequence(note, sale.shipment), note.split(": ", 1)[1].split()[0]) for note in notes
    )
    return [status for _, status in shown]


def test_a_tracker_event_whose_webhook_never_arrived_is_found_and_applied_through_the_inbox(hub):
    subscription_save(data={"connection": hub.crm, "event_types": [], "description": "status notes"})
    configure(CHECK, auto_repair=False, connections=CONNECTIONS, grace_minutes=0)
    sale, run = hub.ship()
    assert run.status == "completed", run.error
    hub.deliver_outbox()
    tracker = hub.karrio_shipment(sale)["tracker_id"]

    # The carrier reports a pickup; Karrio's webhook never reaches the hub.
    with webhook_off(hub):
        hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    hub.settle()
    assert Shipment.objects.get(reference=sale.shipment).status == Shipment.Status.TENDER_ACCEPTED
    assert hub.karrio.get(f"/v1/trackers/{tracker}")["status"] == "picked_up"
    assert _crm_statuses(hub, sale) == ["TENDER_ACCEPTED"]

    first = execute(CHECK, sale.shipment)
    assert (first.examined, first.new, first.ok) == (1, 1, 0)
    (found,) = discrepancies(CHECK, sale.shipment)
    assert (found.kind, found.status, found.repairable) == ("missed_milestone", Discrepancy.Status.OPEN, True)
    assert found.found["hub"]["status"] == "TENDER_ACCEPTED"
    assert (
        found.expected["tms"]["status"] == "PICKED_UP" and len(found.expected["tms"]["missing_events"]) == 1
    )
    assert tracker in found.external_ids

    plan = services.discrepancy_repair(
        discrepancy_id=found.pk, actor="ops:tests", reason="check", dry_run=True
    )
    assert plan.repair["plan"]["plan"][0]["receive"]["connection"] == SLUGS["tms"]
    messages = InboundMessage.objects.filter(connection__slug=SLUGS["tms"]).count()

    repaired = services.discrepancy_repair(
        discrepancy_id=found.pk, actor="ops:tests", reason="missed webhook"
    )
    assert repaired.status == Discrepancy.Status.REPAIRED
    (received,) = repaired.repair["inbound"]
    assert received["created"] is True
    message = InboundMessage.objects.get(pk=received["message"])
    assert message.correlation_id.startswith(f"reconcile:{CHECK}:{sale.shipment}")
    hub.settle()
    hub.deliver_outbox()

    # Fixed by the normal pipeline: the timeline, the status, and the CRM through its subscription.
    assert Shipment.objects.get(reference=sale.shipment).status == Shipment.Status.PICKED_UP
    assert _timeline(sale.shipment) == ["TENDER_ACCEPTED", "DEPARTED_PICKUP"]
    assert _crm_statuses(hub, sale) == ["TENDER_ACCEPTED", "PICKED_UP"]
    assert InboundMessage.objects.filter(connection__slug=SLUGS["tms"]).count() == messages + 1

    writes = SideEffect.objects.count()
    second = execute(CHECK, sale.shipment)
    assert (second.examined, second.ok, second.new, second.still_open) == (1, 1, 0, 0)
    assert len(discrepancies(CHECK, sale.shipment)) == 1
    assert SideEffect.objects.count() == writes
    assert InboundMessage.objects.filter(connection__slug=SLUGS["tms"]).count() == messages + 1

    # Karrio's webhook, delivered late after all, is a duplicate of what the repair received.
    hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    hub.settle()
    assert _timeline(sale.shipment) == ["TENDER_ACCEPTED", "DEPARTED_PICKUP"]


def test_a_crm_account_behind_the_hub_gets_the_hubs_status_through_the_ledger_once(hub):
    configure(CHECK, auto_repair=True, connections=CONNECTIONS, grace_minutes=0)
    sale, run = hub.ship()  # no CRM subscription: only order-to-ship's own note
    assert run.status == "completed", run.error
    tracker = hub.karrio_shipment(sale)["tracker_id"]
    hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    hub.settle()
    assert Shipment.objects.get(reference=sale.shipment).status == Shipment.Status.PICKED_UP
    assert _crm_statuses(hub, sale) == ["TENDER_ACCEPTED"]

    first = execute(CHECK, sale.shipment)
    assert (first.new, first.repaired) == (1, 1)
    (found,) = discrepancies(CHECK, sale.shipment)
    assert (found.kind, found.status) == ("crm_behind", Discrepancy.Status.REPAIRED)
    assert found.found["crm"]["status"] == "TENDER_ACCEPTED"
    (write,) = found.repair["writes"]
    effect = SideEffect.objects.get(pk=write["side_effect"])
    assert (effect.operation, effect.status) == ("shipment.status", SideEffect.Status.DONE)
    assert effect.business_key.startswith(f"reconcile:{CHECK}:{sale.shipment}#")
    assert _crm_statuses(hub, sale) == ["TENDER_ACCEPTED", "PICKED_UP"]

    writes = SideEffect.objects.count()
    second = execute(CHECK, sale.shipment)
    assert (second.ok, second.new, second.repaired) == (1, 0, 0)
    assert len(discrepancies(CHECK, sale.shipment)) == 1
    assert SideEffect.objects.count() == writes
    assert _crm_statuses(hub, sale) == ["TENDER_ACCEPTED", "PICKED_UP"]
