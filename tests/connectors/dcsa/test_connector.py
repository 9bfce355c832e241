"""The dcsa connector: bodies validated against DCSA's published schemas (rejections name the JSON path),
codes mapped as data (per-partner overrides, MappingError naming unknown codes), the shipment reference
rule, Notification-Signature verification and the natural id."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json

import pytest

from connectors import mapping as mapping_lib
from connectors.dcsa import CONNECTOR, DEFAULT_MAPPINGS, Config
from connectors.dcsa import schema as dcsa_schema
from connectors.errors import AuthError, MappingError, ParseError
from tests.connectors.dcsa.support import CONFIG, CONNECTOR_INSTANCE, FIXTURES, outcome, request

V22 = json.loads((FIXTURES / "example_tnt_220_response.json").read_text())
V30_TRANSPORT = json.loads((FIXTURES / "example_tnt_300_request_transport.json").read_text())
V30_EQUIPMENT = json.loads((FIXTURES / "example_tnt_300_request_equipment.json").read_text())


def _body(data) -> bytes:
    return json.dumps(data).encode()


def _parse(data):
    return CONNECTOR_INSTANCE.parse(request(_body(data)), CONFIG)


def _map(data, *, config: Config = CONFIG, mappings=None):
    return [CONNECTOR_INSTANCE.map(d, config, mappings) for d in _parse(data).documents]


def _mappings(override: dict) -> mapping_lib.MappingSet:
    return mapping_lib.MappingSet.from_data(mapping_lib.merge(DEFAULT_MAPPINGS["inbound"], override))


# --- Schema validation ------------------------------------------------------------------------------


def test_dcsa_negative_example_is_rejected_naming_the_json_path():
    body = (FIXTURES / "example_tnt_220_response_wrong_structure.json").read_bytes()

    with pytest.raises(ParseError) as caught:
        CONNECTOR_INSTANCE.parse(request(body), CONFIG)

    assert caught.value.stage == "parse"
    assert str(caught.value).startswith("$[0].eventType: a DCSA T&T 2.2 event needs eventType")
    assert "keys found: ['someEvents']" in str(caught.value)


def test_a_22_event_with_a_code_outside_the_schema_enum_is_rejected():
    data = copy.deepcopy(V22)
    data[0]["transportEventTypeCode"] = "XXXX"

    with pytest.raises(ParseError) as caught:
        _parse(data)

    assert str(caught.value).startswith(
        "DCSA T&T 2.2 TRANSPORT event fails the schema: $[0].transportEventTypeCode: 'XXXX' is not one of"
    )


def test_a_22_event_missing_a_required_field_is_rejected_naming_it():
    data = copy.deepcopy(V22)
    del data[2]["equipmentEventTypeCode"]

    with pytest.raises(ParseError, match=r"\$\[2\]: 'equipmentEventTypeCode' is a required property"):
        _parse(data)


def test_a_30_event_with_a_wrong_type_is_rejected_naming_the_nested_path():
    data = copy.deepcopy(V30_TRANSPORT)
    data["events"][0]["transportDetails"]["transportCall"]["transportCallSequenceNumber"] = "three"

    with pytest.raises(ParseError) as caught:
        _parse(data)

    assert (
        "$.events[0].transportDetails.transportCall.transportCallSequenceNumber: 'three' is not of type 'integer'"
        in str(caught.value)
    )


def test_a_30_event_without_classification_is_rejected():
    data = copy.deepcopy(V30_TRANSPORT)
    del data["events"][0]["eventClassification"]

    with pytest.raises(ParseError, match=r"^\$\.events\[0\]\.eventClassification\.eventTypeCode"):
        _parse(data)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"{not json",
            "malformed JSON: Expecting property name enclosed in double quotes (at line 1 column 2)",
        ),
        (b'["\xff"]', "body is not UTF-8 text"),
        (b"[]", "$: empty list: expected at least one event"),
        (b'{"events": []}', "$.events: expected a non-empty list of events"),
        (b'{"hello": 1}', "$: not a DCSA T&T body"),
        (b"42", "$: not a DCSA T&T body"),
        (b"[42]", "$[0]: expected an event object, found int"),
    ],
)
def test_bodies_that_are_not_dcsa_events_are_rejected(body, message):
    with pytest.raises(ParseError) as caught:
        CONNECTOR_INSTANCE.parse(request(body), CONFIG)

    assert message in str(caught.value)


def test_one_event_object_and_22_events_wrapped_in_events_are_read():
    assert [d["path"] for d in _parse(V22[0]).documents] == ["$"]
    assert [d["version"] for d in _parse({"events": V22[:2]}).documents] == ["2.2", "2.2"]
    assert [d["version"] for d in _parse(V30_TRANSPORT["events"][0]).documents] == ["3.0"]


def test_a_forced_version_validates_against_that_schema():
    with pytest.raises(ParseError, match=r"3\.0 event needs its event type"):
        CONNECTOR_INSTANCE.parse(request(_body(V22)), Config(version="3.0"))


def test_nullable_in_openapi_becomes_null_in_json_schema():
    assert dcsa_schema._openapi_to_jsonschema({"type": "string", "nullable": True}) == {
        "type": ["string", "null"]
    }
    assert dcsa_schema._openapi_to_jsonschema({"enum": ["A"], "nullable": True}) == {"enum": ["A", None]}


def test_schemas_shipped_with_the_connector_are_dcsas_files_byte_for_byte():
    shipped = dcsa_schema.SCHEMA_DIR
    for name in dcsa_schema.SCHEMA_FILES.values():
        assert (
            hashlib.sha256((shipped / name).read_bytes()).digest()
            == hashlib.sha256((FIXTURES / name).read_bytes()).digest()
        )
        assert name in (shipped / "SOURCES.md").read_text()


# --- Mapping ----------------------------------------------------------------------------------------


def test_estimated_and_planned_events_are_not_milestones_but_actuals_are():
    data = copy.deepcopy(V22[:1])
    data[0]["eventClassifierCode"] = "EST"
    assert _map(data) == [[]]
    data[0]["eventClassifierCode"] = "ACT"
    assert _map(data)[0][0]["event_type"] == "IN_TRANSIT"


def test_unmapped_equipment_code_raises_mapping_error_naming_the_field_and_path():
    data = copy.deepcopy(V22[2:3])
    data[0]["eventClassifierCode"] = "ACT"
    data[0]["equipmentEventTypeCode"] = "STRP"

    with pytest.raises(MappingError) as caught:
        _map(data)

    assert (caught.value.field, caught.value.value) == ("equipmentEventTypeCode", "STRP")
    assert str(caught.value) == "unmapped equipment_event code 'STRP' (at $[0])"


def test_a_partner_override_maps_a_code_the_defaults_leave_out():
    data = copy.deepcopy(V22[2:3])
    data[0]["eventClassifierCode"] = "ACT"
    data[0]["equipmentEventTypeCode"] = "STRP"

    events = _map(data, mappings=_mappings({"codes": {"equipment_event": {"STRP": "DELIVERED"}}}))

    assert events[0][0]["event_type"] == "DELIVERED"
    assert events[0][0]["location"] == {
        "code": "FRPAR",
        "name": "Eiffel Tower",
        "lat": "48.8585500",
        "lon": "2.294492036",
    }
    assert events[0][0]["details"]["equipment"] == "APZU4812090"


def test_booking_events_are_tender_milestones_while_other_document_events_are_paperwork():
    booking = copy.deepcopy(V22[4:5])  # SHIPMENT DRFT of a BKG
    assert _map(booking) == [[]]
    booking[0]["shipmentEventTypeCode"] = "CONF"
    assert _map(booking)[0][0]["event_type"] == "TENDER_ACCEPTED"
    booking[0]["shipmentEventTypeCode"] = "REJE"
    assert _map(booking)[0][0]["event_type"] == "TENDER_REJECTED"
    instruction = copy.deepcopy(V22[1:2])  # SHIPMENT DRFT of an SHI
    instruction[0]["shipmentEventTypeCode"] = "CONF"
    assert _map(instruction) == [[]]


def test_shipment_reference_follows_the_configured_document_types():
    assert _map(V22[:1])[0][0]["shipment"]["reference"] == "ABC123123123"
    assert (
        _map(V22[:1], config=Config(shipment_reference_types=["TRD", "BKG"]))[0][0]["shipment"]["reference"]
        == "reserved-HHL123"
    )


def test_equipment_event_without_a_document_reference_is_a_mapping_error():
    with pytest.raises(MappingError) as caught:
        _map(V30_EQUIPMENT)

    assert caught.value.field == "documentReferences"
    assert str(caught.value) == (
        "no BKG/TRD document reference to name the shipment (found: none; equipment APZU4812090) (at $.events[0])"
    )


def test_retracted_30_event_is_a_mapping_error_not_a_silent_drop():
    data = copy.deepcopy(V30_TRANSPORT)
    data["events"][0]["isRetracted"] = True

    with pytest.raises(MappingError, match="is retracted"):
        _map(data)


def test_30_event_id_is_qualified_by_the_originating_party():
    event = _map(V30_TRANSPORT)[0][0]

    assert event["event_id"] == "EXCO:evt-trans-001-2026-01-20T12:30:00Z"
    assert event["location"] == {"code": "DEHAM", "name": "Sample Port Terminal"}


def test_event_time_without_offset_is_a_mapping_error():
    data = copy.deepcopy(V30_TRANSPORT)
    data["events"][0]["eventDateTime"] = "2026-01-20T12:30:00"

    with pytest.raises(MappingError) as caught:
        _map(data)

    assert caught.value.field == "eventDateTime"


def test_packaged_mappings_are_valid_and_cover_the_22_transport_codes():
    assert mapping_lib.validate(DEFAULT_MAPPINGS["inbound"], CONNECTOR.mapping_targets) == []
    codes = {
        row.split(",")[0]
        for row in (FIXTURES / "transporteventtypecodes-v300.csv").read_text().splitlines()[1:]
        if row
    }
    assert codes == set(DEFAULT_MAPPINGS["inbound"]["codes"]["transport_event"])


# --- Verify and natural id --------------------------------------------------------------------------

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _signed(body: bytes, key: bytes) -> dict[str, str]:
    return {"notification-signature": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


def test_notification_signature_made_with_the_base64_secret_is_accepted():
    body = _body(V22)

    CONNECTOR_INSTANCE.verify(request(body, _signed(body, base64.b64decode(SECRET))), SECRET, CONFIG)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"notification-signature": "md5=abc"},
        {"notification-signature": "sha256="},
        {"notification-signature": "sha256=00"},
    ],
)
def test_missing_or_wrong_notification_signature_is_refused(headers):
    with pytest.raises(AuthError):
        CONNECTOR_INSTANCE.verify(request(_body(V22), headers), SECRET, CONFIG)


def test_signature_over_another_body_is_refused():
    headers = _signed(b"[]", base64.b64decode(SECRET))

    with pytest.raises(AuthError, match="does not match the body"):
        CONNECTOR_INSTANCE.verify(request(_body(V22), headers), SECRET, CONFIG)


def test_natural_id_is_the_event_id_of_a_single_event_only():
    assert outcome(_body(V22[:1]))["natural_id"] == "dcsa:3cecb101-7a1a-43a4-9d62-e88a131651e2"
    assert outcome(_body(V22))["natural_id"] is None
    assert CONNECTOR_INSTANCE.natural_id(request(b"{nope"), CONFIG) is None
