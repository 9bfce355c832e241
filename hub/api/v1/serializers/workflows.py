"""Serializers for workflow runs: the run, its steps as a timeline, its audit trail, and requests."""

from __future__ import annotations

from rest_framework import serializers

from hub.api.v1.serializers.base import TIMESTAMPS
from hub.workflows import definitions
from hub.workflows.models import WorkflowAction, WorkflowRun, WorkflowStep


class WorkflowStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowStep
        fields = [
            "sequence",
            "name",
            "status",
            "attempts",
            "waiting_for",
            "sla_due_at",
            "escalated_at",
            "started_at",
            "finished_at",
            "outputs",
            "error",
            "compensation",
        ]


class WorkflowActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowAction
        fields = ["created_at", "action", "step", "reason", "actor"]


class WorkflowRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRun
        fields = [
            "id",
            "flow",
            "flow_version",
            "business_key",
            "status",
            "current_step",
            "error",
            "wake_at",
            "correlation_id",
            "finished_at",
            *TIMESTAMPS,
        ]


class WorkflowRunDetailSerializer(WorkflowRunSerializer):
    steps = WorkflowStepSerializer(many=True, read_only=True)
    actions = WorkflowActionSerializer(many=True, read_only=True)

    class Meta(WorkflowRunSerializer.Meta):
        fields = [*WorkflowRunSerializer.Meta.fields, "inputs", "context", "steps", "actions"]


class WorkflowStartSerializer(serializers.Serializer):
    flow = serializers.CharField(max_length=40)
    business_key = serializers.CharField(max_length=200)
    inputs = serializers.DictField(required=False, default=dict)

    def validate_flow(self, value: str) -> str:
        known = sorted({flow.key for flow in definitions.all_flows()})
        if value not in known:
            raise serializers.ValidationError(f"unknown flow {value!r}; known: {', '.join(known)}")
        return value


class WorkflowActionRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
