"""Hypothesis fuzzing of the X12 reader: arbitrary bytes and mutated samples never raise anything but
ParseError from ``parse`` (or ParseError/MappingError from ``map``), and ``natural_id`` never raises."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import MappingError, ParseError
from connectors.x12 import render_997
from connectors.x12.render import ControlNumbers
from tests.connectors.x12.support import CONFIG, CONNECTOR_INSTANCE, SAMPLES, request

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BODIES = [p.read_bytes() for p in SAMPLES]
X12_CHARS = b"ISAGSTEQ0123456789*~|>^:\n\r \t.'+-" + bytes(range(0x80, 0x84))


def _exercise(body: bytes) -> None:
    """Everything the hub will call on an inbound body; only the taxonomy's parse/map errors may escape."""
    CONNECTOR_INSTANCE.natural_id(request(body), CONFIG)
    try:
        parsed = CONNECTOR_INSTANCE.parse(request(body), CONFIG)
    except ParseError:
        return
    for document in parsed.documents:
        with contextlib.suppress(ParseError, MappingError):
            CONNECTOR_INSTANCE.map(document, CONFIG, None)
    for result in parsed.acknowledgements:
        render_997(result, CONFIG, control=ControlNumbers(1, 1))


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_parse_errors(body):
    _exercise(body)


@FUZZ
@given(st.binary(max_size=300).map(lambda tail: b"ISA*00*          *00*          *ZZ*A" + tail))
def test_bytes_after_an_isa_prefix_raise_only_parse_errors(body):
    _exercise(body)


@st.composite
def mutated_samples(draw):
    body = bytearray(draw(st.sampled_from(BODIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        action = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "duplicate"]))
        if action == "replace" and body:
            body[position] = draw(st.sampled_from(X12_CHARS))
        elif action == "delete" and body:
            del body[position]
        elif action == "insert":
            body[position:position] = bytes([draw(st.sampled_from(X12_CHARS))])
        elif action == "truncate":
            del body[position:]
        elif action == "duplicate":
            length = draw(st.integers(min_value=1, max_value=200))
            body[position:position] = body[position : position + length]
    return bytes(body)


@FUZZ
@given(mutated_samples())
def test_mutated_samples_raise_only_parse_or_mapping_errors(body):
    _exercise(body)


@FUZZ
@given(
    st.sampled_from(BODIES),
    st.sampled_from(["~", "|", "'", "!", "\x1c"]),
    st.sampled_from(["", "\n", "\r\n"]),
)
def test_samples_re_delimited_read_to_the_same_documents(body, terminator, newline):
    """Replacing the newline-or-tilde terminators of a sample keeps its meaning (where unambiguous)."""
    text = body.decode("utf-8-sig")
    original = CONNECTOR_INSTANCE.parse(request(body), CONFIG)
    current = "~" if "~" in text else ("|" if "|\n" in text else "\n")
    tail = "\r\n " if current == "\n" else "\r\n"  # what the reader itself strips at a segment's end
    lines = [seg.lstrip().rstrip(tail) for seg in text.replace("\r\n", "\n").split(current) if seg.strip()]
    if any(terminator in seg for seg in lines):
        return  # the new terminator occurs in the data: not a valid re-delimiting
    try:
        redone = CONNECTOR_INSTANCE.parse(
            request((terminator + newline).join(lines).encode() + terminator.encode()), CONFIG
        )
    except ParseError:
        assert text.lstrip().startswith("ST")  # only bare sets infer the terminator; ISA-led ones must read
        return
    assert [d["segments"] for d in redone.documents] == [d["segments"] for d in original.documents]
