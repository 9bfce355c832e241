"""Transactional outbox: events written with the change, one delivery per (event, subscription)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import Shipment, TimestampedModel
from hub.connections.models import Subscription


class OutboxEvent(TimestampedModel):
    """A canonical event to publish, written in the same transaction as the change it reports."""

    event_type = models.CharField(max_length=40)
    shipment = models.ForeignKey(Shipment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    subject = models.CharField(
        max_length=64, help_text="Business key of the subject, e.g. the shipment reference."
    )
    shipment_sequence = models.PositiveBigIntegerField(
        default=0, help_text="Shipment.sequence after this change."
    )
    occurred_at = models.DateTimeField()
    data = models.JSONField(help_text="The envelope's data: the event and the subject's current state.")
    message = models.ForeignKey(
        "inbox.InboundMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="outbox_events"
    )
    correlation_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject} #{self.shipment_sequence}"


class Delivery(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending"  # due at next_attempt_at
        IN_FLIGHT = "in_flight"  # claimed by a worker until lease_until
        DELIVERED = "delivered"
        DEAD = "dead"  # dead-lettered: permanent error or attempts exhausted

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts in the current round (a replay starts a new one)."
    )
    attempts_total = models.PositiveIntegerField(default=0, help_text="Attempts over the delivery's life.")
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    # Which claim holds the row while it is in flight: a worker whose lease lapsed and whose rows were
    # claimed again renews, records and defers nothing, because its token no longer matches.
    claim = models.UUIDField(null=True, blank=True, editable=False)
    # Per-(subscription, shipment) order: only the lowest ordering_seq not yet settled may go out.
    ordering_key = models.CharField(max_length=64)
    ordering_seq = models.PositiveBigIntegerField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Fan-out (outbox_event_record) writes each pair once, even when replayed.
            models.UniqueConstraint(fields=["event", "subscription"], name="outbox_delivery_event_sub_uniq"),
        ]
        indexes = [
            # The deliverer's claim (delivery_batch_claim): due pending rows.
            models.Index(
                fields=["next_attempt_at"], name="outbox_delivery_due_idx", condition=Q(status="pending")
            ),
            # Head-of-line check per (subscription, shipment) in the same claim.
            models.Index(
                fields=["subscription", "ordering_key", "ordering_seq"],
                name="outbox_delivery_order_idx",
                condition=Q(status__in=["pending", "in_flight"]),
            ),
            # The sweeper's expired-lease scan.
            models.Index(
                fields=["lease_until"], name="outbox_delivery_lease_idx", condition=Q(status="in_flight")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.subscription.connection.slug} ({self.status})"


class DeliveryAttempt(models.Model):
    class Outcome(models.TextChoices):
        DELIVERED = "delivered"
        RETRY = "retry"
        DEAD = "dead"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="outbox_attempt_number_uniq"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
