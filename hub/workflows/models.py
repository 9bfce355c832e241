"""Durable workflow runs: every run and step persisted, so a crash, a deploy or an outage never loses
where a cross-system flow stands (hub/workflows/engine.py runs them)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel


class WorkflowRun(TimestampedModel):
    class Status(models.TextChoices):
        RUNNING = "running"  # a step is due (now or at wake_at, after a transient error)
        WAITING = "waiting"  # a step waits for an external fact (a milestone, POD, an approval)
        COMPLETED = "completed"
        FAILED = "failed"  # a step failed permanently: an operator retries, compensates or cancels
        COMPENSATING = "compensating"  # undoing completed steps, last first
        COMPENSATED = "compensated"
        CANCELLED = "cancelled"

    ACTIVE = (Status.RUNNING, Status.WAITING, Status.COMPENSATING)

    flow = models.CharField(max_length=40, help_text="Flow key, e.g. order_to_ship.")
    flow_version = models.PositiveSmallIntegerField(help_text="Definition version the run started on.")
    business_key = models.CharField(
        max_length=200, help_text="What the run is about, e.g. an order reference."
    )
    subject = models.CharField(
        max_length=64,
        blank=True,
        help_text="The shipment it follows; its milestones wake the run (workflows_wake).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    inputs = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Outputs of finished steps, by step name.")
    current_step = models.CharField(max_length=60, blank=True)
    error = models.TextField(blank=True)
    wake_at = models.DateTimeField(null=True, blank=True, help_text="When the engine looks at it next.")
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    correlation_id = models.CharField(max_length=128, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # workflow_start's idempotency: one run per flow and business key.
            models.UniqueConstraint(fields=["flow", "business_key"], name="workflows_run_flow_key_uniq"),
        ]
        indexes = [
            # The sweeper's due scan (workflows_due).
            models.Index(
                fields=["wake_at"],
                name="workflows_run_due_idx",
                condition=Q(status__in=["running", "waiting", "compensating"]),
            ),
            # workflows_wake: the waiting runs that follow a shipment a milestone just touched.
            models.Index(
                fields=["subject"],
                name="workflows_run_subject_idx",
                condition=Q(status__in=["waiting", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow} {self.business_key}"


class WorkflowStep(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        WAITING = "waiting"
        DONE = "done"
        FAILED = "failed"
        SKIPPED = "skipped"  # the run was cancelled before it got here
        COMPENSATED = "compensated"

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    sequence = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    outputs = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    waiting_for = models.CharField(max_length=200, blank=True, help_text="The external fact it waits for.")
    sla_due_at = models.DateTimeField(null=True, blank=True, help_text="Escalated if still waiting then.")
    escalated_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    compensation = models.JSONField(default=dict, blank=True, help_text="What undoing it did.")

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="workflows_step_run_seq_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.run} #{self.sequence} {self.name}"


class WorkflowAction(TimestampedModel):
    """The run's audit trail: starts, operator actions with their reason, escalations."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="actions")
    step = models.CharField(max_length=60, blank=True)
    action = models.CharField(max_length=20)
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["run", "created_at"]

    def __str__(self) -> str:
        return f"{self.run}: {self.action}"


class FlowConfig(TimestampedModel):
    """Whether a flow runs, and against which connections (ops staff switch flows on in the admin)."""

    flow = models.CharField(max_length=40, unique=True)
    enabled = models.BooleanField(default=False)
    connections = models.JSONField(
        default=dict,
        blank=True,
        help_text='Role -> connection slug, e.g. {"erp": "tryton", "tms": "karrio"}.',
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="Flow options (see the flow's description)."
    )

    class Meta:
        ordering = ["flow"]

    def __str__(self) -> str:
        return f"{self.flow} ({'on' if self.enabled else 'off'})"
