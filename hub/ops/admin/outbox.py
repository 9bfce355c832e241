"""Ops console for the outbox: events to publish, their deliveries, and every delivery attempt.

Read-only (the pipeline writes these rows). The one write, "Retry now" on dead deliveries, goes
through the dead-letter replay service, so the replay is recorded on the letter like any other.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest

from canonical.errors import DomainError
from hub.deadletters.models import DeadLetter
from hub.deadletters.replay import dead_letter_replay
from hub.ops.admin.kit import (
    RECORD_FIELDSET,
    ConnectionFilter,
    ExactSearchMixin,
    ReadOnlyAdmin,
    ViewOnlyInline,
    admin_link,
    json_html,
    link_column,
    pre,
)
from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent

logger = logging.getLogger(__name__)

RETRY_REASON = "Retry now (ops console)"


class DeliveryConnectionFilter(ConnectionFilter):
    field_path = "subscription__connection__slug"


class DeliveryInline(ViewOnlyInline):
    model = Delivery
    fields = (
        "connection",
        "status",
        "attempts_total",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("subscription__connection")

    @admin.display(description="Connection")
    def connection(self, obj: Delivery) -> str:
        return obj.subscription.connection.slug


class DeliveryAttemptInline(ViewOnlyInline):
    model = DeliveryAttempt
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "outcome",
        "error",
        "response_excerpt",
        "next_attempt_at",
    )
    readonly_fields = fields
    ordering = ("number",)
    show_change_link = False  # attempts have no page of their own
    verbose_name_plural = "attempts"


@admin.register(OutboxEvent)
class OutboxEventAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "event_type",
        "subject",
        "shipment_sequence",
        "occurred_at",
        "message_link",
        "correlation_id",
    )
    list_filter = ("event_type",)
    list_select_related = ("message__connection",)
    search_fields = ("subject", "correlation_id")
    search_help_text = "An event id, a shipment reference or a correlation id (whole values)."
    ordering = ("-created_at",)
    # The message is joined for its link; its body and trace are not needed for that.
    changelist_defer = ("data", "message__body", "message__headers", "message__trace")
    inlines = (DeliveryInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event_type",
                    "subject",
                    "shipment_link",
                    "shipment_sequence",
                    "occurred_at",
                    "message_link",
                    "correlation_id",
                )
            },
        ),
        ("Data", {"fields": ("data_display",)}),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    message_link = link_column("message", "Message")

    shipment_link = link_column("shipment", "Shipment")

    @admin.display(description="Data")
    def data_display(self, obj: OutboxEvent) -> str:
        return json_html(obj.data)


@admin.register(Delivery)
class DeliveryAdmin(ExactSearchMixin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "event",
        "connection",
        "status",
        "attempts",
        "attempts_total",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", DeliveryConnectionFilter)
    list_select_related = ("event", "subscription__connection")
    search_fields = ("event__subject",)
    search_help_text = "A delivery id or a shipment reference (whole values)."
    ordering = ("-created_at",)
    changelist_defer = ("event__data",)
    inlines = (DeliveryAttemptInline,)
    actions = ("retry_now",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event_link",
                    "connection_link",
                    "subscription_link",
                    "status",
                    "dead_letter_link",
                )
            },
        ),
        (
            "Attempts",
            {
                "fields": (
                    "attempts",
                    "attempts_total",
                    "next_attempt_at",
                    "lease_until",
                    "delivered_at",
                    "last_status_code",
                    "last_error_display",
                )
            },
        ),
        ("Ordering", {"classes": ("collapse",), "fields": ("ordering_key", "ordering_seq")}),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The same joins as list_select_related (the changelist skips its own when any are set).
        return super().get_queryset(request).select_related("event", "subscription__connection")

    @admin.display(description="Connection", ordering="subscription__connection__slug")
    def connection(self, obj: Delivery) -> str:
        return obj.subscription.connection.slug

    event_link = link_column("event", "Event")

    connection_link = link_column("subscription.connection", "Connection")

    subscription_link = link_column("subscription", "Subscription")

    @admin.display(description="Dead letter")
    def dead_letter_link(self, obj: Delivery) -> str:
        letter = DeadLetter.objects.filter(delivery=obj).first()
        return admin_link(letter, f"{letter.stage} ({letter.status})") if letter else "-"

    @admin.display(description="Last error")
    def last_error_display(self, obj: Delivery) -> str:
        return pre(obj.last_error) if obj.last_error else "-"

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Replaying writes to the dead letter (who, when, why), so it takes the right to change letters.
        return request.user.has_perm("deadletters.change_deadletter")

    @admin.action(
        description="Retry now (dead deliveries: replay through their dead letter)", permissions=["replay"]
    )
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        rows = list(queryset.values_list("pk", "status", "dead_letter__pk"))
        letter_ids = [
            letter_id for _, status, letter_id in rows if status == Delivery.Status.DEAD and letter_id
        ]
        skipped = len(rows) - len(letter_ids)
        actor = request.user.get_username()
        queued, failed = 0, []
        for letter_id in letter_ids:
            try:
                dead_letter_replay(letter_id=letter_id, actor=actor, reason=RETRY_REASON)
            except (DeadLetter.DoesNotExist, DomainError) as exc:
                failed.append(f"{letter_id}: {exc}")
            except Exception as exc:  # one bad row must not hide what happened to the others
                logger.exception("retry of dead letter %s failed", letter_id)
                failed.append(f"{letter_id}: {type(exc).__name__}: {exc}")
            else:
                queued += 1
        if queued:
            self.message_user(
                request,
                f"Queued {queued} dead delivery(ies) for a fresh round of attempts.",
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} delivery(ies) that are not dead (only dead deliveries can be retried).",
                messages.WARNING,
            )
        if failed:
            self.message_user(request, "Could not retry: " + "; ".join(failed[:10]), messages.ERROR)
