"""The side-effect ledger: every write Crossdock makes in an external system, keyed by business key."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel
from hub.connections.models import Connection


class SideEffect(TimestampedModel):
    """One intended write (create a sale's invoice, a TMS shipment, a CRM case) and its outcome.

    The row is committed before the external call, so a crash between the call and recording its
    result leaves a ``pending`` row with ``attempts >= 1``: the next attempt asks the connector to
    look the record up by business key before writing again (hub.ledger.services).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (not confirmed yet)"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (permanent error; an operator may retry)"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="side_effects")
    operation = models.CharField(max_length=60, help_text="Connector operation, e.g. invoice.post.")
    business_key = models.CharField(max_length=200, help_text="What makes this write unique, e.g. SO-1001.")
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    external_id = models.CharField(
        max_length=200, blank=True, help_text="The record's id in the target system."
    )
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    found_by_lookup = models.BooleanField(
        default=False, help_text="The record already existed (an earlier unrecorded attempt wrote it)."
    )
    last_error = models.TextField(blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="An attempt is in flight until then (a crashed one expires)."
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # side_effect_perform's dedupe: one row per write, whoever asks and however often.
            models.UniqueConstraint(
                fields=["connection", "operation", "business_key"], name="ledger_effect_key_uniq"
            ),
        ]
        indexes = [
            # The ops console's "not confirmed" list.
            models.Index(fields=["created_at"], name="ledger_effect_open_idx", condition=~Q(status="done")),
        ]

    def __str__(self) -> str:
        return f"{self.connection.slug}:{self.operation}:{self.business_key}"


class ControlCounter(TimestampedModel):
    """A durable counter per connection and name (X12 interchange and group control numbers)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="control_counters")
    name = models.CharField(max_length=40)
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["connection", "name"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "name"], name="ledger_counter_conn_name_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.connection.slug}:{self.name}={self.last_value}"
