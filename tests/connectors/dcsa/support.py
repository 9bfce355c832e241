"""Shared helpers for the dcsa connector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.base import InboundRequest
from connectors.dcsa import CONNECTOR, Config
from tests.support.golden import inbound_outcome

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dcsa"
EXAMPLES = sorted(p for p in FIXTURES.glob("example_*.json") if not p.name.endswith(".expected.json"))
CONFIG = Config()
CONNECTOR_INSTANCE = CONNECTOR.instance()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(body=body, content_type="application/json", headers=headers or {})


def outcome(body: bytes, *, config: Config = CONFIG, mappings: Any = None) -> dict[str, Any]:
    return inbound_outcome(
        CONNECTOR_INSTANCE,
        request(body),
        config,
        mappings,
        entries="events",
        entry_of=lambda document: {
            "path": document["path"],
            "version": document["version"],
            "type": document["type"],
        },
    )
