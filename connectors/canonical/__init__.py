"""`canonical`: inbound canonical milestone JSON (one event object or a list of them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from canonical.contracts.v1 import DOCUMENT_CONTRACTS
from connectors import signing
from connectors.base import Connector, ConnectorSpec, InboundRequest, ParseResult
from connectors.errors import ParseError
from connectors.jsonbody import json_body, json_body_or_none


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CanonicalConnector(Connector):
    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        signing.CROSSDOCK.verify_request(request, secret)

    def replay_nonce(self, request: InboundRequest) -> tuple[str, int] | None:
        return signing.CROSSDOCK.replay_nonce_of(request)

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        # A single event's event_id identifies the message; a batch has no single id (body hash is used),
        # so a list is not even decoded here: this runs in the web process, before the 202.
        if request.body[:256].lstrip()[:1] != b"{":
            return None
        doc = json_body_or_none(request.body)
        if isinstance(doc, dict) and isinstance(doc.get("event_id"), str) and doc["event_id"]:
            return f"event:{doc['event_id']}"
        return None

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        doc = json_body(request.body)
        if isinstance(doc, dict):
            return ParseResult(documents=[doc])
        if isinstance(doc, list):
            if not doc:
                raise ParseError("empty list: expected at least one event")
            return ParseResult(documents=doc)
        raise ParseError(f"expected a JSON object or a list of objects, got {type(doc).__name__}")

    def map(self, document: Any, config: BaseModel, mappings) -> list[dict[str, Any]]:
        return [document]  # canonical in, canonical out: validation is the hub's job


CONNECTOR = ConnectorSpec(
    key="canonical",
    label="Canonical JSON (inbound)",
    system="partner",
    version="1.0",
    config_schema=Config,
    connector=CanonicalConnector,
    secret_fields=("secret",),
    description=(
        "Accepts canonical documents (ARCHITECTURE.md contract v1: milestones, orders, shipments, freight "
        "charges, acknowledgements), one object or a list."
    ),
    # map passes canonical documents through unchanged: every kind of contract v1.
    document_kinds=frozenset(DOCUMENT_CONTRACTS),
)
