"""The connector plug-in interface (STYLE.md §2).

A connector is a package ``connectors/<key>/`` whose ``__init__`` exposes ``CONNECTOR = ConnectorSpec(...)``.
Capabilities are optional methods of its ``Connector`` class; the base raises ``NotSupported``, so a
connector's capabilities are exactly the methods it overrides. Everything here is pure except
``send`` and ``poll``, which do I/O only through the client the hub passes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from connectors.errors import NotSupported

CAPABILITIES = ("verify", "natural_id", "parse", "map", "render", "send", "poll")
SYSTEMS = ("erp", "crm", "tms", "carrier", "partner")


@dataclass(frozen=True)
class InboundRequest:
    body: bytes
    content_type: str
    headers: Mapping[str, str]  # lower-cased names


@dataclass(frozen=True)
class ParseResult:
    """Native documents read from one message, plus non-fatal problems found while reading."""

    documents: list[Any]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class SendResult:
    status_code: int
    body_excerpt: str
    duration_ms: int


class HttpClient(Protocol):
    """What the hub hands a connector for I/O: timeouts and the outbound URL policy are its job."""

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes, int]:
        """Returns (status, headers, body, duration in ms); raises TransientError on network failure."""
        ...


class Connector:
    """Base with every capability unsupported. ``config`` is the validated ``Config`` instance."""

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        """Authenticate an inbound call (HMAC, shared key). Raises AuthError; returns None when valid."""
        raise NotSupported("verify")

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        """The message's own id, used as idempotency key when no Idempotency-Key header is sent."""
        raise NotSupported("natural_id")

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        """Bytes to native documents. Raises ParseError."""
        raise NotSupported("parse")

    def map(self, document: Any, config: BaseModel, mappings: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One native document to canonical milestone dicts (validated by the hub). Raises MappingError."""
        raise NotSupported("map")

    def render(
        self, envelope: dict[str, Any], config: BaseModel, secret: str | None, *, idempotency_key: str
    ) -> OutboundRequest:
        """A canonical event envelope to the request that delivers it."""
        raise NotSupported("render")

    def send(self, request: OutboundRequest, client: HttpClient) -> SendResult:
        """Deliver a rendered request. Raises TransientError, PermanentError or AuthError."""
        raise NotSupported("send")

    def poll(
        self, cursor: str | None, config: BaseModel, client: HttpClient
    ) -> tuple[list[bytes], str | None]:
        """Fetch new raw messages since ``cursor``; returns them and the next cursor."""
        raise NotSupported("poll")


@dataclass(frozen=True)
class ConnectorSpec:
    key: str
    label: str
    system: str
    version: str
    config_schema: type[BaseModel]
    connector: type[Connector]
    secret_fields: tuple[str, ...] = ()
    description: str = ""

    base_methods: ClassVar[dict[str, Any]] = {name: getattr(Connector, name) for name in CAPABILITIES}

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"connector {self.key!r}: system must be one of {SYSTEMS}")

    @property
    def capabilities(self) -> list[str]:
        return [name for name in CAPABILITIES if getattr(self.connector, name) is not self.base_methods[name]]

    def instance(self) -> Connector:
        return self.connector()

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "system": self.system,
            "version": self.version,
            "description": self.description,
            "capabilities": self.capabilities,
            "config_schema": self.config_schema.model_json_schema(),
            "secret_fields": list(self.secret_fields),
        }
