"""master_data against the live ERP and CRM: a customer's CRM account edited by hand is listed field
by field (the ERP's value against the CRM's), repaired once through the ledger; a party edited in
Tryton is listed against the hub's copy and the CRM's account."""

from __future__ import annotations

import pytest

from canonical.models import Customer
from hub.ledger.models import SideEffect
from reconciliation import services
from tests.flows.conftest import crm_accounts
from tests.reconciliation.live.support import discrepancies, run_check

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
OPTIONS = {"entities": ["customer"]}


def test_a_crm_account_edited_by_hand_is_listed_and_repaired_once(hub):
    sale, _ = hub.ship()
    code = sale.customer_code
    (party,) = hub.tryton.call("model.party.party.read", [sale.party_id], ["email"])
    scope = {"references": [f"customer:{code}"]}
    assert run_check("master_data", scope=scope, options=OPTIONS).ok == 1

    (account,) = crm_accounts(hub.crm_api, code)
    hub.crm_api.account_update(account["id"], {"email": "someone-else@elsewhere.example"})

    run = run_check("master_data", scope=scope)
    assert (run.examined, run.new) == (1, 1)
    (found,) = discrepancies("master_data", f"customer:{code}")
    assert (found.kind, found.repairable) == ("field_mismatch", True)
    assert found.expected["email"] == party["email"]
    assert found.found == {"crm": {"email": "someone-else@elsewhere.example"}}

    services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="the ERP owns it")
    (account,) = crm_accounts(hub.crm_api, code)
    assert account["email"] == party["email"]
    writes = SideEffect.objects.filter(connection=hub.crm).count()
    again = run_check("master_data", scope=scope)
    assert (again.ok, again.new) == (1, 0)
    assert len(discrepancies("master_data", f"customer:{code}")) == 1
    assert SideEffect.objects.filter(connection=hub.crm).count() == writes
    assert (
        SideEffect.objects.filter(operation="account.upsert", business_key__startswith="reconcile:").count()
        == 1
    )


def test_a_party_renamed_in_the_erp_is_listed_against_the_hub_and_the_crm(hub):
    sale, _ = hub.ship()
    code = sale.customer_code
    old_name = Customer.objects.get(code=code).name
    hub.tryton.call("model.party.party.write", [sale.party_id], {"name": f"{old_name} Renamed"})

    run_check("master_data", scope={"references": [f"customer:{code}"]}, options=OPTIONS)
    (found,) = discrepancies("master_data", f"customer:{code}")
    assert found.kind == "field_mismatch"
    assert found.expected["name"] == f"{old_name} Renamed"
    assert found.found == {"hub": {"name": old_name}, "crm": {"name": old_name}}
