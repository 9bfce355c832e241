"""Ops console for the inbox: every inbound message, read-only, with its trace through the stages.

The admin is an interface (STYLE.md section 3): messages are written only by the pipeline, so this
page shows them and changes nothing.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.utils.html import format_html, format_html_join

from canonical.models import ShipmentEvent
from hub.inbox.models import InboundMessage
from hub.ops.admin.kit import (
    RECORD_FIELDSET,
    ConnectionFilter,
    ExactSearchMixin,
    ReadOnlyAdmin,
    link_column,
    links_html,
    payload_html,
)


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

    connection_link = link_column("connection", "Connection")

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
