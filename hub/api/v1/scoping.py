"""Who is calling, and which records they may see. Applied once, in the base viewset.

A partner bound to a carrier sees that carrier, its shipments and what hangs off them (not invoices:
they are the customer's billing data); a partner bound to a customer sees that customer, its orders,
shipments and invoices. Locations and products are
shared reference data. Another partner's record is simply absent (404), never 403, so ids leak nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import Model, QuerySet

from canonical.models import (
    Carrier,
    Customer,
    Invoice,
    Location,
    Order,
    Product,
    Shipment,
    ShipmentException,
)
from hub.connections.models import ApiClient


@dataclass(frozen=True)
class Principal:
    name: str
    is_admin: bool
    carrier_id: UUID | None = None
    customer_id: UUID | None = None
    api_client: ApiClient | None = None


def principal_for(request) -> Principal | None:
    client = getattr(request, "auth", None)
    if isinstance(client, ApiClient):
        return Principal(
            name=client.name,
            is_admin=client.is_admin,
            carrier_id=client.carrier_id,
            customer_id=client.customer_id,
            api_client=client,
        )
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_staff", False) and user.is_active:
        return Principal(name=f"staff:{user.get_username()}", is_admin=True)
    return None


def _shipments_of(principal: Principal) -> QuerySet[Shipment]:
    if principal.carrier_id is not None:
        return Shipment.objects.filter(carrier_id=principal.carrier_id)
    return Shipment.objects.filter(customer_id=principal.customer_id)


def restrict(queryset: QuerySet, principal: Principal | None) -> QuerySet:
    """``queryset`` narrowed to what ``principal`` may see (nothing for no principal)."""
    if principal is None:
        return queryset.none()
    if principal.is_admin:
        return queryset
    model: type[Model] = queryset.model
    carrier_id, customer_id = principal.carrier_id, principal.customer_id
    if model in (Location, Product):
        return queryset
    if model is Shipment:
        return queryset.filter(pk__in=_shipments_of(principal).values("pk"))
    if model is ShipmentException:
        return queryset.filter(shipment__in=_shipments_of(principal).values("pk"))
    if model is Carrier:
        if carrier_id is not None:
            return queryset.filter(pk=carrier_id)
        return queryset.filter(pk__in=_shipments_of(principal).values("carrier_id"))
    if model is Customer:
        if customer_id is not None:
            return queryset.filter(pk=customer_id)
        return queryset.filter(pk__in=_shipments_of(principal).values("customer_id"))
    if model is Order:
        if customer_id is not None:
            return queryset.filter(customer_id=customer_id)
        return queryset.filter(
            pk__in=Order.objects.filter(lines__shipments__carrier_id=carrier_id).values("pk")
        )
    if model is Invoice:
        # Invoices are the customer's billing data: a carrier partner sees none of them.
        if customer_id is not None:
            return queryset.filter(customer_id=customer_id)
        return queryset.none()
    # A model without a rule is invisible to partners: failing closed beats leaking.
    return queryset.none()
