"""`bottlecrm`: BottleCRM (django-crm 1.35) over its REST API. Keeps the account team's CRM in step
with the hub: accounts and contacts from the ERP's customers, shipment statuses, and one case per
shipment exception from opening to resolution. Reads back cases closed by people (webhooks).

Capabilities:

- ``operate`` / ``lookup`` (operations.py): ``account.upsert``, ``contact.upsert``,
  ``shipment.status``, ``case.open``, ``case.comment``, ``case.close``, ``case.reopen``. Every one
  searches by business key before it writes (ERP customer id, account + email, shipment + sequence,
  shipment + exception type), so running it again never makes a second record; ``lookup`` is that
  search alone, for the ledger after an attempt whose outcome was not recorded (BottleCRM can
  answer 500 after committing a row). Payloads: connectors/bottlecrm/translate.py.
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
    ConnectorSpec,
    InboundRequest,
    Operation,
    OperationContext,
    ParseResult,
    TableConnector,
    without_last,
)
from connectors.bottlecrm import operations, translate
from connectors.bottlecrm.client import CrmApi
from connectors.jsonbody import json_body_or_none, json_object
from connectors.mapping import load_defaults, mappings_or_defaults

DEFAULT_MAPPINGS = load_defaults(__file__)
# BottleCRM signs exactly as Crossdock does (connectors/signing.py), under its own header name;
# a signature stays valid 300 seconds, which bounds replay of a captured call.
SIGNATURE = signing.SignatureScheme(header="X-BottleCRM-Signature", tolerance_s=300)
CUSTOM_FIELD_KEY = r"^[a-z][a-z0-9_]*$"  # BottleCRM's rule for custom-field keys


def _from_envelope(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    if operation == "shipment.status" and payload.get("specversion"):
        return translate.status_from_envelope(payload)
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


def _internal(config: Any) -> bool:
    return bool(config.internal_comments)


class BottleCrmConnector(TableConnector):
    #: Each entry takes ``(api, fields, payload, mappings, config)``; the functions live in
    #: operations.py, and every lookup is the search its perform starts with (the functions that
    #: need no config take the rest: ``without_last``).
    owner = "bottlecrm"
    operation_table = {
        "account.upsert": Operation.without_last(operations.account_upsert, operations.account_find),
        "contact.upsert": Operation.without_last(operations.contact_upsert, operations.contact_find),
        "shipment.status": Operation.without_last(
            operations.shipment_status, operations.shipment_status_find
        ),
        "case.open": Operation.without_last(operations.case_open, operations.case_open_find),
        "case.comment": Operation(
            perform=lambda api, fields, payload, mappings, config: operations.case_comment(
                api, fields, payload, mappings, internal=_internal(config)
            ),
            lookup=without_last(operations.case_comment_find),
        ),
        "case.close": Operation(
            perform=lambda api, fields, payload, mappings, config: operations.case_close(
                api, fields, payload, mappings, internal=_internal(config)
            ),
            lookup=without_last(operations.case_close_find),
        ),
        "case.reopen": Operation(
            perform=lambda api, fields, payload, mappings, config: operations.case_reopen(
                api, fields, payload, mappings, internal=_internal(config), status=config.reopen_status
            ),
            lookup=without_last(operations.case_reopen_find),
        ),
    }
    #: A subscription on a BottleCRM connection keeps each shipment's status in front of the account
    #: team: every canonical event becomes a ``shipment.status`` write (through the hub's ledger).
    event_operation = "shipment.status"
    verifies_own_webhooks = True  # X-BottleCRM-Signature

    # --- writes --------------------------------------------------------------------------------------

    def table_arguments(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> tuple[Any, ...]:
        """What every table entry takes: ``(api, fields, payload, mappings, config)``."""
        config: Any = ctx.config
        api = CrmApi(url=str(config.url), token=ctx.secret, http=ctx.client)
        mappings = mappings_or_defaults(ctx.mappings, DEFAULT_MAPPINGS, "outbound")
        return api, operations.Fields(config), _from_envelope(operation, payload), mappings, config

    # --- webhooks ------------------------------------------------------------------------------------

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        SIGNATURE.verify_request(request, secret)

    def replay_nonce(self, request: InboundRequest) -> tuple[str, int] | None:
        return SIGNATURE.replay_nonce_of(request)

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        delivery = request.headers.get("x-bottlecrm-delivery")
        envelope = json_body_or_none(request.body)
        if isinstance(envelope, dict) and isinstance(envelope.get("id"), str) and envelope["id"]:
            return f"event:{envelope['id']}"  # the same on every retry of the delivery
        return f"delivery:{delivery}" if delivery else None

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        envelope = json_object(
            request.body,
            required={"event": str},
            expected="expected a BottleCRM webhook envelope: an object with 'event' and 'data'",
        )
        return ParseResult(documents=[envelope])

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        return translate.ticket_event_to_milestones(document)


#: ``verify_signature(secret, body, header, now=None)``: raises AuthError unless ``header`` is a fresh
#: ``t=<unix>,v1=<hex>`` HMAC-SHA256 of ``"<t>." + body`` (the shared verifier, BottleCRM's header).
verify_signature = SIGNATURE.verify


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
    mapping_targets={"codes": translate.CODE_SETS, "fields": list(translate.OUTBOUND_FIELDS)},
)
