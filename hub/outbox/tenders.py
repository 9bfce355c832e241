"""Tendering a shipment to a carrier or 3PL as a document (an X12 204 load tender).

The shipment is written out in the canonical ``kind: "shipment"`` shape and sent through the
connection's ``tender.204`` operation via the side-effect ledger, keyed by the shipment reference,
with control numbers drawn once from the connection's counters: a retry resends the identical
interchange, and tendering the same shipment again sends nothing new.
"""

from __future__ import annotations

from typing import Any

from canonical.errors import ValidationFailed
from canonical.models import Shipment
from connectors import registry
from hub.connections.models import Connection
from hub.ledger.models import SideEffect
from hub.ledger.services import control_number_next, side_effect_payload_once, side_effect_perform

TENDER_OPERATION = "tender.204"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def shipment_document(shipment: Shipment) -> dict[str, Any]:
    """The canonical shipment document (contract v1 ``ShipmentDocument`` shape) of a stored shipment."""
    return {
        "kind": "shipment",
        "reference": shipment.reference,
        "purpose": "ORIGINAL",
        "carrier": {"scac": shipment.carrier.scac} if shipment.carrier_id else None,
        "stops": [
            {
                "sequence": stop.sequence,
                "kind": stop.kind,
                "location": {
                    "code": stop.location.code,
                    "name": stop.location.name,
                    "address_line": stop.location.address_line,
                    "city": stop.location.city,
                    "region": stop.location.region,
                    "postal_code": stop.location.postal_code,
                    "country": stop.location.country,
                },
                "planned_start": _iso(stop.planned_start),
                "planned_end": _iso(stop.planned_end),
            }
            for stop in shipment.stops.select_related("location").order_by("sequence")
        ],
    }


def shipment_tender_check(*, shipment: Shipment, connection: Connection) -> None:
    """Raise ValidationFailed naming what prevents tendering ``shipment`` through ``connection``."""
    errors = []
    if TENDER_OPERATION not in registry.get(connection.connector).connector.operations:
        errors.append(
            {"field": "connection", "message": f"connector {connection.connector!r} cannot send tenders"}
        )
    if shipment.carrier_id is None:
        errors.append({"field": "carrier", "message": "the shipment has no carrier to tender to"})
    if not shipment.stops.exists():
        errors.append({"field": "stops", "message": "the shipment has no stops"})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def shipment_tender(*, shipment_id, connection_id) -> SideEffect:
    """Send the tender (idempotent per shipment and connection). Raises the connector's errors."""
    shipment = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    connection = Connection.objects.get(pk=connection_id)
    shipment_tender_check(shipment=shipment, connection=connection)

    def build() -> dict[str, Any]:
        return {
            "shipment": shipment_document(shipment),
            "control": {
                "interchange": control_number_next(connection=connection, name="interchange"),
                "group": control_number_next(connection=connection, name="group"),
                "transaction_set": 1,
            },
        }

    payload = side_effect_payload_once(
        connection=connection, operation=TENDER_OPERATION, business_key=shipment.reference, build=build
    )
    return side_effect_perform(
        connection=connection, operation=TENDER_OPERATION, business_key=shipment.reference, payload=payload
    )
