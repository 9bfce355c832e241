"""Reconciliation in the admin: checks' configurations, runs (with a "run now" action), and the
discrepancies with bulk repair / resolve / ignore, each asking for a reason."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat.models import PeriodicTask

from canonical.errors import DomainError
from canonical.models import Invoice, Order, Shipment
from hub.ledger.models import SideEffect
from hub.ops.admin.kit import (
    NoAddMixin,
    NoDeleteMixin,
    ReadOnlyAdmin,
    ReasonActionsMixin,
    admin_link,
    json_html,
    links_html,
    reason_action,
)
from reconciliation import checks, services
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun

REASON_TEMPLATE = "admin/reconciliation/action_reason.html"


@admin.register(CheckConfig)
class CheckConfigAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("check_name", "title", "enabled", "auto_repair", "schedule", "updated_at")
    list_editable = ("enabled", "auto_repair")
    fields = ("check_name", "title", "enabled", "auto_repair", "options", "defaults", "schedule")
    readonly_fields = ("check_name", "title", "defaults", "schedule")
    actions = ("run_now", "run_now_dry")

    def has_add_permission(self, request) -> bool:
        return False  # one row per registered check, made by the hub

    def get_queryset(self, request):
        for check in checks.all_checks():  # every registered check has its row
            services.check_config(check.name)
        return super().get_queryset(request)

    @admin.display(description="Check")
    def title(self, obj: CheckConfig) -> str:
        try:
            return checks.get(obj.check_name).title
        except DomainError:
            return "(no longer registered)"

    @admin.display(description="Default options")
    def defaults(self, obj: CheckConfig) -> str:
        try:
            return json_html(checks.get(obj.check_name).defaults)
        except DomainError:
            return "-"

    @admin.display(description="Schedule")
    def schedule(self, obj: CheckConfig) -> str:
        task = PeriodicTask.objects.filter(name=f"crossdock:reconcile:{obj.check_name}").first()
        if task is None:
            return "not scheduled (run setup_periodic_tasks)"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
        return format_html(
            '<a href="{}">{}{}</a>', url, task.interval or task.crontab, "" if task.enabled else " (off)"
        )

    def _start(self, request, queryset, *, dry_run: bool) -> None:
        for config in queryset:
            try:
                run = services.run_start(
                    check=config.check_name, dry_run=dry_run, actor=f"admin:{request.user.get_username()}"
                )
            except DomainError as exc:
                self.message_user(request, f"{config}: {exc.detail}", messages.ERROR)
                continue
            self.message_user(request, format_html("Queued {}.", admin_link(run)), messages.SUCCESS)

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request, queryset) -> None:
        self._start(request, queryset, dry_run=False)

    @admin.action(description="Dry run now (records and repairs nothing)", permissions=["change"])
    def run_now_dry(self, request, queryset) -> None:
        self._start(request, queryset, dry_run=True)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "check_name",
        "status",
        "dry_run",
        "examined",
        "ok",
        "new",
        "still_open",
        "closed",
        "repaired",
        "errors",
        "found_link",
    )
    list_filter = ("check_name", "status", "dry_run")
    readonly_fields = [f.name for f in ReconciliationRun._meta.fields] + ["report_html"]
    exclude = ("report",)

    @admin.display(description="Found")
    def found_link(self, obj: ReconciliationRun) -> str:
        url = reverse("admin:reconciliation_discrepancy_changelist")
        return format_html('<a href="{}?found_by__id__exact={}">discrepancies</a>', url, obj.pk)

    @admin.display(description="Report")
    def report_html(self, obj: ReconciliationRun) -> str:
        return json_html(obj.report)


class ReferenceSearchMixin:
    """Search by any business key or external id, exactly (an index each, no LIKE scan)."""

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(business_key=term) | Q(external_ids__contains=[term])), False


def _operator_action(service: Callable, name: str, title: str, intro: str, **extra):
    return reason_action(
        service, name=name, title=title, intro=intro, key="discrepancy_id", noun="discrepancy", **extra
    )


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReferenceSearchMixin, ReasonActionsMixin, NoAddMixin, NoDeleteMixin, admin.ModelAdmin):
    # Found by runs, never added here; a change right is kept for the operator actions below.
    list_display = ("last_seen", "check_name", "business_key", "kind", "severity", "status", "summary")
    list_filter = ("check_name", "status", "severity", "kind")
    search_fields = ("business_key",)  # any business key or external id, exactly (ReferenceSearchMixin)
    search_help_text = "A business key (order, shipment, invoice, customer) or an id in another system."
    list_per_page = 50
    show_full_result_count = False
    reason_template = REASON_TEMPLATE
    readonly_fields = [
        f.name for f in Discrepancy._meta.fields if f.name not in ("expected", "found", "repair")
    ] + ["subject", "expected_html", "found_html", "repair_html", "writes"]
    exclude = ("expected", "found", "repair")
    actions = (
        _operator_action(
            services.discrepancy_repair,
            "repair",
            "Repair",
            "The check writes the fix through the ledger of writes to other systems (looked up before"
            " writing, so nothing is written twice).",
        ),
        _operator_action(
            services.discrepancy_resolve,
            "resolve",
            "Resolve",
            "Close it: fixed by hand, or not a problem. A later run that finds it again opens it again.",
        ),
        _operator_action(
            services.discrepancy_ignore,
            "ignore",
            "Ignore",
            "Leave it as it is on purpose: later runs do not open it again.",
        ),
    )

    @admin.display(description="In the hub")
    def subject(self, obj: Discrepancy) -> str:
        for model in (Shipment, Order, Invoice):
            found = model.objects.filter(reference=obj.business_key).first()
            if found is not None:
                return admin_link(found)
        return "-"

    @admin.display(description="Expected (system of record)")
    def expected_html(self, obj: Discrepancy) -> str:
        return json_html(obj.expected)

    @admin.display(description="Found")
    def found_html(self, obj: Discrepancy) -> str:
        return json_html(obj.found)

    @admin.display(description="Repair taken")
    def repair_html(self, obj: Discrepancy) -> str:
        return json_html(obj.repair)

    @admin.display(description="Writes to other systems")
    def writes(self, obj: Discrepancy) -> str:
        """The ledger rows of the repair (``side_effect`` ids the check returned)."""
        ids = [w.get("side_effect") for w in (obj.repair or {}).get("writes") or [] if isinstance(w, dict)]
        return links_html(
            (effect, effect.operation) for effect in SideEffect.objects.filter(pk__in=[i for i in ids if i])
        )
