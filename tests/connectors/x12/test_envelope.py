"""X12 reading and envelope checks: tolerant input (delimiters from ISA, any terminator, BOM, CRLF,
indentation, non-fixed-width ISA, several interchanges, bare sets) and broken variants rejected with the
precise reason (segment, line, element, expected vs found) at the level the module docstring documents."""

from __future__ import annotations

import pytest

from connectors.errors import ParseError
from connectors.x12 import parser
from tests.connectors.x12.support import CONFIG, CONNECTOR_INSTANCE, FIXTURES, outcome, request

EDIFABRIC = (FIXTURES / "214_edifabric_shipmentstatus.edi").read_bytes()
CANADAPOST = (FIXTURES / "214_canadapost_omniparser.edi").read_bytes()
NODE990 = (FIXTURES / "990_nodex12edi_multi.edi").read_bytes()


def _clean_214(terminator: str = "~", element: str = "*", newline: str = "\n") -> bytes:
    """A well-formed one-set 214 interchange (fixed-width ISA) with the given delimiters."""
    segments = [
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240301*1200*U*00401*000000042*0*P*>",
        "GS*QM*SENDER*RECEIVER*20240301*1200*42*X*004010",
        "ST*214*0001",
        "B10*PRO1*SHP-1*ABCD",
        "LX*1",
        "AT7*X3*NS***20240301*0830*ET",
        "MS1*CHICAGO*IL*US",
        "SE*6*0001",
        "GE*1*42",
        "IEA*1*000000042",
    ]
    text = newline.join(s.replace("*", element) + terminator for s in segments)
    return text.encode()


def _docs(body: bytes):
    return CONNECTOR_INSTANCE.parse(request(body), CONFIG)


def _canonical(body: bytes):
    parsed = _docs(body)
    return [CONNECTOR_INSTANCE.map(d, CONFIG, None) for d in parsed.documents]


# --- Tolerant reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terminator", "element", "newline"),
    [
        ("~", "*", "\n"),
        ("~", "*", "\r\n"),
        ("~", "*", ""),
        ("\n", "*", ""),
        ("|", "*", "\n"),
        (".", "^", ""),
        ("'", "+", "\r\n"),
    ],
)
def test_any_terminator_and_element_separator_taken_from_the_isa_read_the_same(terminator, element, newline):
    expected = _canonical(_clean_214())

    assert _canonical(_clean_214(terminator, element, newline)) == expected
    assert expected[0][0]["event_type"] == "ARRIVED_AT_PICKUP"
    assert expected[0][0]["occurred_at"] == "2024-03-01T13:30:00Z"  # 08:30 Eastern (EST) in UTC


def test_bom_crlf_indentation_and_blank_lines_are_skipped():
    body = _clean_214()
    indented = b"\xef\xbb\xbf\r\n" + b"\r\n".join(b"   " + line for line in body.split(b"\n")) + b"\r\n\r\n"

    assert _canonical(indented) == _canonical(body)
    assert _docs(indented).problems == []


def test_non_fixed_width_isa_is_read_and_reported_as_a_warning():
    parsed = _docs(NODE990)

    assert len(parsed.documents) == 3
    assert parsed.problems == [
        "ISA: ISA is not fixed-width; read by counting separators (expected '106 characters', found '79 characters')"
    ]


def test_bare_transaction_sets_without_envelope_are_read_but_not_acknowledged():
    body = b"ST*214*0001~\nB10*PRO1*SHP-1*ABCD~\nLX*1~\nAT7*D1*NS***20240301*0830*UT~\nSE*5*0001~\n" * 1
    body += b"ST*214*0002~\nB10*PRO2*SHP-2*ABCD~\nLX*1~\nAT7*X1*NS***20240301*0900*UT~\nSE*5*0002~\n"

    parsed = _docs(body)

    assert [d["control_number"] for d in parsed.documents] == ["0001", "0002"]
    assert parsed.acknowledgements == []
    assert [c[0]["event_type"] for c in _canonical(body)] == ["DELIVERED", "ARRIVED_AT_DELIVERY"]
    assert CONNECTOR_INSTANCE.natural_id(request(body), CONFIG) is None


def test_two_interchanges_with_different_delimiters_in_one_message():
    body = _clean_214() + _clean_214("|", "^", "\n").replace(b"000000042", b"000000043")

    parsed = _docs(body)

    assert len(parsed.documents) == 2
    assert [a["interchange"]["control_number"] for a in parsed.acknowledgements] == ["000000042", "000000043"]


def test_several_groups_in_one_interchange_each_get_a_result():
    body = _clean_214().decode()
    group = body[body.index("GS*") : body.index("IEA*")]
    second = group.replace("*42*", "*43*").replace("GE*1*42", "GE*1*43")
    twice = body.replace(group, group + second).replace("IEA*1*", "IEA*2*").encode()

    parsed = _docs(twice)

    assert [a["control_number"] for a in parsed.acknowledgements] == ["42", "43"]
    assert parsed.problems == []


def test_bytes_that_are_not_utf8_are_read_as_latin1_with_a_warning():
    body = _clean_214().replace(b"CHICAGO", b"CHICAG\xd6")

    parsed = _docs(body)

    assert parsed.problems[0].startswith("not UTF-8 from byte")
    assert _canonical(body)[0][0]["location"]["name"] == "CHICAGÖ, IL, US"


def test_data_after_the_last_iea_is_ignored_with_a_warning():
    parsed = _docs(_clean_214() + b"\nGARBAGE TRAILER")

    assert len(parsed.documents) == 1
    assert parsed.problems == ["data after the last IEA ignored from line 11: 'GARBAGE TRAILER'"]


def test_zero_padded_counts_are_compared_as_numbers():
    parsed = _docs(CANADAPOST)  # GE*000019, IEA*00001, SE*0000000013

    assert parsed.problems == []
    assert parsed.acknowledgements[0]["status"] == "A"


def test_natural_id_is_sender_and_interchange_control_number():
    assert CONNECTOR_INSTANCE.natural_id(request(EDIFABRIC), CONFIG) == "isa:16:SENDER1:000000263"
    assert CONNECTOR_INSTANCE.natural_id(request(b"not x12"), CONFIG) is None
    assert CONNECTOR_INSTANCE.natural_id(request(b"ISA*00*"), CONFIG) is None


# --- Interchange level: unreadable or truncated rejects the message; a faulty trailer is a warning ----


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty message: no X12 segments"),
        (b"   \r\n", "empty message: no X12 segments"),
        (
            b"hello world",
            "not an X12 message: expected ISA, GS or ST at the start, found 'hello world' (at line 1)",
        ),
        (b'{"eventType": "x"}', "not an X12 message"),
        (b"ISA*00*   *00", "truncated ISA segment: 3 of 16 element separators '*' found (at line 1)"),
        (b"ISA100*", "ISA: the 4th character must be the element separator, found '1'"),
    ],
)
def test_garbage_and_truncated_isa_are_rejected_with_the_reason(body, message):
    with pytest.raises(ParseError) as caught:
        _docs(body)

    assert message in str(caught.value)
    assert caught.value.stage == "parse"


def test_json_sent_to_the_x12_connector_names_the_content_type():
    with pytest.raises(ParseError, match="reads X12 text, not application/json"):
        CONNECTOR_INSTANCE.parse(request(b'{"a": 1}', "application/json"), CONFIG)


def test_wrong_interchange_control_number_in_iea_is_a_warning_and_the_set_is_read():
    body = _clean_214().replace(b"IEA*1*000000042", b"IEA*1*000000043")

    parsed = _docs(body)

    assert parsed.problems == [
        "IEA02 at segment 10 IEA (line 10): interchange control number differs from ISA13; the groups inside "
        "were each checked (expected '000000042', found '000000043')"
    ]
    assert parsed.documents[0]["rejected"] == []
    assert _canonical(body) == _canonical(_clean_214())


@pytest.mark.parametrize(
    "cut", [b"IEA*1*000000042~", b"GE*1*42~\nIEA*1*000000042~", b"SE*6*0001~\nGE*1*42~\nIEA*1*000000042~"]
)
def test_truncated_interchange_without_iea_rejects_the_message(cut):
    body = _clean_214()
    truncated = body[: body.index(cut)]

    with pytest.raises(
        ParseError, match=r"interchange '000000042' has no IEA trailer: the message ends at segment \d+"
    ):
        _docs(truncated)


def test_isa_inside_an_open_interchange_rejects_the_message():
    body = _clean_214().replace(b"\nIEA*1*000000042~", b"") + b"\n" + _clean_214()

    with pytest.raises(
        ParseError, match=r"ISA at segment 10 ISA .* inside interchange '000000042', whose IEA is missing"
    ):
        _docs(body)


def test_wrong_group_count_in_iea_is_a_warning():
    parsed = _docs(_clean_214().replace(b"IEA*1*", b"IEA*3*"))

    assert parsed.problems == [
        "IEA01 at segment 10 IEA (line 10): number of functional groups does not match; the groups present were "
        "each checked (expected '1', found '3')"
    ]
    assert parsed.documents[0]["rejected"] == []


# --- Group-level problems ---------------------------------------------------------------------------


def test_wrong_group_control_number_in_ge_is_a_warning_and_the_997_notes_it():
    parsed = _docs(_clean_214().replace(b"GE*1*42", b"GE*1*41"))

    assert parsed.documents[0]["rejected"] == []
    assert parsed.problems == [
        "GE02 at segment 9 GE (line 9): control number differs from GS06; the sets inside were each checked "
        "(expected '42', found '41')"
    ]
    ack = parsed.acknowledgements[0]
    assert (ack["status"], ack["codes"], ack["accepted"]) == ("E", ["4"], 1)
    assert CONNECTOR_INSTANCE.map(parsed.documents[0], CONFIG, None)[0]["event_type"] == "ARRIVED_AT_PICKUP"


def test_wrong_set_count_in_ge_is_a_warning_and_the_997_notes_it():
    parsed = _docs(EDIFABRIC)  # GE*2 with one set, in the published sample itself

    assert parsed.documents[0]["rejected"] == []
    ack = parsed.acknowledgements[0]
    assert (ack["status"], ack["codes"], ack["included"], ack["received"], ack["accepted"]) == (
        "E",
        ["5"],
        2,
        1,
        1,
    )


def test_missing_ge_rejects_the_group():
    body = _clean_214().replace(b"GE*1*42~\n", b"")

    parsed = _docs(body)

    assert parsed.documents[0]["rejected"] == [
        "group '42' rejected: GE at segment 2 GS (line 2): functional group '42' has no GE trailer: it ends at "
        "segment 9 IEA (line 9) (expected 'GE*1*42', found 'IEA')"
    ]
    assert parsed.acknowledgements[0]["codes"] == ["3"]


def test_non_numeric_group_control_number_rejects_the_group():
    body = _clean_214().replace(b"*42*X*", b"*4X*X*").replace(b"GE*1*42", b"GE*1*4X")

    parsed = _docs(body)

    assert parsed.acknowledgements[0]["codes"] == ["6"]
    assert parsed.documents[0]["rejected"][0].startswith("group '4X' rejected: GS06")


def test_segment_between_sets_is_a_group_warning():
    body = _clean_214().replace(b"ST*214", b"ZZZ*1~\nST*214")

    parsed = _docs(body)

    assert parsed.problems == [
        "ZZZ at segment 3 ZZZ (line 3): segment outside any transaction set (ST..SE); ignored"
    ]
    assert parsed.acknowledgements[0]["status"] == "E"
    assert parsed.documents[0]["rejected"] == []


# --- Set-level problems -----------------------------------------------------------------------------


def _only_set(body: bytes) -> tuple[dict, dict]:
    parsed = _docs(body)
    assert len(parsed.documents) == 1
    return parsed.documents[0], parsed.acknowledgements[0]["sets"][0]


def test_wrong_segment_count_in_se_rejects_the_set_naming_expected_and_found():
    document, ack = _only_set(_clean_214().replace(b"SE*6*", b"SE*7*"))

    assert document["rejected"] == [
        "SE01 at segment 8 SE (line 8): segment count (ST..SE inclusive) does not match (expected '6', found '7')"
    ]
    assert (ack["status"], ack["codes"]) == ("R", ["4"])


def test_wrong_set_control_number_in_se_rejects_the_set():
    document, ack = _only_set(_clean_214().replace(b"SE*6*0001", b"SE*6*0002"))

    assert document["rejected"] == [
        "SE02 at segment 8 SE (line 8): control number differs from ST02 (expected '0001', found '0002')"
    ]
    assert (ack["status"], ack["codes"]) == ("R", ["3"])


def test_missing_se_rejects_the_set():
    document, ack = _only_set(_clean_214().replace(b"SE*6*0001~\n", b""))

    assert document["rejected"] == [
        "SE at segment 3 ST (line 3): transaction set '0001' has no SE trailer: it ends at segment 8 GE (line 8) "
        "(expected 'SE*6*0001', found 'GE')"
    ]
    assert (ack["status"], ack["codes"]) == ("R", ["2"])


def test_next_st_before_se_rejects_only_the_unterminated_set():
    body = _clean_214().decode()
    st_set = body[body.index("ST*") : body.index("GE*")]
    unterminated = st_set.replace("SE*6*0001~\n", "")
    second = st_set.replace("0001", "0002")
    message = body.replace(st_set, unterminated + second).replace("GE*1*", "GE*2*").encode()

    parsed = _docs(message)

    assert [bool(d["rejected"]) for d in parsed.documents] == [True, False]
    assert [s["status"] for s in parsed.acknowledgements[0]["sets"]] == ["R", "A"]
    assert parsed.acknowledgements[0]["status"] == "P"


def test_unsupported_transaction_set_is_rejected():
    body = _clean_214().replace(b"ST*214", b"ST*810").replace(b"GS*QM", b"GS*IN")

    document, ack = _only_set(body)

    assert document["rejected"] == [
        "ST01 at segment 3 ST (line 3): transaction set not supported by this connector "
        "(expected '204 or 210 or 214 or 990 or 997', found '810')"
    ]
    assert (ack["status"], ack["codes"]) == ("R", ["1"])


def test_repeated_set_control_number_in_a_group_rejects_the_repeat():
    body = _clean_214().decode()
    st_set = body[body.index("ST*") : body.index("GE*")]
    message = body.replace(st_set, st_set + st_set).replace("GE*1*", "GE*2*").encode()

    parsed = _docs(message)

    assert [d["rejected"] for d in parsed.documents][1] == [
        "ST02 at segment 9 ST (line 9): control number already used by another set in this group "
        "(expected 'a number unique within the group', found '0001')"
    ]
    assert parsed.acknowledgements[0]["sets"][1]["codes"] == ["23"]


def test_garbage_segment_inside_a_set_rejects_it_with_an_ak3():
    document, ack = _only_set(_clean_214().replace(b"LX*1~", b"lx 1~").replace(b"SE*6", b"SE*6"))

    assert document["rejected"] == [
        "segment id at segment 5 lx 1 (line 5): unrecognized segment id (expected '2-3 upper-case letters or digits', "
        "found 'lx 1')"
    ]
    assert ack["segment_errors"] == [{"segment": "lx ", "position": 3, "code": "1", "elements": []}]


def test_invalid_date_and_time_reject_the_set_with_ak3_and_ak4():
    document, ack = _only_set(_clean_214().replace(b"20240301*0830", b"20240231*2530"))

    assert document["rejected"] == [
        "AT705 at segment 6 AT7 (line 6): invalid date (expected 'CCYYMMDD', found '20240231')",
        "AT706 at segment 6 AT7 (line 6): invalid time (expected 'HHMM, HHMMSS or HHMMSSd[d]', found '2530')",
    ]
    assert ack["segment_errors"] == [
        {
            "segment": "AT7",
            "position": 4,
            "code": "8",
            "elements": [
                {"position": 5, "reference": "373", "code": "8", "data": "20240231"},
                {"position": 6, "reference": "337", "code": "9", "data": "2530"},
            ],
        }
    ]
    assert ack["codes"] == ["5"]


def test_missing_mandatory_segment_rejects_the_set():
    document, ack = _only_set(_clean_214().replace(b"B10*PRO1*SHP-1*ABCD~\n", b"").replace(b"SE*6", b"SE*5"))

    assert document["rejected"] == [
        "B10 at segment 3 ST (line 3): mandatory segment B10 missing from the 214 (expected 'B10', found None)"
    ]
    assert ack["segment_errors"] == [{"segment": "B10", "position": 2, "code": "3", "elements": []}]


def test_functional_identifier_that_does_not_fit_the_set_is_a_warning():
    document, ack = _only_set(_clean_214().replace(b"GS*QM", b"GS*IN"))

    assert document["rejected"] == []
    assert document["warnings"] == [
        "GS01 at segment 2 GS (line 2): GS01 functional identifier does not fit a 214 (expected 'QM', found 'IN')"
    ]
    assert ack["status"] == "E"


def test_997_groups_are_never_acknowledged():
    assert outcome((FIXTURES / "997_edifabric.edi").read_bytes())["acknowledgements"] == []


def test_problem_text_names_segment_line_element_expected_and_found():
    problem = parser.Problem(
        "SE01_COUNT",
        parser.REJECT,
        "set",
        "segment count differs",
        parser.Segment(("SE", "9", "1"), 14, 12),
        "SE01",
        "8",
        "9",
    )

    assert str(problem) == "SE01 at segment 14 SE (line 12): segment count differs (expected '8', found '9')"
