"""`karrio`: the Karrio shipping platform (2026.1) as Crossdock's TMS. Writes orders and bought
shipments through Karrio's REST API; reads its webhooks as shipment milestones.

Secret: the connection's one secret string holds ``{"api_key": "key_...", "webhook_secret":
"whsec_..."}`` (client.credentials). A plain string is taken as the API key alone.

Operations (``operate``; ``lookup`` finds an earlier write by business key and only reads). Karrio
dedupes nothing, so every step is find-or-create (operations.py):

- ``order.create``: payload = a canonical order (``OrderDocument`` fields: reference, customer,
  ship_to, lines with sku/quantity and optional ``weight_kg`` per unit). Karrio order with
  ``order_id`` = the reference, found by ``order_id`` before creating. Result: ``ord_...``.
- ``shipment.create``: the same payload, where ``reference`` is the shipment's and
  ``order_reference`` (default: ``reference``) the order's; optional ``service`` (default: config)
  and ``weight_kg`` (the parcel; default: sum of the lines). Ensures the order, then buys the
  shipment in one call with parcel items linked to the order's line items, then tags Karrio's
  tracker with ``metadata.crossdock_reference``. Result: ``shp_...`` with tracking_number,
  tracker_id, order_id (``ord_...``), service, total_charge and currency.
- ``shipment.cancel``: payload ``{"external_id": "shp_..."}`` or ``{"reference": ...}``; voids the
  label (compensation); idempotent.
- ``webhook.register``: payload ``{"url": <Crossdock inbound URL>}``; subscribes it to ``all``
  events (an existing subscription of the URL is reused). The result carries ``secret``, which the
  caller stores in the connection secret as ``webhook_secret``.

Inbound webhooks (``POST /api/v1/inbound/<slug>/``):

- ``verify``: Karrio has no signature; it sends the subscription's secret verbatim in
  ``X-Event-Id``, compared in constant time with ``webhook_secret`` (AuthError otherwise).
- ``natural_id``: Karrio sends no event id, so the key is semantic: event, object id, status and
  the tracker's events, hashed (translate.natural_key). A re-sent unchanged state is a duplicate.
- ``map`` (pure, translate.py), matching Karrio to canonical shipments by **reference**: Crossdock
  writes the canonical shipment reference into the Karrio shipment's ``reference`` and into its
  tracker's ``metadata.crossdock_reference`` (a tracker carries no shipment reference of its own;
  tracking numbers are the carrier's and can repeat). Field map entries ``tracker_reference`` and
  ``shipment_reference`` repoint these paths, e.g. to ``tracking_number`` where canonical shipments
  are keyed by tracking number.

  - ``tracker_updated`` -> one milestone per tracking event in the tracker's history, through the
    ``tracker_status`` code map (event ``status``, else ``code``); for exception types (DELAYED,
    CUSTOMS_HOLD, DAMAGED, REFUSED, MISSED_PICKUP) a known ``reason`` refines the type through
    ``incident_reason`` (``delivery_failed`` + ``consignee_refused`` -> REFUSED; other failed
    deliveries -> DELAYED, closed by DELIVERED). Time = the event's timestamp, location = its
    place, reason_code = the carrier's event code, Karrio's reason in ``details``. The event id is
    tracker/time/carrier code, so the history re-sent with each webhook is applied once.
    ``IGNORE`` marks statuses that are no milestone (label created, pending, unknown).
  - ``shipment_*`` -> the ``shipment_event`` code map: ``shipment_purchased`` -> TENDER_ACCEPTED,
    ``shipment_cancelled`` -> CANCELLED, at the shipment's ``created_at`` (the only time Karrio
    sends). The status echoes (fulfilled, out_for_delivery, delivery_failed, needs_attention) are
    IGNORE: the tracker's own event reports the same change with the carrier's time and place.
  - ``order_*`` (Crossdock's own orders echoed back), ``tracker_created`` (only the label-created
    event), ``pickup_*``, ``batch_*`` -> no milestone (an empty list).
  - An unmapped status, reason or shipment event raises MappingError naming it (stage ``map``).
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from canonical.contracts.v1 import EventType
from canonical.states import EXCEPTION_OPENERS
from connectors.base import (
    ConnectorSpec,
    InboundRequest,
    Operation,
    OperationContext,
    ParseResult,
    TableConnector,
    without_last,
)
from connectors.errors import AuthError
from connectors.jsonbody import json_body_or_none, json_object
from connectors.karrio import operations, translate
from connectors.karrio.client import KarrioClient, credentials
from connectors.mapping import load_defaults, mappings_or_defaults

DEFAULT_MAPPINGS = load_defaults(__file__)
WEBHOOK_SECRET_HEADER = "x-event-id"  # Karrio's name for the header that carries the shared secret


class Address(BaseModel):
    """A Karrio address (the shipper's, sent with every order and shipment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    person_name: str = Field(min_length=1, max_length=100)
    company_name: str = Field(default="", max_length=100)
    address_line1: str = Field(min_length=1, max_length=100)
    address_line2: str = Field(default="", max_length=100)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(default="", max_length=20)
    state_code: str = Field(default="", max_length=20)
    country_code: str = Field(pattern="^[A-Z]{2}$")
    phone_number: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="Karrio server root, e.g. http://karrio.example:5002.")
    carrier_id: str = Field(
        min_length=1, max_length=100, description="carrier_id of the Karrio carrier connection to buy from."
    )
    service: str = Field(
        min_length=1, max_length=100, description="Default service code, e.g. offline_standard."
    )
    shipper: Address
    timeout_s: float = Field(default=15, gt=0, le=120, description="Seconds to wait for one API answer.")
    default_item_weight_kg: float = Field(
        default=0.5, gt=0, le=10000, description="Weight of one unit of a line that gives none."
    )


class KarrioConnector(TableConnector):
    #: Each entry takes ``(client, payload, config)``; the functions live in operations.py (lookups
    #: take only ``(client, payload)``).
    owner = "karrio"
    operation_table = {
        "order.create": Operation(
            perform=operations.order_create,
            lookup=without_last(operations.order_lookup),
        ),
        "shipment.create": Operation(
            perform=operations.shipment_create,
            lookup=without_last(operations.shipment_lookup),
        ),
        "shipment.cancel": Operation.without_last(
            operations.shipment_cancel, operations.shipment_cancel_lookup
        ),
        "webhook.register": Operation.without_last(operations.webhook_register, operations.webhook_lookup),
    }
    verifies_own_webhooks = True  # the subscription's secret in X-Event-Id

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        expected = credentials(secret).webhook_secret
        if not expected:
            raise AuthError('no webhook secret configured: store {"api_key": ..., "webhook_secret": ...}')
        given = request.headers.get(WEBHOOK_SECRET_HEADER) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthError("X-Event-Id does not match the webhook secret")

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        # unreadable (None): the body hash is used, and parse dead-letters it
        return translate.natural_key(json_body_or_none(request.body))

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        doc = json_object(
            request.body,
            required={"event": str, "data": dict},
            expected='expected a Karrio webhook: {"event": "<type>", "data": {...}}',
        )
        return ParseResult(documents=[doc])

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        return translate.webhook_to_milestones(
            document, mappings_or_defaults(mappings, DEFAULT_MAPPINGS, "inbound")
        )

    def table_arguments(
        self, operation: str, payload: dict[str, Any], ctx: OperationContext
    ) -> tuple[Any, ...]:
        return KarrioClient.from_context(ctx), payload, ctx.config


_EVENT_TYPES = [event_type.value for event_type in EventType]

CONNECTOR = ConnectorSpec(
    key="karrio",
    label="Karrio shipping platform (REST + webhooks)",
    system="tms",
    version="1.0",
    config_schema=Config,
    connector=KarrioConnector,
    document_kinds=frozenset({"milestone"}),  # map: tracker and shipment webhooks -> milestones
    secret_fields=("api_key", "webhook_secret"),
    description=(
        "Creates Karrio orders and bought shipments (with trackers), cancels them, registers the "
        "inbound webhook, and turns tracker and shipment webhooks into milestones."
    ),
    default_mappings=DEFAULT_MAPPINGS,
    mapping_targets={
        "codes": {
            "tracker_status": [*_EVENT_TYPES, translate.IGNORE],
            "incident_reason": [event_type.value for event_type in EXCEPTION_OPENERS],
            "shipment_event": [*_EVENT_TYPES, translate.IGNORE],
        },
        "fields": list(translate.INBOUND_FIELDS),
    },
)
