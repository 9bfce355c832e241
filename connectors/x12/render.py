"""Outbound X12: a 204 load tender from a canonical shipment, a 997 for a received group, a TA1 for a
received interchange (pure).

Each returns the whole interchange (ISA/GS/ST..SE/GE/IEA; for a TA1 alone, ISA/TA1/IEA with no
group) as bytes. The caller owns the control numbers (``ControlNumbers``; a TA1 alone takes only its
ISA13): it must draw them from a counter that survives restarts (one per
connection and direction), so a resend after a crash reuses the number it recorded rather than
inventing a new one. ``next_control_number`` gives the successor, wrapping 999999999 -> 1.

The config (``connectors.x12.Config``) names Crossdock's side (``sender_*``: ISA05/06, GS02) and the
partner's (``receiver_*``: ISA07/08, GS03), the versions and the delimiters. Text taken from the
shipment never carries a delimiter: any delimiter character in it is replaced by a space.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.errors import MappingError
from connectors.mapping import MappingSet, load_defaults

# The connector's shipped mappings (mappings/*.json beside this package); the package re-exports them.
DEFAULT_MAPPINGS = load_defaults(__file__)

MAX_CONTROL_NUMBER = 999_999_999  # ISA13 and GS06 are at most 9 digits


@dataclass(frozen=True)
class ControlNumbers:
    """ISA13, GS06 and ST02 for one outbound interchange (each 1..999999999)."""

    interchange: int
    group: int
    transaction_set: int = 1

    def __post_init__(self) -> None:
        for name in ("interchange", "group", "transaction_set"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_CONTROL_NUMBER:
                raise ValueError(f"{name} control number must be 1..{MAX_CONTROL_NUMBER}, got {value!r}")


def next_control_number(previous: int | None) -> int:
    """The control number after ``previous`` (None: the first, 1); wraps after 999999999."""
    return (previous or 0) % MAX_CONTROL_NUMBER + 1


class _Writer:
    def __init__(self, config: Any):
        self.element = config.element_separator
        self.terminator = config.segment_terminator + ("\n" if config.newline_after_segment else "")
        self.forbidden = {
            config.element_separator,
            config.segment_terminator,
            config.component_separator,
            config.repetition_separator,
            "\r",
            "\n",
        }
        self.segments: list[str] = []

    def clean(self, value: Any) -> str:
        text = "" if value is None else str(value)
        return "".join(" " if ch in self.forbidden else ch for ch in text).strip()

    def add(self, tag: str, *elements: Any, raw: bool = False) -> None:
        values = [str(e) if raw else self.clean(e) for e in elements]
        while values and values[-1] == "":
            values.pop()  # no trailing empty elements
        self.segments.append(self.element.join([tag, *values]))

    def count_from(self, start: int) -> int:
        return len(self.segments) - start + 1  # + the SE being written

    def bytes(self) -> bytes:
        return "".join(s + self.terminator for s in self.segments).encode("utf-8")


def _ids(config: Any, interchange: Mapping[str, Any] | None) -> tuple[str, str, str, str]:
    """(our qualifier, our id, partner qualifier, partner id); a received interchange fills gaps."""
    interchange = interchange or {}
    ours = (config.sender_id_qualifier, config.sender_id or interchange.get("receiver_id", ""))
    theirs = (config.receiver_id_qualifier, config.receiver_id or interchange.get("sender_id", ""))
    if not ours[1] or not theirs[1]:
        raise MappingError(
            "the connection's config needs sender_id and receiver_id to address an interchange",
            field="config.sender_id" if not ours[1] else "config.receiver_id",
            value=None,
        )
    return ours[0], ours[1], theirs[0], theirs[1]


def _open(
    writer: _Writer,
    config: Any,
    control: ControlNumbers,
    now: datetime,
    functional_id: str,
    version: str,
    interchange: Mapping[str, Any] | None = None,
) -> None:
    _isa(writer, config, control.interchange, now, interchange)
    _group(writer, config, control, now, functional_id, version, interchange)


def _group(
    writer: _Writer,
    config: Any,
    control: ControlNumbers,
    now: datetime,
    functional_id: str,
    version: str,
    interchange: Mapping[str, Any] | None,
) -> None:
    _our_q, our_id, _their_q, their_id = _ids(config, interchange)
    writer.add(
        "GS",
        functional_id,
        config.gs_sender_code or our_id,
        config.gs_receiver_code or their_id,
        now.strftime("%Y%m%d"),
        now.strftime("%H%M"),
        str(control.group),
        "X",
        version,
    )


def _isa(
    writer: _Writer,
    config: Any,
    number: int,
    now: datetime,
    interchange: Mapping[str, Any] | None,
    *,
    ask_ta1: bool | None = None,
) -> None:
    """Write the fixed-width ISA for interchange ``number``. ISA14 is the
    config's ``acknowledgment_requested`` unless ``ask_ta1`` says otherwise (a TA1 never asks)."""
    our_q, our_id, their_q, their_id = _ids(config, interchange)
    standards = config.repetition_separator if config.interchange_version >= "00402" else "U"
    writer.add(
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        our_q,
        f"{writer.clean(our_id):<15.15}",
        their_q,
        f"{writer.clean(their_id):<15.15}",
        now.strftime("%y%m%d"),
        now.strftime("%H%M"),
        standards,
        config.interchange_version,
        f"{number:09d}",
        "1" if (config.acknowledgment_requested if ask_ta1 is None else ask_ta1) else "0",
        config.usage_indicator,
        config.component_separator,
        raw=True,
    )


def _ta1(writer: _Writer, ta1: Mapping[str, Any]) -> None:
    """``TA1*<ISA13>*<ISA09>*<ISA10>*<TA104>*<TA105>`` answering one received interchange."""
    writer.add("TA1", ta1["control_number"], ta1["date"], ta1["time"], ta1["status"], ta1["note"])


def _close(writer: _Writer, control: ControlNumbers, st_index: int) -> None:
    writer.add("SE", str(writer.count_from(st_index)), f"{control.transaction_set:04d}")
    writer.add("GE", "1", str(control.group))
    writer.add("IEA", "1", f"{control.interchange:09d}")


def _utc(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise MappingError(f"not an ISO 8601 date-time: {value!r}", field=field, value=value) from None
    if parsed.tzinfo is None:
        raise MappingError(f"date-time without a UTC offset: {value!r}", field=field, value=value)
    return parsed.astimezone(UTC)


def _party(writer: _Writer, role: str, party: Mapping[str, Any]) -> None:
    code = party.get("code") or party.get("id") or ""
    qualifier = party.get("id_qualifier") or ("ZZ" if code else "")
    writer.add("N1", role, party.get("name") or code, qualifier, code)
    lines = party.get("address_lines") or ([party["address_line"]] if party.get("address_line") else [])
    if lines:
        writer.add("N3", *lines[:2])
    if any(party.get(k) for k in ("city", "region", "postal_code", "country")):
        writer.add(
            "N4", party.get("city"), party.get("region"), party.get("postal_code"), party.get("country")
        )


def render_204(
    shipment: Mapping[str, Any],
    config: Any,
    *,
    control: ControlNumbers,
    mappings: MappingSet | None = None,
    now: datetime | None = None,
) -> bytes:
    """A 204 load tender for ``shipment`` (the canonical ``kind: "shipment"`` shape).

    Needs ``reference``, ``carrier.scac`` and at least one stop with ``sequence``, ``kind``
    (PICKUP/DELIVERY) and ``location.code``; stop windows (``planned_start``/``planned_end``, ISO
    8601 with offset) are written in UTC (time code UT). Raises MappingError naming a missing or
    unmappable field. Pure and deterministic for a given ``now``.
    """
    mappings = mappings or MappingSet.from_data(DEFAULT_MAPPINGS.get("outbound"))
    now = (now or datetime.now(UTC)).astimezone(UTC)
    reference = str(shipment.get("reference") or "").strip()
    if not reference:
        raise MappingError("a load tender needs the shipment reference", field="reference", value=None)
    scac = str((shipment.get("carrier") or {}).get("scac") or "").strip()
    if not scac:
        raise MappingError("a load tender needs the carrier's SCAC", field="carrier.scac", value=None)
    stops = sorted(shipment.get("stops") or [], key=lambda s: s.get("sequence") or 0)
    if not stops:
        raise MappingError("a load tender needs at least one stop", field="stops", value=None)

    writer = _Writer(config)
    _open(writer, config, control, now, "SM", config.group_version)
    st_index = len(writer.segments)
    writer.add("ST", "204", f"{control.transaction_set:04d}")
    writer.add("B2", "", scac, "", reference, "", shipment.get("payment_method") or "PP")
    purpose = mappings.code("purpose", shipment.get("purpose") or "ORIGINAL", field="purpose")
    writer.add("B2A", purpose)
    for ref in shipment.get("references") or []:
        writer.add("L11", ref.get("value"), ref.get("qualifier"))
    for note in shipment.get("notes") or []:
        writer.add("NTE", "", note)
    for party in shipment.get("parties") or []:
        _party(writer, party.get("role") or "ZZ", party)
    for number, stop in enumerate(stops, start=1):
        field = f"stops.{number - 1}"
        kind = str(stop.get("kind") or "")
        location = stop.get("location") or {}
        if not location.get("code"):
            raise MappingError("a stop needs a location code", field=f"{field}.location.code", value=None)
        writer.add(
            "S5", str(stop.get("sequence") or number), mappings.code("stop_kind", kind, field=f"{field}.kind")
        )
        for ref in stop.get("references") or []:
            writer.add("L11", ref.get("value"), ref.get("qualifier"))
        for edge in ("start", "end"):
            at = _utc(stop.get(f"planned_{edge}"), f"{field}.planned_{edge}")
            if at is None:
                continue
            writer.add(
                "G62",
                mappings.code("window_date_qualifier", f"{kind}.{edge}", field=f"{field}.kind"),
                at.strftime("%Y%m%d"),
                mappings.code("window_time_qualifier", f"{kind}.{edge}", field=f"{field}.kind"),
                at.strftime("%H%M"),
                "UT",
            )
        _party(writer, "SF" if kind == "PICKUP" else "ST", location)
        for item in stop.get("lading") or []:
            writer.add("L5", item.get("line"), item.get("description"))
    _close(writer, control, st_index)
    return writer.bytes()


def render_997(
    group_result: Mapping[str, Any], config: Any, *, control: ControlNumbers, now: datetime | None = None
) -> bytes:
    """A 997 acknowledging one received group (``documents.group_result``): AK1, one AK2..AK5 per
    set with AK3/AK4 for each segment and element error of a rejected set, and AK9. When the group
    result carries a ``ta1`` (``documents.interchange_result``), its TA1 segment comes right after
    the ISA, before the GS (``ISA TA1 GS..GE IEA``).

    Addressed back to the group's sender (config ids first, else the received interchange's).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    writer = _Writer(config)
    version = group_result.get("version") or config.group_version
    interchange = group_result.get("interchange")
    ta1 = group_result.get("ta1")
    if ta1:
        _isa(writer, config, control.interchange, now, interchange)
        _ta1(writer, ta1)
        _group(writer, config, control, now, "FA", version, interchange)
    else:
        _open(writer, config, control, now, "FA", version, interchange)
    st_index = len(writer.segments)
    writer.add("ST", "997", f"{control.transaction_set:04d}")
    writer.add("AK1", group_result["functional_id"], group_result["control_number"])
    for tset in group_result.get("sets") or []:
        writer.add("AK2", tset["id"], tset["control_number"])
        for error in tset.get("segment_errors") or []:
            writer.add("AK3", error["segment"], error["position"], error.get("loop", ""), error["code"])
            for element in error.get("elements") or []:
                writer.add(
                    "AK4", element["position"], element["reference"], element["code"], element["data"][:99]
                )
        writer.add("AK5", tset["status"], *(tset.get("codes") or [])[:5])
    writer.add(
        "AK9",
        group_result["status"],
        group_result["included"],
        group_result["received"],
        group_result["accepted"],
        *(group_result.get("codes") or [])[:5],
    )
    _close(writer, control, st_index)
    return writer.bytes()


def render_ta1(
    interchange_result: Mapping[str, Any], config: Any, *, control: int, now: datetime | None = None
) -> bytes:
    """A TA1 interchange acknowledgment for one received interchange (``documents.interchange_result``):
    ``ISA``, ``TA1*<ISA13>*<ISA09>*<ISA10>*<TA104>*<TA105>``, ``IEA*0*<control>`` (no functional
    group; ISA14 0: an acknowledgment is never acknowledged). ``control`` is the ISA13 of this TA1
    interchange (1..999999999, from the caller's durable counter). Addressed back to the sender
    like a 997. Pure and deterministic for a given ``now``.
    """
    if not isinstance(control, int) or not 1 <= control <= MAX_CONTROL_NUMBER:
        raise ValueError(f"interchange control number must be 1..{MAX_CONTROL_NUMBER}, got {control!r}")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    writer = _Writer(config)
    _isa(writer, config, control, now, interchange_result.get("interchange"), ask_ta1=False)
    _ta1(writer, interchange_result)
    writer.add("IEA", "0", f"{control:09d}")
    return writer.bytes()
