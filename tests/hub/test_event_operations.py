"""Subscriptions to a system of record (hub/outbox/services.py ``_perform_event_operation``): each
event becomes one ledger write in the peer; a retry after a peer error and a replay of the delivery
never write it twice."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from django.db import transaction

from canonical.contracts.v1 import MilestoneEvent
from canonical.milestones import shipment_apply_milestone
from connectors.errors import TransientError
from hub.connections.services import connection_save, subscription_save
from hub.ledger.models import SideEffect
from hub.outbox import services as outbox
from hub.outbox.models import Delivery, DeliveryAttempt
from tests.factories.canonical import ShipmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _event(shipment) -> Delivery:
    event = MilestoneEvent.model_validate(
        {
            "event_type": "IN_TRANSIT",
            "occurred_at": datetime(2026, 11, 20, 9, tzinfo=UTC).isoformat(),
            "shipment": {"reference": shipment.reference},
        }
    )
    with transaction.atomic():
        result = shipment_apply_milestone(event=event, source="test")
        row = outbox.outbox_event_record(result=result, subscriptions=outbox.subscriptions_active())
    return Delivery.objects.get(event=row)


def _send(delivery: Delivery) -> Delivery:
    claim = outbox.DeliveryClaim(uuid4(), [delivery.pk])
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.IN_FLIGHT, claim=claim.token)
    outbox.delivery_batch_send(claim)
    delivery.refresh_from_db()
    return delivery


@pytest.fixture
def subscribed(test_peer_connector):
    connection = connection_save(
        data={"slug": "crm-out", "system": "crm", "connector": "testpeer", "config": {}}
    )
    subscription_save(data={"connection": connection, "event_types": []})
    return test_peer_connector.PEER


def test_an_event_becomes_one_write_in_the_peer(subscribed):
    delivery = _send(_event(ShipmentFactory()))
    assert delivery.status == "delivered"
    effect = SideEffect.objects.get()
    assert (effect.operation, effect.business_key, effect.external_id) == (
        "record.create",
        f"event:{delivery.event_id}",
        "rec-1",
    )
    assert subscribed.records["rec-1"]["type"] == "crossdock.shipment.IN_TRANSIT"
    assert DeliveryAttempt.objects.get(delivery=delivery).response_excerpt == "record.create: rec-1"


def test_a_peer_error_is_retried_and_a_replayed_delivery_writes_nothing_new(subscribed):
    subscribed.fail_next.append(TransientError("CRM restarting"))
    delivery = _send(_event(ShipmentFactory()))
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    delivery = _send(delivery)
    assert delivery.status == "delivered"
    outbox.delivery_requeue(delivery=delivery)  # an operator's replay
    delivery = _send(Delivery.objects.get(pk=delivery.pk))
    assert delivery.status == "delivered"
    assert subscribed.writes == 1
    assert SideEffect.objects.get().attempts == 2
