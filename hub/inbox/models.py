"""Inbound messages, stored before anything else happens (the durable inbox)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel
from hub.connections.models import Connection


class InboundMessage(TimestampedModel):
    class Status(models.TextChoices):
        RECEIVED = "received"  # stored, waiting for a worker
        PROCESSING = "processing"  # claimed by a worker (lease in claimed_until)
        PROCESSED = "processed"  # every event applied (or a known duplicate)
        PARTIAL = "partial"  # some events applied, others dead-lettered
        FAILED = "failed"  # nothing applied; dead-lettered

    class KeySource(models.TextChoices):
        HEADER = "header", "Idempotency-Key header"
        NATURAL = "natural", "Connector's natural id"
        BODY_HASH = "body_hash", "SHA-256 of the body"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="inbound_messages")
    idempotency_key = models.CharField(max_length=200)
    key_source = models.CharField(max_length=10, choices=KeySource.choices)
    body = models.BinaryField()
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    correlation_id = models.CharField(max_length=128)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    claimed_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker has processed it.")
    crash_count = models.PositiveIntegerField(
        default=0,
        help_text=(
            "Claims since its last result that crashed (an unexpected error, or a worker killed so the "
            "claim expired). Counted when claimed, settled to 0 by a result; "
            "CROSSDOCK_INBOX_POISON_AFTER of them dead-letter it as poison."
        ),
    )
    events_applied = models.PositiveIntegerField(default=0)
    events_duplicate = models.PositiveIntegerField(default=0)
    events_failed = models.PositiveIntegerField(default=0)
    mapping_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Inbound mapping version it went through (0: connector defaults)."
    )
    trace = models.JSONField(default=list, blank=True, help_text="Stages passed: [{stage, at, ok, detail}].")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # Message-level dedupe (inbound_message_receive): a repeat hits this and answers 200 duplicate.
            models.UniqueConstraint(fields=["connection", "idempotency_key"], name="inbox_msg_conn_key_uniq"),
        ]
        indexes = [
            # The worker's claim (inbound_batch_claim) scans only waiting rows, oldest first.
            models.Index(
                fields=["received_at"], name="inbox_msg_waiting_idx", condition=Q(status="received")
            ),
            # The sweeper's expired-lease scan (inbound_leases_expire).
            models.Index(
                fields=["claimed_until"], name="inbox_msg_claimed_idx", condition=Q(status="processing")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection.slug}:{self.idempotency_key[:40]}"
