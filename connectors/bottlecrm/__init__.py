"""`bottlecrm`: BottleCRM (django-crm 1.35) over its REST API. Keeps the account team's CRM in step
with the hub: accounts and contacts from the ERP's customers, shipment statuses, and one case per
shipment exception from opening to resolution. Reads back cases closed by people (webhooks).

Capabilities:

- ``operate`` / ``lookup`` (operations.py): ``account.upsert``, ``contact.upsert``,
  ``shipment.status``, ``case.open``, ``case.comment``, ``case.close``, ``case.reopen``. Every one
  searches by business key before it writes (ERP customer id, account + email, shipment + sequence,
  shipment + exception type), so running it again never makes a second record; ``lookup`` is that
  search alone, for the ledger after an attempt whose outcome was not recorded (BottleCRM can
  answer 500 after committing a row). Payloads: connectors/bottlecrm/mapping.py.
- ``verify`` / ``natural_id`` / ``parse`` / ``map``: the CRM's signed webhooks
  (``X-BottleCRM-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, the secret being the
  endpoint's ``whsec_...``); a ticket closed in the CRM becomes ``EXCEPTION_RESOLVED``.

Secret: a personal access token (``bcrm_pat_...``) for an outbound connection; the webhook
endpoint's secret for an inbound one. Custom fields (text, filterable) must exist in the CRM org:
``erp_customer_id`` on Account; ``shipment_id``, ``shipment_status`` and ``exception_type`` on Case
(keys configurable). BottleCRM silently drops values for keys it has no definition of.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors import signing
from connectors.base import (
    Connector,
    ConnectorSpec,
    InboundRequest,
    OperationContext,
    OperationResult,
    ParseResult,
)
from connectors.bottlecrm import mapping, operations
from connectors.bottlecrm.client import CrmApi
from connectors.errors import NotSupported, ParseError
from connectors.jsonbody import json_body
from connectors.mapping import MappingSet, load_defaults

DEFAULT_MAPPINGS = load_defaults(__file__)
SIGNATURE_HEADER = "X-BottleCRM-Signature"
SIGNATURE_TOLERANCE_S = 300  # seconds a webhook signature stays valid: bounds replay of a captured call
CUSTOM_FIELD_KEY = r"^[a-z][a-z0-9_]*$"  # BottleCRM's rule for custom-field keys


def _from_envelope(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    if operation == "shipment.status" and payload.get("specversion"):
        return mapping.status_from_envelope(payload)
    return payload


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="The CRM's root, e.g. http://crm.example:8000 (REST API at /api/).")
    timeout_s: float = Field(default=15, gt=0, le=120, description="Seconds to wait for one answer.")
    account_key_field: str = Field(
        default="erp_customer_id",
        pattern=CUSTOM_FIELD_KEY,
        description="Account custom field: ERP customer id.",
    )
    shipment_id_field: str = Field(
        default="shipment_id", pattern=CUSTOM_FIELD_KEY, description="Case custom field: shipment reference."
    )
    shipment_status_field: str = Field(
        default="shipment_status", pattern=CUSTOM_FIELD_KEY, description="Case custom field: shipment status."
    )
    exception_type_field: str = Field(
        default="exception_type", pattern=CUSTOM_FIELD_KEY, description="Case custom field: exception type."
    )
    internal_comments: bool = Field(
        default=True,
        description="Case comments as internal notes (BottleCRM emails a case's contacts public comments).",
    )
    reopen_status: Literal["New", "Assigned", "Pending"] = Field(
        default="New", description="The status case.reopen gives a closed case."
    )


def _mappings(ctx: OperationContext) -> MappingSet:
    if isinstance(ctx.mappings, MappingSet):
        return ctx.mappings
    return MappingSet.from_data(DEFAULT_MAPPINGS.get("outbound"))


class BottleCrmConnector(Connector):
    #: A subscription on a BottleCRM connection keeps each shipment's status in front of the account
    #: team: every canonical event becomes a ``shipment.status`` write (through the hub's ledger).
    event_operation = "shipment.status"
    operations = (
        "account.upsert",
        "contact.upsert",
        "shipment.status",
        "case.open",
        "case.comment",
        "case.close",
        "case.reopen",
    )

    # --- writes --------------------------------------------------------------------------------------

    def operate(self, operation: str, payload: dict[str, Any], ctx: OperationContext) -> OperationResult:
        payload = _from_envelope(operation, payload)
        config: Any = ctx.config
        api = CrmApi(url=str(config.url), token=ctx.secret, http=ctx.client)
        fields = operations.Fields(config)
        mappings = _mappings(ctx)
        internal = bool(config.internal_comments)
        if operation == "account.upsert":
            return operations.account_upsert(api, fields, payload, mappings)
        if operation == "contact.upsert":
            return operations.contact_upsert(api, fields, payload, mappings)
        if operation == "shipment.status":
            return operations.shipment_status(api, fields, payload, mappings)
        if operation == "case.open":
            return operations.case_open(api, fields, payload, mappings)
        if operation == "case.comment":
            return operations.case_comment(api, fields, payload, mappings, internal=internal)
        if operation == "case.close":
            return operations.case_close(api, fields, payload, mappings, internal=internal)
        if operation == "case.reopen":
            return operations.case_reopen(
                api, fields, payload, mappings, internal=internal, status=config.reopen_status
            )
        raise NotSupported(f"bottlecrm has no operation {operation!r}")

    def lookup(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> OperationResult | None:
        payload = _from_envelope(operation, payload)
        config: Any = ctx.config
        api = CrmApi(url=str(config.url), token=ctx.secret, http=ctx.client)
        fields = operations.Fields(config)
        finders = {
            "account.upsert": operations.account_find,
            "contact.upsert": operations.contact_find,
            "shipment.status": operations.shipment_status_find,
            "case.open": operations.case_open_find,
            "case.comment": operations.case_comment_find,
            "case.close": operations.case_close_find,
            "case.reopen": operations.case_reopen_find,
        }
        if operation not in finders:
            raise NotSupported(f"bottlecrm has no operation {operation!r}")
        return finders[operation](api, fields, payload, _mappings(ctx))

    # --- webhooks ------------------------------------------------------------------------------------

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        verify_signature(secret or "", request.body, request.headers.get(SIGNATURE_HEADER.lower()))

    def replay_nonce(self, request: InboundRequest) -> tuple[str, int] | None:
        header = request.headers.get(SIGNATURE_HEADER.lower())
        return signing.replay_nonce(header, tolerance_s=SIGNATURE_TOLERANCE_S) if header else None

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        delivery = request.headers.get("x-bottlecrm-delivery")
        try:
            envelope = json_body(request.body)
        except ParseError:
            envelope = None
        if isinstance(envelope, dict) and isinstance(envelope.get("id"), str) and envelope["id"]:
            return f"event:{envelope['id']}"  # the same on every retry of the delivery
        return f"delivery:{delivery}" if delivery else None

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        envelope = json_body(request.body)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
            raise ParseError("expected a BottleCRM webhook envelope: an object with 'event' and 'data'")
        return ParseResult(documents=[envelope])

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        return mapping.ticket_event_to_milestones(document)


def verify_signature(secret: str, body: bytes, header: str | None, *, now: float | None = None) -> None:
    """Raises AuthError unless ``header`` is a fresh ``t=<unix>,v1=<hex>`` HMAC-SHA256 of ``"<t>." + body``.

    BottleCRM signs exactly as Crossdock does (connectors/signing.py), under its own header name."""
    signing.verify(
        secret, body, header, now=now, header_name=SIGNATURE_HEADER, tolerance_s=SIGNATURE_TOLERANCE_S
    )


CONNECTOR = ConnectorSpec(
    key="bottlecrm",
    label="BottleCRM (django-crm)",
    system="crm",
    version="1.0",
    config_schema=Config,
    connector=BottleCrmConnector,
    document_kinds=frozenset({"milestone"}),  # map: a closed case -> EXCEPTION_RESOLVED
    secret_fields=("secret",),
    description=(
        "Accounts, contacts, shipment statuses and exception cases in BottleCRM (REST, personal access "
        "token); cases closed in the CRM come back as EXCEPTION_RESOLVED (signed webhooks)."
    ),
    default_mappings=DEFAULT_MAPPINGS,
    mapping_targets={"codes": mapping.CODE_SETS, "fields": list(mapping.OUTBOUND_FIELDS)},
)
