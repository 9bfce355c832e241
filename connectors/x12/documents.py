"""From a parsed message (``parser.Reading``) to JSON-ready native documents and 997 inputs (pure).

One **transaction set is one document**: the hub maps, validates and applies each on its own, so one
bad set dead-letters alone. A document keeps every segment as a list whose item 0 is the tag (so
``segments[i][1]`` is element 01), the envelope it came in, and its problems: ``rejected`` (reasons
that reject it; the connector's ``map`` raises ParseError with them) and ``warnings``.

A **group result** is what ``render.render_997`` acknowledges: one per functional group received
inside an ISA interchange, except groups of 997s (an acknowledgment is never acknowledged).

An **interchange result** is what ``render.render_ta1`` acknowledges: one per ISA interchange
received, saying TA104 (A, or E with the TA105 note when the envelope itself was faulty).
"""

from __future__ import annotations

from typing import Any

from connectors.x12.parser import REJECT, Group, Interchange, Reading, TransactionSet


def interchange_info(interchange: Interchange) -> dict[str, str] | None:
    if interchange.header is None:
        return None
    return {
        "sender_qualifier": interchange.isa(5),
        "sender_id": interchange.isa(6),
        "receiver_qualifier": interchange.isa(7),
        "receiver_id": interchange.isa(8),
        "date": interchange.isa(9),
        "time": interchange.isa(10),
        "version": interchange.isa(12),
        "control_number": interchange.isa(13),
        "usage": interchange.isa(15),
    }


def group_info(group: Group | None) -> dict[str, str] | None:
    if group is None:
        return None
    header = group.header
    return {
        "functional_id": header.get(1).strip(),
        "sender": header.get(2).strip(),
        "receiver": header.get(3).strip(),
        "date": header.get(4).strip(),
        "time": header.get(5).strip(),
        "control_number": header.get(6).strip(),
        "version": header.get(8).strip(),
    }


def set_document(interchange: Interchange, group: Group | None, tset: TransactionSet) -> dict[str, Any]:
    rejected = [str(p) for p in tset.problems if p.severity == REJECT]
    if group is not None and group.rejected:
        rejected += [
            f"group {group.control_number!r} rejected: {p}" for p in group.problems if p.severity == REJECT
        ]
    return {
        "format": "x12",
        "set": tset.id,
        "control_number": tset.control_number.strip(),
        "interchange": interchange_info(interchange),
        "group": group_info(group),
        "delimiters": interchange.delimiters.as_dict(),
        "line": tset.header.line,
        "segments": [list(segment.elements) for segment in tset.segments],
        "rejected": rejected,
        "warnings": [str(p) for p in tset.problems if p.severity != REJECT],
    }


def documents(reading: Reading) -> list[dict[str, Any]]:
    return [
        set_document(interchange, group, tset)
        for interchange in reading.interchanges
        for group, tset in interchange.all_sets()
    ]


def group_result(interchange: Interchange, group: Group) -> dict[str, Any]:
    """What a 997 for ``group`` says (AK1, AK2/AK3/AK4/AK5 per set, AK9)."""
    included = group.trailer.get(1).strip() if group.trailer is not None else ""
    sets = []
    for tset in group.sets:
        sets.append(
            {
                "id": tset.id.strip(),
                "control_number": tset.control_number.strip(),
                "status": tset.status,
                "codes": list(dict.fromkeys(tset.ak5_codes))[:5],
                "segment_errors": [
                    {
                        "segment": error.segment,
                        "position": error.position,
                        "code": error.code,
                        "elements": [
                            {"position": e.position, "reference": e.reference, "code": e.code, "data": e.data}
                            for e in error.elements
                        ],
                    }
                    for error in tset.segment_errors
                ],
            }
        )
    return {
        "interchange": interchange_info(interchange),
        "functional_id": group.functional_id.strip(),
        "control_number": group.control_number.strip(),
        "version": group.version.strip(),
        "status": group.status,
        "codes": list(dict.fromkeys(group.ak9_codes))[:5],
        "included": int(included) if included.isdigit() else len(group.sets),
        "received": len(group.sets),
        "accepted": sum(1 for s in group.sets if not s.rejected and not group.rejected),
        "sets": sets,
    }


def interchange_result(interchange: Interchange) -> dict[str, Any]:
    """What a TA1 for ``interchange`` says: its ISA13, ISA09, ISA10, TA104 status and TA105 note."""
    return {
        "interchange": interchange_info(interchange),
        "control_number": interchange.isa(13),
        "date": interchange.isa(9),
        "time": interchange.isa(10),
        "status": interchange.ta1_status,
        "note": interchange.ta1_note,
        "notes": list(dict.fromkeys(interchange.ta1_codes)),
    }


def _wants_ta1(interchange: Interchange, policy: str) -> bool:
    requested = interchange.isa(14) == "1"
    return {
        "always": True,
        "errors": requested or bool(interchange.ta1_codes),
        "requested": requested,
    }.get(policy, False)


def acknowledgements(
    reading: Reading, *, send_997: bool, send_ta1: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What to send back for ``reading``: (group results, standalone interchange results).

    A TA1 is due for an interchange under ``send_ta1`` (``Config.send_ta1``): ``requested`` when its
    ISA14 is 1, ``errors`` also when its envelope had a TA1 note, ``always``, or ``never``. It rides
    in the interchange of the first 997 answering that interchange (``ISA TA1 GS..GE IEA``, as X12
    allows), as the group result's ``ta1``; when no 997 answers it (997s off, only 997 groups
    received, no group at all) it is returned on its own, for ``render_ta1``.
    """
    groups: list[dict[str, Any]] = []
    standalone: list[dict[str, Any]] = []
    for interchange in reading.interchanges:
        if interchange.header is None:
            continue
        results = (
            [group_result(interchange, g) for g in interchange.groups if g.functional_id.strip() != "FA"]
            if send_997
            else []
        )
        if _wants_ta1(interchange, send_ta1):
            if results:
                results[0]["ta1"] = interchange_result(interchange)
            else:
                standalone.append(interchange_result(interchange))
        groups += results
    return groups, standalone
