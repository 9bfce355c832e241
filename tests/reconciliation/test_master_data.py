"""master_data: the field comparisons (pure), the ERP-side derivations the comparison uses (pure
connector mapping) and which hub customers the ERP owns (real PostgreSQL)."""

from __future__ import annotations

import pytest

from connectors.bottlecrm import translate as crm_translate
from connectors.mapping import MappingSet
from connectors.tryton import DEFAULT_MAPPINGS
from connectors.tryton.translate import address_location_fields, party_customer_fields
from reconciliation.checks.master_data import (
    _erp_customers,
    _party_ids,
    compare_customer,
    compare_record,
    differences,
)
from tests.factories.canonical import CustomerFactory
from tests.factories.extra import external_ref_add

INBOUND = MappingSet.from_data(DEFAULT_MAPPINGS["inbound"])
ERP = {"name": "ACME Corp", "email": "ops@acme.example", "phone": "+1 555"}


def desired(values: dict) -> dict:
    return crm_translate.account_body(
        {"code": "TRY-1", **values}, erp_key_field="erp_customer_id", mappings=MappingSet.from_data({})
    )


def account(**fields) -> dict:
    return {"id": "acc-1", "custom_fields": {"erp_customer_id": "TRY-1"}, **ERP, **fields}


def test_a_customer_that_agrees_everywhere_is_ok():
    finding = compare_customer(
        code="TRY-1", erp=ERP, hub=dict(ERP), crm=account(), crm_desired=desired(ERP), erp_id="3"
    )
    assert finding.ok


def test_a_crm_account_edited_by_hand_lists_the_field_with_the_erps_value_and_the_crms():
    finding = compare_customer(
        code="TRY-1",
        erp=ERP,
        hub=dict(ERP),
        crm=account(phone="+1 999"),
        crm_desired=desired(ERP),
        erp_id="3",
    )
    assert (finding.ok, finding.kind, finding.repairable) == (False, "field_mismatch", True)
    assert finding.expected["phone"] == "+1 555"
    assert finding.found == {"crm": {"phone": "+1 999"}}
    assert finding.business_key == "customer:TRY-1"


def test_the_hub_copy_differing_from_the_erp_is_listed_per_field_and_case_of_names_is_not_a_difference():
    hub = {**ERP, "name": "ACME CORP", "email": "old@acme.example"}
    finding = compare_customer(
        code="TRY-1", erp=ERP, hub=hub, crm=account(), crm_desired=desired(ERP), erp_id="3"
    )
    assert finding.found == {"hub": {"email": "old@acme.example"}}


def test_a_party_gone_from_the_erp_and_an_account_missing_from_the_crm():
    gone = compare_customer(code="TRY-1", erp=None, hub=dict(ERP), crm=None, crm_desired=None, erp_id="3")
    assert (gone.kind, gone.repairable) == ("missing_in_erp", False)
    missing = compare_customer(code="TRY-1", erp=ERP, hub=dict(ERP), crm=None, crm_desired=None, erp_id="3")
    assert (missing.kind, missing.repairable) == ("missing_in_crm", False)
    not_compared = compare_customer(
        code="TRY-1", erp=ERP, hub=dict(ERP), crm=None, crm_desired=None, erp_id="3", compare_crm=False
    )
    assert not_compared.ok


def test_products_and_locations_are_listed_never_repairable():
    finding = compare_record(
        entity="product", key="WIDGET", erp={"name": "Widget"}, hub={"name": "Widgit"}, erp_ref="1"
    )
    assert (finding.kind, finding.repairable, finding.found) == (
        "field_mismatch",
        False,
        {"hub": {"name": "Widgit"}},
    )
    assert compare_record(
        entity="location", key="TRY-ADDR-1", erp=None, hub={}, erp_ref="address 1"
    ).kind == ("missing_in_erp")
    assert differences({"city": "Springfield"}, {"city": "Springfield "}) == {}


def test_the_erps_customer_fields_come_from_the_party_through_the_inbound_map():
    party = {"id": 3, "code": "7", "name": "ACME Corp", "email": "ops@acme.example", "phone": None}
    assert party_customer_fields(party, INBOUND) == {
        "name": "ACME Corp",
        "email": "ops@acme.example",
        "phone": "",
    }
    # A field sourced from the sale (not the party alone) is not compared.
    from_sale = MappingSet.from_data({"fields": {"customer.email": "invoice_address.party_name"}})
    assert "email" not in party_customer_fields(party, from_sale)


def test_a_tryton_address_becomes_the_ship_to_fields():
    address = {
        "street": "1 Main Street\nUnit 4",
        "city": "Springfield",
        "postal_code": "62701",
        "country": {"code": "US"},
    }
    assert address_location_fields(address) == {
        "address_line": "1 Main Street, Unit 4",
        "city": "Springfield",
        "region": "",
        "postal_code": "62701",
        "country": "US",
    }


@pytest.mark.django_db
def test_only_customers_with_an_erp_ref_are_the_erps():
    owned = CustomerFactory(code="TRY-1")
    external_ref_add(owned, system="tryton", external_id="3")
    CustomerFactory(code="HUB-1")
    other = CustomerFactory(code="SF-1")
    external_ref_add(other, system="salesforce", external_id="001")
    assert list(_erp_customers("tryton").values_list("code", flat=True)) == ["TRY-1"]
    assert _party_ids("tryton", [owned]) == {owned.pk: "3"}
