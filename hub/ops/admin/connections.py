"""Ops console for the ``connections`` app: connections, subscriptions and API clients.

Saves go through :func:`hub.connections.services.connection_save` and ``subscription_save``; a
service's ``DomainError`` is shown on the form next to the field it names and nothing is saved (the
``ServiceModelAdmin`` two-pass pattern of :mod:`hub.ops.admin.kit`).

The secret is write-only: the form has an empty password box (blank keeps the stored secret) and a
"clear secret" box. Neither the secret nor its ciphertext is ever rendered; the page only says
whether one is stored.

API clients: create one (its key is shown once), rotate its key, deactivate it. Only the key's
SHA-256 digest is stored and it is never displayed; the plain key exists only in the success message
of the request that made it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from canonical.contracts.v1 import DOCUMENT_CONTRACTS, EventType
from canonical.errors import DomainError
from connectors import registry
from hub.connections.models import ApiClient, Connection, Subscription
from hub.connections.services import (
    api_client_create,
    api_client_deactivate,
    api_client_rotate_key,
    connection_save,
    subscription_save,
)
from hub.ops.admin.kit import (
    RECORD_FIELDS,
    RECORD_FIELDSET,
    NoDeleteMixin,
    ServiceModelAdmin,
    ServiceModelForm,
    ServiceRejected,
    admin_link,
    link_column,
)
from hub.outbox.breaker import breaker_state

EVENT_TYPE_CHOICES = [(t.value, t.value) for t in EventType]


def _top_level(item: dict[str, str]) -> dict[str, str]:
    """A service error on ``config.url`` belongs to the form's ``config`` box: "url: <message>"."""
    field = item.get("field", "")
    head, _, rest = field.partition(".")
    if rest:
        return {"field": head, "message": f"{rest}: {item.get('message', '')}"}
    return item


class ConnectionForm(ServiceModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never shown. Leave blank to keep the stored secret.",
    )
    clear_secret = forms.BooleanField(
        required=False, label="Clear secret", help_text="Remove the stored secret."
    )
    document_kinds = forms.MultipleChoiceField(
        choices=[(kind, kind) for kind in DOCUMENT_CONTRACTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Canonical document kinds this connection may send, a subset of its connector's. "
        "None ticked: every kind the connector produces.",
    )

    class Meta:
        model = Connection
        fields = (
            "slug",
            "name",
            "system",
            "connector",
            "carrier",
            "document_kinds",
            "is_active",
            "config",
            "poll_interval_s",
            "drop_folder",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "connector" in self.fields:
            choices = [(spec.key, f"{spec.key}: {spec.label}") for spec in registry.all_specs()]
            current = self.instance.connector
            if current and current not in {key for key, _ in choices}:
                choices.append((current, f"{current} (not installed)"))
            self.fields["connector"].widget = forms.Select(choices=[("", "---------"), *choices])

    def clean(self) -> dict[str, Any]:
        error = self.service_error
        if error is not None and error.errors:
            self.service_error = DomainError(error.detail, errors=[_top_level(item) for item in error.errors])
        cleaned = super().clean()
        if cleaned.get("secret") and cleaned.get("clear_secret"):
            self.add_error("clear_secret", "Either type a new secret or clear the stored one, not both.")
        return cleaned


class SubscriptionForm(ServiceModelForm):
    event_types = forms.MultipleChoiceField(
        choices=EVENT_TYPE_CHOICES,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="None selected: every event type.",
    )

    class Meta:
        model = Subscription
        fields = ("connection", "event_types", "description", "is_active")


class SubscriptionInline(admin.TabularInline):
    """The connection's subscriptions; saved one by one through ``subscription_save``."""

    model = Subscription
    form = SubscriptionForm
    fields = ("event_types", "description", "is_active")
    extra = 0
    # Deleting a subscription would delete its delivery history: deactivate it instead.
    can_delete = False
    show_change_link = True


@admin.register(Connection)
class ConnectionAdmin(NoDeleteMixin, ServiceModelAdmin):
    # Not deleted: messages and letters keep pointing at it. Deactivate it instead.
    form = ConnectionForm
    list_display = (
        "slug",
        "system",
        "connector",
        "is_active",
        "carrier_link",
        "has_secret_display",
        "circuit",
        "inbound_url",
    )
    list_filter = ("system", "connector", "is_active")
    list_select_related = ("carrier",)
    search_fields = ("slug", "name")
    ordering = ("slug",)
    inlines = (SubscriptionInline,)
    fieldsets = (
        (None, {"fields": ("slug", "name", "system", "connector", "carrier", "document_kinds", "is_active")}),
        ("Configuration", {"fields": ("config",)}),
        ("Transports", {"fields": ("poll_interval_s", "drop_folder", "poll_state")}),
        ("Secret", {"fields": ("has_secret_display", "secret", "clear_secret")}),
        ("Status", {"fields": ("circuit", "inbound_url")}),
        RECORD_FIELDSET,
    )
    readonly_fields = (*RECORD_FIELDS, "has_secret_display", "circuit", "inbound_url", "poll_state")
    add_hidden_fields = ("clear_secret",)

    carrier_link = link_column("carrier", "Carrier", label="scac", ordering="carrier__scac")

    @admin.display(description="Secret stored", boolean=True)
    def has_secret_display(self, obj: Connection) -> bool:
        return obj.has_secret

    @admin.display(description="Circuit")
    def circuit(self, obj: Connection) -> str:
        return breaker_state(obj.pk)

    @admin.display(description="Inbound URL")
    def inbound_url(self, obj: Connection) -> str:
        try:
            receives = "parse" in registry.get(obj.connector).capabilities
        except registry.RegistryError:
            receives = False
        if not receives:
            return "-"
        return format_html("<code>{}</code>", reverse("api-inbound", args=[obj.slug]))

    @admin.display(description="Polling")
    def poll_state(self, obj: Connection) -> str:
        if not obj.poll_interval_s:
            return "not polled"
        last = obj.polled_at.isoformat(timespec="seconds") if obj.polled_at else "never"
        error = f"; last error: {obj.last_poll_error}" if obj.last_poll_error else ""
        return (
            f"every {obj.poll_interval_s} s; last poll {last}; cursor {obj.poll_cursor or '(start)'}{error}"
        )

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: models.Model,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        cleaned = form.cleaned_data
        # "" clears the secret, None keeps it (connection_save's contract).
        secret = "" if cleaned.get("clear_secret") else (cleaned.get("secret") or None)
        return connection_save(instance=obj, data=data, secret=secret)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset, change: bool) -> None:
        if formset.model is not Subscription:
            super().save_formset(request, form, formset, change)
            return
        # commit=False fills each new or changed row from its form (and points it at the connection)
        # without saving; the service validates and saves it.
        for subscription in formset.save(commit=False):
            try:
                subscription_save(instance=subscription, data={})
            except DomainError as exc:
                # Raised inside the admin's atomic block: the connection's save rolls back too.
                raise ServiceRejected(DomainError(f"Subscription: {exc.detail}")) from exc


@admin.register(Subscription)
class SubscriptionAdmin(NoDeleteMixin, ServiceModelAdmin):
    # Not deleted: that would delete its delivery history. Deactivate it instead.
    form = SubscriptionForm
    list_display = ("connection", "event_types_display", "description", "is_active", "created_at")
    list_filter = ("is_active", ("connection", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection",)
    search_fields = ("connection__slug", "description")
    ordering = ("connection__slug", "created_at")
    fields = ("connection", "event_types", "description", "is_active", *RECORD_FIELDS)
    readonly_fields = RECORD_FIELDS

    @admin.display(description="Event types")
    def event_types_display(self, obj: Subscription) -> str:
        return ", ".join(obj.event_types) if obj.event_types else "all events"

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: models.Model,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        return subscription_save(instance=obj, data=data)


# --- API clients ---------------------------------------------------------------------------------


class ApiClientAddForm(ServiceModelForm):
    partner_code = forms.CharField(
        required=False,
        max_length=40,
        help_text="For a partner: the carrier's SCAC or the customer's code (a SCAC wins when both exist).",
    )

    class Meta:
        model = ApiClient
        fields = ("name", "role")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        role = cleaned.get("role")
        code = (cleaned.get("partner_code") or "").strip()
        cleaned["partner_code"] = code
        if role == ApiClient.Role.PARTNER and not code:
            self.add_error("partner_code", "A partner client is bound to a carrier SCAC or a customer code.")
        elif role == ApiClient.Role.ADMIN and code:
            self.add_error("partner_code", "An admin client is bound to nothing: leave this empty.")
        return cleaned


def _key_message(intro: str, client: ApiClient, key: str) -> str:
    return format_html(
        "{} Copy the key of “{}” now; it is not shown again: <code>{}</code>", intro, client.name, key
    )


@admin.register(ApiClient)
class ApiClientAdmin(NoDeleteMixin, ServiceModelAdmin):
    # Not deleted: the client stays in the record of who called what. Deactivate it instead.
    list_display = ("name", "role", "bound_to", "key_prefix", "is_active", "last_used_at", "created_at")
    list_filter = ("role", "is_active")
    list_select_related = ("carrier", "customer")
    search_fields = (
        "name",
        "key_prefix",
        "carrier__scac",
        "carrier__name",
        "customer__code",
        "customer__name",
    )
    search_help_text = "Name, key prefix (first characters of a key), or the bound SCAC or customer."
    ordering = ("name",)
    actions = ("rotate_key", "deactivate")
    add_form = ApiClientAddForm
    add_fieldsets = ((None, {"fields": ("name", "role", "partner_code")}),)
    # key_digest appears nowhere (not even read-only): it identifies the key.
    fieldsets = (
        (None, {"fields": ("name", "role", "bound_to", "is_active")}),
        ("Key", {"fields": ("key_prefix", "last_used_at", "rate_limit_per_minute")}),
        RECORD_FIELDSET,
    )
    readonly_fields = (*RECORD_FIELDS, "bound_to")

    @admin.display(description="Bound to")
    def bound_to(self, obj: ApiClient) -> str:
        if obj.carrier is not None:
            return format_html("Carrier {}", admin_link(obj.carrier, obj.carrier.scac))
        if obj.customer is not None:
            return format_html("Customer {}", admin_link(obj.customer, obj.customer.code))
        return "-"

    def get_fieldsets(self, request: HttpRequest, obj: ApiClient | None = None) -> list:
        return list(self.add_fieldsets if obj is None else self.fieldsets)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> tuple[str, ...]:
        return ()

    def get_form(self, request: HttpRequest, obj: ApiClient | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    # A client is created (service), rotated (service) and deactivated (action); its binding and
    # name are fixed once made, so the change page is a read-only view.
    def has_change_permission(self, request: HttpRequest, obj: ApiClient | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: Any,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        cleaned = form.cleaned_data
        issued = api_client_create(
            name=cleaned["name"],
            admin=cleaned["role"] == ApiClient.Role.ADMIN,
            partner_code=cleaned["partner_code"] or None,
        )
        self.message_user(
            request, _key_message("API client created.", issued.client, issued.key), messages.SUCCESS
        )
        return issued.client

    @admin.action(
        description="Rotate key (the old key stops working; the new one is shown once)",
        permissions=["change"],
    )
    def rotate_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        for client in queryset:
            key = api_client_rotate_key(client=client)
            self.message_user(
                request,
                _key_message("Key rotated; the old key no longer works.", client, key),
                messages.SUCCESS,
            )

    @admin.action(description="Deactivate (the key stops working at once)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = api_client_deactivate(client_ids=[client.pk for client in queryset])
        self.message_user(request, f"Deactivated {count} API client(s).", messages.SUCCESS)
