"""Reconciliation: runs of the cross-system checks, the drift they find, and each check's settings.

A check (reconciliation/checks/) compares what the hub, the ERP, the TMS and the CRM say about the
same business key. What disagrees is a ``Discrepancy``, one open per (check, business key): a later
run updates it (``last_seen``) or closes it when the systems agree again.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel


class CheckConfig(TimestampedModel):
    """One row per registered check: whether it runs on schedule, repairs by itself, and its options
    (SLAs, tolerances). The schedule itself is the check's django-celery-beat entry
    ``crossdock:reconcile:<check>``, edited in the admin like any periodic task."""

    check_name = models.CharField(max_length=40, unique=True)
    enabled = models.BooleanField(default=True, help_text="Runs on its schedule (runs on demand either way).")
    auto_repair = models.BooleanField(
        default=False,
        help_text="Repair what the check can repair as soon as it is found (otherwise ops repairs it).",
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="The check's options (SLAs, tolerances), over its defaults."
    )

    class Meta:
        ordering = ["check_name"]
        verbose_name = "check configuration"

    def __str__(self) -> str:
        return self.check_name


class ReconciliationRun(TimestampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # the check raised: the error is kept, discrepancies found so far stay

    check_name = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    dry_run = models.BooleanField(default=False, help_text="Finds and reports; records and repairs nothing.")
    scope = models.JSONField(default=dict, blank=True, help_text="Limits the run (e.g. references).")
    requested_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keys the check expects to examine, when it can tell (progress)."
    )
    examined = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0, help_text="Discrepancies opened by this run.")
    still_open = models.PositiveIntegerField(default=0, help_text="Open before and found again.")
    closed = models.PositiveIntegerField(default=0, help_text="Open before, agreeing now: closed.")
    repaired = models.PositiveIntegerField(default=0)
    ignored = models.PositiveIntegerField(
        default=0, help_text="Disagreeing keys an operator chose to ignore."
    )
    errors = models.PositiveIntegerField(default=0, help_text="Keys the check could not examine or repair.")
    report = models.JSONField(
        default=dict, blank=True, help_text="The check's totals and, for a dry run, a sample of findings."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweeper's scan for queued runs and runs whose worker died (reconciliation_runs_due).
            models.Index(
                fields=["created_at"], name="recon_run_due_idx", condition=Q(status__in=["queued", "running"])
            ),
            # Last success per check (metrics, the admin's check list).
            models.Index(fields=["check_name", "-finished_at"], name="recon_run_check_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} {self.created_at:%Y-%m-%d %H:%M}"


class Discrepancy(TimestampedModel):
    class Status(models.TextChoices):
        OPEN = "open"
        REPAIRING = "repairing"
        REPAIRED = "repaired"  # a repair wrote the fix
        RESOLVED = "resolved"  # the systems agree again, or an operator closed it with a reason
        IGNORED = "ignored"  # an operator decided it stays as it is

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"
        CRITICAL = "critical"

    OPEN_STATUSES = (Status.OPEN, Status.REPAIRING)

    check_name = models.CharField(max_length=40)
    business_key = models.CharField(
        max_length=200, help_text="Order, shipment, invoice or customer reference the systems disagree on."
    )
    kind = models.CharField(max_length=60, help_text="What disagrees, e.g. missing_shipment, amount.")
    systems = models.JSONField(default=list, help_text='The systems involved, e.g. ["hub", "erp"].')
    external_ids = models.JSONField(
        default=list, blank=True, help_text="Ids in the other systems (sale, tracker, case), for search."
    )
    expected = models.JSONField(default=dict, blank=True, help_text="What the system of record says.")
    found = models.JSONField(default=dict, blank=True, help_text="What the other systems say.")
    summary = models.CharField(max_length=300)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    repairable = models.BooleanField(default=False, help_text="The check can repair it (auto or by ops).")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    found_by = models.ForeignKey(
        ReconciliationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="found"
    )
    last_run = models.ForeignKey(
        ReconciliationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="seen"
    )
    repair = models.JSONField(default=dict, blank=True, help_text="The repair taken: writes and outcome.")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was resolved, ignored or repaired by hand.")

    class Meta:
        ordering = ["-last_seen"]
        verbose_name_plural = "discrepancies"
        constraints = [
            # One open discrepancy per (check, business key): a re-run updates it, never duplicates.
            models.UniqueConstraint(
                fields=["check_name", "business_key"],
                condition=Q(status__in=["open", "repairing"]),
                name="recon_discrepancy_open_uniq",
            ),
        ]
        indexes = [
            # The admin's and API's default list: open ones by check and severity.
            models.Index(
                fields=["check_name", "severity"],
                name="recon_disc_open_idx",
                condition=Q(status__in=["open", "repairing"]),
            ),
            # Search by any business key.
            models.Index(fields=["business_key"], name="recon_disc_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} {self.business_key}: {self.summary}"
