"""cases_match against the live BottleCRM: a case closed by hand in the CRM while its shipment
exception is still open is found, reopened once by the repair, and a second run finds nothing (no
second discrepancy, no second write)."""

from __future__ import annotations

import pytest

from hub.ledger.models import SideEffect
from reconciliation import services
from tests.flows.conftest import crm_cases
from tests.reconciliation.live.support import discrepancies, run_check

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_a_case_closed_by_hand_while_the_exception_is_open_is_reopened_once(hub):
    sale, _ = hub.ship()
    hub.milestone(sale.shipment, "DAMAGED", "2030-03-02T10:00:00Z", reason_code="DMG")
    hub.settle()
    (case,) = crm_cases(hub.crm_api, sale.shipment, "DAMAGED")
    assert case["status"] == "New"
    scope = {"references": [sale.shipment]}
    assert run_check("cases_match", scope=scope).ok == 1

    # A CRM user closes the case (the CRM's webhook does not reach this hub: the exception stays open).
    hub.crm_api.case_update(case["id"], {"status": "Closed"})

    run = run_check("cases_match", scope=scope)
    assert (run.examined, run.new) == (1, 1)
    key = f"{sale.shipment}:DAMAGED"
    (found,) = discrepancies("cases_match", key)
    assert (found.kind, found.status, found.repairable) == ("case_closed_by_hand", "open", True)
    assert found.expected["exception"]["status"] == "OPEN"
    assert [(c["id"], c["status"]) for c in found.found["crm"]["cases"]] == [(case["id"], "Closed")]

    repaired = services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="reopen the case")
    assert repaired.status == "repaired"
    (write,) = repaired.repair["writes"]
    assert (write["operation"], write["external_id"]) == ("case.reopen", case["id"])
    (reopened,) = crm_cases(hub.crm_api, sale.shipment, "DAMAGED")
    assert (reopened["id"], reopened["status"]) == (case["id"], "New")
    writes = SideEffect.objects.filter(connection=hub.crm).count()

    again = run_check("cases_match", scope=scope)
    assert (again.examined, again.ok, again.new, again.still_open) == (1, 1, 0, 0)
    assert len(discrepancies("cases_match", key)) == 1
    assert SideEffect.objects.filter(connection=hub.crm).count() == writes
    assert SideEffect.objects.filter(operation="case.reopen").count() == 1
    assert SideEffect.objects.filter(operation="case.open").count() == 1
    notes = hub.crm_api.case_get(case["id"])
    texts = [c["comment"] for c in [*(notes.get("comments") or []), *(notes.get("internal_notes") or [])]]
    assert sum("[crossdock case.reopen" in t for t in texts) == 1
