"""Real-world envelope defects, each a broken variant of a published sample (Canada Post's 214
interchange, tests/fixtures/x12/214_canadapost_omniparser.edi: ISA13 000001644, ISA09/10 191103 1800,
GS QM 000001644, 19 sets 000000001..000000019, segment and line 251 GE*000019*000001644, segment and
line 252 IEA*00001*000001644), at the level the parser's docstring puts it:

- interchange (IEA02 not ISA13, IEA01 off, odd ISA fields): a warning; every set is still read; a TA1
  says TA104 E with the X12 TA105 note (001, 021, 014, 015, 019);
- group (GE02 not GS06, GE01 off): a warning; every set is still read; the 997's AK9 says E + code;
- set (SE02 not ST02, SE01 off, mandatory segment missing): that set alone rejected (AK5 R + code).

The 997 and TA1 contents are checked segment by segment against values worked out by hand from the
sample (not regenerated snapshots)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.x12 import Config, ControlNumbers, render_997, render_ta1
from tests.connectors.x12.support import CONNECTOR_INSTANCE, FIXTURES, request

CANADAPOST = (FIXTURES / "214_canadapost_omniparser.edi").read_bytes()
NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
OUR_ISA = "ISA*00*          *00*          *ZZ*CROSSDOCK      *ZZ*PARTNER        *261203*1400*U*00401*000000007*0*P*>"
OUR_GS = "GS*FA*CROSSDOCK*PARTNER*20261203*1400*8*X*004010"
CONTROL = ControlNumbers(interchange=7, group=8, transaction_set=1)
SET_NUMBERS = [f"{n:09d}" for n in range(1, 20)]


def _variant(*changes: tuple[bytes, bytes]) -> bytes:
    body = CANADAPOST
    for old, new in changes:
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    return body


def _parse(body: bytes, **config):
    return CONNECTOR_INSTANCE.parse(
        request(body), Config(sender_id="CROSSDOCK", receiver_id="PARTNER", **config)
    )


def _segments(body: bytes) -> list[str]:
    return [s.strip() for s in body.decode().split("~") if s.strip()]


def _all_sets_read(parsed) -> None:
    assert [d["control_number"] for d in parsed.documents] == SET_NUMBERS
    assert [d["rejected"] for d in parsed.documents] == [[]] * 19


def _ak2_ak5_all_accepted() -> list[str]:
    return [seg for number in SET_NUMBERS for seg in (f"AK2*214*{number}", "AK5*A")]


# --- Interchange level: warning, sets read, TA1 E with the note --------------------------------------

IEA02_WRONG = (b"IEA*00001*000001644", b"IEA*00001*000001645")
ASKS_FOR_TA1 = (b"*000001644*0*P*>", b"*000001644*1*P*>")


def test_iea02_not_isa13_is_a_warning_and_every_set_is_read():
    parsed = _parse(_variant(IEA02_WRONG))

    _all_sets_read(parsed)
    assert parsed.problems == [
        "IEA02 at segment 252 IEA (line 252): interchange control number differs from ISA13; the groups "
        "inside were each checked (expected '000001644', found '000001645')"
    ]
    assert parsed.acknowledgements[0]["status"] == "A"  # the group itself is sound
    assert parsed.interchange_acknowledgements == []  # ISA14 0 and the default send_ta1 "requested"


def test_iea02_not_isa13_with_a_ta1_requested_sends_ta1_e_001_ahead_of_the_997():
    parsed = _parse(_variant(IEA02_WRONG, ASKS_FOR_TA1))

    (ack,) = parsed.acknowledgements
    assert ack["ta1"]["status"] == "E" and ack["ta1"]["notes"] == ["001"]
    assert _segments(
        render_997(ack, Config(sender_id="CROSSDOCK", receiver_id="PARTNER"), control=CONTROL, now=NOW)
    ) == [
        OUR_ISA,
        "TA1*000001644*191103*1800*E*001",  # TA101-03: the received ISA13, ISA09, ISA10
        OUR_GS,
        "ST*997*0001",
        "AK1*QM*000001644",
        *_ak2_ak5_all_accepted(),
        "AK9*A*19*19*19",
        "SE*42*0001",  # ST + AK1 + 19 x (AK2, AK5) + AK9 + SE
        "GE*1*8",
        "IEA*1*000000007",
    ]


def test_a_ta1_with_no_997_to_ride_in_is_its_own_interchange():
    parsed = _parse(_variant(IEA02_WRONG), send_997=False, send_ta1="errors")

    assert parsed.acknowledgements == []
    (ta1,) = parsed.interchange_acknowledgements
    config = Config(sender_id="CROSSDOCK", receiver_id="PARTNER", acknowledgment_requested=True)
    assert _segments(render_ta1(ta1, config, control=7, now=NOW)) == [
        OUR_ISA,  # ISA14 0 even though the config asks for acknowledgments: a TA1 is never acknowledged
        "TA1*000001644*191103*1800*E*001",
        "IEA*0*000000007",
    ]


def test_iea01_group_count_off_is_a_warning_and_the_ta1_notes_021():
    parsed = _parse(_variant((b"IEA*00001*", b"IEA*00002*")), send_ta1="errors")

    _all_sets_read(parsed)
    assert parsed.problems == [
        "IEA01 at segment 252 IEA (line 252): number of functional groups does not match; the groups present "
        "were each checked (expected '1', found '00002')"
    ]
    ta1 = parsed.acknowledgements[0]["ta1"]
    assert (ta1["status"], ta1["note"], ta1["notes"]) == ("E", "021", ["021"])


def test_both_interchange_faults_note_the_lowest_code_in_ta105():
    parsed = _parse(_variant((b"IEA*00001*000001644", b"IEA*00002*000001645")), send_ta1="always")

    assert len(parsed.problems) == 2
    ta1 = parsed.acknowledgements[0]["ta1"]
    assert (ta1["status"], ta1["note"], ta1["notes"]) == ("E", "001", ["001", "021"])


@pytest.mark.parametrize(
    ("changes", "element", "note"),
    [
        ([(b"*191103*1800*", b"*191133*1800*")], "ISA09", "014"),  # 3 November -> "33 November"
        ([(b"*191103*1800*", b"*191103*1860*")], "ISA10", "015"),  # 18:60
        ([(b"*000001644*0*P*>", b"*000001644*Y*P*>")], "ISA14", "019"),  # neither 0 nor 1
        ([(b"*U*00401*", b"*^*00401*")], "ISA11", "016"),  # a repetition separator before version 00402
        (  # not 9 digits (IEA02 kept equal, so only the ISA13 syntax is at fault)
            [(b"*000001644*0*P*>", b"*00000164X*0*P*>"), (b"IEA*00001*000001644", b"IEA*00001*00000164X")],
            "ISA13",
            "018",
        ),
    ],
)
def test_odd_but_readable_isa_fields_are_warnings_noted_in_the_ta1(changes, element, note):
    parsed = _parse(_variant(*changes), send_ta1="errors")

    _all_sets_read(parsed)
    (problem,) = parsed.problems
    assert problem.startswith(f"{element} at segment 1 ISA (line 1): ")
    ta1 = parsed.acknowledgements[0]["ta1"]
    assert (ta1["status"], ta1["note"]) == ("E", note)


def test_a_sound_interchange_that_asks_for_a_ta1_gets_a000():
    parsed = _parse(_variant(ASKS_FOR_TA1))

    assert parsed.problems == []
    ta1 = parsed.acknowledgements[0]["ta1"]
    assert (ta1["control_number"], ta1["status"], ta1["note"]) == ("000001644", "A", "000")


def test_send_ta1_never_and_always():
    assert "ta1" not in _parse(_variant(IEA02_WRONG, ASKS_FOR_TA1), send_ta1="never").acknowledgements[0]
    assert _parse(CANADAPOST, send_ta1="always").acknowledgements[0]["ta1"]["status"] == "A"


# --- Group level: warning, sets read, AK9 E with the code --------------------------------------------


def test_ge02_not_gs06_is_a_warning_every_set_is_read_and_the_997_says_ak9_e_4():
    parsed = _parse(_variant((b"GE*000019*000001644", b"GE*000019*000001643")))

    _all_sets_read(parsed)
    assert parsed.problems == [
        "GE02 at segment 251 GE (line 251): control number differs from GS06; the sets inside were each "
        "checked (expected '000001644', found '000001643')"
    ]
    body = render_997(
        parsed.acknowledgements[0],
        Config(sender_id="CROSSDOCK", receiver_id="PARTNER"),
        control=CONTROL,
        now=NOW,
    )
    assert _segments(body)[2:-3] == [
        "ST*997*0001",
        "AK1*QM*000001644",  # AK102 is the GS06 we received (the header's number)
        *_ak2_ak5_all_accepted(),
        "AK9*E*19*19*19*4",  # E: accepted, with error 4 (group control numbers do not agree)
    ]


def test_ge01_set_count_off_is_a_warning_and_the_997_says_ak9_e_5():
    parsed = _parse(_variant((b"GE*000019*", b"GE*000020*")))

    _all_sets_read(parsed)
    body = render_997(
        parsed.acknowledgements[0],
        Config(sender_id="CROSSDOCK", receiver_id="PARTNER"),
        control=CONTROL,
        now=NOW,
    )
    assert _segments(body)[-4] == "AK9*E*20*19*19*5"  # 20 included (GE01), 19 received, 19 accepted


# --- Set level: that set rejected, the other sets read (today's behaviour, kept) ---------------------

SET_2 = b"SE*0000000013*000000002"
B10_OF_SET_2 = b"B10*4343638098050296              *4343638098050296              *CPCC\n"


@pytest.mark.parametrize(
    ("changes", "ak3", "ak5"),
    [
        (((SET_2, b"SE*0000000013*000000099"),), [], "AK5*R*3"),  # SE02 not ST02
        (((SET_2, b"SE*0000000012*000000002"),), [], "AK5*R*4"),  # SE01: 13 segments, says 12
        (((B10_OF_SET_2, b""), (SET_2, b"SE*0000000012*000000002")), ["AK3*B10*2**3"], "AK5*R*5"),
    ],
    ids=["se02", "se01", "b10-missing"],
)
def test_a_broken_set_is_rejected_alone_and_the_other_eighteen_are_read(changes, ak3, ak5):
    parsed = _parse(_variant(*changes))

    rejected = [d["control_number"] for d in parsed.documents if d["rejected"]]
    assert rejected == ["000000002"]
    assert len(parsed.documents) == 19
    body = render_997(
        parsed.acknowledgements[0],
        Config(sender_id="CROSSDOCK", receiver_id="PARTNER"),
        control=CONTROL,
        now=NOW,
    )
    segments = _segments(body)
    assert segments[4 : 8 + len(ak3)] == ["AK2*214*000000001", "AK5*A", "AK2*214*000000002", *ak3, ak5]
    assert segments[-4] == "AK9*P*19*19*18"  # partially accepted: 19 included and received, 18 accepted
