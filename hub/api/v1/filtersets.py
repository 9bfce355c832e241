"""Query filters for the canonical resources: `reference`/`code`, `status`, `updated_after`, and
`external_system` + `external_id` (the record's id in another system)."""

from __future__ import annotations

import datetime as dt

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField

from canonical.models import (
    Carrier,
    Customer,
    ExternalRef,
    Invoice,
    Location,
    Order,
    Product,
    Shipment,
    ShipmentException,
)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, normalized to UTC.

    ISO 8601 (and Python) allow offsets up to 24 h, PostgreSQL only up to 15:59: an instant such as
    ``2026-03-01T12:00:00-22:10`` is valid but cannot be sent as written. In UTC it always can,
    unless the instant lies past year 9999 (then it is invalid input, a 400).
    """

    def to_python(self, value):
        result = super().to_python(value)
        if result is None or result.tzinfo is None:
            return result
        try:
            return result.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(
                "instant out of range (in UTC, beyond year 9999)", code="invalid"
            ) from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CanonicalFilterSet(filters.FilterSet):
    updated_after = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    external_system = filters.CharFilter(method="filter_external", help_text="System of an external id.")
    external_id = filters.CharFilter(
        method="filter_external", help_text="Id of the record in external_system."
    )

    def filter_external(self, queryset, name, value):
        # Both parameters are applied together once, here; the second call is a no-op.
        if getattr(self, "_external_applied", False):
            return queryset
        self._external_applied = True
        refs = ExternalRef.objects.filter(entity=queryset.model.__name__.lower())
        system = self.form.cleaned_data.get("external_system")
        external_id = self.form.cleaned_data.get("external_id")
        if system:
            refs = refs.filter(system=system)
        if external_id:
            refs = refs.filter(external_id=external_id)
        return queryset.filter(pk__in=refs.values("object_id"))


class CustomerFilterSet(CanonicalFilterSet):
    class Meta:
        model = Customer
        fields = ["code", "active"]


class LocationFilterSet(CanonicalFilterSet):
    class Meta:
        model = Location
        fields = ["code", "country"]


class CarrierFilterSet(CanonicalFilterSet):
    class Meta:
        model = Carrier
        fields = ["scac", "active"]


class ProductFilterSet(CanonicalFilterSet):
    class Meta:
        model = Product
        fields = ["sku", "active"]


class OrderFilterSet(CanonicalFilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")

    class Meta:
        model = Order
        fields = ["reference", "status"]


class ShipmentFilterSet(CanonicalFilterSet):
    carrier = filters.CharFilter(field_name="carrier__scac", help_text="Carrier SCAC.")
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")

    class Meta:
        model = Shipment
        fields = ["reference", "status", "tracking_number"]


class InvoiceFilterSet(CanonicalFilterSet):
    customer = filters.CharFilter(field_name="customer__code", help_text="Customer code.")

    class Meta:
        model = Invoice
        fields = ["reference", "status", "kind"]


class ShipmentExceptionFilterSet(CanonicalFilterSet):
    shipment = filters.CharFilter(field_name="shipment__reference", help_text="Shipment reference.")

    class Meta:
        model = ShipmentException
        fields = ["status", "kind"]
