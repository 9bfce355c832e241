"""X12 transaction sets (native documents from ``documents.py``) to canonical documents (pure).

- 214 -> milestone events (contract v1 ``MilestoneEvent``), one per AT7 status: the AT7-01 status
  (and AT7-02 reason) through the ``at7_status_reason``/``at7_status`` code maps, AT7-03 appointment
  statuses through ``at7_appointment``; the time from AT7-05/06 with the AT7-07 time code through
  ``time_code`` (an IANA zone, or a fixed offset like ``-06:00``); location from the MS1 after the
  AT7 (city/state/country or latitude/longitude), equipment from MS2; shipment from B10 (and L11).
- 990 -> TENDER_ACCEPTED/TENDER_REJECTED from B1-04 through ``b1_action``.
- 210 -> one ``kind: "freight_charge"`` document (invoice, L1 charges, totals) for audit.
- 204 -> one ``kind: "shipment"`` document (parties, stops, equipment) from a 3PL's load tender.
- 997 -> one ``kind: "functional_ack"`` document (what the partner said of our groups and sets).

A code set maps a native code to a canonical value; ``IGNORE`` means "not a milestone" (estimates,
appointments): the status produces no event. Every unmapped code raises MappingError naming the
element (``AT7[01]``) and where it is (set control number and position, ST = 1).

Field paths (``mappings.fields``) are read against a view of the set: ``first.<TAG>.<n>`` is element
n of the first such segment, ``refs.L11.<qualifier>`` / ``refs.N9.<qualifier>`` the first reference
with that qualifier; ``a|b`` tries ``a`` then ``b``. Per-partner overrides change them, e.g.
``"214.shipment_reference": "refs.L11.BM"``.

Dates without a time of day (990 B1-03) are read as 00:00 UTC and flagged ``date_only``. A time
whose time code is blank or ``LT`` (local time) has no known offset: it raises MappingError unless
the partner's ``time_code`` map gives ``""``/``"LT"`` a zone, so no offset is ever guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.errors import MappingError
from connectors.mapping import MappingSet, dig

IGNORE = "IGNORE"
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})\Z")
_CENT = Decimal("0.01")

DEFAULT_PATHS = {
    "214.shipment_reference": "first.B10.2|first.B10.1",
    "990.shipment_reference": "first.B1.2",
    "210.shipment_reference": "first.B3.3",
    "204.shipment_reference": "first.B2.4",
}


# --- Helpers ----------------------------------------------------------------------------------------


def _el(segment: list[str], position: int) -> str:
    return segment[position].strip() if 0 < position < len(segment) else ""


def _view(document: Mapping[str, Any]) -> dict[str, Any]:
    first: dict[str, list[str]] = {}
    refs: dict[str, dict[str, str]] = {"L11": {}, "N9": {}}
    for segment in document["segments"]:
        tag = segment[0]
        first.setdefault(tag, [tag, *(e.strip() for e in segment[1:])])
        if tag == "L11" and _el(segment, 1):
            refs["L11"].setdefault(_el(segment, 2), _el(segment, 1))
        elif tag == "N9" and _el(segment, 2):
            refs["N9"].setdefault(_el(segment, 1), _el(segment, 2))
    return {
        "first": first,
        "refs": refs,
        "interchange": document.get("interchange"),
        "group": document.get("group"),
    }


def _field(view: Mapping[str, Any], mappings: MappingSet, name: str) -> str | None:
    for path in mappings.path(name, DEFAULT_PATHS[name]).split("|"):
        value = dig(view, path.strip())
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()
    return None


def _where(document: Mapping[str, Any], position: int | None = None) -> str:
    text = f"{document['set']} {document['control_number']!r}"
    return f"{text} position {position}" if position else text


def _code(mappings: MappingSet, code_set: str, value: str, field: str, where: str) -> str:
    try:
        return mappings.code(code_set, value, field=field)
    except MappingError as exc:
        raise MappingError(f"{exc.detail} (in {where})", field=exc.field, value=exc.value) from None


def zone_for(mappings: MappingSet, time_code: str, field: str, where: str) -> tzinfo:
    """The zone an X12 time code stands for, through the ``time_code`` code map."""
    target = _code(mappings, "time_code", time_code, field, where)
    match = _OFFSET.match(target)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(target)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            f"time_code {time_code!r} maps to {target!r}, which is neither an IANA zone nor an offset "
            f"like -06:00 (in {where})",
            field=field,
            value=time_code,
        ) from None


def x12_datetime(day: str, time: str, zone: tzinfo) -> datetime:
    """CCYYMMDD + HHMM[SS[dd]] in ``zone`` (already syntax-checked by the parser), as UTC."""
    hour, minute = int(time[0:2]), int(time[2:4])
    second = int(time[4:6]) if len(time) >= 6 else 0
    local = datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), hour, minute, second, tzinfo=zone)
    return local.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _date(day: str) -> str | None:
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}" if len(day) == 8 and day.isdigit() else None


def _cents(value: str, field: str, where: str) -> str | None:
    """An N2 amount (implied two decimals) as a decimal string; empty -> None."""
    if not value:
        return None
    try:
        return str((Decimal(value) / 100).quantize(_CENT))
    except InvalidOperation:
        raise MappingError(f"not a number: {value!r} (in {where})", field=field, value=value) from None


def _dms(value: str, direction: str, positive: str) -> str | None:
    """MS1 latitude/longitude (DDMMSS or DDDMMSS) and direction to signed decimal degrees."""
    if not value.isdigit() or len(value) < 5:
        return None
    degrees, minutes, seconds = int(value[:-4]), int(value[-4:-2]), int(value[-2:])
    decimal = Decimal(degrees) + Decimal(minutes) / 60 + Decimal(seconds) / 3600
    if direction and direction != positive:
        decimal = -decimal
    return str(decimal.quantize(Decimal("0.000001")))


def source(document: Mapping[str, Any]) -> dict[str, Any]:
    interchange = document.get("interchange") or {}
    group = document.get("group") or {}
    return {
        "format": "x12",
        "set": document["set"],
        "control_number": document["control_number"],
        "interchange_control_number": interchange.get("control_number"),
        "group_control_number": group.get("control_number"),
        "sender": interchange.get("sender_id") or group.get("sender"),
    }


def _party(segments: list[list[str]], start: int) -> tuple[dict[str, Any], int]:
    """An N1 loop (N1, N2, N3, N4, G61) from ``start``; returns it and the index after it."""
    n1 = segments[start]
    party: dict[str, Any] = {
        "role": _el(n1, 1),
        "name": _el(n1, 2),
        "id_qualifier": _el(n1, 3),
        "id": _el(n1, 4),
        "address_lines": [],
        "city": "",
        "region": "",
        "postal_code": "",
        "country": "",
        "location_qualifier": "",
        "location_id": "",
        "contacts": [],
    }
    index = start + 1
    while index < len(segments) and segments[index][0] in ("N2", "N3", "N4", "G61"):
        segment = segments[index]
        tag = segment[0]
        if tag == "N2":
            party["name"] = " ".join(filter(None, [party["name"], _el(segment, 1), _el(segment, 2)]))
        elif tag == "N3":
            party["address_lines"] += [v for v in (_el(segment, 1), _el(segment, 2)) if v]
        elif tag == "N4":
            party.update(
                city=_el(segment, 1),
                region=_el(segment, 2),
                postal_code=_el(segment, 3),
                country=_el(segment, 4),
                location_qualifier=_el(segment, 5),
                location_id=_el(segment, 6),
            )
        else:
            party["contacts"].append(
                {
                    "function": _el(segment, 1),
                    "name": _el(segment, 2),
                    "qualifier": _el(segment, 3),
                    "number": _el(segment, 4),
                }
            )
        index += 1
    return party, index


def location_code(party: Mapping[str, Any]) -> str:
    """A location's business key: N4-06 location id, else N1-04 id, else name and postal code."""
    code = party.get("location_id") or party.get("id")
    if not code:
        code = "|".join(filter(None, [party.get("name", "").upper(), party.get("postal_code", "")]))
    return code[:40]


def _address(party: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "code": location_code(party),
        "name": (party.get("name") or location_code(party))[:200],
        "address_line": ", ".join(party.get("address_lines") or [])[:200],
        "city": party.get("city", "")[:100],
        "region": party.get("region", "")[:100],
        "postal_code": party.get("postal_code", "")[:20],
        "country": party.get("country", "") if len(party.get("country", "")) == 2 else "",
    }


# --- 214 --------------------------------------------------------------------------------------------


def _at7_event_type(mappings: MappingSet, at7: list[str], where: str) -> str:
    status, reason = _el(at7, 1), _el(at7, 2)
    if status:
        combined = (mappings.codes.get("at7_status_reason") or {}).get(f"{status}/{reason}")
        if combined:
            return combined
        return _code(mappings, "at7_status", status, "AT7[01]", where)
    appointment = _el(at7, 3)
    if appointment:
        return _code(mappings, "at7_appointment", appointment, "AT7[03]", where)
    raise MappingError(
        f"AT7 has neither a shipment status (AT7-01) nor an appointment status (AT7-03) (in {where})",
        field="AT7[01]",
        value="",
    )


def _location(ms1: list[str] | None) -> dict[str, Any] | None:
    if ms1 is None:
        return None
    city, state, country = _el(ms1, 1), _el(ms1, 2), _el(ms1, 3)
    longitude = _dms(_el(ms1, 4), _el(ms1, 6), "E")
    latitude = _dms(_el(ms1, 5), _el(ms1, 7), "N")
    place = [v for v in (city, state, country) if v]
    if place:
        location: dict[str, Any] = {"code": ",".join(place)[:40], "name": ", ".join(place)[:200]}
    elif latitude and longitude:
        location = {"code": f"{latitude},{longitude}"[:40]}
    else:
        return None
    if latitude and longitude:
        location.update(lat=latitude, lon=longitude)
    return location


def map_214(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    view = _view(document)
    where = _where(document)
    reference = _field(view, mappings, "214.shipment_reference")
    if not reference:
        raise MappingError(
            f"no shipment reference: {mappings.path('214.shipment_reference', DEFAULT_PATHS['214.shipment_reference'])} "
            f"is empty (in {where})",
            field="214.shipment_reference",
            value=None,
        )
    b10 = view["first"].get("B10", ["B10"])
    header_refs = {}
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    lx = ""
    for position, segment in enumerate(document["segments"], start=1):
        tag = segment[0]
        if tag == "LX":
            lx, current = _el(segment, 1), None
        elif tag == "AT7":
            current = {"at7": segment, "position": position, "lx": lx, "ms1": None, "ms2": None, "refs": {}}
            groups.append(current)
        elif tag == "MS1" and current is not None and current["ms1"] is None:
            current["ms1"] = segment
        elif tag == "MS2" and current is not None and current["ms2"] is None:
            current["ms2"] = segment
        elif tag == "L11" and _el(segment, 1):
            target = current["refs"] if current is not None else header_refs
            target.setdefault(_el(segment, 2), _el(segment, 1))
    if not groups:
        raise MappingError(f"no AT7 status in the 214 (in {where})", field="AT7", value=None)
    events = []
    for item in groups:
        at7, position = item["at7"], item["position"]
        at = _where(document, position)
        event_type = _at7_event_type(mappings, at7, at)
        if event_type == IGNORE:
            continue
        day, time, time_code = _el(at7, 5), _el(at7, 6), _el(at7, 7)
        if not day:
            raise MappingError(f"AT7-05 date missing (in {at})", field="AT7[05]", value=None)
        if not time:
            raise MappingError(f"AT7-06 time missing (in {at})", field="AT7[06]", value=None)
        zone = zone_for(mappings, time_code, "AT7[07]", at)
        occurred = x12_datetime(day, time, zone)
        event: dict[str, Any] = {
            "event_type": event_type,
            "occurred_at": _iso(occurred),
            "shipment": {"reference": reference[:64]},
            "reason_code": (_el(at7, 2) or _el(at7, 4) or None),
            "details": {
                "x12": {**source(document), "position": position},
                "at7": {
                    "status": _el(at7, 1),
                    "reason": _el(at7, 2),
                    "appointment_status": _el(at7, 3),
                    "appointment_reason": _el(at7, 4),
                    "date": day,
                    "time": time,
                    "time_code": time_code,
                },
                "scac": _el(b10, 3),
                "carrier_reference": _el(b10, 1),
                "shipper_reference": _el(b10, 2),
                "references": {**header_refs, **item["refs"]},
            },
        }
        if item["lx"]:
            event["details"]["lx"] = item["lx"]
        location = _location(item["ms1"])
        if location:
            event["location"] = location
        if item["ms2"] is not None:
            event["details"]["equipment"] = {"scac": _el(item["ms2"], 1), "number": _el(item["ms2"], 2)}
        events.append(event)
    return events


# --- 990 --------------------------------------------------------------------------------------------


def map_990(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    view = _view(document)
    where = _where(document)
    b1 = view["first"].get("B1", ["B1"])
    reference = _field(view, mappings, "990.shipment_reference")
    if not reference:
        raise MappingError(
            f"B1-02 shipment identification number is empty (in {where})", field="B1[02]", value=None
        )
    action = _el(b1, 4)
    event_type = _code(mappings, "b1_action", action, "B1[04]", where)
    if event_type == IGNORE:
        return []
    day = _el(b1, 3)
    if not day:
        raise MappingError(f"B1-03 date missing (in {where})", field="B1[03]", value=None)
    v9 = view["first"].get("V9")
    remarks = [_el(s, 1) for s in document["segments"] if s[0] == "K1" and _el(s, 1)]
    details: dict[str, Any] = {
        "x12": source(document),
        "b1_action": action,
        "scac": _el(b1, 1),
        "date_only": True,
        "references": view["refs"]["N9"],
    }
    if v9 is not None:
        details["v9"] = {"event_code": _el(v9, 1), "reason": _el(v9, 8)}
    if remarks:
        details["remarks"] = remarks
    return [
        {
            "event_type": event_type,
            "occurred_at": _iso(x12_datetime(day, "0000", UTC)),
            "shipment": {"reference": reference[:64]},
            "reason_code": ((_el(v9, 8) if v9 is not None else "") or action or None),
            "details": details,
        }
    ]


# --- 210 --------------------------------------------------------------------------------------------


def map_210(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """One ``freight_charge`` document: the carrier's invoice for audit against the expected cost."""
    view = _view(document)
    where = _where(document)
    segments = document["segments"]
    b3 = view["first"].get("B3", ["B3"])
    c3 = view["first"].get("C3")
    l3 = view["first"].get("L3")
    charges: list[dict[str, Any]] = []
    parties: list[dict[str, Any]] = []
    header_refs: list[dict[str, str]] = []
    line_refs: list[dict[str, str]] = []
    in_detail = False
    lx = ""
    index = 0
    while index < len(segments):
        segment = segments[index]
        tag = segment[0]
        position = index + 1
        if tag == "LX":
            in_detail, lx, line_refs = True, _el(segment, 1), []
        elif tag in ("N9", "L11"):
            qualifier, value = (
                (_el(segment, 1), _el(segment, 2)) if tag == "N9" else (_el(segment, 2), _el(segment, 1))
            )
            if value:
                (line_refs if in_detail else header_refs).append({"qualifier": qualifier, "value": value})
        elif tag == "N1" and not in_detail:
            party, index = _party(segments, index)
            parties.append(party)
            continue
        elif tag == "L1":
            code = _el(segment, 8)
            amount = _cents(_el(segment, 4), "L1[04]", _where(document, position))
            if amount is not None:
                charges.append(
                    {
                        "line": _el(segment, 1) or lx or None,
                        "kind": _code(mappings, "l1_charge", code, "L1[08]", _where(document, position)),
                        "code": code,
                        "description": _el(segment, 12),
                        "rate": _el(segment, 2) or None,
                        "rate_qualifier": _el(segment, 3) or None,
                        "amount": amount,
                        "references": list(line_refs),
                    }
                )
        index += 1
    total = _cents(_el(b3, 7), "B3[07]", where)
    trailer_total = _cents(_el(l3, 5), "L3[05]", where) if l3 is not None else None
    charges_total = str(sum((Decimal(c["amount"]) for c in charges), Decimal("0.00")).quantize(_CENT))
    reference = _field(view, mappings, "210.shipment_reference")
    document_out: dict[str, Any] = {
        "kind": "freight_charge",
        "invoice_number": _el(b3, 2),
        "shipment": {"reference": reference[:64]} if reference else None,
        "carrier": {"scac": _el(b3, 11)},
        "invoice_date": _date(_el(b3, 6)),
        "delivery_date": _date(_el(b3, 12)),
        "payment_method": _el(b3, 4),
        "currency": (_el(c3, 1) if c3 is not None else "") or None,
        "total": total,
        "trailer_total": trailer_total,
        "charges_total": charges_total,
        "totals_agree": total is not None and total == charges_total and trailer_total in (None, total),
        "charges": charges,
        "references": header_refs,
        "parties": parties,
        "weight": {"value": _el(l3, 1), "qualifier": _el(l3, 2)} if l3 is not None and _el(l3, 1) else None,
        "source": source(document),
    }
    if not document_out["invoice_number"]:
        raise MappingError(f"B3-02 invoice number is empty (in {where})", field="B3[02]", value=None)
    return [document_out]


# --- 204 --------------------------------------------------------------------------------------------


_END_QUALIFIERS = ("38", "54")  # G62-01 "ship no later than", "deliver no later than"


def _g62(segment: list[str], mappings: MappingSet, where: str) -> dict[str, Any]:
    day, time, time_code = _el(segment, 2), _el(segment, 4), _el(segment, 5)
    entry: dict[str, Any] = {
        "qualifier": _el(segment, 1) or _el(segment, 3),
        "date": _date(day),
        "time": f"{time[:2]}:{time[2:4]}" if len(time) >= 4 else None,
        "time_code": time_code,
        "at": None,
    }
    if day and time:
        try:
            entry["at"] = _iso(x12_datetime(day, time, zone_for(mappings, time_code, "G62[05]", where)))
        except MappingError:
            entry["at"] = None  # local time with no known zone: kept as written, not guessed
    return entry


def map_204(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """One ``shipment`` document from an inbound load tender (3PL partner)."""
    view = _view(document)
    where = _where(document)
    segments = document["segments"]
    reference = _field(view, mappings, "204.shipment_reference")
    if not reference:
        raise MappingError(
            f"B2-04 shipment identification number is empty (in {where})", field="B2[04]", value=None
        )
    b2 = view["first"].get("B2", ["B2"])
    b2a = view["first"].get("B2A")
    purpose = _code(mappings, "b2a_purpose", _el(b2a, 1) if b2a else "00", "B2A[01]", where)
    shipment: dict[str, Any] = {
        "kind": "shipment",
        "reference": reference[:64],
        "purpose": purpose,
        "carrier": {"scac": _el(b2, 2)},
        "payment_method": _el(b2, 6),
        "references": [],
        "parties": [],
        "dates": [],
        "notes": [],
        "equipment": [],
        "stops": [],
        "source": source(document),
    }
    stop: dict[str, Any] | None = None
    index = 1
    while index < len(segments):
        segment = segments[index]
        tag = segment[0]
        position = index + 1
        if tag == "S5":
            sequence = _el(segment, 1)
            if not sequence.isdigit() or not 1 <= int(sequence) <= 999:
                raise MappingError(
                    f"S5-01 stop sequence must be 1-999, found {sequence!r} (in {_where(document, position)})",
                    field="S5[01]",
                    value=sequence,
                )
            reason = _el(segment, 2)
            stop = {
                "sequence": int(sequence),
                "kind": _code(mappings, "stop_reason", reason, "S5[02]", _where(document, position)),
                "reason_code": reason,
                "location": None,
                "party_role": "",
                "planned_start": None,
                "planned_end": None,
                "dates": [],
                "references": [],
                "lading": [],
                "contacts": [],
            }
            shipment["stops"].append(stop)
        elif tag == "N1":
            party, index = _party(segments, index)
            if stop is None:
                shipment["parties"].append(party)
            elif stop["location"] is None:
                stop["location"] = _address(party)
                stop["party_role"] = party["role"]
                stop["contacts"] = party["contacts"]
            continue
        elif tag == "L11" and _el(segment, 1):
            ref = {"qualifier": _el(segment, 2), "value": _el(segment, 1)}
            (stop["references"] if stop is not None else shipment["references"]).append(ref)
        elif tag == "G62":
            entry = _g62(segment, mappings, _where(document, position))
            if stop is None:
                shipment["dates"].append(entry)
            else:
                stop["dates"].append(entry)
                if entry["at"]:
                    key = "planned_end" if entry["qualifier"] in _END_QUALIFIERS else "planned_start"
                    stop[key] = stop[key] or entry["at"]
        elif tag == "NTE" and _el(segment, 2):
            shipment["notes"].append(_el(segment, 2))
        elif tag == "L5" and stop is not None:
            stop["lading"].append({"line": _el(segment, 1), "description": _el(segment, 2)})
        elif tag == "N7":
            shipment["equipment"].append(
                {
                    "prefix": _el(segment, 1),
                    "number": _el(segment, 2),
                    "weight": _el(segment, 3) or None,
                    "weight_qualifier": _el(segment, 4) or None,
                    "tare_weight": _el(segment, 5) or None,
                    "ownership": _el(segment, 11) or None,
                    "stop": stop["sequence"] if stop is not None else None,
                }
            )
        index += 1
    for item in shipment["stops"]:
        if item["location"] is None:
            raise MappingError(
                f"stop {item['sequence']} has no N1 location (in {where})",
                field="S5/N1",
                value=item["sequence"],
            )
    return [shipment]


# --- 997 --------------------------------------------------------------------------------------------


def map_997(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """One ``functional_ack`` document: the partner's verdict on one of our groups."""
    ack: dict[str, Any] = {
        "kind": "functional_ack",
        "acknowledged": None,
        "status": None,
        "codes": [],
        "included": None,
        "received": None,
        "accepted": None,
        "sets": [],
        "source": source(document),
    }
    current: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    for segment in document["segments"]:
        tag = segment[0]
        if tag == "AK1":
            ack["acknowledged"] = {"functional_id": _el(segment, 1), "control_number": _el(segment, 2)}
        elif tag == "AK2":
            current = {
                "id": _el(segment, 1),
                "control_number": _el(segment, 2),
                "status": None,
                "codes": [],
                "segment_errors": [],
            }
            ack["sets"].append(current)
            error = None
        elif tag == "AK3" and current is not None:
            error = {
                "segment": _el(segment, 1),
                "position": int(_el(segment, 2)) if _el(segment, 2).isdigit() else _el(segment, 2),
                "loop": _el(segment, 3),
                "code": _el(segment, 4),
                "elements": [],
            }
            current["segment_errors"].append(error)
        elif tag == "AK4" and error is not None:
            error["elements"].append(
                {
                    "position": _el(segment, 1),
                    "reference": _el(segment, 2),
                    "code": _el(segment, 3),
                    "data": _el(segment, 4),
                }
            )
        elif tag == "AK5" and current is not None:
            current["status"] = _el(segment, 1)
            current["codes"] = [_el(segment, i) for i in range(2, 7) if _el(segment, i)]
        elif tag == "AK9":
            ack["status"] = _el(segment, 1)
            for key, position in (("included", 2), ("received", 3), ("accepted", 4)):
                ack[key] = int(_el(segment, position)) if _el(segment, position).isdigit() else None
            ack["codes"] = [_el(segment, i) for i in range(5, 10) if _el(segment, i)]
    return [ack]


MAPPERS = {"204": map_204, "210": map_210, "214": map_214, "990": map_990, "997": map_997}


def map_set(document: Mapping[str, Any], mappings: MappingSet) -> list[dict[str, Any]]:
    """A native set document to canonical documents. Raises MappingError (stage map)."""
    mapper = MAPPERS.get(document.get("set", ""))
    if mapper is None:
        raise MappingError(
            f"transaction set {document.get('set')!r} has no mapping",
            field="ST[01]",
            value=document.get("set"),
        )
    return mapper(document, mappings)
