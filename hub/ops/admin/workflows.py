"""Workflow runs in the admin: each run's steps as a timeline, its audit trail, and the operator
actions (retry the failed step, resume, compensate, cancel), each asking for a reason."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from canonical.errors import DomainError
from hub.ops.admin.kit import NoAddMixin, NoDeleteMixin, ServiceModelAdmin, ViewOnlyInline
from hub.workflows import definitions, services
from hub.workflows.models import FlowConfig, WorkflowAction, WorkflowRun, WorkflowStep
from hub.workflows.triggers import flow_config_save

REASON_TEMPLATE = "admin/workflows/action_reason.html"
PREVIEW_ROWS = 20


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Kept in the run's audit trail with your name and the time.",
    )


class StepInline(ViewOnlyInline):
    model = WorkflowStep
    fields = (
        "sequence",
        "name",
        "status",
        "attempts",
        "waiting_for",
        "sla_due_at",
        "escalated_at",
        "started_at",
        "finished_at",
        "error",
        "outputs",
        "compensation",
    )
    readonly_fields = fields
    ordering = ("sequence",)


class ActionInline(ViewOnlyInline):
    model = WorkflowAction
    fields = ("created_at", "action", "step", "reason", "actor")
    readonly_fields = fields
    ordering = ("created_at",)


def _operator_action(service: Callable, name: str, title: str, intro: str):
    def run_action(modeladmin: WorkflowRunAdmin, request: HttpRequest, queryset: QuerySet):
        form = ReasonForm(request.POST) if request.POST.get("confirm") else ReasonForm()
        if not (form.is_bound and form.is_valid()):
            return modeladmin.reason_page(request, queryset, form=form, action=name, title=title, intro=intro)
        done = 0
        for run in queryset:
            try:
                service(
                    run_id=run.pk,
                    reason=form.cleaned_data["reason"],
                    actor=f"admin:{request.user.get_username()}",
                )
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{run}: {exc.detail}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{title}: {done} run(s).", messages.SUCCESS)
        return None

    run_action.__name__ = name
    return admin.action(description=f"{title} (asks why)", permissions=["change"])(run_action)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(NoAddMixin, NoDeleteMixin, admin.ModelAdmin):
    # Runs are started by the flows' triggers or POST /api/v1/workflows/, never added here; a change
    # right is kept for the operator actions below.
    list_display = ("created_at", "flow", "flow_version", "business_key", "status", "current_step", "wake_at")
    list_filter = ("flow", "status")
    search_fields = ("=business_key", "=correlation_id")
    list_per_page = 50
    show_full_result_count = False
    inlines = (StepInline, ActionInline)
    readonly_fields = [f.name for f in WorkflowRun._meta.fields]
    actions = (
        _operator_action(
            services.workflow_retry_step,
            "retry_failed_step",
            "Retry the failed step",
            "The failed step runs again with a fresh attempt budget.",
        ),
        _operator_action(
            services.workflow_resume,
            "resume_now",
            "Resume now",
            "The engine looks at the run now instead of at its next wake-up.",
        ),
        _operator_action(
            services.workflow_compensate,
            "compensate",
            "Compensate",
            "The run's completed steps are undone, last first (e.g. a TMS shipment cancelled, "
            "an invoice credited).",
        ),
        _operator_action(
            services.workflow_cancel,
            "cancel",
            "Cancel",
            "The run stops where it is; steps not done are skipped and nothing is undone.",
        ),
    )

    def reason_page(self, request, queryset, *, form, action, title, intro) -> TemplateResponse:
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "media": self.media,
            "intro": intro,
            "items": list(queryset[:PREVIEW_ROWS]),
            "count": count,
            "more": max(0, count - PREVIEW_ROWS),
            "form": form,
            "action": action,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "submit_label": title,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REASON_TEMPLATE, context)


@admin.register(FlowConfig)
class FlowConfigAdmin(ServiceModelAdmin):
    list_display = ("flow", "enabled", "connections", "updated_at")
    fields = ("flow", "enabled", "connections", "options", "description")
    readonly_fields = ("description",)
    readonly_after_create = ("flow",)

    @admin.display(description="What the flow does")
    def description(self, obj: FlowConfig) -> str:
        try:
            flow = definitions.get(obj.flow)
        except KeyError:
            return "-"
        needs = "; ".join(f"{role}: {', '.join(ops)}" for role, ops in flow.requires.items())
        return f"{flow.description} Needs {needs}." if needs else flow.description

    def service_save(self, *, request, obj, form, data, change) -> FlowConfig:
        cleaned = form.cleaned_data
        return flow_config_save(
            flow=obj.flow if change else cleaned["flow"],
            enabled=cleaned["enabled"],
            connections=cleaned.get("connections") or {},
            options=cleaned.get("options") or {},
        )
