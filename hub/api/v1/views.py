"""API v1 viewsets: declarations only. Scoping lives in the base class, writes in services."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.response import Response

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
from hub.connections.models import Connection
from hub.outbox.tasks import shipment_tender_task
from hub.outbox.tenders import shipment_tender_check


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


class TenderRequestSerializer(drf_serializers.Serializer):
    connection = drf_serializers.SlugField()


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

    @extend_schema(request=TenderRequestSerializer, responses={202: OpenApiResponse(description="queued")})
    @action(detail=True, methods=["post"])
    def tender(self, request, **kwargs):
        """Tender the shipment to a carrier or 3PL through a connection (e.g. an X12 204); 202, sent
        by a worker through the side-effect ledger (once per shipment and connection)."""
        principal = principal_for(request)
        if principal is None or not principal.is_admin:
            raise exceptions.PermissionDenied("only an admin client may tender shipments")
        shipment = self.get_object()
        body = TenderRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        connection = Connection.objects.filter(slug=body.validated_data["connection"], is_active=True).first()
        if connection is None:
            raise exceptions.ValidationError(
                {"connection": [f"no active connection {body.validated_data['connection']!r}"]}
            )
        shipment_tender_check(shipment=shipment, connection=connection)
        transaction.on_commit(partial(shipment_tender_task.delay, str(shipment.pk), str(connection.pk)))
        return Response(
            {
                "status": "queued",
                "shipment": shipment.reference,
                "connection": connection.slug,
                "operation": "tender.204",
            },
            status=status.HTTP_202_ACCEPTED,
        )


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
