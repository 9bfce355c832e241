"""Ops console for dead letters and replay jobs.

Letters are read-only records; the operator's three writes are actions that call the replay services
(:mod:`hub.deadletters.replay`), each asking first *why* on an intermediate page (Django's
"action with confirmation" pattern: the page posts the same selection back with ``confirm``):

- "Replay selected": ``dead_letter_replay`` per letter, reporting successes and failures.
- "Resolve selected (no replay)": ``dead_letter_resolve`` per open letter.
- "Bulk replay by current filter as a job": ``replay_job_create`` with the changelist's filters, for
  more letters than one request should replay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import (
    ALL_VAR,
    ERROR_FLAG,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    SEARCH_VAR,
    TO_FIELD_VAR,
)
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from canonical.errors import DomainError
from hub.deadletters.models import DeadLetter, ReplayJob
from hub.deadletters.replay import (
    dead_letter_replay,
    dead_letter_resolve,
    dead_letters_filter,
    replay_job_create,
)
from hub.ops.admin.kit import (
    RECORD_FIELDSET,
    ConnectionFilter,
    ReadOnlyAdmin,
    link_column,
    links_html,
    payload_html,
    pre,
)

logger = logging.getLogger(__name__)

SYNC_REPLAY_MAX = 100  # letters one "Replay selected" request replays; more go to a bulk job
PREVIEW_ROWS = 20  # letters listed on an intermediate page
FAILURES_SHOWN = 10  # failures spelled out in the result message
REASON_TEMPLATE = "admin/deadletters/deadletter/action_reason.html"

# Changelist query parameters -> the bulk-replay filter keys of ``dead_letters_filter``.
JOB_FILTER_PARAMS = {
    "stage__exact": "stage",
    "status__exact": "status",
    ConnectionFilter.parameter_name: "connection",
    "created_at__gte": "created_after",
    "created_at__lt": "created_before",
}
# Changelist parameters that only change the view (page, order, facets), never the selection.
VIEW_PARAMS = {ALL_VAR, ORDER_VAR, PAGE_VAR, IS_FACETS_VAR, ERROR_FLAG, IS_POPUP_VAR, TO_FIELD_VAR}


def job_filters(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The changelist's filter as a replay-job filter, and the parameters a job cannot express."""
    filters: dict[str, str] = {}
    unsupported: list[str] = []
    for name, value in params.items():
        if name in JOB_FILTER_PARAMS:
            if value:
                filters[JOB_FILTER_PARAMS[name]] = value
        elif name == SEARCH_VAR:
            if value.strip():
                unsupported.append("search")
        elif name not in VIEW_PARAMS:
            unsupported.append(name)
    return filters, unsupported


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Kept on each letter with your name and the time.",
    )


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "stage",
        "status",
        "connection",
        "reason_short",
        "replay_count",
        "waiting_for_shipment",
    )
    list_filter = ("stage", "status", ConnectionFilter, ("created_at", admin.DateFieldListFilter))
    list_select_related = ("connection",)
    search_fields = ("reason", "correlation_id", "waiting_for_shipment")
    search_help_text = "Words of the reason, a correlation id or a waiting shipment reference."
    ordering = ("-created_at",)
    changelist_defer = ("payload",)
    actions = ("replay_selected", "resolve_selected", "bulk_replay_job")
    fieldsets = (
        (None, {"fields": ("stage", "status", "connection_link", "error_class", "reason_display")}),
        ("Origin", {"fields": ("message_link", "item_index", "delivery_link", "correlation_id")}),
        ("Payload", {"fields": ("payload_content_type", "payload_display")}),
        (
            "Replay",
            {
                "fields": (
                    "waiting_for_shipment",
                    "replay_count",
                    "last_replayed_at",
                    "last_replayed_by",
                    "last_replay_reason",
                )
            },
        ),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("connection")

    # -- display --

    @admin.display(description="Reason")
    def reason_short(self, obj: DeadLetter) -> str:
        return obj.reason if len(obj.reason) <= 100 else obj.reason[:99] + "…"

    @admin.display(description="Reason")
    def reason_display(self, obj: DeadLetter) -> str:
        return pre(obj.reason)

    connection_link = link_column("connection", "Connection")

    message_link = link_column("message", "Message")

    delivery_link = link_column("delivery", "Delivery")

    @admin.display(description="Payload")
    def payload_display(self, obj: DeadLetter) -> str:
        return payload_html(obj.payload)

    # -- actions --

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # The letters are read-only records; replaying and resolving are the changes made to them.
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def _reason_form(self, request: HttpRequest) -> ReasonForm:
        return ReasonForm(request.POST) if request.POST.get("confirm") else ReasonForm()

    def _reason_page(
        self,
        request: HttpRequest,
        letters: QuerySet,
        *,
        form: ReasonForm,
        action: str,
        title: str,
        intro: str,
        submit_label: str,
        filters: dict[str, str] | None = None,
    ) -> TemplateResponse:
        count = letters.count()
        items = list(letters.select_related("connection").defer("payload")[:PREVIEW_ROWS])
        select_across = request.POST.get("select_across", "0") in ("1", "True", "true", "on")
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "media": self.media,
            "intro": intro,
            "filters": filters,
            "items": items,
            "count": count,
            "more": max(0, count - len(items)),
            "form": form,
            "action": action,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": "1" if select_across else "0",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "submit_label": submit_label,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REASON_TEMPLATE, context)

    @admin.action(description="Replay selected (asks why)", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        ids = list(queryset.values_list("pk", flat=True)[: SYNC_REPLAY_MAX + 1])
        if len(ids) > SYNC_REPLAY_MAX:
            self.message_user(
                request,
                f"More than {SYNC_REPLAY_MAX} letters selected: use “Bulk replay by current filter as a job”.",
                messages.ERROR,
            )
            return None
        form = self._reason_form(request)
        if not (form.is_bound and form.is_valid()):
            return self._reason_page(
                request,
                queryset,
                form=form,
                action="replay_selected",
                title="Replay dead letters",
                intro="Each letter is run through the pipeline again from its stored bytes, with the "
                "connection's current configuration. A delivery letter is queued for a new round of attempts.",
                submit_label="Replay",
            )
        actor, reason = request.user.get_username(), form.cleaned_data["reason"]
        succeeded, queued, failed = 0, 0, []
        for letter_id in ids:
            try:
                outcome = dead_letter_replay(letter_id=letter_id, actor=actor, reason=reason)
            except DeadLetter.DoesNotExist:
                failed.append(f"{letter_id}: no longer exists")
                continue
            except DomainError as exc:
                failed.append(f"{letter_id}: {exc.detail}")
                continue
            except Exception as exc:  # one bad letter must not hide what happened to the others
                logger.exception("replay of dead letter %s failed", letter_id)
                failed.append(f"{letter_id}: {type(exc).__name__}: {exc}")
                continue
            if outcome.succeeded is None:
                queued += 1
            elif outcome.succeeded:
                succeeded += 1
            else:
                failed.append(
                    f"{letter_id}: failed again ({outcome.letter.stage}): {outcome.letter.reason[:200]}"
                )
        if succeeded:
            self.message_user(request, f"Replayed {succeeded} letter(s) successfully.", messages.SUCCESS)
        if queued:
            self.message_user(
                request, f"Queued {queued} delivery letter(s) for a new round of attempts.", messages.SUCCESS
            )
        if failed:
            shown = "; ".join(failed[:FAILURES_SHOWN])
            more = f" (and {len(failed) - FAILURES_SHOWN} more)" if len(failed) > FAILURES_SHOWN else ""
            self.message_user(request, f"{len(failed)} replay(s) failed: {shown}{more}", messages.ERROR)
        return None

    @admin.action(description="Resolve selected (no replay; asks why)", permissions=["replay"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        open_letters = queryset.filter(status=DeadLetter.Status.OPEN)
        form = self._reason_form(request)
        if not (form.is_bound and form.is_valid()):
            return self._reason_page(
                request,
                open_letters,
                form=form,
                action="resolve_selected",
                title="Resolve dead letters",
                intro="The open letters below are closed without replaying them (letters already "
                "replayed or resolved are left as they are).",
                submit_label="Resolve",
            )
        actor, reason = request.user.get_username(), form.cleaned_data["reason"]
        ids = list(open_letters.values_list("pk", flat=True))
        skipped = queryset.count() - len(ids)
        resolved = 0
        for letter_id in ids:
            try:
                dead_letter_resolve(letter_id=letter_id, actor=actor, reason=reason)
            except DeadLetter.DoesNotExist:
                continue
            resolved += 1
        self.message_user(request, f"Resolved {resolved} letter(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {skipped} letter(s) that were not open.", messages.WARNING)
        return None

    @admin.action(
        description="Bulk replay by current filter as a job (select any row; asks why)",
        permissions=["replay"],
    )
    def bulk_replay_job(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        # The selection only satisfies Django's "select something" rule: a job takes every letter
        # matching the filter, which the changelist's query string carries.
        filters, unsupported = job_filters(request.GET)
        if unsupported:
            self.message_user(
                request,
                "A replay job filters by stage, status, connection and creation date only; clear "
                f"{', '.join(unsupported)} and try again.",
                messages.ERROR,
            )
            return None
        form = self._reason_form(request)
        if not (form.is_bound and form.is_valid()):
            shown = {**filters}
            shown.setdefault(
                "status", f"{DeadLetter.Status.OPEN} (a job replays open letters unless filtered)"
            )
            return self._reason_page(
                request,
                dead_letters_filter(filters),
                form=form,
                action="bulk_replay_job",
                title="Bulk replay as a job",
                intro="A background job replays, oldest first, every letter matching this filter now "
                "(letters arriving later are not added). Its page shows progress.",
                submit_label="Create replay job",
                filters=shown,
            )
        job = replay_job_create(
            filters=filters, actor=request.user.get_username(), reason=form.cleaned_data["reason"]
        )
        url = reverse(f"{self.admin_site.name}:deadletters_replayjob_change", args=[job.pk])
        self.message_user(
            request,
            format_html(
                'Replay job created for {} letter(s); it runs in the background: <a href="{}">follow its progress</a>.',
                job.total,
                url,
            ),
            messages.SUCCESS,
        )
        return None


@admin.register(ReplayJob)
class ReplayJobAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "status",
        "total",
        "replayed",
        "failed",
        "progress",
        "requested_by",
        "reason_short",
    )
    list_filter = ("status",)
    search_fields = ("requested_by", "reason")
    ordering = ("-created_at",)
    changelist_defer = ("letter_ids",)
    fieldsets = (
        (None, {"fields": ("status", "progress", "total", "replayed", "failed", "finished_at")}),
        ("Request", {"fields": ("requested_by", "reason", "filters_display", "letters")}),
        RECORD_FIELDSET,
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    @admin.display(description="Progress")
    def progress(self, obj: ReplayJob) -> str:
        done = obj.replayed + obj.failed
        percent = round(100 * done / obj.total) if obj.total else 100
        return format_html(
            '<progress value="{}" max="{}" title="{} of {}">{}%</progress> {}%',
            done,
            obj.total or 1,
            done,
            obj.total,
            percent,
            percent,
        )

    @admin.display(description="Reason")
    def reason_short(self, obj: ReplayJob) -> str:
        return obj.reason if len(obj.reason) <= 80 else obj.reason[:79] + "…"

    @admin.display(description="Filter")
    def filters_display(self, obj: ReplayJob) -> str:
        if not obj.filters:
            return "all open letters"
        return ", ".join(f"{name}={value}" for name, value in sorted(obj.filters.items()))

    @admin.display(description="Letters")
    def letters(self, obj: ReplayJob) -> str:
        ids = obj.letter_ids[:PREVIEW_ROWS]
        by_id = {str(letter.pk): letter for letter in DeadLetter.objects.filter(pk__in=ids).defer("payload")}
        listed = links_html(
            (by_id[i], f"{by_id[i].stage} ({by_id[i].status}): {by_id[i].reason[:80]}")
            for i in ids
            if i in by_id
        )
        if len(obj.letter_ids) > PREVIEW_ROWS:
            return format_html("{}<p>… and {} more.</p>", listed, len(obj.letter_ids) - PREVIEW_ROWS)
        return listed
