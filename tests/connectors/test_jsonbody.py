"""connectors.jsonbody: every JSON body a connector reads is size- and depth-capped, and every failure
is a ParseError with a precise detail (never RecursionError, ValueError or UnicodeDecodeError)."""

from __future__ import annotations

import pytest

from connectors.errors import ParseError
from connectors.jsonbody import MAX_DEPTH, json_body


def reason(body: bytes, **caps) -> str:
    with pytest.raises(ParseError) as caught:
        json_body(body, **caps)
    return caught.value.detail


def test_a_list_nested_100000_deep_is_refused_with_the_byte_where_it_got_too_deep():
    assert reason(b"[" * 100_000 + b"]" * 100_000) == "JSON nested deeper than 64 levels at byte 64"


def test_an_object_nested_100000_deep_is_refused_too():
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert reason(body) == f"JSON nested deeper than {MAX_DEPTH} levels at byte {5 * MAX_DEPTH}"


def test_nesting_at_the_limit_reads_and_brackets_inside_strings_do_not_count():
    assert json_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert json_body(b'["' + b"[" * 1000 + b'", {"k\\"[": "{{{"}]') == ["[" * 1000, {'k"[': "{{{"}]


def test_the_depth_position_is_in_bytes_of_the_utf8_body():
    body = '["été", '.encode() + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"]"
    assert (
        reason(body)
        == f"JSON nested deeper than {MAX_DEPTH} levels at byte {len('["été", '.encode()) + MAX_DEPTH - 1}"
    )


def test_a_body_over_the_size_limit_names_both_sizes():
    assert reason(b" " * 3_200_000, max_bytes=2_000_000) == "body is 3.2 MB, over the 2 MB limit"


def test_malformed_json_says_where():
    assert (
        reason(b'{"a": 1,}')
        == "malformed JSON: Expecting property name enclosed in double quotes (at line 1 column 9)"
    )


def test_bytes_that_are_not_text_say_which_byte():
    assert reason(b'{"a": "\xff"}') == "body is not UTF-8 text: invalid start byte (at byte 7)"


def test_an_integer_over_pythons_digit_limit_is_a_parse_error_not_a_value_error():
    assert reason(b"1" * 5000).startswith("unreadable JSON: Exceeds the limit (4300 digits)")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_constants_are_refused(constant):
    assert reason(b"[" + constant + b"]") == f"malformed JSON: {constant.decode()} is not a JSON number"


def test_utf16_bodies_still_read_as_before():
    assert json_body('{"a": "é"}'.encode("utf-16")) == {"a": "é"}


def test_a_nul_character_is_refused_with_its_position_as_no_column_can_store_it():
    assert reason(b'{"ref": "SHP\\u0000"}') == (
        "JSON string holds a NUL character (\\u0000) at byte 12, which cannot be stored"
    )
    assert (
        reason(b'["\\\\\\u0000"]')
        == "JSON string holds a NUL character (\\u0000) at byte 4, which cannot be stored"
    )


def test_an_escaped_backslash_before_u0000_is_plain_text():
    assert json_body(b'["\\\\u0000"]') == ["\\u0000"]


def test_half_a_surrogate_pair_is_refused_and_a_whole_pair_reads():
    assert (
        reason(b'{"ref": "SHP\\ud800"}')
        == "JSON string holds half a UTF-16 surrogate pair (\\ud800) at byte 12"
    )
    assert reason(b'["\\udc00x"]') == "JSON string holds half a UTF-16 surrogate pair (\\udc00) at byte 2"
    assert json_body(b'["\\ud83d\\ude9a"]') == ["\U0001f69a"]


def test_a_raw_surrogate_in_the_bytes_is_not_utf8_text():
    assert reason(b'["\xed\xa0\x80"]') == "body is not UTF-8 text: surrogates not allowed (at byte 2)"
