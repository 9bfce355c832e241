"""The karrio connector's pure parts: golden webhooks captured from the live peer, the code and field
maps, the semantic natural id, the shared-secret check, and the outbound request bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from canonical.contracts.v1 import MilestoneEvent
from connectors import mapping as mapping_lib
from connectors.base import InboundRequest
from connectors.errors import AuthError, MappingError, ParseError, PermanentError
from connectors.karrio import CONNECTOR, DEFAULT_MAPPINGS, Config
from connectors.karrio import translate as karrio_translate
from connectors.karrio.client import credentials, error_detail

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "karrio"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))
CONFIG = Config(
    url="http://karrio.test",
    carrier_id="offline",
    service="offline_standard",
    shipper={"person_name": "Dock 4", "address_line1": "1 Dock St", "city": "Montreal", "country_code": "CA"},
)
SECRET = json.dumps({"api_key": "key_test", "webhook_secret": "whsec_right"})


def defaults() -> mapping_lib.MappingSet:
    return mapping_lib.MappingSet.from_data(DEFAULT_MAPPINGS["inbound"])


def raw(case: str) -> bytes:
    return (FIXTURES / f"{case}.json").read_bytes()


def request(body: bytes | dict, **headers: str) -> InboundRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest(body=data, content_type="application/json", headers=headers)


def run(body: bytes | dict, mappings=None) -> list[dict]:
    connector = CONNECTOR.instance()
    [document] = connector.parse(request(body), CONFIG).documents
    return connector.map(document, CONFIG, mappings if mappings is not None else defaults())


def test_every_karrio_status_event_and_reason_has_a_default_and_the_defaults_are_valid():
    assert len(CASES) >= 10
    assert mapping_lib.validate(DEFAULT_MAPPINGS["inbound"], CONNECTOR.mapping_targets) == []
    statuses = set(DEFAULT_MAPPINGS["inbound"]["codes"]["tracker_status"])
    # Karrio 2026.1 TrackerStatus, plus the "created" status of the label-created event.
    assert statuses == {
        "created", "pending", "picked_up", "unknown", "on_hold", "cancelled", "delivered", "in_transit",
        "delivery_delayed", "out_for_delivery", "ready_for_pickup", "delivery_failed", "return_to_sender",
    }  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_golden_webhook_maps_to_the_expected_canonical_milestones(case):
    expected = json.loads((FIXTURES / f"{case}.expected.json").read_text())

    milestones = run(raw(case))

    assert milestones == expected
    for milestone in milestones:  # what the hub validates next
        MilestoneEvent.model_validate(milestone)


def test_the_captured_journey_covers_each_milestone_kind():
    kinds = {m["event_type"] for case in CASES for m in run(raw(case))}
    assert kinds >= {
        "TENDER_ACCEPTED", "DEPARTED_PICKUP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELAYED", "DELIVERED",
        "REFUSED", "CANCELLED",
    }  # fmt: skip


def test_a_failed_delivery_is_an_exception_with_karrios_reason_and_the_carrier_code():
    [failed] = [
        m for m in run(raw("tracker_delivery_failed")) if m["details"]["karrio_status"] == "delivery_failed"
    ]
    assert failed["event_type"] == "DELAYED"
    assert failed["details"]["reason"] == "consignee_not_available"
    assert failed["reason_code"] == "NA"
    assert failed["occurred_at"] == "2030-01-04T15:00:00+00:00"


def test_an_unmapped_tracker_status_is_a_mapping_error_naming_it():
    body = json.loads(raw("tracker_picked_up"))
    body["data"]["events"][0]["status"] = "teleported"

    with pytest.raises(MappingError) as caught:
        run(body)

    assert caught.value.field == "events.0.status"
    assert caught.value.value == "teleported"
    assert "tracker_status" in caught.value.detail and "teleported" in caught.value.detail


def test_an_event_without_status_is_mapped_by_its_code():
    body = json.loads(raw("tracker_picked_up"))
    body["data"]["events"][0]["status"] = None
    mappings = defaults().as_data()
    mappings["codes"]["tracker_status"]["PU"] = "ARRIVED_AT_PICKUP"

    milestones = run(body, mapping_lib.MappingSet.from_data(mappings))

    assert milestones[0]["event_type"] == "ARRIVED_AT_PICKUP"


def test_a_connection_mapping_overrides_a_status_and_the_reference_path():
    body = json.loads(raw("tracker_in_transit"))
    del body["data"]["metadata"]["crossdock_reference"]
    override = {
        "fields": {"tracker_reference": "tracking_number"},
        "codes": {"tracker_status": {"in_transit": "IGNORE"}},
    }
    mappings = mapping_lib.MappingSet.from_data(mapping_lib.merge(DEFAULT_MAPPINGS["inbound"], override))

    milestones = run(body, mappings)

    assert [m["event_type"] for m in milestones] == ["DEPARTED_PICKUP"]
    assert milestones[0]["shipment"]["reference"] == body["data"]["tracking_number"]


def test_a_tracker_without_crossdocks_reference_is_a_mapping_error():
    body = json.loads(raw("tracker_picked_up"))
    body["data"]["metadata"] = {}

    with pytest.raises(MappingError) as caught:
        run(body)

    assert caught.value.field == "tracker_reference"
    assert "metadata.crossdock_reference" in caught.value.detail


def test_an_unknown_reason_keeps_the_status_type_and_a_known_one_refines_it():
    body = json.loads(raw("tracker_refused"))
    body["data"]["events"][0]["reason"] = "alien_abduction"
    assert run(body)[0]["event_type"] == "DELAYED"
    body["data"]["events"][0]["reason"] = "customs_inspection"
    assert run(body)[0]["event_type"] == "CUSTOMS_HOLD"


def test_a_reason_does_not_turn_a_progress_event_into_an_exception():
    body = json.loads(raw("tracker_picked_up"))
    body["data"]["events"][0]["reason"] = "consignee_refused"
    assert run(body)[0]["event_type"] == "DEPARTED_PICKUP"


def test_an_event_without_timestamp_uses_its_date_and_time_as_utc():
    body = json.loads(raw("tracker_picked_up"))
    event = body["data"]["events"][0]
    event["timestamp"] = None
    event["date"], event["time"] = "2030-01-02", "07:55 PM"
    assert run(body)[0]["occurred_at"] == "2030-01-02T19:55:00+00:00"
    event["date"], event["time"] = None, None
    with pytest.raises(MappingError) as caught:
        run(body)
    assert caught.value.field == "events.0.timestamp"


def test_unknown_shipment_and_webhook_events_are_mapping_errors():
    body = json.loads(raw("shipment_fulfilled"))
    body["event"] = "shipment_teleported"
    with pytest.raises(MappingError) as caught:
        run(body)
    assert (caught.value.field, caught.value.value) == ("event", "shipment_teleported")
    body["event"] = "invoice_paid"
    with pytest.raises(MappingError, match="unknown Karrio webhook event"):
        run(body)


def test_a_shipment_without_reference_is_a_mapping_error():
    body = json.loads(raw("shipment_purchased"))
    body["data"]["reference"] = None
    with pytest.raises(MappingError) as caught:
        run(body)
    assert caught.value.field == "shipment_reference"


def test_map_falls_back_to_the_packaged_defaults_without_a_mapping_set():
    connector = CONNECTOR.instance()
    [document] = connector.parse(request(raw("tracker_picked_up")), CONFIG).documents
    assert connector.map(document, CONFIG, {}) == run(raw("tracker_picked_up"))


# --- natural id ---------------------------------------------------------------------------------------


def natural_id(body: bytes | dict) -> str | None:
    return CONNECTOR.instance().natural_id(request(body), CONFIG)


def test_natural_id_is_the_same_for_a_resent_state_and_ignores_request_ids():
    body = json.loads(raw("tracker_out_for_delivery"))
    resent = copy.deepcopy(body)
    resent["data"]["meta"]["request_id"] = "req_other"
    resent["data"]["events"].reverse()

    assert natural_id(body) == natural_id(resent)
    assert natural_id(body).startswith(f"karrio:tracker_updated:{body['data']['id']}:out_for_delivery:")
    assert len(natural_id(body)) <= 200


def test_natural_id_changes_with_a_new_tracking_event_or_status():
    before = json.loads(raw("tracker_in_transit"))
    after = json.loads(raw("tracker_out_for_delivery"))
    assert before["data"]["id"] == after["data"]["id"]
    assert natural_id(before) != natural_id(after)
    same_events_new_status = copy.deepcopy(before)
    same_events_new_status["data"]["status"] = "on_hold"
    assert natural_id(before) != natural_id(same_events_new_status)


def test_natural_id_tells_events_about_the_same_object_apart():
    purchased, fulfilled = json.loads(raw("shipment_purchased")), json.loads(raw("shipment_fulfilled"))
    assert natural_id(purchased) != natural_id(fulfilled)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"event": "x"}', b'{"data": {"id": 1}}'])
def test_natural_id_is_none_for_unreadable_bodies(body):
    assert natural_id(body) is None


# --- verify and parse ---------------------------------------------------------------------------------


def test_verify_accepts_the_shared_secret_in_x_event_id():
    CONNECTOR.instance().verify(
        request(raw("order_created"), **{"x-event-id": "whsec_right"}), SECRET, CONFIG
    )


@pytest.mark.parametrize(
    ("headers", "secret", "message"),
    [
        ({"x-event-id": "whsec_wrong"}, SECRET, "does not match"),
        ({"x-event-id": "whsec_righ"}, SECRET, "does not match"),
        ({}, SECRET, "does not match"),
        ({"x-event-id": "whsec_right"}, "key_plain_api_key_only", "no webhook secret"),
        ({"x-event-id": "whsec_right"}, None, "no webhook secret"),
    ],
)
def test_verify_refuses_a_wrong_or_missing_secret(headers, secret, message):
    with pytest.raises(AuthError, match=message):
        CONNECTOR.instance().verify(request(raw("order_created"), **headers), secret, CONFIG)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"event": "\xc3\x28"}', "not UTF-8"),
        (b'["tracker_updated"]', "expected a Karrio webhook"),
        (b'{"event": "tracker_updated", "data": []}', "expected a Karrio webhook"),
    ],
)
def test_parse_refuses_what_is_not_a_karrio_webhook(body, message):
    with pytest.raises(ParseError, match=message):
        CONNECTOR.instance().parse(request(body), CONFIG)


def test_credentials_read_the_json_secret_or_a_plain_api_key():
    assert credentials(SECRET) == credentials(f"  {SECRET}\n")
    assert (credentials(SECRET).api_key, credentials(SECRET).webhook_secret) == ("key_test", "whsec_right")
    assert (credentials("key_plain").api_key, credentials("key_plain").webhook_secret) == ("key_plain", None)
    assert credentials("").api_key is None
    with pytest.raises(AuthError, match="not valid JSON"):
        credentials("{broken")


def test_error_detail_carries_karrios_messages():
    body = (
        b'{"errors": [{"code": "validation", "message": "recipient.country_code: This field is required."}]}'
    )
    assert (
        error_detail(400, body)
        == "Karrio HTTP 400: validation: recipient.country_code: This field is required."
    )
    assert error_detail(502, b"<html>bad gateway</html>") == "Karrio HTTP 502: <html>bad gateway</html>"


# --- outbound bodies ----------------------------------------------------------------------------------


def payload(**extra) -> dict:
    return {
        "reference": "SHP-1",
        "order_reference": "SO-1",
        "customer": {"code": "C1", "name": "Acme Retail", "email": "ops@acme.test"},
        "ship_to": {"code": "A", "name": "Jane Doe", "address_line": "23 Jardin Pvt", "city": "Ottawa",
                    "region": "ON", "postal_code": "K1K4T3", "country": "CA"},
        "lines": [
            {"line_number": 1, "sku": "W-1", "product_name": "Widget", "quantity": "2", "unit_price": "9.5", "weight_kg": "1.5"},
            {"line_number": 2, "sku": "G-7", "quantity": 1},
            {"line_number": 3, "sku": "W-1", "quantity": 1},
        ],
        "status": "CONFIRMED",  # other canonical fields are ignored
        **extra,
    }  # fmt: skip


def test_order_body_uses_the_order_reference_and_maps_the_address():
    body = karrio_translate.order_body(
        karrio_translate.payload_parse(payload()), shipper={"city": "Montreal"}, default_weight_kg=0.5
    )

    assert body["order_id"] == "SO-1"
    assert body["shipping_to"] == {
        "person_name": "Jane Doe", "company_name": "Acme Retail", "address_line1": "23 Jardin Pvt", "city": "Ottawa",
        "state_code": "ON", "postal_code": "K1K4T3", "country_code": "CA", "email": "ops@acme.test",
    }  # fmt: skip
    assert [(i["sku"], i["quantity"], i["weight"]) for i in body["line_items"]] == [
        ("W-1", 2, 1.5),
        ("G-7", 1, 0.5),
        ("W-1", 1, 0.5),
    ]
    assert body["line_items"][0]["value_amount"] == 9.5
    assert body["metadata"] == {"crossdock_order": "SO-1"}


def test_shipment_body_links_each_item_to_its_order_line_by_sku_in_order():
    order = {
        "line_items": [
            {"id": "oli_a", "sku": "W-1"},
            {"id": "oli_b", "sku": "G-7"},
            {"id": "oli_c", "sku": "W-1"},
        ]
    }
    body = karrio_translate.shipment_body(
        karrio_translate.payload_parse(payload()),
        order=order,
        shipper={"city": "Montreal"},
        carrier_id="offline",
        service="offline_express",
        default_weight_kg=0.5,
    )

    [parcel] = body["parcels"]
    assert [i["parent_id"] for i in parcel["items"]] == ["oli_a", "oli_b", "oli_c"]
    assert parcel["weight"] == 2 * 1.5 + 0.5 + 0.5
    assert (body["reference"], body["service"], body["carrier_ids"]) == (
        "SHP-1",
        "offline_express",
        ["offline"],
    )
    assert body["metadata"] == {"crossdock_reference": "SHP-1", "crossdock_order": "SO-1"}


def test_a_payload_karrio_cannot_take_is_a_permanent_error_naming_the_field():
    with pytest.raises(PermanentError, match="whole quantities"):
        karrio_translate.order_body(
            karrio_translate.payload_parse(payload(lines=[{"sku": "W-1", "quantity": "1.5"}])),
            shipper={},
            default_weight_kg=1,
        )
    with pytest.raises(PermanentError, match=r"invalid payload: lines: List should have at least 1 item"):
        karrio_translate.payload_parse(payload(lines=[]))
    with pytest.raises(PermanentError, match="reference"):
        karrio_translate.payload_parse({"lines": [{"sku": "W-1", "quantity": 1}]})


def test_a_tracker_refresh_renaming_a_status_keeps_the_event_id():
    # On a refresh Karrio renames the first in_transit event to picked_up when there is none; the
    # carrier's event (time + code) is the same, so the hub must see the same event id.
    body = json.loads(raw("tracker_in_transit"))
    before = run(body)
    body["data"]["events"][0]["status"] = "picked_up"
    after = run(body)
    assert [m["event_id"] for m in after] == [m["event_id"] for m in before]
    assert after[0]["event_type"] == "DEPARTED_PICKUP"
