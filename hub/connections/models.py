"""API clients (who may call Crossdock's API). Connections and subscriptions join them later."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import Carrier, Customer, TimestampedModel


class ApiClient(TimestampedModel):
    """A caller of the REST API. Only a SHA-256 digest of its key is stored; the key is shown once.

    Keys are 256-bit random tokens, so a fast digest is enough (there is nothing to brute-force that a
    slow password hash would protect); it also lets authentication be one indexed lookup.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin (all records)"
        PARTNER = "partner", "Partner (own carrier's or customer's records)"

    name = models.CharField(max_length=100, unique=True)
    role = models.CharField(max_length=10, choices=Role.choices)
    carrier = models.ForeignKey(
        Carrier, on_delete=models.PROTECT, null=True, blank=True, related_name="api_clients"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="api_clients"
    )
    key_prefix = models.CharField(max_length=12, help_text="First characters of the key, to recognise it.")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty uses CROSSDOCK_API_RATE."
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            # An admin is bound to nothing; a partner to exactly one carrier or customer.
            models.CheckConstraint(
                condition=(Q(role="admin") & Q(carrier__isnull=True) & Q(customer__isnull=True))
                | (Q(role="partner") & Q(carrier__isnull=False) & Q(customer__isnull=True))
                | (Q(role="partner") & Q(carrier__isnull=True) & Q(customer__isnull=False)),
                name="connections_apiclient_role_binding",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def is_authenticated(self) -> bool:  # lets DRF treat the client as the request's principal
        return True


class Connection(TimestampedModel):
    """A configured link to one external system through one connector (inbound, outbound or both)."""

    class System(models.TextChoices):
        ERP = "erp", "ERP"
        CRM = "crm", "CRM"
        TMS = "tms", "TMS"
        CARRIER = "carrier", "Carrier"
        PARTNER = "partner", "Partner"

    slug = models.SlugField(max_length=64, unique=True, help_text="Stable name; the inbound URL uses it.")
    name = models.CharField(max_length=200, blank=True)
    system = models.CharField(max_length=10, choices=System.choices)
    connector = models.CharField(max_length=40, help_text="Connector key, e.g. canonical, webhook, tryton.")
    config = models.JSONField(default=dict, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False, help_text="Fernet token; never shown.")
    carrier = models.ForeignKey(
        Carrier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="connections",
        help_text="For a carrier's own feed: it may write only this carrier's shipments, their charges and "
        "milestones, never orders or customers (hub.inbox.authority).",
    )
    document_kinds = models.JSONField(
        default=list,
        blank=True,
        help_text='Canonical document kinds this connection may send, e.g. ["milestone"]; a subset of '
        "its connector's. Empty: every kind the connector produces.",
    )
    is_active = models.BooleanField(default=True)
    poll_interval_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds between polls of a connector that polls (e.g. tryton); empty: not polled.",
    )
    drop_folder = models.CharField(
        max_length=500,
        blank=True,
        help_text="Absolute path of a folder the partner drops files into; each file becomes an inbound "
        "message and is moved to processed/ (or failed/ with the reason). Empty: no drop folder.",
    )
    poll_cursor = models.CharField(max_length=200, blank=True, help_text="Where the last poll stopped.")
    polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    poll_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_poll_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)


class Subscription(TimestampedModel):
    """Deliver canonical events of the given types to a connection (an empty list means all types)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="subscriptions")
    event_types = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["connection", "created_at"]

    def __str__(self) -> str:
        types = ",".join(self.event_types) if self.event_types else "all events"
        return f"{self.connection.slug}: {types}"
