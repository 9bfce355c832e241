"""Mappings in the admin: edit a draft (validated on save), preview it on a stored real message,
publish it; published versions are read-only and a new draft starts from any version."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from canonical.errors import DomainError
from connectors import mapping as mapping_lib
from connectors import registry
from hub.inbox.models import InboundMessage
from hub.mappings.models import Mapping
from hub.mappings.services import mapping_preview, mapping_publish, mapping_save
from hub.ops.admin.kit import ServiceModelAdmin

PREVIEW_MESSAGES = 30  # recent stored messages offered in the preview form


class PreviewForm(forms.Form):
    message = forms.ModelChoiceField(
        queryset=InboundMessage.objects.none(),
        required=False,
        help_text="A message this connection received.",
    )
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100}),
        required=False,
        help_text="Or paste a message body.",
    )
    content_type = forms.CharField(initial="application/json", required=False)


@admin.register(Mapping)
class MappingAdmin(ServiceModelAdmin):
    list_display = ("connection", "direction", "version", "status", "published_at", "notes_excerpt")
    list_filter = ("direction", "status", "connection")
    readonly_fields = ("version", "status", "published_at", "published_by", "effective", "preview_link")
    readonly_after_create = ("connection", "direction")
    fields = (
        "connection",
        "direction",
        "data",
        "notes",
        "version",
        "status",
        "published_at",
        "published_by",
        "preview_link",
        "effective",
    )
    actions = ("publish", "new_draft")

    @admin.display(description="Notes")
    def notes_excerpt(self, obj: Mapping) -> str:
        return obj.notes[:60]

    @admin.display(description="Effective rules (connector defaults + this version)")
    def effective(self, obj: Mapping) -> str:
        if obj.pk is None:
            return "-"
        spec = registry.get(obj.connection.connector)
        merged = mapping_lib.merge(spec.default_mappings.get(obj.direction), obj.data)
        return format_html("<pre>{}</pre>", json.dumps(merged, indent=2, sort_keys=True))

    @admin.display(description="Preview")
    def preview_link(self, obj: Mapping) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:mappings_mapping_preview", args=[obj.pk])
        return format_html('<a class="button" href="{}">Preview on a stored message</a>', url)

    def get_readonly_fields(self, request: HttpRequest, obj: Mapping | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != Mapping.Status.DRAFT:
            readonly += ["data", "notes"]  # published and retired versions never change
        return tuple(dict.fromkeys(readonly))

    def service_save(self, *, request, obj, form, data, change) -> Mapping:
        if change:
            return mapping_save(
                instance=obj, data=form.cleaned_data["data"], notes=form.cleaned_data["notes"]
            )
        return mapping_save(
            connection=form.cleaned_data["connection"],
            direction=form.cleaned_data["direction"],
            data=form.cleaned_data["data"] or {},
            notes=form.cleaned_data.get("notes", ""),
        )

    @admin.action(description="Publish the selected draft (messages use it from now on)")
    def publish(self, request: HttpRequest, queryset: QuerySet[Mapping]) -> None:
        for mapping in queryset.select_related("connection"):
            try:
                published = mapping_publish(mapping=mapping, user=request.user.get_username())
            except DomainError as exc:
                self.message_user(request, f"{mapping}: {exc.detail}", level=messages.ERROR)
                continue
            self.message_user(request, f"{published} is now published.", level=messages.SUCCESS)

    @admin.action(description="Start a new draft from the selected version")
    def new_draft(self, request: HttpRequest, queryset: QuerySet[Mapping]) -> None:
        for mapping in queryset.select_related("connection"):
            try:
                draft = mapping_save(
                    connection=mapping.connection,
                    direction=mapping.direction,
                    data=mapping.data,
                    notes=f"From version {mapping.version}",
                )
            except DomainError as exc:
                self.message_user(request, f"{mapping}: {exc.detail}", level=messages.ERROR)
                continue
            self.message_user(request, f"Draft version {draft.version} created.", level=messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="mappings_mapping_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, pk) -> HttpResponse:
        mapping = get_object_or_404(Mapping.objects.select_related("connection"), pk=pk)
        if not self.has_view_permission(request, mapping):
            raise PermissionDenied
        recent = InboundMessage.objects.filter(connection=mapping.connection).order_by("-received_at")
        form = PreviewForm(request.POST or None)
        form.fields["message"].queryset = InboundMessage.objects.filter(
            pk__in=list(recent.values_list("pk", flat=True)[:PREVIEW_MESSAGES])
        ).order_by("-received_at")
        result = None
        if request.method == "POST" and form.is_valid():
            message, body = form.cleaned_data["message"], form.cleaned_data["body"]
            if message is None and not body:
                form.add_error(None, "Choose a stored message or paste a body.")
            else:
                result = mapping_preview(
                    mapping=mapping,
                    body=bytes(message.body) if message else body.encode(),
                    content_type=message.content_type if message else form.cleaned_data["content_type"],
                    headers=message.headers if message else {},
                )
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Preview {mapping}",
            "mapping": mapping,
            "opts": self.model._meta,
            "form": form,
            "result": result,
            "documents_json": json.dumps(result.documents, indent=2) if result else "",
        }
        return TemplateResponse(request, "admin/mappings/preview.html", context)

    def response_change(self, request: HttpRequest, obj: Mapping) -> HttpResponse:
        if "_preview" in request.POST:
            return HttpResponseRedirect(reverse("admin:mappings_mapping_preview", args=[obj.pk]))
        return super().response_change(request, obj)
