"""DCSA T&T 2.2 / 3.0 events to canonical milestones (pure).

Codes go through the connection's inbound code maps (``mappings/inbound.json``):
- ``classifier``: ACT -> ``EMIT``; EST and PLN -> ``IGNORE`` (estimates and plans are not milestones);
- ``transport_event`` (ARRI, DEPA), ``equipment_event`` (LOAD, DISC, GTIN, ...): the event code;
- ``shipment_event``: ``<document type>.<code>`` (``BKG.CONF`` is a booking confirmed, while a
  shipping instruction's ``SHI.CONF`` is paperwork); ``*`` catches the other document events;
- ``iot_event``, ``reefer_event`` (3.0 only): IGNORE by default.
``IGNORE`` produces no milestone. An unmapped code raises MappingError naming the JSON field.

The shipment reference is the first document reference whose type is listed in the connection's
``shipment_reference_types`` (default BKG, then TRD); equipment-only events with no such
reference raise MappingError, since a container number alone does not name the shipment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.errors import MappingError
from connectors.mapping import MappingSet

IGNORE = "IGNORE"
EMIT = "EMIT"
MAX_EVENT_ID = 200  # characters; longer ids are shortened with a hash (MilestoneEvent.event_id)


def _code(mappings: MappingSet, code_set: str, value: Any, field: str, path: str) -> str:
    try:
        return mappings.code(code_set, value, field=field)
    except MappingError as exc:
        raise MappingError(f"{exc.detail} (at {path})", field=exc.field, value=exc.value) from None


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _when(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError(f"{field} missing", field=field, value=value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(
            f"{field} is not an ISO 8601 date-time: {value!r}", field=field, value=value
        ) from None
    if parsed.tzinfo is None:
        raise MappingError(f"{field} has no UTC offset: {value!r}", field=field, value=value)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_id(raw: Any, party: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    value = f"{party}:{raw.strip()}" if isinstance(party, str) and party else raw.strip()
    if len(value) > MAX_EVENT_ID:
        value = value[:120] + ":" + hashlib.sha256(value.encode()).hexdigest()
    return value


def _location(node: Any) -> dict[str, Any] | None:
    """A LocationRef from a 2.2 ``location``/``eventLocation`` or a 3.0 ``Location``."""
    if not isinstance(node, Mapping):
        return None
    latitude = node.get("latitude", _get(node, "geoCoordinate", "latitude"))
    longitude = node.get("longitude", _get(node, "geoCoordinate", "longitude"))
    code = node.get("UNLocationCode") or node.get("facilityCode") or _get(node, "facility", "facilityCode")
    if not code and latitude is not None and longitude is not None:
        code = f"{latitude},{longitude}"
    if not code:
        return None
    location: dict[str, Any] = {"code": str(code)[:40]}
    if node.get("locationName"):
        location["name"] = str(node["locationName"])[:200]
    if latitude is not None and longitude is not None:
        location.update(lat=str(latitude), lon=str(longitude))
    return location


def _v2_parts(event: Mapping[str, Any]) -> dict[str, Any]:
    kind = event["eventType"]
    documents: dict[str, str] = {}
    if kind == "SHIPMENT" and event.get("documentTypeCode") and event.get("documentID"):
        documents[event["documentTypeCode"]] = event["documentID"]
    for ref in event.get("documentReferences") or []:
        documents.setdefault(ref.get("documentReferenceType", ""), ref.get("documentReferenceValue", ""))
    call = event.get("transportCall") or {}
    location = _location(event.get("eventLocation")) or _location(call.get("location"))
    if location is None and call.get("UNLocationCode"):
        location = {"code": call["UNLocationCode"]}
    code_field = {
        "TRANSPORT": "transportEventTypeCode",
        "SHIPMENT": "shipmentEventTypeCode",
        "EQUIPMENT": "equipmentEventTypeCode",
    }[kind]
    return {
        "kind": kind,
        "code": event.get(code_field),
        "code_field": code_field,
        "classifier": event.get("eventClassifierCode"),
        "classifier_field": "eventClassifierCode",
        "documents": documents,
        "references": {
            r.get("referenceType", ""): r.get("referenceValue", "") for r in event.get("references") or []
        },
        "equipment": event.get("equipmentReference"),
        "location": location,
        "delay_reason": event.get("delayReasonCode"),
        "event_id": _event_id(event.get("eventID"), None),
        "transport_call": {
            k: call[k]
            for k in (
                "transportCallID",
                "carrierServiceCode",
                "exportVoyageNumber",
                "importVoyageNumber",
                "modeOfTransport",
            )
            if k in call
        }
        | (
            {"vessel": _get(call, "vessel", "vesselName"), "imo": _get(call, "vessel", "vesselIMONumber")}
            if call.get("vessel")
            else {}
        ),
        "remark": event.get("changeRemark") or event.get("reason"),
        "retracted": False,
    }


def _v3_parts(event: Mapping[str, Any]) -> dict[str, Any]:
    classification = event.get("eventClassification") or {}
    kind = classification.get("eventTypeCode")
    code_field = {
        "TRANSPORT": "transportEventTypeCode",
        "SHIPMENT": "shipmentEventTypeCode",
        "EQUIPMENT": "equipmentEventTypeCode",
        "IOT": "iotEventTypeCode",
        "REEFER": "reeferEventTypeCode",
    }.get(kind, "eventTypeCode")
    details = event.get("shipmentDetails") or {}
    documents: dict[str, str] = {}
    for ref in [details.get("documentReference"), *(details.get("additionalDocumentReferences") or [])]:
        if isinstance(ref, Mapping) and ref.get("typeCode") and ref.get("reference"):
            documents.setdefault(ref["typeCode"], ref["reference"])
    call = _get(event, "transportDetails", "transportCall") or {}
    delays = _get(event, "transportDetails", "delayReasonCodes") or []
    party = _get(event, "eventRouting", "originatingParty", "partyCode")
    return {
        "kind": kind,
        "code": classification.get(code_field),
        "code_field": f"eventClassification.{code_field}",
        "classifier": classification.get("eventClassifierCode"),
        "classifier_field": "eventClassification.eventClassifierCode",
        "documents": documents,
        "references": {
            r.get("typeCode", ""): r.get("reference", "") for r in details.get("shipmentReferences") or []
        },
        "equipment": _get(event, "equipmentDetails", "equipmentReference"),
        "location": _location(event.get("eventLocation")) or _location(call.get("location")),
        "delay_reason": delays[0] if delays else None,
        "event_id": _event_id(event.get("eventID"), party),
        "transport_call": {
            k: call[k]
            for k in ("transportCallReference", "transportCallSequenceNumber", "modeOfTransport")
            if k in call
        }
        | (
            {
                "vessel": _get(call, "vesselTransport", "vesselName"),
                "imo": _get(call, "vesselTransport", "vesselIMONumber"),
            }
            if call.get("vesselTransport")
            else {}
        ),
        "remark": _get(event, "transportDetails", "changeRemark") or details.get("reason"),
        "retracted": event.get("isRetracted") is True,
    }


_CODE_SETS = {
    "TRANSPORT": "transport_event",
    "EQUIPMENT": "equipment_event",
    "SHIPMENT": "shipment_event",
    "IOT": "iot_event",
    "REEFER": "reefer_event",
}


def map_event(
    item: Mapping[str, Any], mappings: MappingSet, *, reference_types: tuple[str, ...] | list[str]
) -> list[dict[str, Any]]:
    """One event (``{"version", "path", "type", "event"}`` from ``schema.read_events``) to zero or
    one milestone. Raises MappingError naming the field and JSON path."""
    event, path, version = item["event"], item["path"], item["version"]
    parts = _v2_parts(event) if version == "2.2" else _v3_parts(event)
    if parts["retracted"]:
        raise MappingError(
            f"event {event.get('eventID')!r} is retracted (isRetracted): the hub cannot un-apply a milestone; "
            f"review the shipment's timeline (at {path})",
            field="isRetracted",
            value=True,
        )
    if _code(mappings, "classifier", parts["classifier"], parts["classifier_field"], path) == IGNORE:
        return []
    code_set = _CODE_SETS.get(parts["kind"])
    if code_set is None:
        raise MappingError(
            f"unsupported event type {parts['kind']!r} (at {path})", field="eventType", value=parts["kind"]
        )
    code = parts["code"]
    if parts["kind"] == "SHIPMENT":
        document_type = next(iter(parts["documents"]), "")
        code = f"{document_type}.{code}"
    event_type = _code(mappings, code_set, code, parts["code_field"], path)
    if event_type == IGNORE:
        return []
    reference = next((parts["documents"][t] for t in reference_types if parts["documents"].get(t)), None)
    if not reference:
        found = ", ".join(f"{k}={v}" for k, v in parts["documents"].items()) or "none"
        equipment = f"; equipment {parts['equipment']}" if parts["equipment"] else ""
        raise MappingError(
            f"no {'/'.join(reference_types)} document reference to name the shipment (found: {found}{equipment}) "
            f"(at {path})",
            field="documentReferences",
            value=None,
        )
    date_field = "eventDateTime"
    milestone: dict[str, Any] = {
        "event_id": parts["event_id"],
        "event_type": event_type,
        "occurred_at": _when(event.get(date_field), date_field),
        "shipment": {"reference": str(reference)[:64]},
        "reason_code": parts["delay_reason"][:16] if isinstance(parts["delay_reason"], str) else None,
        "details": {
            "dcsa": {
                "version": version,
                "path": path,
                "event_type": parts["kind"],
                "code": parts["code"],
                "classifier": parts["classifier"],
                "event_id": event.get("eventID"),
            },
            "documents": parts["documents"],
            "references": parts["references"],
        },
    }
    if parts["equipment"]:
        milestone["details"]["equipment"] = parts["equipment"]
    if parts["transport_call"]:
        milestone["details"]["transport_call"] = parts["transport_call"]
    if parts["remark"]:
        milestone["details"]["remark"] = parts["remark"]
    if parts["location"]:
        milestone["location"] = parts["location"]
    if milestone["event_id"] is None:
        del milestone["event_id"]
    return [milestone]
