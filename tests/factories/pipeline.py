"""Pipeline factories: connections, subscriptions, delivery attempts, and messages run through the
real inbox services (so traces, events, outbox rows and dead letters are what production writes)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import factory

from hub.connections.models import Connection, Subscription
from hub.inbox.models import InboundMessage
from hub.inbox.services import inbound_batch_claim, inbound_message_process, inbound_message_receive
from hub.outbox.models import Delivery, DeliveryAttempt


class ConnectionFactory(factory.django.DjangoModelFactory):
    """A connection written directly (no config validation); use ``connection_save`` to test that."""

    class Meta:
        model = Connection
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"conn-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    system = Connection.System.PARTNER
    connector = "canonical"
    config = factory.LazyFunction(dict)


class WebhookConnectionFactory(ConnectionFactory):
    system = Connection.System.ERP
    connector = "webhook"
    config = factory.LazyAttribute(lambda o: {"url": f"https://{o.slug}.example.com/hook"})


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    connection = factory.SubFactory(WebhookConnectionFactory)
    event_types = factory.LazyFunction(list)


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    number = factory.Sequence(lambda n: n + 1)
    started_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    duration_ms = 120
    status_code = 503
    outcome = DeliveryAttempt.Outcome.RETRY
    error = "HTTP 503 Service Unavailable"
    response_excerpt = "upstream busy"


def milestone(reference: str, event_type: str = "DEPARTED_PICKUP", **extra: object) -> dict:
    """A canonical milestone event document (contract v1)."""
    return {
        "event_id": extra.pop("event_id", None) or f"evt-{uuid.uuid4().hex[:12]}",
        "event_type": event_type,
        "occurred_at": extra.pop("occurred_at", None) or dt.datetime.now(dt.UTC).isoformat(),
        "shipment": {"reference": reference},
        **extra,
    }


def receive_and_process(
    connection: Connection, body: bytes | dict | list, *, correlation_id: str | None = None
) -> InboundMessage:
    """Store a message through ``inbound_message_receive`` and run it through the pipeline now."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    received = inbound_message_receive(
        connection=connection,
        body=raw,
        content_type="application/json",
        headers={"content-type": "application/json", "user-agent": "pytest"},
        idempotency_key=None,
        correlation_id=correlation_id or f"cid-{uuid.uuid4().hex[:12]}",
    )
    assert received.created
    assert received.message.pk in inbound_batch_claim()
    inbound_message_process(message_id=received.message.pk)
    received.message.refresh_from_db()
    return received.message


def delivery_make_dead(delivery: Delivery, *, reason: str = "gave up after 1 attempts; HTTP 503") -> None:
    """Fail a delivery the way the deliverer does: one attempt row, status dead, a deliver letter."""
    from hub.deadletters.services import dead_letter_record

    DeliveryAttemptFactory(delivery=delivery, number=1, outcome=DeliveryAttempt.Outcome.DEAD)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.DEAD, attempts=1, attempts_total=1, last_status_code=503, last_error=reason
    )
    dead_letter_record(
        stage="deliver",
        reason=reason,
        error_class="TransientError",
        connection=delivery.subscription.connection,
        payload=json.dumps(delivery.event.data).encode(),
        payload_content_type="application/cloudevents+json",
        delivery=delivery,
        correlation_id=delivery.event.correlation_id,
    )
