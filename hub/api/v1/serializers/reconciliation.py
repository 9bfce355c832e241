"""Serializers for reconciliation: checks, runs, discrepancies and the operator requests."""

from __future__ import annotations

from rest_framework import serializers

from hub.api.v1.serializers.base import TIMESTAMPS
from reconciliation import checks
from reconciliation.models import Discrepancy, ReconciliationRun

RUN_COUNTS = ["examined", "ok", "new", "still_open", "closed", "repaired", "ignored", "errors"]


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    systems = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    auto_repair = serializers.BooleanField()
    every_s = serializers.IntegerField(allow_null=True, help_text="Its schedule; null when switched off.")
    options = serializers.DictField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    open_discrepancies = serializers.IntegerField()


class ReconciliationRunSerializer(serializers.ModelSerializer):
    check = serializers.CharField(source="check_name")

    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "check",
            "status",
            "dry_run",
            "scope",
            "requested_by",
            "started_at",
            "finished_at",
            *RUN_COUNTS,
            "report",
            "error",
            *TIMESTAMPS,
        ]


class RunStartSerializer(serializers.Serializer):
    check = serializers.CharField(max_length=40)
    dry_run = serializers.BooleanField(default=False)
    scope = serializers.DictField(required=False, help_text='Limits the run: {"references": ["SHP-1"]}.')

    def validate_check(self, value: str) -> str:
        known = [c.name for c in checks.all_checks()]
        if value not in known:
            raise serializers.ValidationError(f"unknown check {value!r}; known: {', '.join(known)}")
        return value


class DiscrepancySerializer(serializers.ModelSerializer):
    check = serializers.CharField(source="check_name")

    class Meta:
        model = Discrepancy
        fields = [
            "id",
            "check",
            "business_key",
            "kind",
            "summary",
            "systems",
            "external_ids",
            "expected",
            "found",
            "severity",
            "status",
            "repairable",
            "first_seen",
            "last_seen",
            "found_by",
            "last_run",
            "repair",
            "closed_at",
            "closed_by",
            "reason",
            *TIMESTAMPS,
        ]


class DiscrepancyActionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    dry_run = serializers.BooleanField(default=False, help_text="Repair only: show the plan, write nothing.")
