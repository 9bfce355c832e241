"""Golden-file outcomes for inbound connectors: what ``parse`` then ``map`` make of one message,
as plain data compared with a hand-reviewed ``<case>.expected.json`` beside the fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors.base import Connector, InboundRequest, ParseResult
from connectors.errors import ConnectorError


def expected_path(case: Path) -> Path:
    """The golden file of a fixture: ``<case>.expected.json`` beside it."""
    return case.with_name(case.stem + ".expected.json")


def error_of(exc: ConnectorError) -> dict[str, Any]:
    """A connector error as the hub would record it."""
    return {
        "class": type(exc).__name__,
        "stage": exc.stage,
        "field": getattr(exc, "field", None),
        "detail": str(exc),
    }


def inbound_outcome(
    connector: Connector,
    request: InboundRequest,
    config: BaseModel,
    mappings: Any,
    *,
    entries: str,
    entry_of: Callable[[Any], dict[str, Any]],
    parsed_extras: Callable[[ParseResult], dict[str, Any]] = lambda parsed: {},
) -> dict[str, Any]:
    """The natural id, then the parse error or ``parsed_extras`` and, under ``entries``, one
    ``entry_of(document)`` per parsed document with its canonical documents or the error ``map``
    raised."""
    result: dict[str, Any] = {"natural_id": connector.natural_id(request, config)}
    try:
        parsed = connector.parse(request, config)
    except ConnectorError as exc:
        result["error"] = error_of(exc)
        return result
    result.update(parsed_extras(parsed))
    rows = []
    for document in parsed.documents:
        entry = entry_of(document)
        try:
            entry["canonical"] = connector.map(document, config, mappings)
        except ConnectorError as exc:
            entry["error"] = error_of(exc)
        rows.append(entry)
    result[entries] = rows
    return result
