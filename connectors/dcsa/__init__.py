"""`dcsa`: DCSA Track & Trace 2.2 and 3.0 events (transport, equipment, shipment) in, as milestones.

- ``verify``: a 2.2 notification's ``Notification-Signature: sha256=<hex>`` header, an HMAC-SHA256 of
  the body keyed with the subscription secret (Base64, as DCSA specifies; a secret that is not
  Base64 is used as UTF-8 text). Raises AuthError.
- ``natural_id``: ``dcsa:<eventID>`` for a body holding exactly one event, else None (body hash).
- ``parse``: the body's events, each validated against DCSA's published schema for its version and
  type (``schema`` module); a body with any invalid event raises ParseError naming the JSON path.
  One event is one document, so a mapping problem dead-letters that event alone.
- ``map``: one event to zero or one canonical milestone (``translate`` module; codes as data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from canonical.contracts.v1 import EventType
from connectors.base import Connector, ConnectorSpec, InboundRequest, ParseResult
from connectors.dcsa import schema as dcsa_schema
from connectors.dcsa import translate
from connectors.errors import AuthError
from connectors.jsonbody import json_body_or_none
from connectors.mapping import load_defaults, mappings_or_defaults

DEFAULT_MAPPINGS = load_defaults(__file__)
SIGNATURE_HEADER = "notification-signature"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["auto", "2.2", "3.0"] = "auto"
    shipment_reference_types: list[str] = Field(
        default_factory=lambda: ["BKG", "TRD"],
        min_length=1,
        description="document reference types that name the shipment, in order of preference",
    )


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


class DcsaConnector(Connector):
    verifies_own_webhooks = True  # Notification-Signature: sha256=<hex HMAC of the body>

    def verify(self, request: InboundRequest, secret: str | None, config: BaseModel) -> None:
        header = request.headers.get(SIGNATURE_HEADER, "")
        kind, _, signature = header.partition("=")
        # Non-ASCII text is malformed (an AuthError), never a TypeError from compare_digest.
        if not header.isascii() or kind.strip().lower() != "sha256" or not signature.strip():
            raise AuthError("missing or malformed Notification-Signature header (expected sha256=<hex>)")
        expected = hmac.new(_key(secret or ""), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise AuthError("Notification-Signature does not match the body")

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        data = json_body_or_none(request.body)
        if isinstance(data, dict) and isinstance(data.get("events"), list):
            data = data["events"]
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else None
        if not isinstance(data, dict):
            return None
        party = translate._get(data, "eventRouting", "originatingParty", "partyCode")
        event_id = translate._event_id(data.get("eventID"), party)
        return f"dcsa:{event_id}" if event_id else None

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        version = getattr(config, "version", "auto")
        return ParseResult(documents=dcsa_schema.read_events(request.body, version=version))

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        rules = mappings_or_defaults(mappings, DEFAULT_MAPPINGS, "inbound")
        types = getattr(config, "shipment_reference_types", None) or ["BKG", "TRD"]
        return translate.map_event(document, rules, reference_types=types)


_EVENT_TARGETS = [*(e.value for e in EventType), translate.IGNORE]

CONNECTOR = ConnectorSpec(
    key="dcsa",
    label="DCSA Track & Trace 2.2 / 3.0",
    system="carrier",
    version="1.0",
    config_schema=Config,
    connector=DcsaConnector,
    document_kinds=frozenset({"milestone"}),  # map: T&T events -> milestones
    secret_fields=("secret",),
    description=(
        "Reads DCSA T&T 2.2 and 3.0 transport, equipment and shipment events (validated against DCSA's "
        "published OpenAPI schemas) as canonical milestones."
    ),
    default_mappings=DEFAULT_MAPPINGS,
    mapping_targets={
        "codes": {
            "classifier": [translate.EMIT, translate.IGNORE],
            "transport_event": _EVENT_TARGETS,
            "equipment_event": _EVENT_TARGETS,
            "shipment_event": _EVENT_TARGETS,
            "iot_event": _EVENT_TARGETS,
            "reefer_event": _EVENT_TARGETS,
        },
        "fields": [],
    },
)
