"""Serializers for the canonical resources. Shapes only: every write calls a canonical service.

Partner API clients get the same serializers less the other side's money, by role, as written once
in :data:`PARTNER_HIDDEN_FIELDS` at the end of this module: a carrier does not see the customer's sale
prices, invoice amounts or billing terms; a customer does not see freight cost or the carrier's
charges. Admin clients and staff logins see every field.
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from canonical import services
from canonical.models import (
    Carrier,
    Customer,
    FreightCharge,
    Invoice,
    InvoiceLine,
    Location,
    Order,
    OrderLine,
    Product,
    Shipment,
    ShipmentEvent,
    ShipmentException,
    ShipmentLine,
    Stop,
)
from hub.api.v1.scoping import principal_for
from hub.api.v1.serializers.base import TIMESTAMPS, BusinessKeyRelatedField, CanonicalSerializer


class PartnerAwareSerializer(CanonicalSerializer):
    """Drops the fields :data:`PARTNER_HIDDEN_FIELDS` hides from the calling partner's role."""

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        principal = principal_for(request) if request is not None else None
        role = principal.partner_role if principal is not None else None
        for path in PARTNER_HIDDEN_FIELDS.get(role, {}).get(type(self), ()):
            _drop(fields, path)
        return fields


def _drop(fields, path: str) -> None:
    """Remove ``path`` (``"charges"``, or ``"lines.unit_price"`` inside a nested list) from ``fields``."""
    head, _, rest = path.partition(".")
    if not rest:
        fields.pop(head, None)
        return
    nested = fields.get(head)
    if nested is not None:
        _drop(getattr(nested, "child", nested).fields, rest)


class CustomerSerializer(PartnerAwareSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "name",
            "email",
            "phone",
            "billing_address",
            "hold_invoice_until_pod",
            "active",
            "external_refs",
            *TIMESTAMPS,
        ]


class LocationSerializer(PartnerAwareSerializer):
    class Meta:
        model = Location
        fields = [
            "id",
            "code",
            "name",
            "address_line",
            "city",
            "region",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "timezone",
            "external_refs",
            *TIMESTAMPS,
        ]


class CarrierSerializer(PartnerAwareSerializer):
    class Meta:
        model = Carrier
        fields = ["id", "scac", "name", "mc_number", "dot_number", "active", "external_refs", *TIMESTAMPS]


class ProductSerializer(PartnerAwareSerializer):
    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "description",
            "unit_of_measure",
            "weight_kg",
            "hs_code",
            "active",
            "external_refs",
            *TIMESTAMPS,
        ]


# --- Orders -----------------------------------------------------------------------------------------


class OrderLineSerializer(serializers.ModelSerializer):
    product = BusinessKeyRelatedField(key="sku", queryset=Product.objects.all())

    class Meta:
        model = OrderLine
        fields = ["line_number", "product", "quantity", "unit_price"]


class OrderSerializer(PartnerAwareSerializer):
    customer = BusinessKeyRelatedField(key="code", queryset=Customer.objects.all())
    ship_from = BusinessKeyRelatedField(
        key="code", queryset=Location.objects.all(), required=False, allow_null=True
    )
    ship_to = BusinessKeyRelatedField(
        key="code", queryset=Location.objects.all(), required=False, allow_null=True
    )
    lines = OrderLineSerializer(many=True, required=False)
    nested = ("lines",)

    class Meta:
        model = Order
        fields = [
            "id",
            "reference",
            "customer",
            "status",
            "ordered_at",
            "requested_delivery_date",
            "ship_from",
            "ship_to",
            "currency",
            "notes",
            "lines",
            "external_refs",
            *TIMESTAMPS,
        ]

    def validate_lines(self, lines):
        numbers = [line["line_number"] for line in lines]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("line_number values must be unique within the order")
        return lines

    def save_record(self, *, instance, data, children, external_refs):
        return services.order_save(
            instance=instance, data=data, lines=children.get("lines"), external_refs=external_refs
        )


# --- Shipments --------------------------------------------------------------------------------------


class StopSerializer(serializers.ModelSerializer):
    location = BusinessKeyRelatedField(key="code", queryset=Location.objects.all())

    class Meta:
        model = Stop
        fields = [
            "sequence",
            "kind",
            "location",
            "planned_start",
            "planned_end",
            "actual_arrival",
            "actual_departure",
        ]
        read_only_fields = ["actual_arrival", "actual_departure"]


class ShipmentLineSerializer(serializers.ModelSerializer):
    """An order line on the shipment, named by order reference and line number."""

    order = serializers.CharField(source="order_line.order.reference")
    line_number = serializers.IntegerField(source="order_line.line_number", min_value=1)

    class Meta:
        model = ShipmentLine
        fields = ["order", "line_number", "quantity"]

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        ref = value.pop("order_line")
        reference, number = ref["order"]["reference"], ref["line_number"]
        line = OrderLine.objects.filter(order__reference=reference, line_number=number).first()
        if line is None:
            raise serializers.ValidationError({"line_number": f"order {reference!r} has no line {number}"})
        return {"order_line": line, "quantity": value["quantity"]}


class ShipmentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ShipmentEvent
        fields = [
            "event_type",
            "occurred_at",
            "late",
            "stop_sequence",
            "location_code",
            "reason_code",
            "source_system",
            "source_event_id",
            "details",
        ]
        read_only_fields = fields


class FreightChargeSerializer(serializers.ModelSerializer):
    class Meta:
        model = FreightCharge
        fields = ["kind", "amount", "currency", "source_system", "description", "created_at"]
        read_only_fields = fields


class ShipmentSerializer(PartnerAwareSerializer):
    carrier = BusinessKeyRelatedField(
        key="scac", queryset=Carrier.objects.all(), required=False, allow_null=True
    )
    customer = BusinessKeyRelatedField(
        key="code", queryset=Customer.objects.all(), required=False, allow_null=True
    )
    stops = StopSerializer(many=True, required=False)
    lines = ShipmentLineSerializer(many=True, required=False)
    events = ShipmentEventSerializer(many=True, read_only=True)
    charges = FreightChargeSerializer(many=True, read_only=True)
    open_exceptions = serializers.SerializerMethodField()
    nested = ("stops", "lines")

    class Meta:
        model = Shipment
        fields = [
            "id",
            "reference",
            "carrier",
            "customer",
            "status",
            "mode",
            "tracking_number",
            "planned_pickup_at",
            "planned_delivery_at",
            "delivered_at",
            "pod_received_at",
            "weight_kg",
            "expected_freight_cost",
            "currency",
            "sequence",
            "stops",
            "lines",
            "events",
            "open_exceptions",
            "charges",
            "external_refs",
            *TIMESTAMPS,
        ]
        # Status, delivery and POD move only through milestones (the shipment state machine).
        read_only_fields = ["status", "delivered_at", "pod_received_at", "sequence"]

    def get_open_exceptions(self, obj) -> list[str]:
        return [e.kind for e in obj.exceptions.all() if e.status == ShipmentException.Status.OPEN]

    def validate_stops(self, stops):
        numbers = [stop["sequence"] for stop in stops]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("stop sequence values must be unique within the shipment")
        return stops

    def save_record(self, *, instance, data, children, external_refs):
        return services.shipment_save(
            instance=instance,
            data=data,
            stops=children.get("stops"),
            lines=children.get("lines"),
            external_refs=external_refs,
        )


# --- Invoices ---------------------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.ModelSerializer):
    product = BusinessKeyRelatedField(
        key="sku", queryset=Product.objects.all(), required=False, allow_null=True
    )
    amount = serializers.SerializerMethodField()

    class Meta:
        model = InvoiceLine
        fields = ["line_number", "description", "product", "quantity", "unit_price", "amount"]

    def get_amount(self, obj) -> Decimal:
        return (obj.quantity * obj.unit_price).quantize(Decimal("0.01"))


class InvoiceSerializer(PartnerAwareSerializer):
    customer = BusinessKeyRelatedField(key="code", queryset=Customer.objects.all())
    order = BusinessKeyRelatedField(
        key="reference", queryset=Order.objects.all(), required=False, allow_null=True
    )
    shipment = BusinessKeyRelatedField(
        key="reference", queryset=Shipment.objects.all(), required=False, allow_null=True
    )
    corrects = BusinessKeyRelatedField(
        key="reference", queryset=Invoice.objects.all(), required=False, allow_null=True
    )
    lines = InvoiceLineSerializer(many=True, required=False)
    total = serializers.SerializerMethodField()
    nested = ("lines",)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "reference",
            "kind",
            "status",
            "customer",
            "order",
            "shipment",
            "corrects",
            "currency",
            "issued_at",
            "due_date",
            "hold_reason",
            "lines",
            "total",
            "external_refs",
            *TIMESTAMPS,
        ]

    def get_total(self, obj) -> Decimal:
        return sum(
            ((line.quantity * line.unit_price).quantize(Decimal("0.01")) for line in obj.lines.all()),
            Decimal("0.00"),
        )

    def validate_lines(self, lines):
        numbers = [line["line_number"] for line in lines]
        if len(numbers) != len(set(numbers)):
            raise serializers.ValidationError("line_number values must be unique within the invoice")
        return lines

    def save_record(self, *, instance, data, children, external_refs):
        return services.invoice_save(
            instance=instance, data=data, lines=children.get("lines"), external_refs=external_refs
        )


# --- Exceptions -------------------------------------------------------------------------------------


class ShipmentExceptionSerializer(PartnerAwareSerializer):
    shipment = BusinessKeyRelatedField(key="reference", queryset=Shipment.objects.all())

    class Meta:
        model = ShipmentException
        fields = [
            "id",
            "shipment",
            "kind",
            "status",
            "opened_at",
            "resolved_at",
            "reason_code",
            "description",
            "resolution",
            "external_refs",
            *TIMESTAMPS,
        ]
        read_only_fields = ["resolved_at"]
        extra_kwargs = {"opened_at": {"required": False}}  # defaults to now
        # One open exception per shipment and kind is enforced by the service (409), not a 400 here.
        validators: list = []

    def save_record(self, *, instance, data, children, external_refs):
        if instance is None:
            data.pop("status", None)  # a new exception is always open
            return services.shipment_exception_open(data=data, external_refs=external_refs)
        return services.shipment_exception_update(instance=instance, data=data, external_refs=external_refs)


# --- What each partner role does not see ------------------------------------------------------------

#: Fields absent for a partner API client, by its role and the serializer. A dotted path names a field
#: of each item of a nested list. Scoping (hub.api.v1.scoping) already keeps invoices from carriers;
#: their invoice field set hides the amounts anyway, so a scoping slip would not show them.
PARTNER_HIDDEN_FIELDS: dict[str | None, dict[type[PartnerAwareSerializer], frozenset[str]]] = {
    "carrier": {
        OrderSerializer: frozenset({"lines.unit_price"}),  # the customer's sale prices
        InvoiceSerializer: frozenset({"lines.unit_price", "lines.amount", "total"}),
        CustomerSerializer: frozenset({"billing_address", "hold_invoice_until_pod"}),  # billing terms
    },
    "customer": {
        # What the carrier is paid: the expected cost and the carrier's charges.
        ShipmentSerializer: frozenset({"expected_freight_cost", "charges"}),
    },
}
