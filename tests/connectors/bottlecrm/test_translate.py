"""The `bottlecrm` connector's pure side: canonical payloads to CRM request bodies, CRM answers and
webhooks (captured from the live peer) to what the connector reads, signature checks, and the
classification of the CRM's answers into the error taxonomy."""

from __future__ import annotations

import json
import time

import pytest

from canonical.contracts.v1 import MilestoneEvent
from connectors import registry, signing
from connectors.base import InboundRequest
from connectors.bottlecrm import Config, translate, verify_signature
from connectors.bottlecrm.client import CrmApi, NotFound, Rejected
from connectors.errors import AuthError, MappingError, ParseError, PermanentError, TransientError
from connectors.mapping import MappingSet, merge, validate
from tests.connectors.bottlecrm.golden import (
    OUTBOUND,
    REQUESTS,
    RESPONSES,
    cases,
    render_request,
    render_response,
)

CONFIG = Config.model_validate({"url": "http://127.0.0.1:18210"})


def test_there_are_golden_cases():
    assert len(cases(REQUESTS)) >= 8
    assert len(cases(RESPONSES)) >= 10


@pytest.mark.parametrize("case", cases(REQUESTS))
def test_canonical_payload_renders_the_expected_crm_request(case):
    source = json.loads((REQUESTS / f"{case}.json").read_text())

    assert render_request(source) == json.loads((REQUESTS / f"{case}.expected.json").read_text())


@pytest.mark.parametrize("case", cases(RESPONSES))
def test_captured_crm_answer_reads_as_expected(case):
    raw = (RESPONSES / f"{case}.json").read_bytes()

    assert render_response(case, raw) == json.loads((RESPONSES / f"{case}.expected.json").read_text())


@pytest.mark.parametrize("case", [c for c in cases(RESPONSES) if c.startswith("webhook_")])
def test_captured_webhook_passes_verify_parse_and_map_into_valid_milestones(case):
    connector = registry.get("bottlecrm").instance()
    meta = json.loads((RESPONSES / f"{case}.meta.json").read_text())
    request = InboundRequest(
        body=(RESPONSES / f"{case}.json").read_bytes(),
        content_type="application/json",
        headers=meta["headers"],
    )
    signed_at = int(meta["headers"]["x-bottlecrm-signature"].split(",")[0].removeprefix("t="))

    verify_signature(
        meta["secret"], request.body, meta["headers"]["x-bottlecrm-signature"], now=signed_at + 5
    )
    (document,) = connector.parse(request, CONFIG).documents
    events = connector.map(document, CONFIG, MappingSet())

    assert connector.natural_id(request, CONFIG) == f"event:{document['id']}"
    assert events == json.loads((RESPONSES / f"{case}.expected.json").read_text())
    for event in events:
        MilestoneEvent.model_validate(event)  # the hub's contract accepts it


# --- Webhook signatures -----------------------------------------------------------------------------

WEBHOOK = "webhook_ticket_updated_closed"


def _signed():
    meta = json.loads((RESPONSES / f"{WEBHOOK}.meta.json").read_text())
    header = meta["headers"]["x-bottlecrm-signature"]
    return meta["secret"], (RESPONSES / f"{WEBHOOK}.json").read_bytes(), header, int(header.split(",")[0][2:])


def test_webhook_with_a_changed_body_is_refused():
    secret, body, header, t = _signed()
    with pytest.raises(AuthError, match="does not match"):
        verify_signature(secret, body.replace(b"Closed", b"Pending"), header, now=t)


def test_webhook_signed_with_another_secret_is_refused():
    _, body, header, t = _signed()
    with pytest.raises(AuthError, match="does not match"):
        verify_signature("whsec_other", body, header, now=t)


def test_webhook_signature_older_than_the_tolerance_is_refused():
    secret, body, header, t = _signed()
    with pytest.raises(AuthError, match="away from now"):
        verify_signature(secret, body, header, now=t + 301)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=notanumber,v1=abc", "t=1"])
def test_webhook_without_a_well_formed_signature_is_refused(header):
    secret, body, _, t = _signed()
    with pytest.raises(AuthError):
        verify_signature(secret, body, header, now=t)


def test_webhook_on_a_connection_without_a_secret_is_refused():
    _, body, header, t = _signed()
    with pytest.raises(AuthError, match="no webhook secret"):
        verify_signature("", body, header, now=t)


def test_a_body_that_is_not_a_webhook_envelope_is_a_parse_error():
    connector = registry.get("bottlecrm").instance()
    for body in (b"{not json", b"[1, 2]", b'{"data": {}}'):
        with pytest.raises(ParseError):
            connector.parse(InboundRequest(body=body, content_type="application/json", headers={}), CONFIG)


def test_a_closed_case_not_named_by_the_connector_is_a_mapping_error_naming_the_name():
    envelope = json.loads((RESPONSES / f"{WEBHOOK}.json").read_bytes())
    envelope["data"]["name"] = "Customer called about a late truck"

    with pytest.raises(MappingError, match="does not say its shipment") as caught:
        translate.ticket_event_to_milestones(envelope)
    assert (caught.value.field, caught.value.value) == ("data.name", "Customer called about a late truck")


# --- Request translation details ----------------------------------------------------------------------


def test_account_update_patches_only_changed_fields_and_never_clears_crm_values():
    current = {
        "name": "ACME Logistics",
        "email": "OPS@acme.example",
        "phone": "+49 40 1",
        "city": "Hamburg",
        "custom_fields": {"erp_customer_id": "C-1", "other": "x"},
    }
    desired = translate.account_body(
        {"code": "C-1", "name": "ACME Logistics", "email": "ops@acme.example", "phone": "+49 40 2"},
        erp_key_field="erp_customer_id",
        mappings=OUTBOUND,
    )

    assert translate.changes(current, desired) == {"phone": "+49 40 2"}


def test_the_erp_customer_id_path_is_a_mapping_ops_staff_can_change():
    remapped = MappingSet.from_data(
        merge(OUTBOUND.as_data(), {"fields": {"erp_customer_id": "external_refs.0.external_id"}})
    )
    body = translate.account_body(
        {"code": "C-1", "name": "ACME", "external_refs": [{"system": "tryton", "external_id": "17"}]},
        erp_key_field="erp_customer_id",
        mappings=remapped,
    )

    assert body["custom_fields"] == {"erp_customer_id": "17"}


def test_a_customer_without_its_key_is_a_mapping_error_naming_the_field():
    with pytest.raises(MappingError, match="erp_customer_id is required") as caught:
        translate.account_body({"name": "ACME"}, erp_key_field="erp_customer_id", mappings=OUTBOUND)
    assert caught.value.field == "erp_customer_id"


def test_an_exception_type_without_a_priority_is_a_mapping_error_naming_it():
    payload = {"shipment": {"reference": "SHP-1"}, "exception_type": "ALIENS"}
    with pytest.raises(MappingError, match="unmapped case_priority code 'ALIENS'"):
        translate.case_body(
            payload,
            reference="SHP-1",
            exception_type="ALIENS",
            fields={"shipment_id": "s", "shipment_status": "st", "exception_type": "e"},
            mappings=OUTBOUND,
            account_id=None,
            contact_ids=[],
        )


def test_case_names_say_the_shipment_and_exception_and_retry_names_are_numbered():
    payload = {"opened_at": "2026-11-20T15:05:00+01:00"}
    first = translate.case_name(payload, "SHP-42", "CUSTOMS_HOLD")
    third = translate.case_name(payload, "SHP-42", "CUSTOMS_HOLD", attempt=3)

    assert first == "Shipment SHP-42: CUSTOMS_HOLD 2026-11-20 14:05"
    assert third == first + " (3)"
    assert translate.case_name_parts(third) == ("SHP-42", "CUSTOMS_HOLD")


def test_case_names_fit_the_crm_limit_dropping_the_time_first_then_cutting():
    payload = {"opened_at": "2026-11-20T14:05:00Z"}
    medium = "R" * 30
    longest = "R" * 64  # canonical references may be 64 characters

    assert translate.case_name(payload, medium, "CUSTOMS_HOLD") == f"Shipment {medium}: CUSTOMS_HOLD"
    cut = translate.case_name(payload, longest, "CUSTOMS_HOLD", attempt=2)
    assert len(cut) == translate.CASE_NAME_MAX and cut.endswith("… (2)")
    assert translate.case_name_parts(cut) is None  # the webhook translation then names the case instead


def test_status_notes_are_recognised_by_their_marker_and_sequence():
    note = translate.status_note({"sequence": 12, "status": "DELIVERED"}, "SHP 9", "DELIVERED")

    assert translate.status_sequence(note, "SHP 9") == 12
    assert translate.status_sequence(note, "SHP 99") is None
    assert translate.find_marked([{"id": "n1", "comment": note}], "shipment.status", "SHP 9#12") == {
        "id": "n1",
        "comment": note,
    }


def test_a_status_without_sequence_or_event_id_cannot_be_written_once_and_is_refused():
    with pytest.raises(MappingError, match="sequence"):
        translate.status_key({"status": "IN_TRANSIT"}, "SHP-1")


def test_contact_emails_match_exactly_but_case_insensitively():
    assert translate.same_email("Jane@ACME.example", "jane@acme.example")
    assert not translate.same_email("mary.jane@acme.example", "jane@acme.example")
    assert not translate.same_email("", "")


def test_default_mappings_are_valid_against_the_connector_targets():
    spec = registry.get("bottlecrm")
    assert validate(spec.default_mappings["outbound"], spec.mapping_targets) == []
    assert spec.capabilities == ["verify", "natural_id", "parse", "map", "operate", "lookup"]
    assert spec.system == "crm"


# --- Classification of the CRM's answers --------------------------------------------------------------


class Canned:
    """An HttpClient that answers every request with one canned response (the classification of
    answers is pure; the live tests get the same answers from the real CRM)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.answer = (status, headers or {}, body, 3)
        self.calls: list[tuple[str, str, dict, bytes]] = []

    def request(self, method, url, *, headers, body):
        self.calls.append((method, url, dict(headers), body))
        return self.answer


def _call(status: int, body: bytes, headers: dict[str, str] | None = None):
    CrmApi(url="http://crm.example/", token="bcrm_pat_x", http=Canned(status, body, headers)).call(
        "POST", "accounts/", body={}
    )


def test_403_organization_context_is_an_auth_error():
    with pytest.raises(AuthError, match="Organization context is required"):
        _call(403, b'{"detail": "Organization context is required. Please login again."}')


def test_400_is_rejected_with_the_field_messages():
    with pytest.raises(Rejected, match="email: Enter a valid email address") as caught:
        _call(400, (RESPONSES / "error_invalid_email.json").read_bytes())
    assert isinstance(caught.value, PermanentError)
    assert caught.value.about("email", "valid email")


def test_404_is_permanent():
    with pytest.raises(NotFound):
        _call(404, b'{"detail": "No Account matches the given query."}')


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_5xx_408_and_429_are_transient_even_with_an_html_page(status):
    with pytest.raises(TransientError) as caught:
        _call(status, b"<!DOCTYPE html><html><body>Server Error</body></html>", {"Retry-After": "7"})
    assert caught.value.retry_after == 7.0


def test_a_2xx_answer_that_is_not_json_is_transient_because_the_outcome_is_unknown():
    with pytest.raises(TransientError, match="not a JSON object"):
        _call(200, b"<html>proxy</html>")


def test_a_connection_without_a_token_is_an_auth_error_before_any_request():
    with pytest.raises(AuthError, match="no personal access token"):
        CrmApi(url="http://crm.example", token=None, http=Canned(200, b"{}"))


def test_requests_carry_the_token_and_json_to_the_api_root():
    http = Canned(200, b'{"error": false, "id": "a1"}')
    assert (
        CrmApi(url="http://crm.example/", token="bcrm_pat_x", http=http).account_create({"name": "A"}) == "a1"
    )
    method, url, headers, body = http.calls[0]

    assert (method, url) == ("POST", "http://crm.example/api/accounts/")
    assert headers["Authorization"] == "Bearer bcrm_pat_x"
    assert json.loads(body) == {"name": "A"}


def test_the_config_refuses_custom_field_keys_the_crm_would_refuse():
    with pytest.raises(ValueError, match="account_key_field"):
        Config.model_validate({"url": "http://crm.example", "account_key_field": "ERP-Id"})


def test_signature_helper_matches_the_crm_scheme():
    # The CRM signs "<t>.<body>" with HMAC-SHA256 (webhooks/tasks.py sign); so does connectors.signing.
    body, t = b'{"event":"ticket.updated"}', int(time.time())
    header = signing.sign("whsec_x", body, timestamp=t)
    verify_signature("whsec_x", body, header, now=t)


def test_the_status_shown_is_the_newest_note_of_the_shipment_by_sequence():
    def note(note_id, status, sequence, reference="SHP-7"):
        payload = {"sequence": sequence, "event_type": "IN_TRANSIT"}
        return {"id": note_id, "comment": translate.status_note(payload, reference, status)}

    comments = [
        note("n1", "TENDER_ACCEPTED", 3),
        note("n3", "OUT_FOR_DELIVERY", 9),
        note("n2", "IN_TRANSIT", 5),
        note("n9", "DELIVERED", 40, reference="SHP-70"),  # another shipment
        {"id": "x", "comment": "Called the customer"},
    ]
    assert translate.status_shown(comments, "SHP-7") == {
        "note_id": "n3",
        "sequence": 9,
        "status": "OUT_FOR_DELIVERY",
    }
    assert translate.status_shown(comments, "SHP-8") is None
