"""The connector plug-in interface (STYLE.md §2).

A connector is a package ``connectors/<key>/`` whose ``__init__`` exposes ``CONNECTOR = ConnectorSpec(...)``.
Capabilities are optional methods of its ``Connector`` class; the base raises ``NotSupported``, so a
connector's capabilities are exactly the methods it overrides. Everything here is pure except
``send``, ``poll``, ``operate`` and ``lookup``, which do I/O only through the client the hub passes in
(a connector keeps that I/O in one module of its own, e.g. ``connectors/tryton/client.py``).

``operate``/``lookup`` are how the hub writes to a system of record (create a sale, a shipment, a case).
The hub calls them only through its side-effect ledger (``hub.ledger``): it records the intent before
calling ``operate`` and, when an earlier attempt may have written without recording the result (a
crash, a timeout), asks ``lookup`` to find that record by its business key before writing again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from canonical.contracts.v1 import DOCUMENT_CONTRACTS
from connectors.errors import ConnectorError, NotSupported

CAPABILITIES = ("verify", "natural_id", "parse", "map", "render", "send", "poll", "operate", "lookup")
SYSTEMS = ("erp", "crm", "tms", "carrier", "partner")


@dataclass(frozen=True)
class InboundRequest:
    body: bytes
    content_type: str
    headers: Mapping[str, str]  # lower-cased names


@dataclass(frozen=True)
class ParseResult:
    """What ``parse`` read from one message. Every field the hub reads is declared here, empty by
    default, so a connector fills only what it has and the hub never probes for an attribute.

    - ``documents``: native documents, each handed to ``map``;
    - ``problems``: non-fatal problems found while reading;
    - ``acknowledgements``: one input per received group the sender expects acknowledged, each
      performed as the connector's ``acknowledge_operation`` (X12: a 997 per functional group);
    - ``interchange_acknowledgements``: one input per received interchange acknowledged on its own,
      performed as ``interchange_acknowledge_operation`` (X12: a TA1).
    """

    documents: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)
    interchange_acknowledgements: list[dict[str, Any]] = field(default_factory=list)


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


@dataclass(frozen=True)
class OperationResult:
    """What a write to an external system produced: its id there, plus what the caller may need."""

    external_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    """Raw messages fetched since a cursor (each becomes one inbound message) and the next cursor."""

    messages: list[bytes]
    cursor: str | None
    content_type: str = "application/json"


class HttpClient(Protocol):
    """What the hub hands a connector for I/O: timeouts and the outbound URL policy are its job."""

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes, int]:
        """Returns (status, headers, body, duration in ms); raises TransientError on network failure."""
        ...


@dataclass(frozen=True)
class OperationContext:
    """Everything an I/O capability may use: the validated config, the decrypted secret (or None),
    the hub's HTTP client and the connection's published mappings for the direction at hand."""

    config: BaseModel
    secret: str | None
    client: HttpClient
    mappings: Any = None  # connectors.mapping.MappingSet
    connection_slug: str = ""


@dataclass(frozen=True)
class Operation:
    """One entry of a connector's ``operation_table``: the function that performs the write and,
    when the connector can find an earlier write by business key, the one that looks it up (reads
    only). Their signatures are the connector's own (it calls them from ``operate``/``lookup``
    after building its client); the table only fixes which names exist."""

    perform: Callable[..., OperationResult]
    lookup: Callable[..., OperationResult | None] | None = None

    @classmethod
    def without_last(
        cls,
        perform: Callable[..., OperationResult],
        lookup: Callable[..., OperationResult | None] | None = None,
    ) -> Operation:
        """An entry whose functions take what the connector passes but the last argument."""
        return cls(perform=without_last(perform), lookup=None if lookup is None else without_last(lookup))


def without_last(function: Callable[..., Any]) -> Callable[..., Any]:
    """A table function for one that takes every argument the connector passes (its
    ``table_arguments``) but the last, its ``ctx`` or ``config``, which it does not need."""
    return lambda *arguments: function(*arguments[:-1])


class Connector:
    """Base with every capability unsupported. ``config`` is the validated ``Config`` instance."""

    #: The writes ``operate`` performs, by name: ``{"order.create": Operation(...), ...}``. The one
    #: place a connector names its operations: ``operations`` is derived from it (a subclass may not
    #: declare both), so what the API lists and what ``operate`` dispatches cannot disagree.
    operation_table: ClassVar[Mapping[str, Operation]] = {}
    #: Names of ``operation_table`` (derived, in table order), e.g. ("order.create", "shipment.create");
    #: listed by the API and checked by the ledger and workflows before a write.
    operations: ClassVar[tuple[str, ...]] = ()
    #: The operation that delivers a subscribed canonical event (its CloudEvents envelope as the
    #: payload), for systems of record that take events as writes rather than one HTTP request;
    #: the hub performs it through the side-effect ledger keyed by the event. None: render + send.
    event_operation: ClassVar[str | None] = None
    #: The operation that acknowledges a received message (an X12 997 per functional group); the hub
    #: performs it once per message after first processing, with control numbers it keeps.
    acknowledge_operation: ClassVar[str | None] = None
    #: The operation that acknowledges a received interchange on its own (an X12 TA1), performed
    #: once per ``ParseResult.interchange_acknowledgements`` item; None: the connector sends none.
    interchange_acknowledge_operation: ClassVar[str | None] = None
    #: Whether ``verify`` authenticates its own system's webhooks (Karrio's shared secret,
    #: BottleCRM's and DCSA's HMAC headers), so the hub lets a call without an API key reach it.
    #: False for a connector whose ``verify`` checks the Crossdock signature (the hub recognises
    #: that by its header) or that does not verify at all.
    verifies_own_webhooks: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "operations" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__}: declare operation_table (name -> Operation); operations derives from it"
            )
        cls.operations = tuple(cls.operation_table)
        for attr in ("event_operation", "acknowledge_operation", "interchange_acknowledge_operation"):
            name = getattr(cls, attr)
            if name is not None and name not in cls.operation_table:
                raise TypeError(f"{cls.__name__}.{attr} {name!r} is not in its operation_table")

    @classmethod
    def operation_get(
        cls, operation: str, *, owner: str, error: type[ConnectorError] = NotSupported
    ) -> Operation:
        """The table entry for ``operation``; raises ``error`` ("<owner> has no operation 'x'") when
        the connector has none by that name."""
        entry = cls.operation_table.get(operation)
        if entry is None:
            raise error(f"{owner} has no operation {operation!r}")
        return entry

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        """Authenticate an inbound call (HMAC, shared key). Raises AuthError; returns None when valid."""
        raise NotSupported("verify")

    def replay_nonce(self, request: InboundRequest) -> tuple[str, int] | None:
        """For a request ``verify`` accepted: ``(nonce, ttl_s)``, a value the hub must not accept
        twice (the signature) and the seconds until ``verify`` would refuse it anyway; None when the
        scheme has no time window (the default; a replay is then a duplicate by idempotency key)."""
        return None

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        """The message's own id, used as idempotency key when no Idempotency-Key header is sent."""
        raise NotSupported("natural_id")

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        """Bytes to native documents. Raises ParseError."""
        raise NotSupported("parse")

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        """One native document to canonical documents (validated by the hub). Raises MappingError.

        A dict without ``kind`` (or ``kind: "milestone"``) is a milestone event (contract v1
        ``MilestoneEvent``); ``kind: "order"`` is an ``OrderDocument``. ``mappings`` is the
        connection's published ``connectors.mapping.MappingSet`` for the inbound direction.
        """
        raise NotSupported("map")

    def render(
        self, envelope: dict[str, Any], config: BaseModel, secret: str | None, *, idempotency_key: str
    ) -> OutboundRequest:
        """A canonical event envelope to the request that delivers it."""
        raise NotSupported("render")

    def send(self, request: OutboundRequest, client: HttpClient) -> SendResult:
        """Deliver a rendered request. Raises TransientError, PermanentError or AuthError."""
        raise NotSupported("send")

    def poll(self, cursor: str | None, ctx: OperationContext) -> PollResult:
        """Fetch new raw messages since ``cursor`` (None: from the start). Raises the taxonomy's errors.

        Must be safe to repeat from the same cursor: the hub stores the messages (deduplicated by
        natural id) and only then advances the cursor.
        """
        raise NotSupported("poll")

    def operate(self, operation: str, payload: dict[str, Any], ctx: OperationContext) -> OperationResult:
        """Perform one write in the external system (``operation`` is a key of ``operation_table``).

        ``payload`` is canonical JSON; the connector maps it to the system's shape. Raises
        TransientError (retry), PermanentError/AuthError (dead letter) or MappingError.
        """
        raise NotSupported("operate")

    def lookup(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> OperationResult | None:
        """Find the record a previous ``operate`` with this payload may have created, by business key.

        Returns None when there is none (so writing is safe). Used by the ledger after an attempt
        whose outcome was not recorded; must not write.
        """
        raise NotSupported("lookup")


class TableConnector(Connector):
    """A connector whose ``operate``/``lookup`` dispatch through ``operation_table`` alone: find the
    entry (``NotSupported`` naming ``owner`` for an unknown name, before any client is built), then
    call its ``perform`` or ``lookup`` with ``table_arguments``. A subclass says only what its
    entries take (Tryton: ``(client, payload, ctx)``; Karrio: ``(client, payload, config)``)."""

    #: The connector key named in "<owner> has no operation 'x'".
    owner: ClassVar[str] = ""

    def table_arguments(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> tuple[Any, ...]:
        """What every ``operation_table`` entry is called with (builds the system's client from ``ctx``)."""
        raise NotImplementedError

    def operate(self, operation: str, payload: dict[str, Any], ctx: OperationContext) -> OperationResult:
        entry = self.operation_get(operation, owner=self.owner)
        return entry.perform(*self.table_arguments(operation, payload, ctx))

    def lookup(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> OperationResult | None:
        find = self.operation_get(operation, owner=self.owner).lookup
        if find is None:
            raise NotSupported("lookup")
        return find(*self.table_arguments(operation, payload, ctx))


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
    #: Packaged default mappings, by direction: {"inbound": {"fields": {...}, "codes": {...}}, ...};
    #: see connectors.mapping.load_defaults. Connections start from these; ops staff override them.
    default_mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What a mapping may target, for validation on save: {"codes": {code_set: [allowed canonical
    #: values]}, "fields": [canonical field names]}. Empty: anything goes.
    mapping_targets: dict[str, Any] = field(default_factory=dict)
    #: The canonical document kinds ``map`` can produce (keys of contract v1 ``DOCUMENT_CONTRACTS``:
    #: milestone, order, shipment, freight_charge, functional_ack). The inbox refuses any other kind
    #: from this connector's connections; a connection may narrow the set, never widen it.
    document_kinds: frozenset[str] = frozenset()

    base_methods: ClassVar[dict[str, Any]] = {name: getattr(Connector, name) for name in CAPABILITIES}

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"connector {self.key!r}: system must be one of {SYSTEMS}")
        unknown = sorted(set(self.document_kinds) - set(DOCUMENT_CONTRACTS))
        if unknown:
            raise ValueError(
                f"connector {self.key!r}: unknown document kinds {unknown}; use {sorted(DOCUMENT_CONTRACTS)}"
            )

    @property
    def capabilities(self) -> list[str]:
        return [name for name in CAPABILITIES if getattr(self.connector, name) is not self.base_methods[name]]

    @property
    def verifies_own_webhooks(self) -> bool:
        """Whether a call without an API key may be handed to this connector's ``verify`` (it
        authenticates its system's own webhooks; see ``Connector.verifies_own_webhooks``)."""
        return self.connector.verifies_own_webhooks and "verify" in self.capabilities

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
            "operations": list(self.connector.operations),
            "config_schema": self.config_schema.model_json_schema(),
            "secret_fields": list(self.secret_fields),
            "document_kinds": sorted(self.document_kinds),
        }
