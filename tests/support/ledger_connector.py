"""A connector for the hub's own framework tests (mappings, ledger, polling), registered only there.

Its "peer" is ``PEER``, a record store in this process, so a test can count what was written and
make the next call fail. The real peers (Tryton, Karrio, BottleCRM) are exercised by the live tests
under tests/connectors/<key>/; this one isolates the hub's rules from any peer's behaviour.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from connectors.base import (
    Connector,
    ConnectorSpec,
    InboundRequest,
    Operation,
    OperationContext,
    OperationResult,
    ParseResult,
    PollResult,
)
from connectors.errors import ParseError

KEY = "testpeer"


@dataclass
class Peer:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0
    fail_next: list[Exception] = field(default_factory=list)
    in_flight: int = 0  # writes being made right now
    most_in_flight: int = 0
    feed: list[dict[str, Any]] = field(default_factory=list)  # what poll returns, by position

    def reset(self) -> None:
        self.records.clear()
        self.writes = 0
        self.fail_next.clear()
        self.feed.clear()
        self.in_flight = self.most_in_flight = 0


PEER = Peer()


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page_size: int = 2
    serialize_writes: bool = False


def _record_create(payload: dict[str, Any]) -> OperationResult:
    if PEER.fail_next:
        raise PEER.fail_next.pop(0)
    PEER.in_flight += 1
    PEER.most_in_flight = max(PEER.most_in_flight, PEER.in_flight)
    time.sleep(float(payload.get("sleep_s", 0)))
    PEER.in_flight -= 1
    PEER.writes += 1
    record_id = f"rec-{PEER.writes}"
    PEER.records[record_id] = dict(payload)
    return OperationResult(external_id=record_id, data={"name": payload.get("name")})


def _record_find(payload: dict[str, Any]) -> OperationResult | None:
    key = payload.get("key") or payload.get("id")
    for record_id, record in PEER.records.items():
        if (record.get("key") or record.get("id")) == key:
            return OperationResult(external_id=record_id, data={"name": record.get("name")})
    return None


class TestPeerConnector(Connector):
    operation_table = {"record.create": Operation(perform=_record_create, lookup=_record_find)}
    event_operation = "record.create"  # subscribed events become records (keyed by their envelope id)

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        try:
            return ParseResult(documents=[json.loads(request.body)])
        except ValueError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        doc = json.loads(request.body)
        return f"item:{doc['id']}:{doc.get('version', 1)}" if isinstance(doc, dict) and "id" in doc else None

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        return [
            {
                "event_type": mappings.code("status", document.get("status"), field="status"),
                "occurred_at": mappings.get(document, "occurred_at", "at"),
                "shipment": {"reference": mappings.get(document, "reference", "ref")},
            }
        ]

    def poll(self, cursor: str | None, ctx: OperationContext) -> PollResult:
        if PEER.fail_next:
            raise PEER.fail_next.pop(0)
        start = int(cursor or 0)
        page = PEER.feed[start : start + ctx.config.page_size]
        return PollResult(
            messages=[json.dumps(item).encode() for item in page], cursor=str(start + len(page))
        )

    def operate(self, operation: str, payload: dict[str, Any], ctx: OperationContext) -> OperationResult:
        return self.operation_get(operation, owner=KEY).perform(payload)

    def lookup(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> OperationResult | None:
        find = self.operation_get(operation, owner=KEY).lookup
        assert find is not None
        return find(payload)


CONNECTOR = ConnectorSpec(
    key=KEY,
    label="Test peer",
    system="partner",
    version="1.0",
    config_schema=Config,
    connector=TestPeerConnector,
    document_kinds=frozenset({"milestone"}),
    default_mappings={
        "inbound": {"fields": {}, "codes": {"status": {"PU": "DEPARTED_PICKUP", "DL": "DELIVERED"}}}
    },
    mapping_targets={
        "codes": {"status": ["DEPARTED_PICKUP", "IN_TRANSIT", "DELIVERED"]},
        "fields": ["reference", "occurred_at"],
    },
)
