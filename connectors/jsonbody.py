"""Reading a JSON body, for every connector: size and depth capped, every failure a precise ParseError.

The standard library's decoder recurses once per nesting level, so a body like ``[[[[…]]]]`` 100,000
levels deep raises ``RecursionError`` (not ``ValueError``) from ``json.loads``: in the web tier that is
a 500, in a worker a crash on every try. ``json_body`` therefore measures the nesting first, with an
iterative scan (strings stripped by a regex, then a running sum over the brackets: no recursion),
and only decodes a body that fits. No connector's documents come anywhere near the caps.

It also refuses, at parse and with the position, text the hub could not store later (PostgreSQL
holds no NUL character and no lone UTF-16 surrogate, so such a value would fail whatever write
quotes it) and what is not JSON although Python reads it (NaN, Infinity).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from connectors.errors import ParseError

MAX_DEPTH = 64  # nesting levels (objects and arrays); the deepest real document we read has ~8
MAX_BYTES = 4_000_000  # bytes; above the hub's default 1 MiB inbound limit (CROSSDOCK_INBOUND_MAX_BYTES)

# A JSON string (brackets inside it do not count; an unterminated one runs to the end of the body),
# written as an "unrolled loop" so matching is linear in its length; then what is left but brackets.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"?'
_STRINGS = re.compile(_STRING, re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_TOKENS = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# The escape \u0000 (not preceded by an escaped backslash): PostgreSQL stores no NUL character in
# text or jsonb, so a value holding one would fail wherever the hub writes it.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or the reverse: half a character.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def json_body(body: bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Decode a JSON body. Pure; raises ParseError (and nothing else) with a precise detail.

    - over ``max_bytes``: "body is 3.2 MB, over the 2 MB limit";
    - not text in a JSON encoding: "body is not UTF-8 text: <reason> (at byte N)";
    - nested deeper than ``max_depth``: "JSON nested deeper than 64 levels at byte 1234";
    - a NUL character (``\\u0000``), which no database column can hold: "JSON string holds a NUL
      character (\\u0000) at byte 12";
    - not JSON: "malformed JSON: <what> (at line L column C)"; NaN/Infinity are refused too.
    """
    if len(body) > max_bytes:
        raise ParseError(f"body is {_size(len(body))}, over the {_size(max_bytes)} limit")
    try:
        # What json.loads does with bytes (UTF-8, or UTF-16/32 told by the first bytes), done here so
        # the depth scan reads the same text the decoder will.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8 text: {exc.reason}", position=f"byte {exc.start}") from None
    _check_depth(text, max_depth)
    if "u0000" in text and (nul := _NUL_ESCAPE.search(text)):
        at = _byte(text, nul.end() - 6)
        raise ParseError(f"JSON string holds a NUL character (\\u0000) at byte {at}, which cannot be stored")
    if ("\\ud" in text or "\\uD" in text) and (half := _LONE_SURROGATE.search(text)):
        at = _byte(text, half.start())
        raise ParseError(f"JSON string holds half a UTF-16 surrogate pair ({half.group()}) at byte {at}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a raw surrogate: only "surrogatepass" decoding lets one in
        at = _byte(text, exc.start)
        raise ParseError(f"body is not UTF-8 text: {exc.reason}", position=f"byte {at}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"malformed JSON: {exc.msg}", position=f"line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit conversion limit
        raise ParseError(f"unreadable JSON: {exc}") from None
    except RecursionError:  # only when a caller raised max_depth past what the interpreter allows
        raise ParseError(f"JSON nested too deeply to read (limit {max_depth} levels)") from None


def json_body_or_none(body: bytes) -> Any:
    """``json_body(body)``, or None when the body is unreadable. For ``natural_id``: an unreadable
    body has no id of its own (the hub keys it by its hash) and ``parse`` refuses it with the reason."""
    try:
        return json_body(body)
    except ParseError:
        return None


def json_object(
    body: bytes, *, required: Mapping[str, type | tuple[type, ...]], expected: str
) -> dict[str, Any]:
    """Decode a body that must be one JSON object with the ``required`` keys, each holding a value of
    the given type (``object``: any value, None included). Pure.

    Raises ParseError: ``json_body``'s detail when the body is not JSON, else ``expected`` (the
    connector's own sentence naming the shape it reads) when it is not such an object.
    """
    doc = json_body(body)
    if not isinstance(doc, dict) or any(
        key not in doc or not isinstance(doc[key], kind) for key, kind in required.items()
    ):
        raise ParseError(expected)
    return doc


def _check_depth(text: str, max_depth: int) -> None:
    """Raise ParseError when the text nests deeper than ``max_depth``. Iterative, linear in the size.

    The running sum of +1 per opener and -1 per closer is the decoder's depth up to the first
    unbalanced closer, where the decoder stops anyway (a malformed body), so its maximum is enough.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be too deep: most bodies stop here
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) <= max_depth:
        return
    depth = 0
    for token in _TOKENS.finditer(text):  # too deep: walk again, slower, to say where
        step = _STEP.get(token.group()[0], 0)
        depth += step
        if depth > max_depth:
            at = _byte(text, token.start())
            raise ParseError(f"JSON nested deeper than {max_depth} levels at byte {at}")
    raise ParseError(f"JSON nested deeper than {max_depth} levels")  # not reached: the sums agree


def _byte(text: str, index: int) -> int:
    """The byte offset in the UTF-8 body of character ``index`` of its text."""
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _refuse_constant(name: str) -> Any:
    raise ParseError(f"malformed JSON: {name} is not a JSON number")


def _size(n: int) -> str:
    if n < 10_000:
        return f"{n} bytes"
    return f"{n / 1_000_000:.1f}".removesuffix(".0") + " MB"
