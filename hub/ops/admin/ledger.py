"""The side-effect ledger in the admin: what Crossdock wrote where, and a retry for failed writes."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.ledger.models import SideEffect
from hub.ledger.tasks import side_effect_retry_task
from hub.ops.admin.kit import ReadOnlyMixin


@admin.register(SideEffect)
class SideEffectAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Writes are recorded by the hub as it makes them, never typed in; deleting a row would let the
    # hub write the record a second time.
    list_display = (
        "created_at",
        "connection",
        "operation",
        "business_key",
        "status",
        "external_id",
        "attempts",
        "found_by_lookup",
    )
    list_filter = ("status", "operation", "connection", "found_by_lookup")
    search_fields = ("=business_key", "=external_id", "=correlation_id")
    list_per_page = 50
    show_full_result_count = False
    actions = ("retry",)
    readonly_fields = [f.name for f in SideEffect._meta.fields]

    @admin.action(description="Retry the selected writes (looks the record up first)", permissions=["view"])
    def retry(self, request: HttpRequest, queryset: QuerySet[SideEffect]) -> None:
        ids = [str(pk) for pk in queryset.exclude(status=SideEffect.Status.DONE).values_list("pk", flat=True)]
        for effect_id in ids:
            transaction.on_commit(partial(side_effect_retry_task.delay, effect_id))
        self.message_user(
            request, f"{len(ids)} write(s) queued for retry; done ones were skipped.", level=messages.SUCCESS
        )
