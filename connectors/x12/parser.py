"""Reading ANSI X12 as it comes, and checking its envelopes (pure: bytes in, structures out).

What is accepted on input
- Delimiters are taken from the ISA segment: the element separator is the 4th character, the
  component separator is ISA16 and the segment terminator is the character right after ISA16, so
  any terminator works (``~``, a bare newline, ``|``, ``.``, ...). The ISA need not be fixed-width
  (a non-fixed-width ISA is read by counting separators and reported as a warning).
- A UTF-8 (or UTF-16) byte-order mark, CRLF or LF line breaks after terminators, indentation and
  blank lines are skipped. Bytes that are not UTF-8 are read as Latin-1 (a warning says where).
- An interchange may hold several groups and each group several sets; a message may hold several
  interchanges, one after another (each with its own delimiters).
- Bare transaction sets (``ST``..``SE`` with no ISA/GS) and bare groups (``GS``..``GE``) are read;
  their delimiters are inferred from the first segment. They cannot be acknowledged (no 997), since
  there is no interchange to answer.

What is checked, and what each problem does (``Problem.severity`` and ``Problem.scope``)
The rule: **a faulty envelope is reported, only a broken set is rejected**. A set carries its own
ST/SE pair and segment count, and what gets mapped is its content; so a set whose trailer is
missing or disagrees (control number, segment count) or whose content is malformed is rejected
alone (997 AK5 R), and the other sets of its group are processed. Interchange and group trailers
that disagree with their header (IEA02 vs ISA13, GE02 vs GS06) or whose child count is off (IEA01,
GE01), and odd but readable ISA fields, are **warnings**, as mainstream translators treat them:
each set inside passed its own check, so what we hold is intact; the fault is reported back in the
TA1 (TA104 E, TA105 the X12 note code) or the 997 (AK9 E with the code). A *missing* trailer means
a truncated unit (what followed is lost): no GE rejects that group, no IEA rejects the message. A
group whose header has no usable control number (GS06) is rejected as a group. Only a message we
cannot read (no ISA/GS/ST, an ISA whose delimiters cannot be told) or a truncated interchange
raises ParseError: a parse dead letter, nothing to acknowledge.

======================================================  ==========  ==============================
Problem                                                 Effect      TA1 / 997
======================================================  ==========  ==============================
no ISA/GS/ST at the start; ISA with < 16 separators     message     (ParseError: nothing to ack)
IEA missing (message ends inside the interchange)       message     (ParseError: truncated)
ISA inside an open interchange                          message     (ParseError: IEA missing)
IEA02 differs from ISA13                                warning     TA1 E, TA105 001
IEA01 differs from the number of groups                 warning     TA1 E, TA105 021
ISA09 not a YYMMDD date                                 warning     TA1 E, TA105 014
ISA10 not an HHMM time                                  warning     TA1 E, TA105 015
ISA11 not ``U`` in a version before 00402               warning     TA1 E, TA105 016
ISA13 not 9 digits                                      warning     TA1 E, TA105 018
ISA14 neither 0 nor 1                                   warning     TA1 E, TA105 019
ISA not 106 characters (non-fixed-width)                warning     (no TA1 note)
ISA15 ``T`` (test interchange)                          warning     (no TA1 note)
data after the last IEA                                 warning     -
GE missing (next GS, IEA or end of message)             group       AK9 R, code 3
GS06 empty or not numeric                               group       AK9 R, code 6
GE02 differs from GS06                                  warning     AK9 E, code 4
GE01 differs from the number of sets                    warning     AK9 E/P, code 5
segment between sets (outside ST..SE), stray SE/GE      warning     AK9 E
SE missing (next ST, GE, IEA or end of message)         set         AK5 R, code 2
SE02 differs from ST02                                  set         AK5 R, code 3
SE01 differs from the segment count (ST..SE)            set         AK5 R, code 4
ST01 not a supported set (204, 210, 214, 990, 997)      set         AK5 R, code 1
ST02 empty                                              set         AK5 R, code 7
ST02 repeated within the group                          set         AK5 R, code 23
ST outside a group inside an interchange                set         (no group: not acked)
segment id not 2-3 letters/digits                       set         AK3 code 1, AK5 R 5
mandatory segment missing (B10, B1, B2, B3, AK1...)     set         AK3 code 3, AK5 R 5
invalid date (CCYYMMDD) or time (HHMM[SS[dd]])          set         AK3 code 8 + AK4 8/9, AK5 R 5
GS01 does not fit ST01 (e.g. QM for a 204)              warning     AK5 E
======================================================  ==========  ==============================

A TA1 says TA104 E with the lowest note code found (TA1 holds one; ``Interchange.ta1_codes`` keeps
them all), else A with 000. It is sent when the partner asked (ISA14 = 1) or as the connection's
``send_ta1`` says (``documents.acknowledgements``). TA1 segments received between ISA and the first
GS are kept (``Interchange.ta1_segments``), not reported as stray.

A rejected set is still returned (``TransactionSet.rejected``): the connector turns it into a
document that dead-letters with its reasons, so nothing is dropped silently. Every problem names the
segment (tag and ordinal in the message), its line, the element, and what was expected vs found.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date

from connectors.errors import ParseError

REJECT = "reject"
WARNING = "warning"

#: Transaction sets this connector reads; anything else is rejected with AK5 code 1.
SUPPORTED_SETS = ("204", "210", "214", "990", "997")
#: GS01 functional identifier code expected for each set (a mismatch is a warning).
FUNCTIONAL_IDS = {"204": "SM", "210": "IM", "214": "QM", "990": "GF", "997": "FA"}
#: The segment that must follow ST in each set (AK3 code 3 when missing).
REQUIRED_SEGMENTS = {
    "204": ("B2", "S5"),
    "210": ("B3",),
    "214": ("B10",),
    "990": ("B1",),
    "997": ("AK1", "AK9"),
}
#: (segment, element position, X12 data element number, kind) checked for date/time syntax.
DATE_TIME_ELEMENTS = (
    ("AT7", 5, "373", "date"),
    ("AT7", 6, "337", "time"),
    ("B1", 3, "373", "date"),
    ("B3", 6, "373", "date"),
    ("G62", 2, "373", "date"),
    ("G62", 4, "337", "time"),
)

ISA_LENGTH = 106  # characters of a fixed-width ISA segment, terminator included
#: ISA fields checked for syntax: (position, what is expected, TA105 note code when it is not that).
ISA_FIELD_CHECKS = (
    (9, "YYMMDD", "014"),
    (10, "HHMM", "015"),
    (14, "0 or 1", "019"),
)
_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}\Z")
_TIME = re.compile(r"([01]\d|2[0-3])[0-5]\d([0-5]\d(\d{1,2})?)?\Z")
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


@dataclass(frozen=True)
class Delimiters:
    element: str
    segment: str
    component: str | None = None
    repetition: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "element": self.element,
            "segment": self.segment,
            "component": self.component,
            "repetition": self.repetition,
        }


@dataclass(frozen=True)
class Segment:
    """One segment: ``elements[0]`` is the tag, so ``get(1)`` is the first data element."""

    elements: tuple[str, ...]
    number: int  # ordinal of the segment in the message, 1-based
    line: int  # line of the message where it starts, 1-based

    @property
    def tag(self) -> str:
        return self.elements[0]

    def get(self, position: int) -> str:
        return self.elements[position] if 0 < position < len(self.elements) else ""

    def where(self) -> str:
        return f"segment {self.number} {self.tag or '(empty)'} (line {self.line})"


@dataclass(frozen=True)
class Problem:
    code: str  # stable identifier, e.g. "SE01_COUNT"
    severity: str  # REJECT or WARNING
    scope: str  # "message", "interchange", "group" or "set": what a REJECT rejects
    message: str
    segment: Segment | None = None
    element: str | None = None  # e.g. "SE01"
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        head = self.element or (self.segment.tag if self.segment else "")
        where = f" at {self.segment.where()}" if self.segment else ""
        text = f"{head}{where}: {self.message}" if head else f"{self.message}{where}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected!r}, found {self.found!r})"
        return text


@dataclass(frozen=True)
class ElementError:
    """An AK4: element position in the segment, its X12 data element number, error code, bad data."""

    position: int
    reference: str
    code: str
    data: str


@dataclass(frozen=True)
class SegmentError:
    """An AK3: segment id, position in the set (ST = 1), error code, and its element errors."""

    segment: str
    position: int
    code: str
    elements: tuple[ElementError, ...] = ()


@dataclass
class TransactionSet:
    header: Segment
    segments: list[Segment] = field(default_factory=list)  # ST..SE inclusive (SE when present)
    problems: list[Problem] = field(default_factory=list)
    segment_errors: list[SegmentError] = field(default_factory=list)
    ak5_codes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.header.get(1)

    @property
    def control_number(self) -> str:
        return self.header.get(2)

    @property
    def rejected(self) -> bool:
        return any(p.severity == REJECT for p in self.problems)

    def report(
        self,
        code: str,
        severity: str,
        message: str,
        segment: Segment | None,
        element: str | None,
        *,
        expected: str | None = None,
        found: str | None = None,
        ak5: str | None = None,
    ) -> None:
        """Record a problem of this set and, when the 997 names one, its AK5 error code."""
        self.problems.append(Problem(code, severity, "set", message, segment, element, expected, found))
        if ak5 is not None:
            self.ak5_codes.append(ak5)

    @property
    def status(self) -> str:
        """AK5-01: A accepted, E accepted with errors noted, R rejected."""
        if self.rejected:
            return "R"
        return "E" if self.problems else "A"


@dataclass
class Group:
    header: Segment
    sets: list[TransactionSet] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ak9_codes: list[str] = field(default_factory=list)
    trailer: Segment | None = None

    @property
    def functional_id(self) -> str:
        return self.header.get(1)

    def report(
        self,
        code: str,
        severity: str,
        message: str,
        segment: Segment | None,
        element: str | None,
        *,
        expected: str | None = None,
        found: str | None = None,
        ak9: str | None = None,
    ) -> None:
        """Record a problem of this group and, when the 997 names one, its AK9 error code."""
        self.problems.append(Problem(code, severity, "group", message, segment, element, expected, found))
        if ak9 is not None:
            self.ak9_codes.append(ak9)

    @property
    def control_number(self) -> str:
        return self.header.get(6)

    @property
    def version(self) -> str:
        return self.header.get(8)

    @property
    def rejected(self) -> bool:
        return any(p.severity == REJECT for p in self.problems)

    @property
    def status(self) -> str:
        """AK9-01: A, E (accepted with errors noted), P (partially accepted) or R (rejected)."""
        if self.rejected or (self.sets and all(s.rejected for s in self.sets)):
            return "R"
        if any(s.rejected for s in self.sets):
            return "P"
        if self.problems or any(s.problems for s in self.sets):
            return "E"
        return "A"


@dataclass
class Interchange:
    header: Segment | None  # None: bare groups or sets without ISA/IEA
    delimiters: Delimiters
    groups: list[Group] = field(default_factory=list)
    loose_sets: list[TransactionSet] = field(default_factory=list)  # sets outside any group
    problems: list[Problem] = field(default_factory=list)
    ta1_codes: list[str] = field(default_factory=list)  # TA105 note codes, in the order found
    ta1_segments: list[Segment] = field(default_factory=list)  # TA1s received (before the first GS)
    trailer: Segment | None = None

    def isa(self, position: int) -> str:
        return self.header.get(position).strip() if self.header else ""

    @property
    def control_number(self) -> str:
        return self.isa(13)

    @property
    def ta1_status(self) -> str:
        """TA104: A accepted, E accepted with errors (a TA1 note). Never R: an interchange we could
        read is processed; one we could not read raised ParseError and has nothing to answer."""
        return "E" if self.ta1_codes else "A"

    @property
    def ta1_note(self) -> str:
        """TA105: the lowest X12 note code found (TA1 has room for one), ``000`` when none."""
        return min(self.ta1_codes) if self.ta1_codes else "000"

    def all_sets(self) -> list[tuple[Group | None, TransactionSet]]:
        pairs: list[tuple[Group | None, TransactionSet]] = [(g, s) for g in self.groups for s in g.sets]
        return pairs + [(None, s) for s in self.loose_sets]


@dataclass
class Reading:
    interchanges: list[Interchange]
    problems: list[Problem]  # message-level warnings (encoding, data after IEA)

    def all_problems(self) -> list[Problem]:
        found = list(self.problems)
        for interchange in self.interchanges:
            found += interchange.problems
            for group in interchange.groups:
                found += group.problems
            for _group, tset in interchange.all_sets():
                found += tset.problems
        return found


# --- Text and delimiters ----------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, list[Problem]]:
    """Bytes to text: BOM dropped, UTF-8 preferred, Latin-1 as a (reported) fallback."""
    problems: list[Problem] = []
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), problems
            except UnicodeDecodeError as exc:
                raise ParseError(
                    f"the byte-order mark says {encoding} but the body is not: {exc.reason}",
                    position=f"byte {exc.start + len(bom)}",
                ) from None
    try:
        return data.decode("utf-8"), problems
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(
                "ENCODING",
                WARNING,
                "message",
                f"not UTF-8 from byte {exc.start} ({exc.reason}); read as Latin-1",
            )
        )
        return data.decode("latin-1"), problems


class _Lines:
    """Line numbers for character offsets (1-based)."""

    def __init__(self, text: str):
        self._breaks = [i for i, ch in enumerate(text) if ch == "\n"]

    def at(self, offset: int) -> int:
        return bisect_right(self._breaks, offset - 1) + 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def isa_delimiters(text: str, pos: int, lines: _Lines) -> tuple[Delimiters, int, list[Problem]]:
    """Delimiters of the ISA starting at ``pos``; also returns the ISA's length (to its terminator).

    Raises ParseError when the ISA is too short to say where its elements and segment end.
    """
    where = f"line {lines.at(pos)}"
    if pos + 3 >= len(text):
        raise ParseError("truncated ISA segment: no element separator", position=where)
    element = text[pos + 3]
    if element.isalnum() or element.isspace():
        raise ParseError(
            f"ISA: the 4th character must be the element separator, found {element!r}", position=where
        )
    index, seen = pos + 3, 0
    while seen < 16:
        index = text.find(element, index + 1) if seen else index
        if index < 0:
            raise ParseError(
                f"truncated ISA segment: {seen} of 16 element separators {element!r} found", position=where
            )
        seen += 1
    if index + 1 >= len(text):
        raise ParseError("truncated ISA segment: ISA16 (component separator) missing", position=where)
    component = text[index + 1]
    if index + 2 >= len(text):
        raise ParseError("truncated ISA segment: no segment terminator after ISA16", position=where)
    terminator = text[index + 2]
    if terminator.isalnum() or terminator in (element, component) or terminator == " ":
        raise ParseError(
            f"ISA: cannot tell the segment terminator: the character after ISA16 {component!r} is "
            f"{terminator!r}",
            position=where,
        )
    if component.isalnum() or component == element or component.isspace():
        raise ParseError(f"ISA16: invalid component separator {component!r}", position=where)
    length = index + 2 - pos  # characters before the terminator
    problems: list[Problem] = []
    if length + 1 != ISA_LENGTH:
        problems.append(
            Problem(
                "ISA_WIDTH",
                WARNING,
                "interchange",
                "ISA is not fixed-width; read by counting separators",
                element="ISA",
                expected=f"{ISA_LENGTH} characters",
                found=f"{length + 1} characters",
            )
        )
    isa_elements = text[pos : pos + length].split(element)
    version = isa_elements[12].strip() if len(isa_elements) > 12 else ""
    repetition = None
    isa11 = isa_elements[11] if len(isa_elements) > 11 else ""
    if version >= "00402" and len(isa11) == 1 and not isa11.isalnum():
        repetition = isa11
    return Delimiters(element, terminator, component, repetition), length, problems


def bare_delimiters(text: str, pos: int, lines: _Lines) -> Delimiters:
    """Delimiters of a message starting with GS or ST (no ISA to read them from).

    The element separator follows the tag; the terminator is the first character after the header's
    elements that is neither a letter/digit nor the element separator (ST elements are codes and
    numbers; for GS, counted from GS08 since GS02/GS03 may hold spaces and dashes).
    """
    where = f"line {lines.at(pos)}"
    if pos + 2 >= len(text):
        raise ParseError("truncated segment at the start of the message", position=where)
    element = text[pos + 2]
    if element.isalnum() or element.isspace():
        raise ParseError(f"{text[pos : pos + 2]}: invalid element separator {element!r}", position=where)
    index = pos + 3
    if text.startswith("GS", pos):
        for _ in range(7):
            index = text.find(element, index)
            if index < 0:
                raise ParseError("truncated GS segment: fewer than 8 elements", position=where)
            index += 1
    while index < len(text) and (text[index].isalnum() or text[index] == element):
        index += 1
    if index >= len(text):
        raise ParseError("no segment terminator after the first segment", position=where)
    return Delimiters(element, text[index])


# --- Splitting into segments ------------------------------------------------------------------------


def _segments(
    text: str, pos: int, delims: Delimiters, lines: _Lines, number: int, *, stop_at_iea: bool
) -> tuple[list[Segment], int]:
    """Segments from ``pos`` up to and including IEA (or the end); returns them and the next offset."""
    found: list[Segment] = []
    strip_tail = "\r\n\t\v\f" if delims.segment not in "\r\n" else "\r\n\t\v\f "
    while pos < len(text):
        pos = _skip_space(text, pos)
        if pos >= len(text):
            break
        end = text.find(delims.segment, pos)
        if end < 0:
            end = len(text)
        raw = text[pos:end].rstrip(strip_tail)
        start = pos
        pos = end + 1
        if not raw:
            continue
        number += 1
        segment = Segment(tuple(raw.split(delims.element)), number, lines.at(start))
        found.append(segment)
        if stop_at_iea and segment.tag == "IEA":
            break
    return found, pos


def read(data: bytes) -> Reading:
    """Read one message into interchanges. Raises ParseError for message-level problems only."""
    text, problems = decode(data)
    lines = _Lines(text)
    pos = _skip_space(text, 0)
    if pos >= len(text):
        raise ParseError("empty message: no X12 segments")
    interchanges: list[Interchange] = []
    number = 0
    while pos < len(text):
        if text.startswith("ISA", pos):
            delims, _length, isa_problems = isa_delimiters(text, pos, lines)
            segments, pos = _segments(text, pos, delims, lines, number, stop_at_iea=True)
            number += len(segments)
            interchange = _assemble_interchange(segments, delims)
            interchange.problems[:0] = isa_problems
            interchanges.append(interchange)
        elif not interchanges and text.startswith(("GS", "ST"), pos):
            delims = bare_delimiters(text, pos, lines)
            segments, pos = _segments(text, pos, delims, lines, number, stop_at_iea=False)
            interchanges.append(_assemble_bare(segments, delims))
        elif not interchanges:
            raise ParseError(
                f"not an X12 message: expected ISA, GS or ST at the start, found {text[pos : pos + 20]!r}",
                position=f"line {lines.at(pos)}",
            )
        else:
            problems.append(
                Problem(
                    "DATA_AFTER_IEA",
                    WARNING,
                    "message",
                    f"data after the last IEA ignored from line {lines.at(pos)}: {text[pos : pos + 20]!r}",
                )
            )
            break
        pos = _skip_space(text, pos)
    return Reading(interchanges, problems)


# --- Envelope assembly and checks -------------------------------------------------------------------


def _count(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


class _Builder:
    """The envelope state machine shared by ISA interchanges and bare groups/sets."""

    def __init__(self, interchange: Interchange, *, enveloped: bool):
        self.interchange = interchange
        self.enveloped = enveloped
        self.group: Group | None = None
        self.tset: TransactionSet | None = None
        self.group_numbers: set[str] = set()

    # sets
    def open_set(self, segment: Segment) -> None:
        if self.tset is not None:
            self.close_set_without_trailer(segment)
        tset = TransactionSet(header=segment, segments=[segment])
        if self.group is not None:
            self.group.sets.append(tset)
        else:
            self.interchange.loose_sets.append(tset)
            if self.enveloped:
                tset.report(
                    "ST_OUTSIDE_GROUP",
                    REJECT,
                    "ST inside an interchange but outside any GS..GE group",
                    segment,
                    "ST",
                )
        self.tset = tset

    def close_set_without_trailer(self, at: Segment | None) -> None:
        tset = self.tset
        assert tset is not None
        ended = f"at {at.where()}" if at else "at the end of the message"
        tset.report(
            "SE_MISSING",
            REJECT,
            f"transaction set {tset.control_number!r} has no SE trailer: it ends {ended}",
            tset.header,
            "SE",
            expected=f"SE*{len(tset.segments) + 1}*{tset.control_number}",
            found=at.tag if at else "end of message",
            ak5="2",
        )
        _check_set_content(tset, self.group)
        self.tset = None

    def close_set(self, trailer: Segment) -> None:
        tset = self.tset
        assert tset is not None
        tset.segments.append(trailer)
        count = _count(trailer.get(1))
        if count != len(tset.segments):
            tset.report(
                "SE01_COUNT",
                REJECT,
                "segment count (ST..SE inclusive) does not match",
                trailer,
                "SE01",
                expected=str(len(tset.segments)),
                found=trailer.get(1),
                ak5="4",
            )
        if trailer.get(2).strip() != tset.control_number.strip():
            tset.report(
                "SE02_CONTROL",
                REJECT,
                "control number differs from ST02",
                trailer,
                "SE02",
                expected=tset.control_number,
                found=trailer.get(2),
                ak5="3",
            )
        _check_set_content(tset, self.group)
        self.tset = None

    # groups
    def open_group(self, segment: Segment) -> None:
        if self.tset is not None:
            self.close_set_without_trailer(segment)
        if self.group is not None:
            self.close_group_without_trailer(segment)
        group = Group(header=segment)
        number = segment.get(6).strip()
        if not number.isdigit():
            group.report(
                "GS06_SYNTAX",
                REJECT,
                "group control number must be 1-9 digits",
                segment,
                "GS06",
                expected="1-9 digits",
                found=segment.get(6),
                ak9="6",
            )
        if len(segment.elements) < 9:
            group.report(
                "GS_ELEMENTS",
                WARNING,
                "GS has fewer than 8 elements",
                segment,
                "GS",
                expected="8 elements",
                found=f"{len(segment.elements) - 1} elements",
            )
        self.interchange.groups.append(group)
        self.group = group

    def close_group_without_trailer(self, at: Segment | None) -> None:
        group = self.group
        assert group is not None
        ended = f"at {at.where()}" if at else "at the end of the message"
        group.report(
            "GE_MISSING",
            REJECT,
            f"functional group {group.control_number!r} has no GE trailer: it ends {ended}",
            group.header,
            "GE",
            expected=f"GE*{len(group.sets)}*{group.control_number}",
            found=at.tag if at else "end of message",
            ak9="3",
        )
        _check_duplicate_sets(group)
        self.group = None

    def close_group(self, trailer: Segment) -> None:
        if self.tset is not None:
            self.close_set_without_trailer(trailer)
        group = self.group
        assert group is not None
        group.trailer = trailer
        if trailer.get(2).strip() != group.control_number.strip():
            group.report(
                "GE02_CONTROL",
                WARNING,
                "control number differs from GS06; the sets inside were each checked",
                trailer,
                "GE02",
                expected=group.control_number,
                found=trailer.get(2),
                ak9="4",
            )
        count = _count(trailer.get(1))
        if count != len(group.sets):
            group.report(
                "GE01_COUNT",
                WARNING,
                "number of transaction sets does not match; the sets present were each checked",
                trailer,
                "GE01",
                expected=str(len(group.sets)),
                found=trailer.get(1),
                ak9="5",
            )
        _check_duplicate_sets(group)
        self.group = None

    def stray(self, segment: Segment, why: str) -> None:
        problem = Problem("STRAY_SEGMENT", WARNING, "group", why, segment, segment.tag)
        (self.group.problems if self.group is not None else self.interchange.problems).append(problem)

    def feed(self, segment: Segment) -> None:
        tag = segment.tag
        if tag == "GS":
            self.open_group(segment)
        elif tag == "ST":
            self.open_set(segment)
        elif tag == "SE":
            if self.tset is None:
                self.stray(segment, "SE without an open ST; ignored")
            else:
                self.close_set(segment)
        elif tag == "GE":
            if self.group is None:
                if self.tset is not None:
                    self.close_set_without_trailer(segment)
                self.stray(segment, "GE without an open GS; ignored")
            else:
                self.close_group(segment)
        elif self.tset is not None:
            self.tset.segments.append(segment)
        elif tag == "TA1" and self.enveloped and self.group is None:
            self.interchange.ta1_segments.append(segment)  # X12 allows ISA TA1.. GS..GE IEA
        else:
            self.stray(segment, "segment outside any transaction set (ST..SE); ignored")

    def finish(self, at: Segment | None) -> None:
        if self.tset is not None:
            self.close_set_without_trailer(at)
        if self.group is not None:
            self.close_group_without_trailer(at)


def _assemble_interchange(segments: list[Segment], delims: Delimiters) -> Interchange:
    header = segments[0]
    interchange = Interchange(header=header, delimiters=delims)
    control = header.get(13).strip()
    if not (len(control) == 9 and control.isdigit()):
        interchange.problems.append(
            Problem(
                "ISA13_SYNTAX",
                WARNING,
                "interchange",
                "interchange control number should be 9 digits",
                header,
                "ISA13",
                expected="9 digits",
                found=header.get(13),
            )
        )
        interchange.ta1_codes.append("018")
    version = header.get(12).strip()
    if version < "00402" and header.get(11).strip() not in ("U", ""):
        interchange.problems.append(
            Problem(
                "ISA11_STANDARD",
                WARNING,
                "interchange",
                f"ISA11 is the standards identifier before version 00402 (ISA12 is {version!r})",
                header,
                "ISA11",
                expected="U",
                found=header.get(11),
            )
        )
        interchange.ta1_codes.append("016")
    for position, expected, code in ISA_FIELD_CHECKS:
        if not _isa_field_valid(position, header.get(position).strip()):
            interchange.problems.append(
                Problem(
                    f"ISA{position:02d}_SYNTAX",
                    WARNING,
                    "interchange",
                    f"ISA{position:02d} is not valid",
                    header,
                    f"ISA{position:02d}",
                    expected=expected,
                    found=header.get(position),
                )
            )
            interchange.ta1_codes.append(code)
    if header.get(15).strip() == "T":
        interchange.problems.append(
            Problem("ISA15_TEST", WARNING, "interchange", "test interchange (ISA15 = T)", header, "ISA15")
        )
    builder = _Builder(interchange, enveloped=True)
    for segment in segments[1:]:
        if segment.tag == "ISA":
            raise ParseError(
                f"ISA at {segment.where()} inside interchange {control!r}, whose IEA is missing",
                position=f"line {segment.line}",
            )
        if segment.tag == "IEA":
            builder.finish(segment)
            interchange.trailer = segment
            break
        builder.feed(segment)
    else:
        last = segments[-1]
        raise ParseError(
            f"interchange {control!r} has no IEA trailer: the message ends at {last.where()} (truncated?)",
            position=f"line {last.line}",
        )
    trailer = interchange.trailer
    if trailer.get(2).strip() != control:
        interchange.problems.append(
            Problem(
                "IEA02_CONTROL",
                WARNING,
                "interchange",
                "interchange control number differs from ISA13; the groups inside were each checked",
                trailer,
                "IEA02",
                expected=control,
                found=trailer.get(2),
            )
        )
        interchange.ta1_codes.append("001")
    if _count(trailer.get(1)) != len(interchange.groups):
        interchange.problems.append(
            Problem(
                "IEA01_COUNT",
                WARNING,
                "interchange",
                "number of functional groups does not match; the groups present were each checked",
                trailer,
                "IEA01",
                expected=str(len(interchange.groups)),
                found=trailer.get(1),
            )
        )
        interchange.ta1_codes.append("021")
    return interchange


def _assemble_bare(segments: list[Segment], delims: Delimiters) -> Interchange:
    interchange = Interchange(header=None, delimiters=delims)
    builder = _Builder(interchange, enveloped=False)
    for segment in segments:
        if segment.tag in ("ISA", "IEA"):
            builder.stray(segment, f"{segment.tag} inside a message that did not start with ISA; ignored")
            continue
        builder.feed(segment)
    builder.finish(None)
    return interchange


def _check_duplicate_sets(group: Group) -> None:
    seen: set[str] = set()
    for tset in group.sets:
        number = tset.control_number.strip()
        if number and number in seen:
            tset.report(
                "ST02_DUPLICATE",
                REJECT,
                "control number already used by another set in this group",
                tset.header,
                "ST02",
                expected="a number unique within the group",
                found=tset.control_number,
                ak5="23",
            )
        seen.add(number)


def _isa_field_valid(position: int, value: str) -> bool:
    if position == 9:  # YYMMDD, read as 20YY: the century changes no valid date but 1900-02-29
        return len(value) == 6 and _valid_date("20" + value)
    if position == 10:
        return len(value) == 4 and bool(_TIME.match(value))
    return value in ("0", "1")  # ISA14


def _valid_date(value: str) -> bool:
    if len(value) != 8 or not value.isdigit():
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _check_set_content(tset: TransactionSet, group: Group | None) -> None:
    """Set-level checks beyond the trailer: id, control number, segment ids, mandatory segments,
    date/time syntax. Each failure rejects the set; a GS01 that does not fit ST01 is a warning."""
    header = tset.header
    if tset.id not in SUPPORTED_SETS:
        tset.report(
            "ST01_UNSUPPORTED",
            REJECT,
            "transaction set not supported by this connector",
            header,
            "ST01",
            expected=" or ".join(SUPPORTED_SETS),
            found=tset.id,
            ak5="1",
        )
        return
    if not tset.control_number.strip():
        tset.report(
            "ST02_MISSING",
            REJECT,
            "transaction set control number missing",
            header,
            "ST02",
            expected="4-9 characters",
            found=tset.control_number,
            ak5="7",
        )
    if group is not None and FUNCTIONAL_IDS[tset.id] != group.functional_id.strip():
        tset.report(
            "GS01_MISMATCH",
            WARNING,
            f"GS01 functional identifier does not fit a {tset.id}",
            group.header,
            "GS01",
            expected=FUNCTIONAL_IDS[tset.id],
            found=group.functional_id,
        )
    body = tset.segments[1:-1] if tset.segments[-1].tag == "SE" else tset.segments[1:]
    errors: list[SegmentError] = []
    for offset, segment in enumerate(body, start=2):
        if not _TAG.match(segment.tag):
            errors.append(SegmentError(segment.tag[:3], offset, "1"))
            tset.report(
                "SEGMENT_ID",
                REJECT,
                "unrecognized segment id",
                segment,
                "segment id",
                expected="2-3 upper-case letters or digits",
                found=segment.tag[:20],
            )
            continue
        element_errors = []
        for tag, position, reference, kind in DATE_TIME_ELEMENTS:
            if segment.tag != tag:
                continue
            value = segment.get(position).strip()
            if not value:
                continue
            valid = _valid_date(value) if kind == "date" else bool(_TIME.match(value))
            if not valid:
                element_errors.append(
                    ElementError(position, reference, "8" if kind == "date" else "9", value)
                )
                tset.report(
                    "ELEMENT_" + kind.upper(),
                    REJECT,
                    f"invalid {kind}",
                    segment,
                    f"{tag}{position:02d}",
                    expected="CCYYMMDD" if kind == "date" else "HHMM, HHMMSS or HHMMSSd[d]",
                    found=value[:35],
                )
        if element_errors:
            errors.append(SegmentError(segment.tag, offset, "8", tuple(element_errors)))
    tags = {segment.tag for segment in body}
    for required in REQUIRED_SEGMENTS[tset.id]:
        if required not in tags:
            errors.append(SegmentError(required, 2, "3"))
            tset.report(
                "SEGMENT_MISSING",
                REJECT,
                f"mandatory segment {required} missing from the {tset.id}",
                header,
                required,
                expected=required,
                found=None,
            )
    if errors:
        tset.segment_errors.extend(errors)
        tset.ak5_codes.append("5")
