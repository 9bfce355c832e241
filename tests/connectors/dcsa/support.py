"""Shared helpers for the dcsa connector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.base import InboundRequest
from connectors.dcsa import CONNECTOR, Config
from connectors.errors import ConnectorError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dcsa"
EXAMPLES = sorted(p for p in FIXTURES.glob("example_*.json") if not p.name.endswith(".expected.json"))
CONFIG = Config()
CONNECTOR_INSTANCE = CONNECTOR.instance()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(body=body, content_type="application/json", headers=headers or {})


def error_of(exc: ConnectorError) -> dict[str, Any]:
    return {
        "class": type(exc).__name__,
        "stage": exc.stage,
        "field": getattr(exc, "field", None),
        "detail": str(exc),
    }


def outcome(body: bytes, *, config: Config = CONFIG, mappings: Any = None) -> dict[str, Any]:
    connector = CONNECTOR_INSTANCE
    result: dict[str, Any] = {"natural_id": connector.natural_id(request(body), config)}
    try:
        parsed = connector.parse(request(body), config)
    except ConnectorError as exc:
        result["error"] = error_of(exc)
        return result
    events = []
    for document in parsed.documents:
        entry: dict[str, Any] = {
            "path": document["path"],
            "version": document["version"],
            "type": document["type"],
        }
        try:
            entry["canonical"] = connector.map(document, config, mappings)
        except ConnectorError as exc:
            entry["error"] = error_of(exc)
        events.append(entry)
    result["events"] = events
    return result
