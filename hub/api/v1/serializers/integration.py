"""Serializers for connections, subscriptions, messages, deliveries and dead letters."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from canonical.contracts.v1 import DOCUMENT_CONTRACTS, EventType
from canonical.models import Carrier, ShipmentEvent
from hub.api.v1.serializers.base import TIMESTAMPS, BusinessKeyRelatedField
from hub.connections import services as connection_services
from hub.connections.models import Connection, Subscription
from hub.core.payloads import payload_repr
from hub.deadletters.models import DeadLetter, ReplayJob
from hub.inbox.models import InboundMessage
from hub.outbox import breaker
from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent


class ConnectionSerializer(serializers.ModelSerializer):
    carrier = BusinessKeyRelatedField(
        key="scac", queryset=Carrier.objects.all(), required=False, allow_null=True
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Write-only; stored encrypted.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    document_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(DOCUMENT_CONTRACTS)),
        required=False,
        allow_empty=True,
        help_text="Canonical document kinds this connection may send, a subset of its connector's "
        "(GET /connectors lists them); empty: all of the connector's.",
    )
    inbound_url = serializers.SerializerMethodField()
    circuit = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = [
            "id",
            "slug",
            "name",
            "system",
            "connector",
            "config",
            "secret",
            "has_secret",
            "carrier",
            "document_kinds",
            "is_active",
            "inbound_url",
            "circuit",
            *TIMESTAMPS,
        ]

    def get_inbound_url(self, obj) -> str:
        return reverse("api-inbound", args=[obj.slug])

    def get_circuit(self, obj) -> str:
        return breaker.breaker_state(obj.pk)

    def create(self, validated_data):
        secret = validated_data.pop("secret", None)
        return connection_services.connection_save(data=validated_data, secret=secret)

    def update(self, instance, validated_data):
        secret = validated_data.pop("secret", None)
        return connection_services.connection_save(instance=instance, data=validated_data, secret=secret)


class SubscriptionSerializer(serializers.ModelSerializer):
    connection = BusinessKeyRelatedField(key="slug", queryset=Connection.objects.all())
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[t.value for t in EventType]), required=False, allow_empty=True
    )

    class Meta:
        model = Subscription
        fields = ["id", "connection", "event_types", "description", "is_active", *TIMESTAMPS]

    def create(self, validated_data):
        return connection_services.subscription_save(data=validated_data)

    def update(self, instance, validated_data):
        return connection_services.subscription_save(instance=instance, data=validated_data)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "status_code",
            "outcome",
            "error",
            "response_excerpt",
            "next_attempt_at",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    connection = serializers.CharField(source="subscription.connection.slug")
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "connection",
            "subscription",
            "status",
            "attempts",
            "attempts_total",
            "next_attempt_at",
            "delivered_at",
            "last_status_code",
            "last_error",
            "ordering_seq",
            "attempt_log",
        ]


class OutboxEventSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = OutboxEvent
        fields = [
            "id",
            "event_type",
            "subject",
            "shipment_sequence",
            "occurred_at",
            "created_at",
            "deliveries",
        ]


class DeadLetterBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "stage",
            "status",
            "reason",
            "error_class",
            "item_index",
            "waiting_for_shipment",
            "replay_count",
        ]


class InboundMessageSerializer(serializers.ModelSerializer):
    connection = serializers.CharField(source="connection.slug")

    class Meta:
        model = InboundMessage
        fields = [
            "id",
            "connection",
            "idempotency_key",
            "key_source",
            "content_type",
            "received_at",
            "correlation_id",
            "status",
            "attempts",
            "processed_at",
            "events_applied",
            "events_duplicate",
            "events_failed",
        ]


class MessageTraceSerializer(InboundMessageSerializer):
    """One message through every stage: what it produced, where it went, what failed."""

    headers = serializers.JSONField()
    body = serializers.SerializerMethodField()
    stages = serializers.JSONField(source="trace")
    events = serializers.SerializerMethodField()
    outbox_events = OutboxEventSerializer(many=True, read_only=True)
    dead_letters = DeadLetterBriefSerializer(many=True, read_only=True)

    class Meta(InboundMessageSerializer.Meta):
        fields = [
            *InboundMessageSerializer.Meta.fields,
            "headers",
            "body",
            "stages",
            "events",
            "outbox_events",
            "dead_letters",
        ]

    def get_body(self, obj) -> dict[str, str]:
        return payload_repr(obj.body)

    def get_events(self, obj) -> list[dict]:
        rows = (
            ShipmentEvent.objects.filter(source_message_id=obj.pk)
            .select_related("shipment")
            .order_by("occurred_at")
        )
        return [
            {
                "shipment": e.shipment.reference,
                "event_type": e.event_type,
                "occurred_at": e.occurred_at,
                "late": e.late,
            }
            for e in rows
        ]


class DeadLetterSerializer(serializers.ModelSerializer):
    connection = serializers.CharField(source="connection.slug")
    payload = serializers.SerializerMethodField()
    message = serializers.UUIDField(source="message_id", allow_null=True)
    delivery = serializers.UUIDField(source="delivery_id", allow_null=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "stage",
            "status",
            "reason",
            "error_class",
            "connection",
            "message",
            "item_index",
            "delivery",
            "payload",
            "payload_content_type",
            "waiting_for_shipment",
            "replay_count",
            "last_replayed_at",
            "last_replayed_by",
            "last_replay_reason",
            "correlation_id",
            *TIMESTAMPS,
        ]

    def get_payload(self, obj) -> dict[str, str]:
        return payload_repr(obj.payload)


class ReplayRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class BulkReplaySerializer(serializers.Serializer):
    connection = serializers.SlugField(required=False)
    stage = serializers.ChoiceField(choices=DeadLetter.Stage.choices, required=False)
    status = serializers.ChoiceField(
        choices=DeadLetter.Status.choices, required=False, default=DeadLetter.Status.OPEN
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    dry_run = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not attrs["dry_run"] and not attrs.get("reason"):
            raise serializers.ValidationError({"reason": "say why you replay (kept on every letter)"})
        return attrs


class BulkReplayDryRunSerializer(serializers.Serializer):
    """The answer to a bulk replay with ``dry_run``: what would be replayed (nothing is)."""

    dry_run = serializers.BooleanField()
    filters = serializers.DictField()
    count = serializers.IntegerField()
    sample = DeadLetterSerializer(many=True)


class ReplayJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ReplayJob
        fields = [
            "id",
            "status",
            "filters",
            "reason",
            "requested_by",
            "total",
            "replayed",
            "failed",
            "progress",
            "finished_at",
            *TIMESTAMPS,
        ]

    def get_progress(self, obj) -> float:
        return round((obj.replayed + obj.failed) / obj.total, 3) if obj.total else 1.0
