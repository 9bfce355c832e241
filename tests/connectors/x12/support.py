"""Shared helpers for the x12 connector tests: the fixture folder, a config, and the golden outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.base import InboundRequest
from connectors.errors import ConnectorError
from connectors.x12 import CONNECTOR, Config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
SAMPLES = sorted(FIXTURES.glob("*.edi"))
CONFIG = Config(sender_id="CROSSDOCK", receiver_id="PARTNER")
CONNECTOR_INSTANCE = CONNECTOR.instance()


def request(body: bytes, content_type: str = "application/edi-x12") -> InboundRequest:
    return InboundRequest(body=body, content_type=content_type, headers={"content-type": content_type})


def error_of(exc: ConnectorError) -> dict[str, Any]:
    return {
        "class": type(exc).__name__,
        "stage": exc.stage,
        "field": getattr(exc, "field", None),
        "detail": str(exc),
    }


def outcome(body: bytes, *, config: Config = CONFIG, mappings: Any = None) -> dict[str, Any]:
    """What the connector makes of one message: parse problems, 997 inputs, and per set its
    canonical documents or the error ``map`` raised (as the hub would record it)."""
    connector = CONNECTOR_INSTANCE
    result: dict[str, Any] = {"natural_id": connector.natural_id(request(body), config)}
    try:
        parsed = connector.parse(request(body), config)
    except ConnectorError as exc:
        result["error"] = error_of(exc)
        return result
    result["problems"] = parsed.problems
    result["acknowledgements"] = parsed.acknowledgements
    documents = []
    for document in parsed.documents:
        entry: dict[str, Any] = {
            "set": document["set"],
            "control_number": document["control_number"],
            "rejected": document["rejected"],
            "warnings": document["warnings"],
        }
        try:
            entry["canonical"] = connector.map(document, config, mappings)
        except ConnectorError as exc:
            entry["error"] = error_of(exc)
        documents.append(entry)
    result["documents"] = documents
    return result
