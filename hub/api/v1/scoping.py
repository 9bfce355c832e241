"""Who is calling, and which records they may see. Applied once, in the base viewset.

Two kinds of caller:

- **API keys** (``Authorization: Token``). An admin client reads and writes everything. A partner bound
  to a carrier sees that carrier, its shipments and what hangs off them (not invoices: they are the
  customer's billing data); a partner bound to a customer sees that customer, its orders, shipments and
  invoices. Locations and products are shared reference data. Another partner's record is simply
  absent (404), never 403, so ids leak nothing. Partners read only.
- **Admin-console logins** (a staff session, for the browsable API). A superuser is an admin. Any other
  staff user has exactly its Django model permissions on the model behind the viewset
  (:data:`STAFF_PERMISSION_BY_METHOD`): ``view_<model>`` to read (``change_<model>`` also reads, as in
  the admin), ``add_<model>`` to create, ``change_<model>`` to update; lacking it, 403. The operator
  resources (connections, subscriptions, messages, dead letters, replay jobs, workflows, connectors)
  and actions such as tendering need a superuser. Staff sessions are never partner-scoped: a
  permission grants every record of its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.base_user import AbstractBaseUser
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

#: The Django model permission (action part) a staff login needs, by HTTP method; as DRF's
#: ``DjangoModelPermissions`` but reads need ``view`` too. A method not listed is refused.
STAFF_PERMISSION_BY_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
}


@dataclass(frozen=True)
class Principal:
    name: str
    is_admin: bool
    carrier_id: UUID | None = None
    customer_id: UUID | None = None
    api_client: ApiClient | None = None
    #: the admin-console login behind a session principal (None for an API key)
    user: AbstractBaseUser | None = None

    @property
    def partner_role(self) -> str | None:
        """``"carrier"`` or ``"customer"`` for a partner API client, else None."""
        if self.carrier_id is not None:
            return "carrier"
        if self.customer_id is not None:
            return "customer"
        return None


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
        return Principal(name=f"staff:{user.get_username()}", is_admin=user.is_superuser, user=user)
    return None


def staff_permission(method: str, model: type[Model]) -> str | None:
    """The permission (``app_label.action_model``) a staff login needs for ``method`` on ``model``."""
    action = STAFF_PERMISSION_BY_METHOD.get(method.upper())
    if action is None:
        return None
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def staff_may(user: AbstractBaseUser, method: str, model: type[Model]) -> bool:
    """Whether a staff login's model permissions allow ``method`` on ``model`` (see the module doc)."""
    needed = staff_permission(method, model)
    if needed is None:
        return False
    if user.has_perm(needed):
        return True
    # As in the admin, the right to change a record includes the right to see it.
    reading = STAFF_PERMISSION_BY_METHOD.get(method.upper()) == "view"
    return reading and bool(user.has_perm(staff_permission("PATCH", model)))


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
    if principal.user is not None:
        # A staff login sees every record of a model it may view, none of the others.
        return queryset if staff_may(principal.user, "GET", model) else queryset.none()
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
