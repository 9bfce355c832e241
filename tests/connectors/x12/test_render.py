"""Outbound X12: a 204 load tender from a canonical shipment, a 997 per received group and a TA1 per
received interchange, each read back through our own parser (round trips), plus control-number handling."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.errors import MappingError
from connectors.x12 import Config, ControlNumbers, next_control_number, render_204, render_997, render_ta1
from connectors.x12 import parser as x12_parser
from tests.connectors.x12.support import CONNECTOR_INSTANCE, FIXTURES, SAMPLES, request

NOW = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
CONFIG = Config(sender_id="CROSSDOCK", receiver_id="ABCDCARRIER", receiver_id_qualifier="02")
CONTROL = ControlNumbers(interchange=1234, group=77, transaction_set=5)

SHIPMENT = {
    "kind": "shipment",
    "reference": "SHP-1001",
    "purpose": "ORIGINAL",
    "carrier": {"scac": "ABCD"},
    "payment_method": "PP",
    "references": [{"qualifier": "PO", "value": "PO-55"}],
    "notes": ["Dock 4*, call ahead~"],
    "parties": [
        {
            "role": "SH",
            "name": "ACME WIDGETS",
            "code": "ACME",
            "address_line": "1 MAIN ST",
            "city": "CHICAGO",
            "region": "IL",
            "postal_code": "60601",
            "country": "US",
        }
    ],
    "stops": [
        {
            "sequence": 1,
            "kind": "PICKUP",
            "location": {
                "code": "USCHI-DC1",
                "name": "ACME DC 1",
                "address_line": "1 MAIN ST",
                "city": "CHICAGO",
                "region": "IL",
                "postal_code": "60601",
                "country": "US",
            },
            "planned_start": "2026-11-21T08:00:00-06:00",
            "planned_end": "2026-11-21T12:00:00-06:00",
            "references": [{"qualifier": "BM", "value": "BOL-1"}],
        },
        {
            "sequence": 2,
            "kind": "DELIVERY",
            "location": {
                "code": "USGRY-ST7",
                "name": "STORE 7",
                "city": "GARY",
                "region": "IN",
                "postal_code": "46402",
                "country": "US",
            },
            "planned_start": "2026-11-22T09:00:00Z",
        },
    ],
}


def _read(body: bytes):
    return CONNECTOR_INSTANCE.parse(request(body), CONFIG)


def test_204_is_a_valid_interchange_with_a_fixed_width_isa_and_right_counts():
    body = render_204(SHIPMENT, CONFIG, control=CONTROL, now=NOW)
    segments = body.decode().split("~")

    assert segments[0] == (
        "ISA*00*          *00*          *ZZ*CROSSDOCK      *02*ABCDCARRIER    *261120*1405*U*00401*000001234*0*P*>"
    )
    assert len(segments[0]) + 1 == 106
    assert segments[1] == "GS*SM*CROSSDOCK*ABCDCARRIER*20261120*1405*77*X*004010"
    assert segments[2:5] == ["ST*204*0005", "B2**ABCD**SHP-1001**PP", "B2A*00"]
    assert "S5*1*LD" in segments and "S5*2*UL" in segments
    assert "G62*37*20261121*I*1400*UT" in segments  # 08:00 Chicago = 14:00 UTC
    assert segments[-3:] == ["GE*1*77", "IEA*1*000001234", ""]
    parsed = _read(body)
    assert parsed.problems == []
    assert parsed.documents[0]["rejected"] == []


def test_204_round_trips_through_our_parser():
    parsed = _read(render_204(SHIPMENT, CONFIG, control=CONTROL, now=NOW))
    shipment = CONNECTOR_INSTANCE.map(parsed.documents[0], CONFIG, None)[0]

    assert (shipment["reference"], shipment["carrier"], shipment["purpose"], shipment["payment_method"]) == (
        "SHP-1001",
        {"scac": "ABCD"},
        "ORIGINAL",
        "PP",
    )
    assert shipment["references"] == [{"qualifier": "PO", "value": "PO-55"}]
    assert shipment["notes"] == ["Dock 4 , call ahead"]  # delimiters in text become spaces
    assert [(p["role"], p["name"], p["id"], p["city"]) for p in shipment["parties"]] == [
        ("SH", "ACME WIDGETS", "ACME", "CHICAGO")
    ]
    stops = [
        (
            s["sequence"],
            s["kind"],
            s["location"]["code"],
            s["location"]["name"],
            s["planned_start"],
            s["planned_end"],
        )
        for s in shipment["stops"]
    ]
    assert stops == [
        (1, "PICKUP", "USCHI-DC1", "ACME DC 1", "2026-11-21T14:00:00Z", "2026-11-21T18:00:00Z"),
        (2, "DELIVERY", "USGRY-ST7", "STORE 7", "2026-11-22T09:00:00Z", None),
    ]
    assert shipment["stops"][0]["references"] == [{"qualifier": "BM", "value": "BOL-1"}]
    assert shipment["stops"][0]["location"]["address_line"] == "1 MAIN ST"
    assert shipment["source"]["interchange_control_number"] == "000001234"


def test_204_with_other_delimiters_and_line_breaks_round_trips():
    config = Config(
        sender_id="CROSSDOCK",
        receiver_id="ABCD",
        element_separator="|",
        segment_terminator="'",
        component_separator=":",
        newline_after_segment=True,
    )
    body = render_204(SHIPMENT, config, control=CONTROL, now=NOW)

    assert body.count(b"'\n") == body.count(b"'") == 24
    shipment = CONNECTOR_INSTANCE.map(_read(body).documents[0], config, None)[0]
    assert shipment["reference"] == "SHP-1001"
    assert shipment["notes"] == ["Dock 4*, call ahead~"]  # not delimiters under this config: kept


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reference": ""}, "reference"),
        ({"carrier": {}}, "carrier.scac"),
        ({"stops": []}, "stops"),
        ({"stops": [{"sequence": 1, "kind": "PICKUP", "location": {}}]}, "stops.0.location.code"),
        ({"stops": [{"sequence": 1, "kind": "HOVER", "location": {"code": "X"}}]}, "stops.0.kind"),
        (
            {
                "stops": [
                    {
                        "sequence": 1,
                        "kind": "PICKUP",
                        "location": {"code": "X"},
                        "planned_start": "2026-11-21T08:00",
                    }
                ]
            },
            "stops.0.planned_start",
        ),
    ],
)
def test_204_refuses_a_shipment_it_cannot_tender_naming_the_field(change, field):
    with pytest.raises(MappingError) as caught:
        render_204({**SHIPMENT, **change}, CONFIG, control=CONTROL, now=NOW)

    assert caught.value.field == field


def test_204_needs_both_interchange_ids():
    with pytest.raises(MappingError) as caught:
        render_204(SHIPMENT, Config(sender_id="CROSSDOCK"), control=CONTROL, now=NOW)

    assert caught.value.field == "config.receiver_id"


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if "997" not in s.name and "st_only" not in s.name], ids=lambda p: p.stem
)
def test_997_for_every_received_group_round_trips(sample):
    results = _read(sample.read_bytes()).acknowledgements
    assert results

    for number, result in enumerate(results, start=1):
        ack_body = render_997(result, Config(), control=ControlNumbers(number, number), now=NOW)
        parsed = _read(ack_body)
        assert parsed.problems == []
        assert parsed.acknowledgements == []  # a 997 is never acknowledged
        ack = CONNECTOR_INSTANCE.map(parsed.documents[0], CONFIG, None)[0]
        assert ack["acknowledged"] == {
            "functional_id": result["functional_id"],
            "control_number": result["control_number"],
        }
        assert (ack["status"], ack["codes"], ack["included"], ack["received"], ack["accepted"]) == (
            result["status"],
            result["codes"],
            result["included"],
            result["received"],
            result["accepted"],
        )
        assert [(s["id"], s["control_number"], s["status"], s["codes"]) for s in ack["sets"]] == [
            (s["id"], s["control_number"], s["status"], s["codes"]) for s in result["sets"]
        ]
        # addressed back to the sender of the group (taken from the interchange when config is empty)
        interchange = parsed.documents[0]["interchange"]
        assert interchange["receiver_id"] == result["interchange"]["sender_id"]


def test_997_for_a_rejected_set_carries_ak3_and_ak4():
    bad = b"".join(
        line + b"~"
        for line in [
            b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240301*1200*U*00401*000000042*0*P*>",
            b"GS*QM*SENDER*RECEIVER*20240301*1200*42*X*004010",
            b"ST*214*0001",
            b"B10*PRO1*SHP-1*ABCD",
            b"LX*1",
            b"AT7*X3*NS***20240231*0830*ET",
            b"SE*5*0001",
            b"GE*1*42",
            b"IEA*1*000000042",
        ]
    )
    result = _read(bad).acknowledgements[0]

    body = render_997(result, CONFIG, control=ControlNumbers(9, 9), now=NOW).decode()

    assert "AK1*QM*42~AK2*214*0001~AK3*AT7*4**8~AK4*5*373*8*20240231~AK5*R*5~AK9*R*1*1*0~" in body
    assert body.startswith("ISA*00*          *00*          *ZZ*CROSSDOCK      *02*ABCDCARRIER    *")


def test_ta1_alone_reads_back_through_our_parser_with_other_delimiters():
    faulty = (
        (FIXTURES / "214_canadapost_omniparser.edi").read_bytes().replace(b"IEA*00001*000001644", b"IEA*1*9")
    )
    received = CONNECTOR_INSTANCE.parse(request(faulty), Config(send_997=False, send_ta1="errors"))
    (result,) = received.interchange_acknowledgements
    config = Config(
        sender_id="CROSSDOCK",
        receiver_id="CPC",
        element_separator="|",
        segment_terminator="'",
        newline_after_segment=True,
    )

    body = render_ta1(result, config, control=3, now=NOW)

    (interchange,) = x12_parser.read(body).interchanges
    assert (interchange.groups, interchange.problems) == ([], [])
    assert interchange.control_number == "000000003"
    assert [s.elements for s in interchange.ta1_segments] == [
        ("TA1", "000001644", "191103", "1800", "E", "001")
    ]
    assert body.endswith(b"TA1|000001644|191103|1800|E|001'\nIEA|0|000000003'\n")


def test_997_carrying_a_ta1_reads_back_with_the_ta1_before_the_group():
    result = _read((FIXTURES / "214_edifabric_shipmentstatus.edi").read_bytes()).acknowledgements[0]

    body = render_997(result, CONFIG, control=ControlNumbers(5, 6), now=NOW)

    (interchange,) = x12_parser.read(body).interchanges
    assert [s.elements for s in interchange.ta1_segments] == [
        ("TA1", "000000263", "071216", "1406", "A", "000")
    ]
    assert interchange.ta1_segments[0].number == 2  # right after the ISA, before the GS
    assert [g.functional_id for g in interchange.groups] == ["FA"]


@pytest.mark.parametrize("bad", [0, 1_000_000_000, "7"])
def test_ta1_control_number_is_validated(bad):
    result = {"control_number": "1", "date": "260101", "time": "0000", "status": "A", "note": "000"}
    with pytest.raises(ValueError, match=r"control number must be 1\.\.999999999"):
        render_ta1(result, CONFIG, control=bad, now=NOW)


def test_control_numbers_are_validated_and_wrap():
    assert next_control_number(None) == 1
    assert next_control_number(41) == 42
    assert next_control_number(999_999_999) == 1
    for bad in (0, -1, 1_000_000_000):
        with pytest.raises(ValueError, match=r"control number must be 1\.\.999999999"):
            ControlNumbers(interchange=bad, group=1)


def test_config_refuses_clashing_or_alphanumeric_delimiters():
    with pytest.raises(ValueError, match="must all differ"):
        Config(element_separator="~")
    with pytest.raises(ValueError, match="cannot be a letter, digit or space"):
        Config(segment_terminator="A")
