"""hub.core.lease: a claim's lease is renewed from a background thread while the work runs, only for
rows still claimed, and renewals stop when the work ends (normally or by an exception)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from hub.connections.services import connection_save
from hub.core.lease import lease_kept
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage


def _claimed(count: int) -> list:
    connection = connection_save(
        data={"slug": "lease-in", "system": "tms", "connector": "canonical", "config": {}}
    )
    for i in range(count):
        inbox.inbound_message_receive(
            connection=connection,
            body=json.dumps({"event_id": f"l-{i}"}).encode(),
            content_type="application/json",
            headers={},
            idempotency_key=f"lease-{i}",
            correlation_id="corr-lease",
        )
    return inbox.inbound_batch_claim()


def _renewer(ids: list, lease_s: float):
    def renew() -> int:
        return InboundMessage.objects.filter(Q(id__in=ids), status=InboundMessage.Status.PROCESSING).update(
            claimed_until=timezone.now() + timedelta(seconds=lease_s)
        )

    return renew


@pytest.mark.django_db(transaction=True)
def test_lease_is_renewed_while_the_work_runs_and_only_for_rows_still_claimed():
    ids = _claimed(3)
    short = timezone.now() + timedelta(seconds=1)
    InboundMessage.objects.filter(id__in=ids).update(claimed_until=short)
    # One row is finished meanwhile: a late renewal must leave it alone.
    InboundMessage.objects.filter(pk=ids[0]).update(
        status=InboundMessage.Status.PROCESSED, claimed_until=None
    )

    with lease_kept(_renewer(ids, lease_s=60), every_s=0.2, name="test"):
        time.sleep(1.0)

    rows = {m.pk: m for m in InboundMessage.objects.filter(id__in=ids)}
    assert rows[ids[0]].claimed_until is None
    for pk in ids[1:]:
        assert rows[pk].claimed_until > timezone.now() + timedelta(seconds=50)


@pytest.mark.django_db(transaction=True)
def test_renewals_stop_when_the_block_ends_even_by_an_exception():
    ids = _claimed(1)
    calls: list[float] = []
    renew = _renewer(ids, lease_s=60)

    def counting() -> int:
        calls.append(time.monotonic())
        return renew()

    with pytest.raises(RuntimeError), lease_kept(counting, every_s=0.1, name="test"):
        time.sleep(0.45)
        raise RuntimeError("the work failed")
    seen = len(calls)
    time.sleep(0.4)

    assert seen >= 2
    assert len(calls) == seen


@pytest.mark.django_db(transaction=True)
def test_a_failing_renewal_is_retried_on_the_next_beat():
    outcomes: list[str] = []

    def flaky() -> None:
        outcomes.append("call")
        if len(outcomes) == 1:
            raise ConnectionError("database restarting")

    with lease_kept(flaky, every_s=0.1, name="test"):
        time.sleep(0.5)

    assert len(outcomes) >= 3


@pytest.mark.django_db(transaction=True)
def test_a_drain_slower_than_its_lease_keeps_its_batch_while_the_sweeper_runs(settings, monkeypatch):
    from canonical.models import ShipmentEvent
    from tests.factories.canonical import ShipmentFactory

    settings.CROSSDOCK_INBOX_LEASE_S = 1  # renewed every third of a second
    shipment = ShipmentFactory()
    connection = connection_save(
        data={"slug": "slow-in", "system": "tms", "connector": "canonical", "config": {}}
    )
    inbox.inbound_message_receive(
        connection=connection,
        body=json.dumps(
            {
                "event_id": "slow-1",
                "event_type": "IN_TRANSIT",
                "occurred_at": "2026-11-20T14:05:00Z",
                "shipment": {"reference": shipment.reference},
            }
        ).encode(),
        content_type="application/json",
        headers={},
        idempotency_key="slow-1",
        correlation_id="corr-slow",
    )
    real_batch = inbox.inbound_batch_process

    def slow_batch(**kwargs):
        time.sleep(2.5)  # two and a half leases
        return real_batch(**kwargs)

    monkeypatch.setattr(inbox, "inbound_batch_process", slow_batch)
    expired: list[int] = []
    stop = threading.Event()

    def sweeper() -> None:
        try:
            while not stop.wait(0.1):
                expired.append(inbox.inbound_leases_expire())
        finally:
            connections.close_all()

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        assert inbox.inbox_drain(budget_s=10) == 1
    finally:
        stop.set()
        thread.join(timeout=10)

    assert expired and sum(expired) == 0, "the sweeper never took the batch from its live worker"
    message = InboundMessage.objects.get(idempotency_key="slow-1")
    assert message.status == InboundMessage.Status.PROCESSED
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1
