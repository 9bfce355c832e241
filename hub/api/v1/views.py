"""API v1 viewsets: declarations only. Scoping lives in the base class, writes in services."""

from __future__ import annotations

from django.db.models import Prefetch
from rest_framework import mixins, viewsets

from canonical.models import (
    Carrier,
    Customer,
    Invoice,
    Location,
    Order,
    Product,
    Shipment,
    ShipmentException,
    ShipmentLine,
)
from hub.api.v1 import filtersets
from hub.api.v1.scoping import principal_for, restrict
from hub.api.v1.serializers import canonical as s


class ScopedViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Create, read, update (no delete: canonical records are referenced across systems).

    Partner scoping is applied here, once, for every action: a view cannot forget it.
    """

    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    partner_may_write = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.principal = principal_for(request)

    def get_queryset(self):
        return restrict(super().get_queryset(), getattr(self, "principal", None))


class CustomerViewSet(ScopedViewSet):
    queryset = Customer.objects.prefetch_related("external_refs")
    serializer_class = s.CustomerSerializer
    filterset_class = filtersets.CustomerFilterSet


class LocationViewSet(ScopedViewSet):
    queryset = Location.objects.prefetch_related("external_refs")
    serializer_class = s.LocationSerializer
    filterset_class = filtersets.LocationFilterSet


class CarrierViewSet(ScopedViewSet):
    queryset = Carrier.objects.prefetch_related("external_refs")
    serializer_class = s.CarrierSerializer
    filterset_class = filtersets.CarrierFilterSet


class ProductViewSet(ScopedViewSet):
    queryset = Product.objects.prefetch_related("external_refs")
    serializer_class = s.ProductSerializer
    filterset_class = filtersets.ProductFilterSet


class OrderViewSet(ScopedViewSet):
    queryset = Order.objects.select_related("customer", "ship_from", "ship_to").prefetch_related(
        "external_refs", "lines__product"
    )
    serializer_class = s.OrderSerializer
    filterset_class = filtersets.OrderFilterSet


class ShipmentViewSet(ScopedViewSet):
    queryset = Shipment.objects.select_related("carrier", "customer").prefetch_related(
        "external_refs",
        "stops__location",
        "events",
        "exceptions",
        "charges",
        Prefetch("lines", queryset=ShipmentLine.objects.select_related("order_line__order")),
    )
    serializer_class = s.ShipmentSerializer
    filterset_class = filtersets.ShipmentFilterSet


class InvoiceViewSet(ScopedViewSet):
    queryset = Invoice.objects.select_related("customer", "order", "shipment", "corrects").prefetch_related(
        "external_refs", "lines__product"
    )
    serializer_class = s.InvoiceSerializer
    filterset_class = filtersets.InvoiceFilterSet


class ShipmentExceptionViewSet(ScopedViewSet):
    queryset = ShipmentException.objects.select_related("shipment").prefetch_related("external_refs")
    serializer_class = s.ShipmentExceptionSerializer
    filterset_class = filtersets.ShipmentExceptionFilterSet
