"""A connector whose ``parse`` and ``natural_id`` raise what no connector may raise (a stand-in for
a bug in a reader), for the inbox's poison-message tests. Registered only there (the
``crashing_connector`` fixture)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from connectors.base import Connector, ConnectorSpec, InboundRequest, ParseResult

KEY = "testcrash"
CALLS = {"parse": 0}  # how many times parse ran, across claims
RAISE_NEXT: list[BaseException] = []  # raised (in order) instead of the RuntimeError, when set


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrashingConnector(Connector):
    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        raise KeyError("id")  # a bug in the web process: the body hash keys the message instead

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        CALLS["parse"] += 1
        if RAISE_NEXT:
            raise RAISE_NEXT.pop(0)
        raise RuntimeError("reader bug: index out of range")

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        return [document]


CONNECTOR = ConnectorSpec(
    key=KEY,
    label="Crashing (tests only)",
    system="partner",
    version="1.0",
    config_schema=Config,
    connector=CrashingConnector,
)
