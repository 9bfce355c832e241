"""The `bottlecrm` connector against the live BottleCRM peer (peers/bottlecrm.sh): every write made
twice leaves one record (counted through the CRM's own API), the case lifecycle, the CRM's refusals
mapped onto the error taxonomy, a stopped peer, and a case closed in the CRM coming back by webhook."""

from __future__ import annotations

import json

import pytest

from canonical.contracts.v1 import MilestoneEvent
from connectors.base import InboundRequest
from connectors.bottlecrm import Config
from connectors.errors import AuthError, PermanentError, TransientError
from tests.connectors.bottlecrm.peer import (
    WebhookSink,
    accounts_counted,
    cases_counted,
    contacts_with_email,
    customer,
    exception,
    peer,
    webhook_delete,
    webhook_register,
)

pytestmark = pytest.mark.peer


# --- account.upsert -----------------------------------------------------------------------------------


def test_account_upsert_twice_makes_one_account_and_updates_only_changed_fields(connector, ctx, crm, unique):
    first = connector.operate("account.upsert", customer(unique), ctx)
    second = connector.operate("account.upsert", customer(unique, phone="+49 40 7654321"), ctx)

    assert first.external_id == second.external_id
    assert (first.data["created"], second.data["created"]) == (True, False)
    assert second.data["updated_fields"] == ["phone"]
    assert accounts_counted(crm, f"C-{unique}") == 1
    stored = crm.account_get(first.external_id)["account_obj"]
    assert (stored["name"], stored["phone"], stored["city"], stored["country"]) == (
        f"ACME Logistics {unique}",
        "+49 40 7654321",
        "Hamburg",
        "DE",
    )
    assert stored["custom_fields"] == {"erp_customer_id": f"C-{unique}"}


def test_lookup_finds_the_account_an_unrecorded_write_left_and_operate_adopts_it(connector, ctx, crm, unique):
    assert connector.lookup("account.upsert", customer(unique), ctx) is None
    # What a write that answered 500 after committing leaves behind.
    left_id = crm.account_create(
        {"name": f"ACME Logistics {unique}", "custom_fields": {"erp_customer_id": f"C-{unique}"}}
    )

    found = connector.lookup("account.upsert", customer(unique), ctx)
    result = connector.operate("account.upsert", customer(unique), ctx)

    assert found.external_id == result.external_id == left_id
    assert result.data["created"] is False
    assert accounts_counted(crm, f"C-{unique}") == 1


def test_an_account_named_alike_without_an_erp_id_is_adopted_not_duplicated(connector, ctx, crm, unique):
    typed_by_a_person = crm.account_create({"name": f"initech {unique}"})

    result = connector.operate("account.upsert", customer(unique, name=f"Initech {unique}"), ctx)

    assert result.external_id == typed_by_a_person
    assert crm.account_get(typed_by_a_person)["account_obj"]["custom_fields"] == {
        "erp_customer_id": f"C-{unique}"
    }
    assert len(crm.accounts_by_name(f"Initech {unique}")) == 1


def test_an_account_name_held_by_another_erp_customer_is_a_permanent_error_naming_both(
    connector, ctx, unique
):
    connector.operate("account.upsert", customer(unique), ctx)

    with pytest.raises(
        PermanentError, match=f"taken by CRM account .* erp_customer_id='C-{unique}', not 'C-X{unique}'"
    ):
        connector.operate("account.upsert", customer(f"X{unique}", name=f"ACME LOGISTICS {unique}"), ctx)


def test_a_400_from_the_crm_is_a_permanent_error_carrying_its_message(connector, ctx, crm, unique):
    with pytest.raises(PermanentError, match="email: Enter a valid email address") as caught:
        connector.operate("account.upsert", customer(unique, email="not-an-email"), ctx)

    assert not isinstance(caught.value, TransientError | AuthError)
    assert caught.value.status_code == 400
    assert accounts_counted(crm, f"C-{unique}") == 0


def test_a_wrong_personal_access_token_is_an_auth_error(connector, make_context, unique):
    with pytest.raises(AuthError, match="Organization context is required"):
        connector.operate("account.upsert", customer(unique), make_context(secret="bcrm_pat_wrong"))


# --- contact.upsert -----------------------------------------------------------------------------------


def test_contact_upsert_twice_is_one_contact_linked_to_the_account(connector, ctx, crm, unique):
    account = connector.operate("account.upsert", customer(unique), ctx)
    contact = {"customer_code": f"C-{unique}", "email": f"Jane.{unique}@acme.example", "name": "Jane Doe"}

    first = connector.operate("contact.upsert", contact, ctx)
    second = connector.operate(
        "contact.upsert", {**contact, "email": contact["email"].lower(), "phone": "+49 40 1"}, ctx
    )

    assert first.external_id == second.external_id
    assert second.data["updated_fields"] == ["phone"]
    (stored,) = contacts_with_email(crm, contact["email"])
    assert (stored["account"], stored["first_name"], stored["last_name"]) == (
        account.external_id,
        "Jane",
        "Doe",
    )
    assert connector.lookup("contact.upsert", contact, ctx).external_id == first.external_id


def test_contact_emails_are_compared_exactly_not_as_the_crm_filter_does(connector, ctx, crm, unique):
    connector.operate("account.upsert", customer(unique), ctx)
    longer = f"mary.jane.{unique}@acme.example"
    shorter = f"jane.{unique}@acme.example"  # the CRM's ?email= filter matches it inside `longer`
    mary = connector.operate(
        "contact.upsert", {"customer_code": f"C-{unique}", "email": longer, "name": "Mary Jane"}, ctx
    )

    assert connector.lookup("contact.upsert", {"customer_code": f"C-{unique}", "email": shorter}, ctx) is None
    jane = connector.operate(
        "contact.upsert", {"customer_code": f"C-{unique}", "email": shorter, "name": "Jane Doe"}, ctx
    )

    assert jane.external_id != mary.external_id
    # The CRM holds both, and its own filter still finds both for the shorter address.
    assert sorted(c["email"] for c in crm.contacts_by_email(shorter)) == sorted([shorter, longer])


def test_a_contact_of_another_account_is_a_permanent_error(connector, ctx, unique):
    connector.operate("account.upsert", customer(unique), ctx)
    connector.operate("account.upsert", customer(f"B{unique}", name=f"Bravo {unique}"), ctx)
    email = f"shared.{unique}@acme.example"
    connector.operate(
        "contact.upsert", {"customer_code": f"C-{unique}", "email": email, "name": "Sam Shared"}, ctx
    )

    with pytest.raises(PermanentError, match="belongs to account"):
        connector.operate(
            "contact.upsert", {"customer_code": f"C-B{unique}", "email": email, "name": "Sam"}, ctx
        )


def test_a_contact_for_a_customer_without_an_account_yet_is_transient(connector, ctx, unique):
    with pytest.raises(TransientError, match=r"account\.upsert it first"):
        connector.operate(
            "contact.upsert", {"customer_code": f"C-{unique}", "email": "a@b.example", "name": "A B"}, ctx
        )


# --- shipment.status ----------------------------------------------------------------------------------


def test_shipment_status_is_on_open_cases_filterably_and_noted_once_on_the_account(
    connector, ctx, crm, unique
):
    account = connector.operate("account.upsert", customer(unique), ctx)
    case = connector.operate("case.open", exception(unique), ctx)
    update = {
        "customer_code": f"C-{unique}",
        "shipment": {"reference": f"SHP-{unique}"},
        "status": "IN_TRANSIT",
        "sequence": 5,
        "event_type": "DEPARTED_PICKUP",
        "occurred_at": "2026-11-20T15:00:00Z",
        "location": {"code": "DEHAM", "name": "Hamburg"},
    }

    first = connector.operate("shipment.status", update, ctx)
    again = connector.operate("shipment.status", update, ctx)
    stale = connector.operate("shipment.status", {**update, "status": "PICKED_UP", "sequence": 4}, ctx)

    assert first.data["cases_updated"] == [case.external_id]
    assert again.external_id == first.external_id
    assert stale.data["stale"] is True
    notes = [
        c["comment"]
        for c in crm.account_get(account.external_id)["comments"]
        if f"SHP-{unique}" in c["comment"]
    ]
    assert notes == [
        f"Shipment SHP-{unique}: IN_TRANSIT (DEPARTED_PICKUP at DEHAM Hamburg, 2026-11-20 15:00 UTC)\n\n"
        f"[crossdock shipment.status SHP-{unique}#5]"
    ]
    filtered = crm.cases_list(cf_shipment_status="IN_TRANSIT", cf_shipment_id=f"SHP-{unique}")
    assert [c["id"] for c in filtered] == [case.external_id]
    assert connector.lookup("shipment.status", update, ctx).external_id == first.external_id


# --- cases ----------------------------------------------------------------------------------------------


def test_case_open_twice_is_one_case_linked_to_account_and_contact(connector, ctx, crm, unique):
    account = connector.operate("account.upsert", customer(unique), ctx)
    contact = connector.operate(
        "contact.upsert",
        {"customer_code": f"C-{unique}", "email": f"jane.{unique}@acme.example", "name": "Jane Doe"},
        ctx,
    )
    payload = exception(unique, contact_email=f"jane.{unique}@acme.example", shipment_status="AT_PICKUP")

    first = connector.operate("case.open", payload, ctx)
    second = connector.operate("case.open", {**payload, "opened_at": "2026-11-20T16:00:00Z"}, ctx)

    assert first.external_id == second.external_id
    assert (first.data["created"], second.data["created"]) == (True, False)
    assert cases_counted(crm, f"SHP-{unique}") == 1
    stored = crm.case_get(first.external_id)["cases_obj"]
    assert (stored["status"], stored["priority"], stored["account"]["id"]) == (
        "New",
        "High",
        account.external_id,
    )
    assert [c["id"] for c in stored["contacts"]] == [contact.external_id]
    assert stored["custom_fields"] == {
        "shipment_id": f"SHP-{unique}",
        "exception_type": "CUSTOMS_HOLD",
        "shipment_status": "AT_PICKUP",
    }


def test_case_lifecycle_comment_close_reopen_each_once(connector, ctx, crm, unique):
    connector.operate("account.upsert", customer(unique), ctx)
    case = connector.operate("case.open", exception(unique), ctx)
    key = {"shipment": {"reference": f"SHP-{unique}"}, "exception_type": "CUSTOMS_HOLD"}
    comment = {**key, "comment": "Customs asked for the invoice copy.", "event_id": f"evt-{unique}"}

    assert connector.lookup("case.comment", comment, ctx) is None
    said = connector.operate("case.comment", comment, ctx)
    said_again = connector.operate("case.comment", comment, ctx)
    close = {**key, "resolution": "Released by customs.", "resolved_at": "2026-11-21T09:00:00Z"}
    closed = connector.operate("case.close", close, ctx)
    closed_again = connector.operate("case.close", close, ctx)
    looked_up_close = connector.lookup("case.close", close, ctx)

    detail = crm.case_get(case.external_id)
    notes = [n["comment"] for n in detail["internal_notes"]]
    assert said_again.external_id == said.external_id and said_again.data["created"] is False
    assert sum("Customs asked for the invoice copy." in n for n in notes) == 1
    assert sum(n.startswith("Resolved 2026-11-21 09:00 UTC: Released by customs.") for n in notes) == 1
    assert detail["cases_obj"]["status"] == "Closed" and detail["cases_obj"]["closed_on"]
    assert closed.external_id == closed_again.external_id == looked_up_close.external_id == case.external_id

    reopen = {**key, "reason": "Customs called back: still held."}
    reopened = connector.operate("case.reopen", reopen, ctx)
    reopened_again = connector.operate("case.reopen", reopen, ctx)

    assert reopened.external_id == reopened_again.external_id == case.external_id
    assert crm.case_get(case.external_id)["cases_obj"]["status"] == "New"
    assert connector.operate("case.open", exception(unique), ctx).external_id == case.external_id
    assert cases_counted(crm, f"SHP-{unique}") == 1


def test_the_same_exception_after_its_case_closed_opens_a_new_case(connector, ctx, crm, unique):
    connector.operate("account.upsert", customer(unique), ctx)
    first = connector.operate("case.open", exception(unique), ctx)
    connector.operate(
        "case.close", {"shipment": {"reference": f"SHP-{unique}"}, "exception_type": "CUSTOMS_HOLD"}, ctx
    )

    # Same shipment, same exception type, opened at the same minute: the name is taken by the closed case.
    second = connector.operate("case.open", exception(unique), ctx)

    assert second.external_id != first.external_id and second.data["created"] is True
    assert second.data["name"].endswith(" (2)")
    statuses = sorted(c["status"] for c in crm.cases_list(cf_shipment_id=f"SHP-{unique}"))
    assert statuses == ["Closed", "New"]


def test_a_comment_for_an_exception_without_a_case_yet_is_transient(connector, ctx, unique):
    with pytest.raises(TransientError, match=r"case\.open it first"):
        connector.operate(
            "case.comment",
            {"shipment": {"reference": f"SHP-{unique}"}, "exception_type": "DELAYED", "comment": "late"},
            ctx,
        )


# --- webhooks -------------------------------------------------------------------------------------------


def test_a_case_closed_by_a_person_comes_back_as_exception_resolved(connector, ctx, crm, crm_env, unique):
    sink = WebhookSink()
    hook = webhook_register(crm_env, sink.url, ["ticket.updated"])
    try:
        connector.operate("account.upsert", customer(unique), ctx)
        case = connector.operate("case.open", exception(unique), ctx)
        crm.case_update(case.external_id, {"status": "Closed"})  # a person, in the CRM
        call = sink.wait_for(
            lambda e: e["data"]["id"] == case.external_id and e["data"]["status"] == "Closed"
        )
    finally:
        webhook_delete(crm_env, hook["id"])
        sink.close()
    request = InboundRequest(body=call["body"], content_type="application/json", headers=call["headers"])
    config = Config.model_validate({"url": crm_env["CRM_URL"]})

    connector.verify(request, hook["secret"], config)
    (document,) = connector.parse(request, config).documents
    (event,) = connector.map(document, config, ctx.mappings)

    milestone = MilestoneEvent.model_validate(event)
    assert (milestone.event_type, milestone.shipment.reference) == ("EXCEPTION_RESOLVED", f"SHP-{unique}")
    assert event["details"]["crm_case_id"] == case.external_id
    with pytest.raises(AuthError):
        connector.verify(request, "whsec_not_this_one", config)
    assert json.loads(call["body"])["event"] == "ticket.updated"


# --- the peer going away ----------------------------------------------------------------------------


def test_a_stopped_peer_is_transient_and_the_write_goes_through_once_it_is_back(connector, ctx, crm, unique):
    peer("stop")
    try:
        with pytest.raises(TransientError, match="connection failed"):
            connector.operate("account.upsert", customer(unique), ctx)
    finally:
        peer("start")

    result = connector.operate("account.upsert", customer(unique), ctx)

    assert result.data["created"] is True
    assert accounts_counted(crm, f"C-{unique}") == 1
