"""exception-to-case against the live peers: a failed delivery reported by the carrier (through
Karrio's webhooks) opens a shipment exception, and its run keeps exactly one BottleCRM case for that
shipment and exception type: opened once, commented once per later event, closed on resolution;
an exception of another type gets a case of its own. Cases are counted with the CRM's own filters."""

from __future__ import annotations

import pytest

from canonical.models import ShipmentException
from hub.ledger.models import SideEffect
from hub.workflows.services import workflow_advance, workflow_compensate
from tests.flows.conftest import crm_cases, tracking_event

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _case_notes(hub, case_id: str) -> list[str]:
    detail = hub.crm_api.case_get(case_id)
    return [c["comment"] for c in [*(detail.get("comments") or []), *(detail.get("internal_notes") or [])]]


def test_a_failed_delivery_gets_one_case_commented_and_closed_and_another_type_its_own(hub):
    sale, _ = hub.ship()
    tracker = hub.karrio_shipment(sale)["tracker_id"]
    hub.karrio.inject(tracker, "picked_up", tracking_event(1, "picked_up", "PU", location="Montreal, QC"))
    failed = tracking_event(3, "delivery_failed", "NA", reason="consignee_not_available")
    hub.karrio.inject(tracker, "delivery_failed", failed)
    hub.settle()

    (delay,) = hub.exceptions(sale)
    assert (delay.kind, delay.status, delay.reason_code) == ("DELAYED", "OPEN", "NA")
    run = hub.run("exception_to_case", str(delay.pk))
    assert (run.status, run.current_step) == ("waiting", "follow_until_resolved")
    (case,) = crm_cases(hub.crm_api, sale.shipment, "DELAYED")
    assert case["id"] == run.context["open_case"]["case"]
    assert case["status"] == "New"
    assert case["name"].startswith(f"Shipment {sale.shipment}: DELAYED")

    # A later carrier event while the exception is open: one comment on the case, written once.
    hub.karrio.inject(tracker, "in_transit", tracking_event(4, "in_transit", "AR", location="Kingston, ON"))
    hub.settle()
    hub.settle()
    comments = [n for n in _case_notes(hub, case["id"]) if "[crossdock case.comment" in n]
    assert len(comments) == 1 and comments[0].startswith("IN_TRANSIT at Kingston, ON")

    # Another type on the same shipment (a customs hold): its own run and its own case.
    held = tracking_event(5, "on_hold", "CH", location="Toronto, ON", reason="customs_delay")
    hub.karrio.inject(tracker, "on_hold", held)
    hub.settle()
    customs = ShipmentException.objects.get(shipment__reference=sale.shipment, kind="CUSTOMS_HOLD")
    assert customs.status == "OPEN"
    assert len(crm_cases(hub.crm_api, sale.shipment, "CUSTOMS_HOLD")) == 1
    assert len(crm_cases(hub.crm_api, sale.shipment, "DELAYED")) == 1

    # Delivered: the delay is resolved and its case closed; the customs case stays open.
    hub.karrio.inject(tracker, "delivered", tracking_event(6, "delivered", "DL"), delivered=True)
    hub.settle()
    delay.refresh_from_db()
    assert delay.status == "RESOLVED"
    run.refresh_from_db()
    assert run.status == "completed", run.error
    (closed,) = crm_cases(hub.crm_api, sale.shipment, "DELAYED")
    assert (closed["id"], closed["status"]) == (case["id"], "Closed")
    (open_customs,) = crm_cases(hub.crm_api, sale.shipment, "CUSTOMS_HOLD")
    assert open_customs["status"] == "New"
    notes = _case_notes(hub, case["id"])
    assert sum("[crossdock case.close" in n for n in notes) == 1
    # The delay's case got one comment per event while it was open: in transit, on hold, delivered.
    assert sum("[crossdock case.comment" in n for n in notes) == 3

    # The customs hold resolved by the partner feed: its case is closed too, nothing is duplicated.
    hub.milestone(
        sale.shipment, "EXCEPTION_RESOLVED", "2030-03-07T09:00:00Z", details={"exception": "CUSTOMS_HOLD"}
    )
    hub.settle()
    (closed_customs,) = crm_cases(hub.crm_api, sale.shipment, "CUSTOMS_HOLD")
    assert closed_customs["status"] == "Closed"
    assert len(crm_cases(hub.crm_api, sale.shipment, "DELAYED")) == 1
    assert SideEffect.objects.filter(operation="case.open").count() == 2


def test_compensating_a_run_whose_case_was_closed_too_early_reopens_the_case(hub):
    sale, _ = hub.ship()
    hub.milestone(sale.shipment, "DAMAGED", "2030-03-02T10:00:00Z", reason_code="DMG")
    hub.settle()
    (damaged,) = hub.exceptions(sale)
    hub.milestone(
        sale.shipment, "EXCEPTION_RESOLVED", "2030-03-02T12:00:00Z", details={"exception": "DAMAGED"}
    )
    hub.settle()
    run = hub.run("exception_to_case", str(damaged.pk))
    assert run.status == "completed", run.error
    (case,) = crm_cases(hub.crm_api, sale.shipment, "DAMAGED")
    assert (case["status"], case["priority"]) == ("Closed", "Urgent")

    # Ops learn the damage claim is not settled: undo the close.
    workflow_compensate(run_id=run.pk, reason="damage claim still open with the carrier", actor="ops")
    run = workflow_advance(run_id=run.pk)

    assert run.status == "compensated", run.error
    (reopened,) = crm_cases(hub.crm_api, sale.shipment, "DAMAGED")
    assert (reopened["id"], reopened["status"]) == (case["id"], "New")
    assert sum("[crossdock case.reopen" in n for n in _case_notes(hub, case["id"])) == 1
    assert run.steps.get(name="close_case").compensation["reopened"] == case["id"]
