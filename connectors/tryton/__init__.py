"""`tryton`: Tryton 8.0 ERP over JSON-RPC. Polls confirmed sales as orders; writes shipment links,
freight cost, invoice posting, credit notes and debit notes back.

Capabilities:

- ``poll``: one page of sales in ``poll_states`` (default confirmed, processing, done) modified after
  the cursor ``<last_modified_at>|<id>``, each read with its party, addresses and lines in the same
  call, as one JSON message per sale (operations.sales_poll).
- ``natural_id``: ``sale:<id>:<last_modified_at>`` (Tryton's ``COALESCE(write_date, create_date)``),
  so a re-read of an unchanged sale is a duplicate and a changed sale is a new message.
- ``parse`` / ``map``: the polled JSON to one ``OrderDocument`` (translate.sale_to_order).
- ``operate`` / ``lookup``: ``sale.link_shipment``, ``shipment.record_cost``, ``invoice.post``,
  ``invoice.recreate``, ``invoice.credit``, ``invoice.debit`` (operations.py; each is safe to run
  again and lookup only reads). ``invoice.post`` answers the posted invoice's lines
  (``invoice_lines_normalize``); ``invoice.recreate`` bills a sale again for an invoice cancelled
  in Tryton (its sale's invoice-exception wizard) and posts the new one. ``freight.accrue`` and
  ``freight.accrual_reverse`` (accruals.py: period-close freight accruals as posted account moves).
- reads for reconciliation (operations.py, no writes): ``invoices_read`` (invoices by id in any
  state, with their lines and freight lines flagged), ``sales_invoices`` (each sale's customer
  invoices), and the master-data reads ``parties_read``, ``products_by_code``, ``addresses_read``;
  a fixed number of calls per batch of ids.

The secret is the Tryton user's password. Sessions are cached per process and renewed on HTTP 401.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from connectors.base import (
    ConnectorSpec,
    InboundRequest,
    Operation,
    OperationContext,
    ParseResult,
    PollResult,
    TableConnector,
)
from connectors.jsonbody import json_body_or_none, json_object
from connectors.mapping import MappingSet, load_defaults, mappings_or_defaults
from connectors.tryton import accruals, operations
from connectors.tryton.client import TrytonClient
from connectors.tryton.translate import INBOUND_FIELDS, OUTBOUND_FIELDS, sale_to_order

DEFAULT_MAPPINGS = load_defaults(__file__)
SALE_STATES = ("draft", "quotation", "confirmed", "processing", "done", "cancelled")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(
        description="Server root, e.g. http://erp.example:8000 (JSON-RPC at /<database>/rpc/)."
    )
    database: str = Field(min_length=1, max_length=100)
    username: str = Field(min_length=1, max_length=100)
    company: int | None = Field(
        default=None, ge=1, description="Company id; default: the user's current one."
    )
    timeout_s: float = Field(default=30, gt=0, le=300, description="Seconds to wait for one RPC answer.")
    page_size: int = Field(default=100, ge=1, le=500, description="Sales read per poll.")
    poll_states: list[str] = Field(default_factory=lambda: ["confirmed", "processing", "done"], min_length=1)
    settle_s: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="Seconds a sale's last change must be old (server clock) before a poll hands it over.",
    )
    serialize_writes: bool = Field(
        default=False,
        description="Send Crossdock's writes one at a time: a Tryton on the SQLite backend numbered two "
        "invoices posted at the same moment alike (seen with the peer), so such a server needs this.",
    )
    ref_system: str = Field(
        default="tryton",
        min_length=1,
        max_length=40,
        description="System name on external refs; set one per Tryton instance when there are several.",
    )

    @field_validator("poll_states")
    @classmethod
    def _known_states(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SALE_STATES))
        if unknown:
            raise ValueError(f"unknown sale state(s) {', '.join(unknown)}; expected {', '.join(SALE_STATES)}")
        return value


def _outbound(ctx: OperationContext) -> MappingSet:
    return mappings_or_defaults(ctx.mappings, DEFAULT_MAPPINGS, "outbound")


class TrytonConnector(TableConnector):
    #: Each entry takes ``(client, payload, ctx)``; the functions live in operations.py (most
    #: take only ``(client, payload)``).
    owner = "tryton"
    operation_table = {
        "sale.link_shipment": Operation(
            perform=lambda client, payload, ctx: operations.link_shipment(client, payload, _outbound(ctx)),
            lookup=lambda client, payload, ctx: operations.link_shipment_lookup(
                client, payload, _outbound(ctx)
            ),
        ),
        "shipment.record_cost": Operation.without_last(operations.record_cost, operations.record_cost_lookup),
        "invoice.post": Operation.without_last(operations.invoice_post, operations.invoice_post_lookup),
        "invoice.recreate": Operation.without_last(
            operations.invoice_recreate, operations.invoice_recreate_lookup
        ),
        "invoice.credit": Operation.without_last(operations.invoice_credit, operations.invoice_credit_lookup),
        "invoice.debit": Operation.without_last(operations.invoice_debit, operations.invoice_debit_lookup),
        accruals.ACCRUE: Operation.without_last(accruals.accrue, accruals.accrue_lookup),
        accruals.REVERSE: Operation.without_last(accruals.reverse, accruals.reverse_lookup),
    }

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        doc = json_body_or_none(request.body)
        if isinstance(doc, dict) and doc.get("id") is not None and doc.get("last_modified_at"):
            return f"sale:{doc['id']}:{doc['last_modified_at']}"
        return None

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        doc = json_object(
            request.body,
            required={"id": object, "lines": object},
            expected="expected one Tryton sale object (with id and lines), as the poll stores them",
        )
        return ParseResult(documents=[doc])

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        ref_system = getattr(config, "ref_system", "tryton")
        rules = mappings_or_defaults(mappings, DEFAULT_MAPPINGS, "inbound")
        return [sale_to_order(document, rules, ref_system=ref_system)]

    def poll(self, cursor: str | None, ctx: OperationContext) -> PollResult:
        return operations.sales_poll(TrytonClient.from_context(ctx), ctx.config, cursor)

    def table_arguments(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> tuple[Any, ...]:
        return TrytonClient.from_context(ctx), payload, ctx


CONNECTOR = ConnectorSpec(
    key="tryton",
    label="Tryton ERP (JSON-RPC)",
    system="erp",
    version="1.0",
    config_schema=Config,
    connector=TrytonConnector,
    document_kinds=frozenset({"order"}),  # map: a confirmed sale -> one order
    secret_fields=("password",),
    description=(
        "Polls confirmed Tryton 8.0 sales as orders; links TMS shipments, records freight cost, posts "
        "invoices with the actual freight and issues credit and debit notes."
    ),
    default_mappings=DEFAULT_MAPPINGS,
    mapping_targets={
        "codes": {"sale_state": ["DRAFT", "CONFIRMED", "CANCELLED"], "unit": None},
        "fields": [*INBOUND_FIELDS, *OUTBOUND_FIELDS],
    },
)
