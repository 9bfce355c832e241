"""Ops console for API clients: create one (its key is shown once), rotate its key, deactivate it.

Only the key's SHA-256 digest is stored and it is never displayed; the plain key exists only in the
success message of the request that made it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from canonical.admin import RECORD_FIELDS, RECORD_FIELDSET, ServiceModelAdmin, ServiceModelForm, admin_link
from hub.connections.models import ApiClient
from hub.connections.services import api_client_create, api_client_deactivate, api_client_rotate_key


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
class ApiClientAdmin(ServiceModelAdmin):
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

    def has_delete_permission(self, request: HttpRequest, obj: ApiClient | None = None) -> bool:
        return False  # deactivate instead: the client stays in the record of who called what

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
