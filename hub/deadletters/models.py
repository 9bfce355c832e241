"""Dead letters: anything that could not be processed or delivered, with the reason and the bytes."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel
from hub.connections.models import Connection

# The message and delivery a letter keeps are named by app label, not imported: dead letters sit
# below the inbox and the outbox in the hub's layers (docs/subsystems/runtime.md).


class DeadLetter(TimestampedModel):
    class Stage(models.TextChoices):
        PARSE = "parse"
        MAP = "map"
        VALIDATE = "validate"
        APPLY = "apply"
        DELIVER = "deliver"

    class Status(models.TextChoices):
        OPEN = "open"
        REPLAYED = "replayed"  # replayed and succeeded
        RESOLVED = "resolved"  # closed by an operator without replay

    stage = models.CharField(max_length=10, choices=Stage.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reason = models.TextField()
    error_class = models.CharField(max_length=100)
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="dead_letters")
    message = models.ForeignKey(
        "inbox.InboundMessage", on_delete=models.CASCADE, null=True, blank=True, related_name="dead_letters"
    )
    item_index = models.IntegerField(
        null=True,
        blank=True,
        help_text="Which document of the message failed; empty when the whole message did.",
    )
    delivery = models.OneToOneField(
        "outbox.Delivery", on_delete=models.CASCADE, null=True, blank=True, related_name="dead_letter"
    )
    payload = models.BinaryField(help_text="The original bytes (message body, or the failed document).")
    payload_content_type = models.CharField(max_length=200, blank=True)
    waiting_for_shipment = models.CharField(
        max_length=64,
        blank=True,
        help_text="Unknown shipment reference; replayed automatically once it exists.",
    )
    replay_count = models.PositiveIntegerField(default=0)
    last_replayed_at = models.DateTimeField(null=True, blank=True)
    last_replayed_by = models.CharField(max_length=150, blank=True)
    last_replay_reason = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A replay that fails again updates the same letter (dead_letter_record upserts on these).
            models.UniqueConstraint(
                fields=["message", "item_index"],
                nulls_distinct=False,
                condition=Q(message__isnull=False),
                name="deadletter_message_item_uniq",
            ),
            models.CheckConstraint(
                condition=Q(message__isnull=False) | Q(delivery__isnull=False),
                name="deadletter_has_origin",
                violation_error_message="a dead letter comes from a message or a delivery",
            ),
        ]
        indexes = [
            # The API/admin list filters (connection, stage, status), newest first.
            models.Index(fields=["status", "stage", "created_at"], name="deadletter_filter_idx"),
            # The sweeper's auto-replay of apply letters whose shipment now exists.
            models.Index(
                fields=["waiting_for_shipment"],
                name="deadletter_waiting_idx",
                condition=Q(status="open") & ~Q(waiting_for_shipment=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage}: {self.reason[:60]}"


class ReplayJob(TimestampedModel):
    """A bulk replay requested by an operator; progress is visible while it runs."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    filters = models.JSONField(default=dict, help_text="connection, stage, status, created_before/after.")
    reason = models.TextField()
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    replayed = models.PositiveIntegerField(default=0, help_text="Replayed and succeeded.")
    failed = models.PositiveIntegerField(default=0, help_text="Replayed and failed again.")
    finished_at = models.DateTimeField(null=True, blank=True)
    letter_ids = models.JSONField(default=list, help_text="The letters selected when the job was created.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"replay {self.pk} ({self.status} {self.replayed + self.failed}/{self.total})"
