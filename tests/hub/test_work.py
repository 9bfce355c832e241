"""The work runtime (hub/core/work.py): the registry every app fills, sends by task name, the one
sweeper, and timed wake-ups that survive a timer firing a moment early.

Sends are recorded by a sender set for the test (``work.sender_set``); the real Celery path of the
same names is what the e2e tests and every worker run use.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from celery_app import app
from hub.core import work
from hub.outbox import services as outbox
from hub.outbox.models import Delivery
from tests.factories.canonical import ShipmentFactory
from tests.hub.test_outbox_services import record, subscribe, webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    """Every task the runtime sends, as (task name, args, kwargs, countdown)."""
    calls: list[tuple] = []
    previous = work.sender_set(
        lambda task, args, kwargs, countdown: calls.append((task, args, kwargs, countdown))
    )
    cache.clear()
    yield calls
    work.sender_set(previous)


def test_every_app_registers_its_queue_under_a_task_celery_knows():
    by_name = {q.name: q for q in work.queues()}
    app.loader.import_default_modules()  # what a worker does at start: autodiscover every tasks module

    assert set(by_name) == {
        "inbox",
        "outbox",
        "workflows",
        "writes",
        "polls",
        "replay-jobs",
        "reconciliation",
    }
    assert {q.name for q in by_name.values() if not q.keyed} == {"inbox", "outbox"}
    for q in by_name.values():
        assert q.task in app.tasks, f"{q.name}: no Celery task named {q.task}"
    assert work.queue("outbox").task == "hub.outbox.drain"


def test_a_queue_must_be_either_drained_or_keyed_and_names_are_unique():
    with pytest.raises(ValueError, match="exactly one"):
        work.WorkQueue(name="x", task="t", claim=print)
    with pytest.raises(ValueError, match="exactly one"):
        work.WorkQueue(name="x", task="t", claim=print, waiting=bool, due=list)
    with pytest.raises(ValueError, match="already registered"):
        work.register(work.WorkQueue(name="outbox", task="other.task", claim=print, waiting=bool))
    with pytest.raises(LookupError, match="no work queue 'nope'"):
        work.send("nope")


def test_wake_on_commit_sends_the_drain_by_name_once_after_commit(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        work.wake_on_commit("outbox")
        work.wake_on_commit("outbox")  # a wake-up is pending: not sent again
        assert sent == []  # nothing before the commit
    assert sent == [("hub.outbox.drain", [], {}, None)]


def test_sweep_gives_back_a_lapsed_claim_and_wakes_its_queue(sent, private_networks):
    subscribe(webhook("all"))
    delivery = record(ShipmentFactory()).deliveries.get()
    claim = outbox.delivery_batch_claim()
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    report = work.work_sweep()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.claim) == (Delivery.Status.PENDING, None)
    assert claim.token is not None and report["outbox_leases_expired"] == 1
    assert report["outbox_woken"] == 1
    assert ("hub.outbox.drain", [], {}, None) in sent
    assert not [s for s in sent if s[0] == "hub.inbox.drain"]  # nothing waits in the inbox


def test_sweep_sends_each_due_id_of_a_keyed_queue_and_survives_a_broken_queue(sent, monkeypatch):
    def broken() -> list:
        raise RuntimeError("table locked")

    monkeypatch.setitem(
        work._queues, "broken", work.WorkQueue(name="broken", task="hub.broken", claim=print, due=broken)
    )
    monkeypatch.setitem(
        work._queues, "few", work.WorkQueue(name="few", task="hub.few", claim=print, due=lambda: ["a", "b"])
    )

    report = work.work_sweep()

    assert [s[:2] for s in sent if s[0] == "hub.few"] == [("hub.few", ["a"]), ("hub.few", ["b"])]
    assert report["few_sent"] == 2 and "broken_sent" not in report


def test_a_timer_that_fires_before_its_work_is_due_sets_the_next_one(sent):
    due_at = time.time() + 0.6
    assert work.wake_at("outbox", due_at)
    assert not work.wake_at("outbox", due_at)  # one timer per slot
    (_task, _args, kwargs, countdown) = sent[-1]
    slot = kwargs["timer_slot"]
    assert slot * work.TIMER_SLOT_S >= due_at and countdown > 0.6 - 0.05

    # The timer fires a moment early (nothing is due yet): the drain releases its slot, so asking
    # again for the same due time sets a fresh timer instead of leaving the work to the sweeper.
    outbox.outbox_drain(timer_slot=slot)
    assert work.wake_at("outbox", due_at)
    assert len([s for s in sent if s[2].get("timer_slot") == slot]) == 2


def test_work_due_later_than_a_short_wait_is_left_to_the_sweeper(sent):
    assert not work.wake_at("outbox", time.time() + work.SHORT_WAKE_S + 5)
    assert sent == []
