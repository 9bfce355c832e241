"""Reading DCSA Track & Trace bodies and validating each event against DCSA's published OpenAPI.

The schemas are DCSA's own files, copied verbatim into ``schemas/`` (see its SOURCES.md):
T&T 2.2.0 (fully resolved) and 3.0.0. OpenAPI 3.0 schema objects are JSON Schema with a few
extensions; the only one that changes validation here is ``nullable: true`` (``null`` allowed), which
is translated before building a ``jsonschema`` Draft 2020-12 validator per event type.

Bodies accepted (``read_events``):
- a JSON array of 2.2 events (``GET /v2/events`` response, and the 2.2 notification body);
- ``{"events": [...]}`` of 3.0 events (``POST /events`` request, ``GET /events`` response);
- one event object (2.2: has ``eventType``; 3.0: has ``eventClassification``).

A body that is not JSON, has another shape, or holds an event that fails its schema raises
ParseError naming the JSON path (``$[0].eventType``, ``$.events[2].eventDateTime``) and what the
schema says; the whole message is rejected (DCSA's own negative examples are such bodies).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from connectors.errors import ParseError
from connectors.jsonbody import json_body

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_FILES = {"2.2": "tnt_v2.2.0_resolved.openapi.yaml", "3.0": "tnt_v3.0.0.openapi.yaml"}
V2_EVENT_SCHEMAS = {"TRANSPORT": "transportEvent", "SHIPMENT": "shipmentEvent", "EQUIPMENT": "equipmentEvent"}
V3_EVENT_SCHEMA = "Event"
MAX_REPORTED_ERRORS = 3  # schema errors quoted in one ParseError


def _openapi_to_jsonschema(node: Any) -> Any:
    """Translate OpenAPI 3.0 ``nullable`` into JSON Schema; everything else is kept as is."""
    if isinstance(node, dict):
        out = {key: _openapi_to_jsonschema(value) for key, value in node.items() if key != "nullable"}
        if node.get("nullable") is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            elif "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    return node


@cache
def _components(version: str) -> dict[str, Any]:
    document = yaml.safe_load((SCHEMA_DIR / SCHEMA_FILES[version]).read_text(encoding="utf-8"))
    return _openapi_to_jsonschema(document["components"])


@cache
def validator(version: str, schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>`` of the given T&T version."""
    components = _components(version)
    if schema_name not in components["schemas"]:
        raise KeyError(f"DCSA T&T {version} has no schema {schema_name!r}")
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": components})


def json_path(base: str, parts: Any) -> str:
    path = base
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: ValidationError, base: str) -> str:
    return f"{json_path(base, error.absolute_path)}: {error.message}"


def check_event(event: Any, version: str, path: str) -> str:
    """Validate one event; returns its DCSA event type. Raises ParseError naming the path."""
    if not isinstance(event, dict):
        raise ParseError(f"{path}: expected an event object, found {type(event).__name__}")
    if version == "2.2":
        kind = event.get("eventType")
        if not isinstance(kind, str) or kind not in V2_EVENT_SCHEMAS:
            found = (
                f"found {kind!r}" if "eventType" in event else f"missing; keys found: {sorted(event)[:10]}"
            )
            raise ParseError(
                f"{path}.eventType: a DCSA T&T 2.2 event needs eventType TRANSPORT, SHIPMENT or EQUIPMENT ({found})"
            )
        schema_name = V2_EVENT_SCHEMAS[kind]
    else:
        classification = event.get("eventClassification")
        kind = classification.get("eventTypeCode") if isinstance(classification, dict) else None
        if not isinstance(kind, str) or not kind:
            raise ParseError(
                f"{path}.eventClassification.eventTypeCode: a DCSA T&T 3.0 event needs its event type "
                f"(keys found: {sorted(event)[:10]})"
            )
        schema_name = V3_EVENT_SCHEMA
    errors = sorted(validator(version, schema_name).iter_errors(event), key=lambda e: list(e.absolute_path))
    if errors:
        first = best_match(errors)
        others = [e for e in errors if e is not first][: MAX_REPORTED_ERRORS - 1]
        reasons = "; ".join(_describe(e, path) for e in [first, *others])
        more = f" (+{len(errors) - 1 - len(others)} more)" if len(errors) > 1 + len(others) else ""
        raise ParseError(f"DCSA T&T {version} {kind} event fails the schema: {reasons}{more}")
    return kind


def _detect(value: Any) -> str | None:
    if isinstance(value, dict):
        if isinstance(value.get("eventClassification"), dict) or "eventRouting" in value:
            return "3.0"
        if "eventType" in value:
            return "2.2"
    return None


def read_events(body: bytes, *, version: str = "auto") -> list[dict[str, Any]]:
    """Events of one body as ``{"version", "path", "type", "event"}``. Raises ParseError."""
    data = json_body(body)
    if isinstance(data, list):
        if not data:
            raise ParseError("$: empty list: expected at least one event")
        items = [(f"$[{i}]", item) for i, item in enumerate(data)]
        guessed = "2.2"
    elif isinstance(data, dict) and "events" in data:
        events = data["events"]
        if not isinstance(events, list) or not events:
            raise ParseError("$.events: expected a non-empty list of events")
        items = [(f"$.events[{i}]", item) for i, item in enumerate(events)]
        guessed = "3.0"
    elif isinstance(data, dict) and _detect(data):
        items = [("$", data)]
        guessed = _detect(data) or "2.2"
    else:
        keys = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
        raise ParseError(
            '$: not a DCSA T&T body: expected a list of 2.2 events, {"events": [...]} (3.0) or one event; '
            f"found {keys}"
        )
    chosen = guessed if version == "auto" else version
    if version == "auto" and guessed == "3.0" and items and _detect(items[0][1]) == "2.2":
        chosen = "2.2"  # {"events": [...]} holding 2.2 events
    result = []
    for path, item in items:
        kind = check_event(item, chosen, path)
        result.append({"version": chosen, "path": path, "type": kind, "event": item})
    return result
