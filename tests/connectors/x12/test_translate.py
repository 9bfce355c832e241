"""X12 code maps as data: AT7 status/reason and time codes through the connection's mappings (per-partner
overrides, MappingError naming unknown codes), the packaged maps checked against the published code lists,
and the 990/210/204 specifics."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from canonical.contracts.v1 import EventType
from connectors import mapping as mapping_lib
from connectors.errors import MappingError
from connectors.x12 import CONNECTOR, DEFAULT_MAPPINGS
from connectors.x12 import translate as x12_translate
from tests.connectors.x12.support import CONFIG, CONNECTOR_INSTANCE, FIXTURES, request

CODELISTS = FIXTURES / "codelists"
PACKAGE = Path(CONNECTOR.connector.__module__.replace(".", "/"))


def _mappings(override: dict | None = None) -> mapping_lib.MappingSet:
    return mapping_lib.MappingSet.from_data(mapping_lib.merge(DEFAULT_MAPPINGS["inbound"], override))


def _214(at7: str, *, b10: str = "B10*PRO1*SHP-1*ABCD", extra: str = "") -> bytes:
    body = "~\n".join(["ST*214*0001", b10, "LX*1", at7, *([extra] if extra else [])]).split("~\n")
    body.append(f"SE*{len(body) + 1}*0001")
    return "~\n".join(body).encode() + b"~\n"


def _map(body: bytes, mappings=None):
    document = CONNECTOR_INSTANCE.parse(request(body), CONFIG).documents[0]
    assert document["rejected"] == []
    return CONNECTOR_INSTANCE.map(document, CONFIG, mappings)


def _codes(name: str) -> dict[str, str]:
    with (CODELISTS / name).open(encoding="utf-8") as handle:
        return {row["code"]: row["description"] for row in csv.DictReader(handle)}


# --- The packaged maps ------------------------------------------------------------------------------


def test_packaged_mappings_are_valid_against_the_connectors_targets():
    for direction in ("inbound", "outbound"):
        assert mapping_lib.validate(DEFAULT_MAPPINGS[direction], CONNECTOR.mapping_targets) == []


def test_every_at7_status_in_the_map_is_a_published_1650_code():
    published = _codes("x12_1650_shipment_status_stedi_004030.csv") | _codes(
        "x12_1650_shipment_status_ustranscom_dteb.csv"
    )
    mapped = DEFAULT_MAPPINGS["inbound"]["codes"]["at7_status"]

    assert set(mapped) <= set(published)
    assert {"AF", "D1", "X1", "X3", "AH", "AP", "CA", "XB"} <= set(mapped)  # the codes the samples use


def test_every_status_reason_pair_uses_published_codes():
    statuses = _codes("x12_1650_shipment_status_stedi_004030.csv")
    reasons = _codes("x12_1651_status_reason_stedi_005010_PARTIAL.csv")

    for key in DEFAULT_MAPPINGS["inbound"]["codes"]["at7_status_reason"]:
        status, reason = key.split("/")
        assert status in statuses and reason in reasons, key


def test_field_defaults_in_the_json_match_the_code_fallbacks():
    assert DEFAULT_MAPPINGS["inbound"]["fields"] == x12_translate.DEFAULT_PATHS


def test_every_time_code_maps_to_a_zone_or_an_offset():
    for code in DEFAULT_MAPPINGS["inbound"]["codes"]["time_code"]:
        x12_translate.zone_for(_mappings(), code, "AT7[07]", "test")


# --- AT7 status and reason --------------------------------------------------------------------------


def test_at7_status_maps_through_the_code_map():
    events = _map(_214("AT7*D1*NS***20240301*0830*UT"))

    assert [(e["event_type"], e["reason_code"], e["occurred_at"]) for e in events] == [
        ("DELIVERED", "NS", "2024-03-01T08:30:00Z")
    ]


def test_unknown_at7_status_raises_mapping_error_naming_the_element_and_code():
    with pytest.raises(MappingError) as caught:
        _map(_214("AT7*ZZ*NS***20240301*0830*UT"))

    assert caught.value.field == "AT7[01]"
    assert caught.value.value == "ZZ"
    assert caught.value.stage == "map"
    assert str(caught.value) == "unmapped at7_status code 'ZZ' (in 214 '0001' position 4)"


def test_a_partner_override_changes_the_status_meaning():
    body = _214("AT7*XB*NS***20240301*0830*UT")

    default = _map(body)[0]["event_type"]
    dod = _map(body, _mappings({"codes": {"at7_status": {"XB": "POD_RECEIVED"}}}))[0]["event_type"]

    assert (default, dod) == ("TENDER_ACCEPTED", "POD_RECEIVED")


def test_status_and_reason_pair_wins_over_the_status_alone():
    assert _map(_214("AT7*SD*AY***20240301*0830*UT"))[0]["event_type"] == "MISSED_PICKUP"
    assert _map(_214("AT7*SD*A1***20240301*0830*UT"))[0]["event_type"] == "DELAYED"


def test_estimates_and_appointments_are_not_milestones():
    assert _map(_214("AT7*AG*NS***20240301*0830*UT")) == []
    assert _map(_214("AT7***AA**20240301*0830*UT")) == []


def test_at7_without_status_or_appointment_is_a_mapping_error():
    with pytest.raises(MappingError, match="neither a shipment status"):
        _map(_214("AT7*****20240301*0830*UT"))


def test_each_at7_is_one_event_with_its_own_ms1_location_and_ms2_equipment():
    body = _214(
        "AT7*X3*NS***20240301*0830*UT",
        extra="MS1*CHICAGO*IL*US~\nMS2*ABCD*TRL123~\nAT7*AF*NS***20240301*0945*UT~\nMS1*GARY*IN*US",
    )

    events = _map(body)

    assert [(e["event_type"], e["location"]["code"]) for e in events] == [
        ("ARRIVED_AT_PICKUP", "CHICAGO,IL,US"),
        ("DEPARTED_PICKUP", "GARY,IN,US"),
    ]
    assert events[0]["details"]["equipment"] == {"scac": "ABCD", "number": "TRL123"}
    assert "equipment" not in events[1]["details"]


def test_shipment_reference_comes_from_b10_02_then_b10_01_or_a_partner_path():
    assert _map(_214("AT7*D1*NS***20240301*0830*UT"))[0]["shipment"]["reference"] == "SHP-1"
    assert (
        _map(_214("AT7*D1*NS***20240301*0830*UT", b10="B10*PRO1**ABCD"))[0]["shipment"]["reference"] == "PRO1"
    )
    by_l11 = _mappings({"fields": {"214.shipment_reference": "refs.L11.BM"}})
    body = _214("AT7*D1*NS***20240301*0830*UT", b10="B10*PRO1*SHP-1*ABCD~\nL11*BOL-9*BM")
    assert _map(body, by_l11)[0]["shipment"]["reference"] == "BOL-9"


def test_missing_shipment_reference_is_a_mapping_error():
    with pytest.raises(
        MappingError, match=re.escape("no shipment reference: first.B10.2|first.B10.1 is empty")
    ):
        _map(_214("AT7*D1*NS***20240301*0830*UT", b10="B10***ABCD"))


# --- Time codes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "time", "code", "utc"),
    [
        ("20240701", "0830", "CT", "2024-07-01T13:30:00Z"),  # Central daylight time in July
        ("20240115", "0830", "CT", "2024-01-15T14:30:00Z"),  # Central standard time in January
        ("20240701", "0830", "CS", "2024-07-01T14:30:00Z"),  # "standard" is fixed, whatever the date
        ("20240701", "0830", "ED", "2024-07-01T12:30:00Z"),
        ("20240701", "083015", "UT", "2024-07-01T08:30:15Z"),
        ("20240701", "0830", "GM", "2024-07-01T08:30:00Z"),
        ("20240701", "0830", "05", "2024-07-01T03:30:00Z"),  # ISO P05
        ("20240701", "0830", "20", "2024-07-01T13:30:00Z"),  # ISO M05
        ("20240701", "0830", "NS", "2024-07-01T12:00:00Z"),  # Newfoundland standard, -03:30
    ],
)
def test_time_codes_give_the_utc_instant(day, time, code, utc):
    assert _map(_214(f"AT7*D1*NS***{day}*{time}*{code}"))[0]["occurred_at"] == utc


@pytest.mark.parametrize("code", ["", "LT"])
def test_local_or_blank_time_code_is_never_guessed(code):
    with pytest.raises(MappingError) as caught:
        _map(_214(f"AT7*D1*NS***20240301*0830*{code}"))

    assert caught.value.field == "AT7[07]"
    assert f"unmapped time_code code {code!r}" in str(caught.value)


def test_a_partner_can_give_its_local_time_a_zone():
    toronto = _mappings({"codes": {"time_code": {"": "America/Toronto", "LT": "America/Toronto"}}})

    assert _map(_214("AT7*D1*NS***20191103*1534*"), toronto)[0]["occurred_at"] == "2019-11-03T20:34:00Z"


def test_a_time_code_mapped_to_nonsense_is_a_mapping_error():
    broken = _mappings({"codes": {"time_code": {"UT": "Mars/Olympus"}}})

    with pytest.raises(MappingError, match="'Mars/Olympus', which is neither an IANA zone nor an offset"):
        _map(_214("AT7*D1*NS***20240301*0830*UT"), broken)


# --- 990, 210, 204 ----------------------------------------------------------------------------------


def _990(action: str) -> bytes:
    return f"ST*990*0001~B1*SCAC*SHP-9*20240301*{action}~SE*3*0001~".encode()


def test_990_accept_and_decline_become_tender_events():
    assert _map(_990("A"))[0]["event_type"] == EventType.TENDER_ACCEPTED
    assert _map(_990("D"))[0]["event_type"] == EventType.TENDER_REJECTED
    assert _map(_990("A"))[0]["occurred_at"] == "2024-03-01T00:00:00Z"
    assert _map(_990("A"))[0]["details"]["date_only"] is True


def test_990_unknown_action_is_a_mapping_error_naming_b1_04():
    with pytest.raises(MappingError) as caught:
        _map(_990("Q"))

    assert (caught.value.field, caught.value.value) == ("B1[04]", "Q")


def test_210_totals_that_disagree_are_flagged_for_audit():
    body = b"ST*210*0001~B3**INV-1*SHP-1*PP**20240301*10000****ABCD~C3*USD~LX*1~L1*1***9000~L1*1***500****FUE~L3*****10000~SE*8*0001~"

    charge = _map(body)[0]

    assert charge["kind"] == "freight_charge"
    assert (charge["total"], charge["charges_total"], charge["totals_agree"]) == ("100.00", "95.00", False)
    assert [(c["kind"], c["amount"]) for c in charge["charges"]] == [("LINEHAUL", "90.00"), ("FUEL", "5.00")]
    assert charge["shipment"] == {"reference": "SHP-1"}


def test_204_bare_sample_maps_once_its_segment_count_is_corrected():
    body = (FIXTURES / "204_st_only_x12types.edi").read_bytes().replace(b"SE*37*", b"SE*29*")

    shipment = _map(body)[0]

    assert (shipment["kind"], shipment["reference"], shipment["carrier"]) == (
        "shipment",
        "6XULT02DCM",
        {"scac": "SNDR"},
    )
    assert [(s["sequence"], s["kind"], s["location"]["code"]) for s in shipment["stops"]] == [
        (1, "PICKUP", "USOAKBNOA"),
        (2, "DELIVERY", "USOAKSSAM"),
    ]
    assert shipment["dates"] == [
        {"qualifier": "04", "date": "2022-11-21", "time": "15:13", "time_code": "LT", "at": None}
    ]


def test_204_unknown_stop_reason_is_a_mapping_error():
    body = (
        (FIXTURES / "204_st_only_x12types.edi")
        .read_bytes()
        .replace(b"SE*37*", b"SE*29*")
        .replace(b"S5*2*DT", b"S5*2*QQ")
    )

    with pytest.raises(MappingError) as caught:
        _map(body)

    assert (caught.value.field, caught.value.value) == ("S5[02]", "QQ")


def test_unmapped_set_type_is_a_mapping_error():
    with pytest.raises(MappingError, match="has no mapping"):
        x12_translate.map_set({"set": "850", "segments": []}, _mappings())


def test_the_golden_samples_use_only_documented_default_mappings():
    # The golden files were produced with DEFAULT_MAPPINGS; a change to inbound.json shows up there too.
    packaged = json.loads(
        (Path(__file__).resolve().parents[3] / PACKAGE / "mappings" / "inbound.json").read_text()
    )

    assert packaged == DEFAULT_MAPPINGS["inbound"]
