"""The canonical logistics model: one shape for what the ERP, TMS and CRM each hold a piece of.

Rules kept by the database (so no code path can bypass them): business keys are unique, money is
Decimal with an ISO 4217 currency, quantities are positive, windows end after they start. Writes go
through :mod:`canonical.services`; nothing here has behaviour on save.
"""

from __future__ import annotations

import uuid

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q

from canonical.contracts.v1 import EventType as ContractEventType

MONEY = {"max_digits": 14, "decimal_places": 2}
QUANTITY = {"max_digits": 14, "decimal_places": 3}
CURRENCY_RE = r"^[A-Z]{3}$"


class TimestampedModel(models.Model):
    """UUID primary key plus created/updated times (UTC, timezone-aware)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


def currency_check(name: str, field: str = "currency") -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__regex": CURRENCY_RE}),
        name=name,
        violation_error_message=f"{field} must be an ISO 4217 code (three capital letters)",
    )


def positive_check(name: str, field: str = "quantity") -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gt": 0}),
        name=name,
        violation_error_message=f"{field} must be greater than zero",
    )


def non_negative_check(name: str, field: str, *, nullable: bool = False) -> models.CheckConstraint:
    """``field >= 0``; with ``nullable`` an empty value passes too."""
    condition = Q(**{f"{field}__gte": 0})
    if nullable:
        condition = Q(**{f"{field}__isnull": True}) | condition
    return models.CheckConstraint(
        condition=condition, name=name, violation_error_message=f"{field} cannot be negative"
    )


def degrees_check(name: str, field: str, limit: int) -> models.CheckConstraint:
    """An optional coordinate within ``-limit..limit`` degrees."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": -limit, f"{field}__lte": limit}),
        name=name,
        violation_error_message=f"{field} must be between -{limit} and {limit}",
    )


def not_before_check(name: str, *, start: str, end: str, open_start: bool = False) -> models.CheckConstraint:
    """``end >= start`` for a period or window; an empty ``end`` (and, with ``open_start``, an empty
    ``start``) passes."""
    condition = Q(**{f"{end}__isnull": True}) | Q(**{f"{end}__gte": F(start)})
    if open_start:
        condition = Q(**{f"{start}__isnull": True}) | condition
    return models.CheckConstraint(
        condition=condition, name=name, violation_error_message=f"{end} must not be before {start}"
    )


class ExternalRef(TimestampedModel):
    """The id a canonical record has in another system (ERP sale id, TMS shipment id, CRM account id)."""

    system = models.CharField(max_length=40, help_text="Connector key or system name, e.g. tryton, karrio.")
    entity = models.CharField(max_length=40, help_text="Canonical entity, e.g. order, shipment, customer.")
    external_id = models.CharField(max_length=200)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.UUIDField()
    record = GenericForeignKey("content_type", "object_id")

    class Meta:
        constraints = [
            # Upsert-by-reference (canonical.services.external_ref_resolve) relies on this.
            models.UniqueConstraint(
                fields=["system", "entity", "external_id"], name="canonical_extref_system_entity_id_uniq"
            ),
        ]
        indexes = [
            # "Each record's external refs": the GenericRelation prefetch on every API read.
            models.Index(fields=["content_type", "object_id"], name="canonical_extref_record_idx"),
        ]
        ordering = ["system", "entity", "external_id"]

    def __str__(self) -> str:
        return f"{self.system}:{self.entity}:{self.external_id}"


class Customer(TimestampedModel):
    code = models.CharField(max_length=40, unique=True, help_text="Business key.")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    billing_address = models.TextField(blank=True)
    hold_invoice_until_pod = models.BooleanField(
        default=True, help_text="No invoice is posted for this customer's shipments before proof of delivery."
    )
    active = models.BooleanField(default=True)
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Location(TimestampedModel):
    code = models.CharField(
        max_length=40, unique=True, help_text="Business key, e.g. a UN/LOCODE or site code."
    )
    name = models.CharField(max_length=200)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2.")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone, e.g. America/Chicago.")
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["code"]
        constraints = [
            degrees_check("canonical_location_latitude_range", "latitude", 90),
            degrees_check("canonical_location_longitude_range", "longitude", 180),
            models.CheckConstraint(
                condition=Q(country="") | Q(country__regex=r"^[A-Z]{2}$"),
                name="canonical_location_country_iso2",
                violation_error_message="country must be an ISO 3166-1 alpha-2 code (two capital letters)",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Carrier(TimestampedModel):
    scac = models.CharField(max_length=4, unique=True, help_text="Standard Carrier Alpha Code (2-4 letters).")
    name = models.CharField(max_length=200)
    mc_number = models.CharField(max_length=20, blank=True, help_text="FMCSA motor carrier number.")
    dot_number = models.CharField(max_length=20, blank=True, help_text="US DOT number.")
    active = models.BooleanField(default=True)
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["scac"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scac__regex=r"^[A-Z]{2,4}$"),
                name="canonical_carrier_scac_format",
                violation_error_message="scac must be 2 to 4 capital letters",
            ),
            models.CheckConstraint(
                condition=Q(dot_number="") | Q(dot_number__regex=r"^[0-9]{1,8}$"),
                name="canonical_carrier_dot_digits",
                violation_error_message="dot_number must be 1 to 8 digits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scac} {self.name}"


class Product(TimestampedModel):
    sku = models.CharField(max_length=64, unique=True, help_text="Business key.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    unit_of_measure = models.CharField(max_length=16, default="EA")
    weight_kg = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    hs_code = models.CharField(max_length=12, blank=True, help_text="Harmonized System tariff code.")
    active = models.BooleanField(default=True)
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["sku"]
        constraints = [
            non_negative_check("canonical_product_weight_nonneg", "weight_kg", nullable=True),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Price(TimestampedModel):
    """A product's sale price, list (no customer) or customer-specific, valid over a period."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="prices"
    )
    unit_price = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["product", "customer", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "customer", "currency", "valid_from"],
                nulls_distinct=False,
                name="canonical_price_product_customer_from_uniq",
            ),
            non_negative_check("canonical_price_nonneg", "unit_price"),
            not_before_check("canonical_price_period_order", start="valid_from", end="valid_to"),
            currency_check("canonical_price_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} {self.unit_price} {self.currency}"


class Rate(TimestampedModel):
    """A carrier's contracted rate on a lane, used to check freight charges against what was agreed."""

    class Basis(models.TextChoices):
        FLAT = "FLAT", "Flat per shipment"
        PER_KG = "PER_KG", "Per kilogram"
        PER_KM = "PER_KM", "Per kilometre"

    carrier = models.ForeignKey(Carrier, on_delete=models.CASCADE, related_name="rates")
    origin = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    basis = models.CharField(max_length=8, choices=Basis.choices, default=Basis.FLAT)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["carrier", "origin", "destination", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["carrier", "origin", "destination", "basis", "valid_from"],
                name="canonical_rate_lane_uniq",
            ),
            non_negative_check("canonical_rate_nonneg", "amount"),
            not_before_check("canonical_rate_period_order", start="valid_from", end="valid_to"),
            currency_check("canonical_rate_currency_iso"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.carrier.scac} {self.origin.code}->{self.destination.code} {self.amount} {self.currency}"
        )


class Order(TimestampedModel):
    class Status(models.TextChoices):
        DRAFT = "DRAFT"
        CONFIRMED = "CONFIRMED"
        RELEASED = "RELEASED"
        SHIPPED = "SHIPPED"
        DELIVERED = "DELIVERED"
        INVOICED = "INVOICED"
        CANCELLED = "CANCELLED"

    reference = models.CharField(
        max_length=64, unique=True, help_text="Business key, e.g. the ERP sale number."
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONFIRMED)
    ordered_at = models.DateTimeField(null=True, blank=True)
    requested_delivery_date = models.DateField(null=True, blank=True)
    ship_from = models.ForeignKey(Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ship_to = models.ForeignKey(Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    currency = models.CharField(max_length=3, default="USD")
    notes = models.TextField(blank=True)
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["-created_at"]
        constraints = [currency_check("canonical_order_currency_iso")]
        indexes = [
            # API list filters ?status= and ?updated_after=, and the ops admin's status filter.
            models.Index(fields=["status", "updated_at"], name="canonical_order_status_upd_idx"),
        ]

    def __str__(self) -> str:
        return self.reference


class OrderLine(TimestampedModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.DecimalField(**QUANTITY)
    unit_price = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["order", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_number"], name="canonical_orderline_number_uniq"),
            positive_check("canonical_orderline_qty_positive"),
            non_negative_check("canonical_orderline_price_nonneg", "unit_price"),
        ]

    def __str__(self) -> str:
        return f"{self.order.reference}/{self.line_number}"


class Shipment(TimestampedModel):
    class Status(models.TextChoices):
        # Order matters: canonical.states.PRECEDENCE is derived from it.
        PLANNED = "PLANNED"
        TENDERED = "TENDERED"
        TENDER_ACCEPTED = "TENDER_ACCEPTED"
        AT_PICKUP = "AT_PICKUP"
        PICKED_UP = "PICKED_UP"
        IN_TRANSIT = "IN_TRANSIT"
        AT_DELIVERY = "AT_DELIVERY"
        OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
        DELIVERED = "DELIVERED"
        CANCELLED = "CANCELLED"

    class Mode(models.TextChoices):
        TRUCKLOAD = "TL", "Truckload"
        LESS_THAN_TRUCKLOAD = "LTL", "Less than truckload"
        PARCEL = "PARCEL", "Parcel"
        OCEAN = "OCEAN", "Ocean"
        AIR = "AIR", "Air"
        RAIL = "RAIL", "Rail"

    reference = models.CharField(max_length=64, unique=True, help_text="Business key.")
    carrier = models.ForeignKey(
        Carrier, on_delete=models.PROTECT, null=True, blank=True, related_name="shipments"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="shipments"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    mode = models.CharField(max_length=8, choices=Mode.choices, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    planned_pickup_at = models.DateTimeField(null=True, blank=True)
    planned_delivery_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    pod_received_at = models.DateTimeField(
        null=True, blank=True, help_text="Proof of delivery: its own fact."
    )
    weight_kg = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    expected_freight_cost = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    sequence = models.PositiveBigIntegerField(
        default=0,
        help_text="Per-shipment change counter carried on outbound updates; receivers drop stale ones.",
    )
    order_lines = models.ManyToManyField(
        OrderLine, through="ShipmentLine", related_name="shipments", blank=True
    )
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            currency_check("canonical_shipment_currency_iso"),
            non_negative_check("canonical_shipment_cost_nonneg", "expected_freight_cost", nullable=True),
        ]
        indexes = [
            # API list filters ?status= and ?updated_after=, and the ops admin's status filter.
            models.Index(fields=["status", "updated_at"], name="canonical_shipment_status_idx"),
            # Carrier partners' scoped lists (hub.api.v1.scoping).
            models.Index(fields=["carrier", "updated_at"], name="canonical_shipment_carrier_idx"),
        ]

    def __str__(self) -> str:
        return self.reference


class ShipmentLine(models.Model):
    """Which order lines (and how much of each) travel on a shipment."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="shipment_lines")
    quantity = models.DecimalField(**QUANTITY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "order_line"], name="canonical_shipmentline_uniq"),
            positive_check("canonical_shipmentline_qty_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_line} x {self.quantity}"


class Stop(TimestampedModel):
    class Kind(models.TextChoices):
        PICKUP = "PICKUP"
        DELIVERY = "DELIVERY"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="stops")
    sequence = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stops")
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    actual_arrival = models.DateTimeField(null=True, blank=True)
    actual_departure = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["shipment", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "sequence"], name="canonical_stop_sequence_uniq"),
            models.CheckConstraint(
                condition=Q(sequence__gte=1),
                name="canonical_stop_sequence_positive",
                violation_error_message="sequence starts at 1",
            ),
            not_before_check(
                "canonical_stop_window_order", start="planned_start", end="planned_end", open_start=True
            ),
            not_before_check(
                "canonical_stop_actual_order", start="actual_arrival", end="actual_departure", open_start=True
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shipment.reference}#{self.sequence} {self.kind}"


# Canonical event types (ARCHITECTURE.md), defined once in the contract; code maps turn X12, DCSA
# and carrier codes into these.
EventType = models.TextChoices("EventType", [(member.value, member.value) for member in ContractEventType])


class ShipmentEvent(TimestampedModel):
    """One entry of a shipment's milestone timeline, kept even when it arrives late."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=24, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    stop_sequence = models.PositiveSmallIntegerField(null=True, blank=True)
    location_code = models.CharField(max_length=40, blank=True)
    reason_code = models.CharField(max_length=16, blank=True, help_text="The source's code, kept for audit.")
    source_system = models.CharField(max_length=40, blank=True)
    source_event_id = models.CharField(max_length=200, blank=True)
    dedupe_key = models.CharField(
        max_length=200, help_text="Semantic key: source event id, else shipment+type+stop+time."
    )
    late = models.BooleanField(default=False, help_text="Arrived after a later milestone had been applied.")
    details = models.JSONField(default=dict, blank=True)
    # The inbound message that carried it (hub.inbox.InboundMessage id); no FK: canonical is below the hub.
    source_message_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["shipment", "occurred_at", "created_at"]
        constraints = [
            # Event-level dedupe: the same milestone inside another message or batch is applied once.
            models.UniqueConstraint(fields=["shipment", "dedupe_key"], name="canonical_event_dedupe_uniq"),
        ]
        indexes = [
            # The timeline read (shipment detail, API `events`), ordered by event time.
            models.Index(fields=["shipment", "occurred_at"], name="canonical_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ShipmentException(TimestampedModel):
    class Kind(models.TextChoices):
        DELAYED = "DELAYED"
        CUSTOMS_HOLD = "CUSTOMS_HOLD"
        MISSED_PICKUP = "MISSED_PICKUP"
        FAILED_DELIVERY = "FAILED_DELIVERY"
        DAMAGED = "DAMAGED"
        REFUSED = "REFUSED"
        OTHER = "OTHER"

    class Status(models.TextChoices):
        OPEN = "OPEN"
        RESOLVED = "RESOLVED"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="exceptions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=16, blank=True)
    description = models.TextField(blank=True)
    resolution = models.TextField(blank=True)
    source_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Dedupe key of the milestone that opened it; empty when opened by hand.",
    )
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open exception per shipment and kind: later events enrich it instead of adding one
            # (and the CRM gets one case per shipment and exception type).
            models.UniqueConstraint(
                fields=["shipment", "kind"],
                condition=Q(status="OPEN"),
                name="canonical_exception_one_open_uniq",
                violation_error_message="this shipment already has an open exception of this kind",
            ),
            models.CheckConstraint(
                condition=(Q(status="OPEN") & Q(resolved_at__isnull=True))
                | (Q(status="RESOLVED") & Q(resolved_at__isnull=False)),
                name="canonical_exception_resolved_has_time",
                violation_error_message="a RESOLVED exception has resolved_at; an OPEN one has none",
            ),
        ]
        indexes = [
            # Open-exception lists (API ?status=OPEN, ops admin, billing hold checks).
            models.Index(fields=["status", "kind"], name="canonical_exc_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.shipment.reference} {self.kind} ({self.status})"


class Invoice(TimestampedModel):
    class Kind(models.TextChoices):
        INVOICE = "INVOICE"
        CREDIT_NOTE = "CREDIT_NOTE"
        DEBIT_NOTE = "DEBIT_NOTE"

    class Status(models.TextChoices):
        DRAFT = "DRAFT"
        HELD = "HELD"
        POSTED = "POSTED"
        PAID = "PAID"
        CANCELLED = "CANCELLED"

    reference = models.CharField(
        max_length=64, unique=True, help_text="Business key, e.g. the ERP invoice number."
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        help_text="For a credit or debit note: the invoice it adjusts.",
    )
    currency = models.CharField(max_length=3, default="USD")
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    hold_reason = models.CharField(max_length=200, blank=True)
    external_refs = GenericRelation(ExternalRef)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            currency_check("canonical_invoice_currency_iso"),
            models.CheckConstraint(
                condition=Q(kind="INVOICE") | Q(corrects__isnull=False),
                name="canonical_invoice_note_corrects",
                violation_error_message="a credit or debit note must name the invoice it corrects",
            ),
        ]
        indexes = [
            # API list filters ?status= and ?updated_after=.
            models.Index(fields=["status", "updated_at"], name="canonical_invoice_status_idx"),
        ]

    def __str__(self) -> str:
        return self.reference


class InvoiceLine(TimestampedModel):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    description = models.CharField(max_length=200)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    quantity = models.DecimalField(**QUANTITY, default=1)
    unit_price = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "line_number"], name="canonical_invoiceline_number_uniq"
            ),
            positive_check("canonical_invoiceline_qty_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice.reference}/{self.line_number}"


class FreightCharge(TimestampedModel):
    class Kind(models.TextChoices):
        LINEHAUL = "LINEHAUL"
        FUEL = "FUEL"
        ACCESSORIAL = "ACCESSORIAL"
        DETENTION = "DETENTION"
        ADJUSTMENT = "ADJUSTMENT"
        OTHER = "OTHER"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="charges")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(**MONEY, help_text="Negative for a credit.")
    currency = models.CharField(max_length=3)
    source_system = models.CharField(max_length=40)
    description = models.CharField(max_length=200, blank=True)
    invoice_line = models.ForeignKey(
        InvoiceLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="freight_charges"
    )
    source_ref = models.CharField(
        max_length=100,
        blank=True,
        help_text="The source's id of the charge (e.g. a carrier invoice number and line); a resent "
        "invoice adds nothing.",
    )

    class Meta:
        ordering = ["shipment", "created_at"]
        constraints = [
            currency_check("canonical_charge_currency_iso"),
            # freight_charge_document_apply: a carrier invoice's charge is recorded once.
            models.UniqueConstraint(
                fields=["shipment", "source_system", "source_ref"],
                condition=~Q(source_ref=""),
                name="canonical_charge_source_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"
