"""Shared helpers for the x12 connector tests: the fixture folder, a config, and the golden outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.base import InboundRequest
from connectors.x12 import CONNECTOR, Config
from tests.support.golden import inbound_outcome

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "x12"
SAMPLES = sorted(FIXTURES.glob("*.edi"))
CONFIG = Config(sender_id="CROSSDOCK", receiver_id="PARTNER")
CONNECTOR_INSTANCE = CONNECTOR.instance()


def request(body: bytes, content_type: str = "application/edi-x12") -> InboundRequest:
    return InboundRequest(body=body, content_type=content_type, headers={"content-type": content_type})


def outcome(body: bytes, *, config: Config = CONFIG, mappings: Any = None) -> dict[str, Any]:
    """What the connector makes of one message: parse problems, 997 inputs, and per set its
    canonical documents or the error ``map`` raised (as the hub would record it)."""
    return inbound_outcome(
        CONNECTOR_INSTANCE,
        request(body),
        config,
        mappings,
        entries="documents",
        entry_of=lambda document: {
            "set": document["set"],
            "control_number": document["control_number"],
            "rejected": document["rejected"],
            "warnings": document["warnings"],
        },
        parsed_extras=lambda parsed: {
            "problems": parsed.problems,
            "acknowledgements": parsed.acknowledgements,
        },
    )
