"""Workflow runs in the admin: each run's steps as a timeline, its audit trail, and the operator
actions (retry the failed step, resume, compensate, cancel), each asking for a reason."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin

from hub.ops.admin.kit import (
    NoAddMixin,
    NoDeleteMixin,
    ReasonActionsMixin,
    ServiceModelAdmin,
    ViewOnlyInline,
    reason_action,
)
from hub.workflows import definitions, services
from hub.workflows.models import FlowConfig, WorkflowAction, WorkflowRun, WorkflowStep
from hub.workflows.triggers import flow_config_save

REASON_TEMPLATE = "admin/workflows/action_reason.html"


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
    return reason_action(service, name=name, title=title, intro=intro, key="run_id", noun="run")


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReasonActionsMixin, NoAddMixin, NoDeleteMixin, admin.ModelAdmin):
    # Runs are started by the flows' triggers or POST /api/v1/workflows/, never added here; a change
    # right is kept for the operator actions below.
    list_display = ("created_at", "flow", "flow_version", "business_key", "status", "current_step", "wake_at")
    list_filter = ("flow", "status")
    search_fields = ("=business_key", "=correlation_id")
    list_per_page = 50
    show_full_result_count = False
    inlines = (StepInline, ActionInline)
    reason_template = REASON_TEMPLATE
    reason_help = "Kept in the run's audit trail with your name and the time."
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
