"""The ops console over the canonical model (the ``canonical`` app's admin).

The admin is an interface (STYLE.md section 3). It shapes input and output, and every write of a
record goes through one service of :mod:`canonical.services`; child rows edited in inlines are saved
by Django's ``save_related``. Three rules shape every page:

- A service's ``DomainError`` is shown on the form (and as an error message); nothing is saved.
  See :meth:`hub.ops.admin.kit.ServiceModelAdmin.changeform_view`.
- A record that another system holds (an ``ExternalRef`` whose system is not Crossdock) is owned by
  that system: its business data is read-only here, and the form says which system owns it.
- Data that only milestones move (shipment status, delivery and POD times, the change sequence, the
  event timeline, stop actuals) is read-only everywhere.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.contenttypes.admin import GenericTabularInline
from django.db import models
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from canonical import services
from canonical.errors import DomainError
from canonical.models import (
    Carrier,
    Customer,
    ExternalRef,
    FreightCharge,
    Invoice,
    InvoiceLine,
    Location,
    Order,
    OrderLine,
    Price,
    Product,
    Rate,
    Shipment,
    ShipmentEvent,
    ShipmentException,
    ShipmentLine,
    Stop,
)
from hub.ops.admin.kit import (
    HUB_SYSTEM,
    RECORD_FIELDS,
    RECORD_FIELDSET,
    OwnerKeepsDeleteMixin,
    ReadOnlyMixin,
    RelatedInlineMixin,
    ServiceModelAdmin,
    SourceSystemFilter,
    ViewOnlyInline,
    admin_links,
    changelist_link,
    link_column,
    owner_systems,
)

# --- Base ------------------------------------------------------------------------------------------


class CanonicalAdmin(OwnerKeepsDeleteMixin, ServiceModelAdmin):
    """Admin of a canonical record that has ``external_refs``: refs prefetched, owner note, refs column."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("external_refs")

    @admin.display(description="External ids")
    def external_ids(self, obj: models.Model) -> str:
        refs = [(ref.system, ref.external_id) for ref in obj.external_refs.all()]  # type: ignore[attr-defined]
        return format_html_join(", ", "{}:{}", refs) if refs else "-"


# --- Inlines ---------------------------------------------------------------------------------------


class ExternalRefInline(ReadOnlyMixin, GenericTabularInline):
    """A record's ids in other systems. Read-only: connectors write them through the services."""

    model = ExternalRef
    fields = ("system", "entity", "external_id", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "external id"
    verbose_name_plural = "external ids"


class ChildInline(RelatedInlineMixin, admin.TabularInline):
    """Editable child rows (saved by ``save_related``), read-only when the parent is another system's."""

    extra = 0

    def rows_editable(self, request: HttpRequest, obj: models.Model | None) -> bool:
        return not owner_systems(obj)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.rows_editable(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.rows_editable(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.rows_editable(request, obj) and super().has_delete_permission(request, obj)


class OrderLineInline(ChildInline):
    model = OrderLine
    fields = ("line_number", "product", "quantity", "unit_price")
    inline_select_related = ("order",)
    autocomplete_fields = ("product",)
    ordering = ("line_number",)


class InvoiceLineInline(ChildInline):
    model = InvoiceLine
    fields = ("line_number", "description", "product", "quantity", "unit_price")
    inline_select_related = ("invoice",)
    autocomplete_fields = ("product",)
    ordering = ("line_number",)

    def rows_editable(self, request: HttpRequest, obj: models.Model | None) -> bool:
        # A posted or paid invoice's lines are final (invoice_save refuses them; issue a note).
        posted = getattr(obj, "status", None) in (Invoice.Status.POSTED, Invoice.Status.PAID)
        return not posted and super().rows_editable(request, obj)


class StopInline(ChildInline):
    model = Stop
    fields = (
        "sequence",
        "kind",
        "location",
        "planned_start",
        "planned_end",
        "actual_arrival",
        "actual_departure",
    )
    # Actual arrival and departure are set by milestones (canonical.milestones), like the status.
    readonly_fields = ("actual_arrival", "actual_departure")
    autocomplete_fields = ("location",)
    ordering = ("sequence",)
    inline_select_related = ("shipment",)


class ShipmentLineInline(ChildInline):
    model = ShipmentLine
    fields = ("order_line", "quantity")
    raw_id_fields = ("order_line",)
    verbose_name = "order line on this shipment"
    verbose_name_plural = "order lines on this shipment"


class ShipmentEventInline(ViewOnlyInline):
    """The milestone timeline: facts reported by carriers and systems, never edited."""

    model = ShipmentEvent
    fields = (
        "occurred_at",
        "event_type",
        "stop_sequence",
        "location_code",
        "reason_code",
        "source_system",
        "late",
    )
    readonly_fields = fields
    ordering = ("occurred_at", "created_at")
    verbose_name_plural = "timeline"


class ShipmentExceptionInline(ViewOnlyInline):
    model = ShipmentException
    fields = ("kind", "status", "opened_at", "resolved_at", "reason_code")
    readonly_fields = fields
    inline_select_related = ("shipment",)


class FreightChargeInline(ViewOnlyInline):
    model = FreightCharge
    fields = ("kind", "amount", "currency", "source_system", "description", "invoice_line")
    readonly_fields = fields
    inline_select_related = ("invoice_line__invoice",)


# --- Master data -----------------------------------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(CanonicalAdmin):
    list_display = (
        "code",
        "name",
        "email",
        "phone",
        "active",
        "hold_invoice_until_pod",
        "external_ids",
        "updated_at",
    )
    list_filter = ("active", "hold_invoice_until_pod", SourceSystemFilter)
    search_fields = ("code", "name", "email", "external_refs__external_id")
    search_help_text = "Code, name, e-mail, or an id in another system (e.g. the ERP party id)."
    ordering = ("code",)
    readonly_fields = (*RECORD_FIELDS, "ownership", "related")
    readonly_after_create = ("code",)
    # Whether to hold invoices until POD is Crossdock's billing policy, not the ERP's data.
    hub_owned_fields = ("hold_invoice_until_pod",)
    fieldsets = (
        (None, {"fields": ("ownership", "code", "name", "active")}),
        ("Contact", {"fields": ("email", "phone", "billing_address")}),
        ("Billing", {"fields": ("hold_invoice_until_pod",)}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (ExternalRefInline,)

    @admin.display(description="Records")
    def related(self, obj: Customer) -> str:
        return format_html_join(
            " · ",
            "{}",
            (
                (changelist_link(model, label, customer__id__exact=obj.pk),)
                for model, label in ((Order, "Orders"), (Shipment, "Shipments"), (Invoice, "Invoices"))
            ),
        )


@admin.register(Location)
class LocationAdmin(CanonicalAdmin):
    list_display = (
        "code",
        "name",
        "city",
        "region",
        "postal_code",
        "country",
        "timezone",
        "external_ids",
        "updated_at",
    )
    list_filter = ("country", SourceSystemFilter)
    search_fields = ("code", "name", "city", "postal_code", "external_refs__external_id")
    search_help_text = "Code, name, city, postal code, or an id in another system."
    ordering = ("code",)
    readonly_fields = (*RECORD_FIELDS, "ownership")
    readonly_after_create = ("code",)
    fieldsets = (
        (None, {"fields": ("ownership", "code", "name")}),
        ("Address", {"fields": ("address_line", "city", "region", "postal_code", "country")}),
        ("Position", {"fields": ("latitude", "longitude", "timezone")}),
        RECORD_FIELDSET,
    )
    inlines = (ExternalRefInline,)


@admin.register(Carrier)
class CarrierAdmin(CanonicalAdmin):
    list_display = ("scac", "name", "mc_number", "dot_number", "active", "external_ids", "updated_at")
    list_filter = ("active", SourceSystemFilter)
    search_fields = ("scac", "name", "mc_number", "dot_number", "external_refs__external_id")
    search_help_text = "SCAC, name, MC or DOT number, or an id in another system."
    ordering = ("scac",)
    readonly_fields = (*RECORD_FIELDS, "ownership", "related")
    readonly_after_create = ("scac",)
    fieldsets = (
        (None, {"fields": ("ownership", "scac", "name", "active")}),
        ("Registration", {"fields": ("mc_number", "dot_number")}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (ExternalRefInline,)

    @admin.display(description="Records")
    def related(self, obj: Carrier) -> str:
        return format_html(
            "{} · {}",
            changelist_link(Shipment, "Shipments", carrier__id__exact=obj.pk),
            changelist_link(Rate, "Rates", carrier__id__exact=obj.pk),
        )


@admin.register(Product)
class ProductAdmin(CanonicalAdmin):
    list_display = (
        "sku",
        "name",
        "unit_of_measure",
        "weight_kg",
        "hs_code",
        "active",
        "external_ids",
        "updated_at",
    )
    list_filter = ("active", "unit_of_measure", SourceSystemFilter)
    search_fields = ("sku", "name", "hs_code", "external_refs__external_id")
    search_help_text = "SKU, name, HS code, or an id in another system."
    ordering = ("sku",)
    readonly_fields = (*RECORD_FIELDS, "ownership", "related")
    readonly_after_create = ("sku",)
    fieldsets = (
        (None, {"fields": ("ownership", "sku", "name", "active")}),
        ("Details", {"fields": ("description", "unit_of_measure", "weight_kg", "hs_code")}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (ExternalRefInline,)

    @admin.display(description="Records")
    def related(self, obj: Product) -> str:
        return changelist_link(Price, "Prices", product__id__exact=obj.pk)


@admin.register(Price)
class PriceAdmin(ServiceModelAdmin):
    list_display = (
        "__str__",
        "product_link",
        "customer_link",
        "unit_price",
        "currency",
        "valid_from",
        "valid_to",
        "updated_at",
    )
    list_filter = ("currency", ("customer", admin.EmptyFieldListFilter))
    list_select_related = ("product", "customer")
    search_fields = (
        "product__sku",
        "product__name",
        "customer__code",
        "customer__name",
        "product__external_refs__external_id",
        "customer__external_refs__external_id",
    )
    search_help_text = "Product SKU or name, customer code or name, or their ids in other systems."
    date_hierarchy = "valid_from"
    ordering = ("product__sku", "customer__code", "-valid_from")
    autocomplete_fields = ("product", "customer")
    fieldsets = (
        (None, {"fields": ("product", "customer", "unit_price", "currency")}),
        ("Validity", {"fields": ("valid_from", "valid_to")}),
        RECORD_FIELDSET,
    )

    product_link = link_column("product", "Product", label="sku", ordering="product__sku")

    customer_link = link_column(
        "customer", "Customer", label="code", ordering="customer__code", empty="List price"
    )


@admin.register(Rate)
class RateAdmin(ServiceModelAdmin):
    list_display = (
        "__str__",
        "carrier_link",
        "origin_link",
        "destination_link",
        "basis",
        "amount",
        "currency",
        "valid_from",
        "valid_to",
        "updated_at",
    )
    list_filter = ("basis", "currency", ("carrier", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("carrier", "origin", "destination")
    search_fields = (
        "carrier__scac",
        "carrier__name",
        "origin__code",
        "destination__code",
        "carrier__external_refs__external_id",
    )
    search_help_text = "Carrier SCAC or name, origin or destination code, or the carrier's external id."
    date_hierarchy = "valid_from"
    ordering = ("carrier__scac", "origin__code", "destination__code", "-valid_from")
    autocomplete_fields = ("carrier", "origin", "destination")
    fieldsets = (
        (None, {"fields": ("carrier", "origin", "destination")}),
        ("Price", {"fields": ("basis", "amount", "currency")}),
        ("Validity", {"fields": ("valid_from", "valid_to")}),
        RECORD_FIELDSET,
    )

    carrier_link = link_column("carrier", "Carrier", label="scac", ordering="carrier__scac")

    origin_link = link_column("origin", "Origin", label="code", ordering="origin__code")

    destination_link = link_column("destination", "Destination", label="code", ordering="destination__code")


# --- Orders, shipments, invoices -------------------------------------------------------------------


@admin.register(Order)
class OrderAdmin(CanonicalAdmin):
    list_display = (
        "reference",
        "customer_link",
        "status",
        "ordered_at",
        "requested_delivery_date",
        "ship_to_link",
        "external_ids",
        "updated_at",
    )
    list_filter = ("status", SourceSystemFilter, "currency")
    list_select_related = ("customer", "ship_to")
    search_fields = ("reference", "customer__code", "customer__name", "external_refs__external_id")
    search_help_text = "Order reference, customer code or name, or an id in another system (ERP sale)."
    date_hierarchy = "ordered_at"
    ordering = ("-created_at",)
    autocomplete_fields = ("customer", "ship_from", "ship_to")
    readonly_fields = (*RECORD_FIELDS, "ownership", "related")
    readonly_after_create = ("reference",)
    fieldsets = (
        (None, {"fields": ("ownership", "reference", "customer", "status")}),
        ("Dates", {"fields": ("ordered_at", "requested_delivery_date")}),
        ("Route", {"fields": ("ship_from", "ship_to")}),
        ("Commercial", {"fields": ("currency", "notes")}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (OrderLineInline, ExternalRefInline)

    customer_link = link_column("customer", "Customer", label="code", ordering="customer__code")

    ship_to_link = link_column("ship_to", "Ship to", label="code", ordering="ship_to__code")

    @admin.display(description="Shipments and invoices")
    def related(self, obj: Order) -> str:
        shipments = (
            Shipment.objects.filter(lines__order_line__order=obj).distinct().only("id", "reference")
        ).order_by("reference")
        invoices = obj.invoices.only("id", "reference").order_by("reference")
        return format_html("Shipments: {}<br>Invoices: {}", admin_links(shipments), admin_links(invoices))

    # Lines are the inline's rows (saved by save_related): no ``lines=`` to the service.
    save_service = "order_save"


def _open_exception_count() -> Coalesce:
    """Open exceptions per shipment as a correlated subquery: a JOIN + COUNT would be inflated by
    the changelist's own joins (a search on external ids joins the refs)."""
    counts = (
        ShipmentException.objects.filter(shipment=OuterRef("pk"), status=ShipmentException.Status.OPEN)
        .order_by()
        .values("shipment")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counts, output_field=models.IntegerField()), 0)


@admin.register(Shipment)
class ShipmentAdmin(CanonicalAdmin):
    list_display = (
        "reference",
        "status",
        "carrier_link",
        "customer_link",
        "tracking_number",
        "planned_pickup_at",
        "planned_delivery_at",
        "delivered_at",
        "pod_received_at",
        "open_exceptions",
        "external_ids",
        "updated_at",
    )
    list_filter = (
        "status",
        "mode",
        ("carrier", admin.RelatedOnlyFieldListFilter),
        ("pod_received_at", admin.EmptyFieldListFilter),
        SourceSystemFilter,
    )
    list_select_related = ("carrier", "customer")
    search_fields = (
        "reference",
        "tracking_number",
        "carrier__scac",
        "customer__code",
        "external_refs__external_id",
    )
    search_help_text = "Shipment reference, tracking number, SCAC, customer code, or an id in another system."
    date_hierarchy = "planned_pickup_at"
    ordering = ("-created_at",)
    autocomplete_fields = ("carrier", "customer")
    # Status, delivery, POD and the change counter move only by milestones through the state machine
    # (canonical.milestones); shipment_save does not take them either.
    readonly_fields = (
        *RECORD_FIELDS,
        "ownership",
        "related",
        "status",
        "delivered_at",
        "pod_received_at",
        "sequence",
    )
    readonly_after_create = ("reference",)
    fieldsets = (
        (None, {"fields": ("ownership", "reference", "status", "carrier", "customer")}),
        ("Transport", {"fields": ("mode", "tracking_number", "weight_kg")}),
        ("Plan", {"fields": ("planned_pickup_at", "planned_delivery_at")}),
        (
            "Milestones",
            {
                "fields": ("delivered_at", "pod_received_at", "sequence"),
                "description": "Set only by milestones (carrier and system events), never by hand.",
            },
        ),
        ("Cost", {"fields": ("expected_freight_cost", "currency")}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (
        StopInline,
        ShipmentLineInline,
        ShipmentEventInline,
        ShipmentExceptionInline,
        FreightChargeInline,
        ExternalRefInline,
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(open_exception_count=_open_exception_count())

    carrier_link = link_column("carrier", "Carrier", label="scac", ordering="carrier__scac")

    customer_link = link_column("customer", "Customer", label="code", ordering="customer__code")

    @admin.display(description="Open exceptions", ordering="open_exception_count")
    def open_exceptions(self, obj: Shipment) -> str | int:
        count = obj.open_exception_count  # type: ignore[attr-defined]
        if not count:
            return 0
        return changelist_link(
            ShipmentException, str(count), shipment__id__exact=obj.pk, status__exact="OPEN"
        )

    @admin.display(description="Orders, invoices and actions")
    def related(self, obj: Shipment) -> str:
        orders = (
            Order.objects.filter(lines__shipment_lines__shipment=obj).distinct().only("id", "reference")
        ).order_by("reference")
        invoices = obj.invoices.only("id", "reference").order_by("reference")
        exception_add = reverse("admin:canonical_shipmentexception_add")
        charge_add = reverse("admin:canonical_freightcharge_add")
        return format_html(
            'Orders: {}<br>Invoices: {}<br><a href="{}?shipment={}">Open an exception</a>'
            ' · <a href="{}?shipment={}">Add a freight charge</a>',
            admin_links(orders),
            admin_links(invoices),
            exception_add,
            obj.pk,
            charge_add,
            obj.pk,
        )

    # Stops and lines are the inlines' rows (saved by save_related): no ``stops=``/``lines=``.
    save_service = "shipment_save"


@admin.register(Invoice)
class InvoiceAdmin(CanonicalAdmin):
    list_display = (
        "reference",
        "kind",
        "status",
        "customer_link",
        "order_link",
        "shipment_link",
        "issued_at",
        "due_date",
        "hold_reason",
        "external_ids",
        "updated_at",
    )
    list_filter = ("status", "kind", SourceSystemFilter, "currency")
    list_select_related = ("customer", "order", "shipment")
    search_fields = (
        "reference",
        "customer__code",
        "customer__name",
        "order__reference",
        "shipment__reference",
        "external_refs__external_id",
    )
    search_help_text = "Invoice, order or shipment reference, customer, or an id in another system."
    date_hierarchy = "issued_at"
    ordering = ("-created_at",)
    autocomplete_fields = ("customer", "order", "shipment", "corrects")
    readonly_fields = (*RECORD_FIELDS, "ownership", "related")
    readonly_after_create = ("reference",)
    fieldsets = (
        (None, {"fields": ("ownership", "reference", "kind", "status", "customer")}),
        ("Billed for", {"fields": ("order", "shipment", "corrects")}),
        ("Dates", {"fields": ("issued_at", "due_date")}),
        ("Billing", {"fields": ("currency", "hold_reason")}),
        ("Related", {"fields": ("related",)}),
        RECORD_FIELDSET,
    )
    inlines = (InvoiceLineInline, ExternalRefInline)

    customer_link = link_column("customer", "Customer", label="code", ordering="customer__code")

    order_link = link_column("order", "Order", ordering="order__reference")

    shipment_link = link_column("shipment", "Shipment", ordering="shipment__reference")

    @admin.display(description="Credit and debit notes")
    def related(self, obj: Invoice) -> str:
        return admin_links(obj.corrections.only("id", "reference").order_by("reference"))

    save_service = "invoice_save"


# --- Exceptions, charges, events, refs -------------------------------------------------------------


@admin.register(ShipmentException)
class ShipmentExceptionAdmin(CanonicalAdmin):
    list_display = (
        "kind",
        "status",
        "shipment_link",
        "carrier_link",
        "opened_at",
        "resolved_at",
        "reason_code",
        "external_ids",
        "updated_at",
    )
    list_filter = (
        "status",
        "kind",
        ("shipment__carrier", admin.RelatedOnlyFieldListFilter),
        SourceSystemFilter,
    )
    list_select_related = ("shipment", "shipment__carrier")
    search_fields = (
        "shipment__reference",
        "reason_code",
        "description",
        "external_refs__external_id",
        "shipment__external_refs__external_id",
    )
    search_help_text = "Shipment reference, reason code, description, or an id in another system (CRM case)."
    date_hierarchy = "opened_at"
    ordering = ("-opened_at",)
    autocomplete_fields = ("shipment",)
    # resolved_at is stamped by shipment_exception_update; source_key is the opening milestone's.
    readonly_fields = (*RECORD_FIELDS, "ownership", "resolved_at", "source_key")
    readonly_after_create = ("shipment", "kind")
    # A new exception is always OPEN (shipment_exception_open); resolving is an edit.
    add_hidden_fields = ("status", "resolution")
    fieldsets = (
        (None, {"fields": ("ownership", "shipment", "kind", "status")}),
        ("Timing", {"fields": ("opened_at", "resolved_at")}),
        ("Details", {"fields": ("reason_code", "description", "resolution", "source_key")}),
        RECORD_FIELDSET,
    )
    inlines = (ExternalRefInline,)
    actions = ("resolve_selected",)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"opened_at": timezone.now(), **super().get_changeform_initial_data(request)}

    shipment_link = link_column("shipment", "Shipment", ordering="shipment__reference")

    carrier_link = link_column(
        "shipment.carrier", "Carrier", label="scac", ordering="shipment__carrier__scac"
    )

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: Any,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        if change:
            return services.shipment_exception_update(instance=obj, data=data)
        return services.shipment_exception_open(data=data)

    @admin.action(description="Resolve selected open exceptions", permissions=["change"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        resolved = 0
        for exception in queryset.filter(status=ShipmentException.Status.OPEN):
            owners = self.owners(exception)
            if owners:
                self.message_user(
                    request,
                    f"{exception}: owned by {', '.join(owners)}; resolve it there.",
                    level=messages.WARNING,
                )
                continue
            try:
                services.shipment_exception_update(
                    instance=exception, data={"status": ShipmentException.Status.RESOLVED}
                )
            except DomainError as exc:
                self.message_user(request, f"{exception}: {exc.detail}", level=messages.ERROR)
            else:
                resolved += 1
        if resolved:
            self.message_user(request, f"Resolved {resolved} exception(s).", level=messages.SUCCESS)


@admin.register(FreightCharge)
class FreightChargeAdmin(OwnerKeepsDeleteMixin, ServiceModelAdmin):
    list_display = (
        "kind",
        "amount",
        "currency",
        "shipment_link",
        "carrier_link",
        "source_system",
        "description",
        "invoice_link",
        "created_at",
    )
    list_filter = ("kind", "source_system", "currency")
    list_select_related = ("shipment", "shipment__carrier", "invoice_line__invoice")
    search_fields = (
        "shipment__reference",
        "description",
        "invoice_line__invoice__reference",
        "shipment__external_refs__external_id",
    )
    search_help_text = "Shipment or invoice reference, description, or the shipment's id in another system."
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    autocomplete_fields = ("shipment",)
    raw_id_fields = ("invoice_line",)
    # A charge entered here is Crossdock's; one that came from a carrier or system is that system's.
    readonly_fields = (*RECORD_FIELDS, "ownership", "source_system")
    readonly_after_create = ("shipment",)
    fieldsets = (
        (None, {"fields": ("ownership", "shipment", "kind", "amount", "currency", "description")}),
        ("Billing", {"fields": ("invoice_line",)}),
        ("Source", {"fields": ("source_system",)}),
        RECORD_FIELDSET,
    )

    def owners(self, obj: models.Model | None) -> list[str]:
        system = getattr(obj, "source_system", "")
        return [system] if obj is not None and system not in ("", HUB_SYSTEM) else []

    shipment_link = link_column("shipment", "Shipment", ordering="shipment__reference")

    carrier_link = link_column(
        "shipment.carrier", "Carrier", label="scac", ordering="shipment__carrier__scac"
    )

    invoice_link = link_column("invoice_line.invoice", "Invoice")

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: Any,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        if not change:
            data = {**data, "source_system": HUB_SYSTEM}
        return super().service_save(request=request, obj=obj, form=form, data=data, change=change)


@admin.register(ShipmentEvent)
class ShipmentEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The timeline, searchable across shipments. Entirely read-only: milestones write it."""

    list_display = (
        "event_type",
        "shipment_link",
        "occurred_at",
        "stop_sequence",
        "location_code",
        "reason_code",
        "source_system",
        "late",
        "created_at",
    )
    list_filter = ("event_type", "source_system", "late")
    list_select_related = ("shipment",)
    search_fields = (
        "shipment__reference",
        "source_event_id",
        "dedupe_key",
        "shipment__external_refs__external_id",
    )
    search_help_text = "Shipment reference, the source's event id, or the shipment's id in another system."
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at",)
    list_per_page = 50
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {"fields": ("shipment", "event_type", "occurred_at", "stop_sequence", "location_code", "late")},
        ),
        (
            "Source",
            {
                "fields": (
                    "source_system",
                    "source_event_id",
                    "reason_code",
                    "dedupe_key",
                    "source_message_id",
                )
            },
        ),
        ("Details", {"fields": ("details",)}),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    shipment_link = link_column("shipment", "Shipment", ordering="shipment__reference")


@admin.register(ExternalRef)
class ExternalRefAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every id other systems have for canonical records. Read-only: connectors write them."""

    list_display = ("external_id", "system", "entity", "record_link", "created_at")
    list_filter = ("system", "entity")
    list_select_related = ("content_type",)
    search_fields = ("external_id",)
    search_help_text = "An id in another system (ERP sale, TMS shipment, CRM account...)."
    date_hierarchy = "created_at"
    ordering = ("system", "entity", "external_id")
    list_per_page = 50
    show_full_result_count = False
    fields = ("system", "entity", "external_id", "record_link", "content_type", "object_id", *RECORD_FIELDS)
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # One query per content type on the page, not one per row.
        return super().get_queryset(request).prefetch_related("record")

    record_link = link_column("record", "Record")
