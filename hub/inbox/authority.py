"""Who may write what through the inbox: one rule for the careful path, the batch fast path and replay.

Every canonical document a connection sends answers two questions before it is applied:

1. May this connection send this kind? Its connector declares the kinds its ``map`` produces
   (``ConnectorSpec.document_kinds``); a connection may narrow them (``Connection.document_kinds``,
   empty = all of its connector's), never widen them (checked on save).
2. Are the records it writes its own? An unbound connection's are all records. A connection bound
   to a carrier (``Connection.carrier``) may write:

   ==============  ======================================================================
   kind            a carrier-bound connection may ...
   ==============  ======================================================================
   milestone       report on a shipment whose carrier is its carrier
   shipment        update or cancel a shipment whose carrier is its carrier; create one
                   naming its carrier or none (created as its carrier's); never name another
   freight_charge  charge a shipment whose carrier is its carrier; never name another carrier
   order           nothing: orders and their customers belong to customers, not carriers
   functional_ack  always: an acknowledgement of Crossdock's own group writes no one's records
   ==============  ======================================================================

   (Connections have no customer binding; API clients do, see ``hub.api.v1.scoping``.)

A refusal raises :class:`Refused`; the inbox dead-letters it at stage ``validate`` with a reason
naming the connection, its binding, the record and the rule. A shipment that does not exist yet is
not a refusal: applying reports it unknown and the letter waits for it, and its replay asks this
question again once the shipment exists.
"""

from __future__ import annotations

from typing import Any

from canonical.contracts.v1 import (
    CarrierRef,
    FreightChargeDocument,
    MilestoneEvent,
    OrderDocument,
    ShipmentDocument,
)
from canonical.errors import DomainError
from canonical.models import Shipment
from connectors import registry
from hub.connections.models import Connection


class Refused(DomainError):
    """The connection may not write this document (its kind, or a record that is not its own)."""

    status = 403
    slug = "not-authorized"
    title = "Not authorized"


# The rule each carrier-bound refusal cites, by kind.
_CARRIER_RULE = {
    "milestone": "a carrier-bound connection reports milestones only on its own carrier's shipments",
    "shipment": "a carrier-bound connection writes only its own carrier's shipments",
    "freight_charge": "a carrier-bound connection charges only its own carrier's shipments",
    "order": "a carrier-bound connection never writes orders or customers",
}


def document_kind(document: Any) -> str:
    """The contract v1 kind of a validated canonical document (a milestone has no ``kind`` field)."""
    return "milestone" if isinstance(document, MilestoneEvent) else document.kind


def kinds_allowed(connection: Connection) -> frozenset[str]:
    """The kinds this connection may send: its connector's, narrowed by the connection's own list."""
    declared = registry.get(connection.connector).document_kinds
    narrowed = frozenset(connection.document_kinds or ())
    return declared & narrowed if narrowed else declared


def shipment_named(document: Any) -> str | None:
    """The reference of the shipment a document writes to, or None when it names none."""
    if isinstance(document, MilestoneEvent | FreightChargeDocument):
        return document.shipment.reference
    if isinstance(document, ShipmentDocument):
        return document.reference
    return None


def document_refusal(*, connection: Connection, document: Any, shipment: Shipment | None) -> str | None:
    """Why ``connection`` may not write ``document``, or None when it may (the module's table).

    ``shipment`` is the stored shipment the document names (``shipment_named``), with its carrier
    loaded, or None when there is none (yet). Pure apart from reading ``connection.carrier``.
    """
    kind = document_kind(document)
    allowed = kinds_allowed(connection)
    if kind not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        return f"connection {connection.slug!r} may not send {kind!r} documents (allowed: {listed})"
    if connection.carrier_id is None or kind == "functional_ack":
        return None
    problem = _not_the_carriers(connection, document, kind, shipment)
    if problem is None:
        return None
    return (
        f"connection {connection.slug!r} is bound to carrier {connection.carrier.scac}: {problem} "
        f"({_CARRIER_RULE[kind]})"
    )


def _not_the_carriers(
    connection: Connection, document: Any, kind: str, shipment: Shipment | None
) -> str | None:
    """For a carrier-bound connection: what in ``document`` is not its carrier's, or None."""
    if isinstance(document, OrderDocument):
        return f"order {document.reference!r} (customer {document.customer.code!r}) is not the carrier's"
    if shipment is not None and shipment.carrier_id != connection.carrier_id:
        owner = f"carrier {shipment.carrier.scac}" if shipment.carrier_id else "no carrier"
        return f"shipment {shipment.reference!r} belongs to {owner}"
    named: CarrierRef | None = getattr(document, "carrier", None)
    if named is not None and named.scac != connection.carrier.scac:
        record = (
            f"shipment {document.reference!r}"
            if kind == "shipment"
            else f"freight charge {document.invoice_number!r}"
        )
        return f"{record} names carrier {named.scac}"
    return None


def document_authorize(*, connection: Connection, document: Any) -> Any:
    """Check ``document`` against the rule and return the document to apply; raises ``Refused``.

    Locks the shipment the document names (so its carrier cannot change before it is applied) and
    must run inside the transaction that applies the document. A new shipment from a carrier-bound
    connection that names no carrier is returned naming the connection's carrier: it is created
    as that carrier's own.
    """
    reference = shipment_named(document)
    shipment = None
    if reference is not None and connection.carrier_id is not None:
        shipment = (
            Shipment.objects.select_for_update(no_key=True, of=("self",))
            .select_related("carrier")
            .filter(reference=reference)
            .first()
        )
    reason = document_refusal(connection=connection, document=document, shipment=shipment)
    if reason is not None:
        raise Refused(reason)
    if (
        isinstance(document, ShipmentDocument)
        and connection.carrier_id is not None
        and shipment is None
        and document.carrier is None
        and document.purpose != "CANCELLATION"
    ):
        return document.model_copy(update={"carrier": CarrierRef(scac=connection.carrier.scac)})
    return document
