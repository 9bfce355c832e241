"""Ops console for the inbox: every inbound message, read-only, with its trace through the stages.

The admin is an interface (STYLE.md section 3): messages are written only by the pipeline, so this
page shows them and changes nothing. The helpers the other pipeline admins share (read-only base,
connection filter, payload display) live here because the outbox and dead-letter apps sit downstream
of the inbox and already import from it; nothing here imports them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from canonical.admin import RECORD_FIELDSET, ViewOnlyInline, admin_link
from canonical.models import ShipmentEvent
from hub.connections.models import Connection
from hub.core.payloads import payload_repr
from hub.inbox.models import InboundMessage

# Characters of a body shown on a page; the stored bytes are never cut (bodies go up to 1 MB).
PAYLOAD_DISPLAY_MAX_CHARS = 100_000


# --- Shared by the pipeline admins -----------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record only the pipeline writes: listed and shown, never added, edited or deleted here."""

    list_per_page = 50
    # The unfiltered total is one more COUNT(*) over a large table on every list page.
    show_full_result_count = False
    # Large columns (message bodies, letter payloads) not read on list pages.
    changelist_defer: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if self.changelist_defer and match is not None and match.url_name.endswith("_changelist"):
            queryset = queryset.defer(*self.changelist_defer)
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


# Child rows shown on the parent's page, never edited there.
ReadOnlyInline = ViewOnlyInline


class ExactSearchMixin:
    """Admin search that matches keys and ids whole (see ``exact_search``)."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return exact_search(queryset, search_term, self.search_fields), False


class ConnectionFilter(admin.SimpleListFilter):
    """Filter by connection slug (``?connection=<slug>``), the key the API and replay jobs use."""

    title = "connection"
    parameter_name = "connection"
    field_path = "connection__slug"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(slug, slug) for slug in Connection.objects.order_by("slug").values_list("slug", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.field_path: value})


def uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def exact_search(queryset: QuerySet, term: str, fields: Iterable[str]) -> QuerySet:
    """Rows whose id is ``term`` (when it is a UUID) or whose ``fields`` equal it exactly.

    Keys and correlation ids are matched whole, not with ``icontains``: a substring scan over
    millions of messages would take seconds, and operators paste the whole value.
    """
    term = term.strip()
    condition = Q()
    for field in fields:
        condition |= Q(**{field: term})
    pk = uuid_or_none(term)
    if pk is not None:
        condition |= Q(pk=pk)
    return queryset.filter(condition)


def pre(text: str) -> str:
    return format_html('<pre style="white-space: pre-wrap; max-height: 30em; overflow: auto">{}</pre>', text)


def payload_html(raw: bytes, content_type: str = "") -> str:
    """Stored bytes as shown to an operator: text when UTF-8, else base64, in a ``<pre>``."""
    shown = payload_repr(raw)
    body = shown["body"]
    note = f"{len(bytes(raw))} bytes, shown as {shown['encoding']}"
    if content_type:
        note += f", content type {content_type}"
    if len(body) > PAYLOAD_DISPLAY_MAX_CHARS:
        note += f"; first {PAYLOAD_DISPLAY_MAX_CHARS} characters of {len(body)}"
        body = body[:PAYLOAD_DISPLAY_MAX_CHARS]
    return format_html('<div class="help">{}</div>{}', note, pre(body))


def json_html(value: object) -> str:
    return pre(json.dumps(value, indent=2, sort_keys=True, default=str))


def links_html(rows: Iterable[tuple[models.Model, str]]) -> str:
    """Records as a list of links to their admin pages, or "-"."""
    items = [(admin_link(obj, label),) for obj, label in rows]
    if not items:
        return "-"
    return format_html(
        '<ul style="margin: 0; padding-left: 1.2em">{}</ul>', format_html_join("", "<li>{}</li>", items)
    )


# --- Inbound messages ------------------------------------------------------------------------------


@admin.register(InboundMessage)
class InboundMessageAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = (
        "received_at",
        "connection",
        "status",
        "key_source",
        "events_applied",
        "events_duplicate",
        "events_failed",
        "correlation_id",
    )
    list_filter = ("status", ConnectionFilter)
    list_select_related = ("connection",)
    search_fields = ("idempotency_key", "correlation_id")
    search_help_text = "A message id, an idempotency key or a correlation id (whole values)."
    ordering = ("-received_at",)
    changelist_defer = ("body", "headers", "trace")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "connection_link",
                    "status",
                    "received_at",
                    "processed_at",
                    "attempts",
                    "claimed_until",
                )
            },
        ),
        ("Identity", {"fields": ("idempotency_key", "key_source", "correlation_id")}),
        ("Outcome", {"fields": ("events_applied", "events_duplicate", "events_failed", "stage_trace")}),
        ("Produced", {"fields": ("shipment_events", "outbox_event_links", "dead_letter_links")}),
        ("Message", {"fields": ("content_type", "headers_table", "body_display")}),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    @admin.display(description="Connection")
    def connection_link(self, obj: InboundMessage) -> str:
        return admin_link(obj.connection)

    @admin.display(description="Stages")
    def stage_trace(self, obj: InboundMessage) -> str:
        failed_style = "color: var(--error-fg, #ba2121); font-weight: bold"
        rows = [
            (
                step.get("stage", "?"),
                step.get("at", ""),
                "" if step.get("ok") else failed_style,
                "ok" if step.get("ok") else "failed",
                step.get("detail", ""),
            )
            for step in obj.trace or []
        ]
        if not rows:
            return "-"
        body = format_html_join("", '<tr><td>{}</td><td>{}</td><td style="{}">{}</td><td>{}</td></tr>', rows)
        return format_html(
            "<table><thead><tr><th>Stage</th><th>At</th><th>Result</th><th>Detail</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="Shipment events")
    def shipment_events(self, obj: InboundMessage) -> str:
        events = (
            ShipmentEvent.objects.filter(source_message_id=obj.pk)
            .select_related("shipment")
            .order_by("occurred_at", "created_at")
        )
        return links_html(
            (event, f"{event.event_type} · {event.shipment.reference} · {event.occurred_at:%Y-%m-%d %H:%M}")
            for event in events
        )

    @admin.display(description="Outbox events")
    def outbox_event_links(self, obj: InboundMessage) -> str:
        return links_html((event, str(event)) for event in obj.outbox_events.order_by("created_at"))

    @admin.display(description="Dead letters")
    def dead_letter_links(self, obj: InboundMessage) -> str:
        letters = obj.dead_letters.order_by("item_index", "created_at")
        return links_html(
            (
                letter,
                f"{letter.stage} ({letter.status})"
                + (f" document {letter.item_index}" if letter.item_index is not None else "")
                + f": {letter.reason[:100]}",
            )
            for letter in letters
        )

    @admin.display(description="Headers")
    def headers_table(self, obj: InboundMessage) -> str:
        if not obj.headers:
            return "-"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", sorted(obj.headers.items()))
        return format_html("<table><tbody>{}</tbody></table>", rows)

    @admin.display(description="Body")
    def body_display(self, obj: InboundMessage) -> str:
        return payload_html(obj.body)
