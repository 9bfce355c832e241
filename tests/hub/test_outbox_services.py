"""hub.outbox: the transactional outbox and fan-out, per-shipment ordered claims, the retry schedule,
the CloudEvents envelope, the Redis-backed breaker and rate limit, leases, and sending to a real
HTTP peer (a local server; nothing is mocked)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical.contracts.v1 import EventType, MilestoneEvent
from canonical.milestones import MilestoneResult, shipment_apply_milestone
from canonical.models import Shipment, ShipmentEvent
from connectors import signing
from hub.connections.models import Connection, Subscription
from hub.connections.services import connection_save, subscription_save
from hub.deadletters.models import DeadLetter
from hub.deadletters.replay import dead_letter_replay
from hub.outbox import breaker
from hub.outbox import services as outbox
from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent
from hub.outbox.retry import MAX_BACKOFF_S, backoff_delay, is_retryable_status
from tests.factories.canonical import ShipmentFactory
from tests.support.broker import queue_purge, queue_size
from tests.support.claimers import claimers_race, claimers_while_held

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SECRET = "whsec-test"


@pytest.fixture(autouse=True)
def _private_networks_allowed(settings):
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = True  # the peers below listen on 127.0.0.1


def webhook(slug: str, url: str = "http://127.0.0.1:9/hook", **config) -> Connection:
    return connection_save(
        data={"slug": slug, "system": "partner", "connector": "webhook", "config": {"url": url, **config}},
        secret=SECRET,
    )


def subscribe(connection: Connection, *types: str, active: bool = True) -> Subscription:
    return subscription_save(data={"connection": connection, "event_types": list(types), "is_active": active})


def milestone(shipment: Shipment, event_type: EventType, minutes: int) -> MilestoneResult:
    event = MilestoneEvent.model_validate(
        {
            "event_type": event_type.value,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "shipment": {"reference": shipment.reference},
        }
    )
    return shipment_apply_milestone(event=event, source="test")


def record(shipment: Shipment, event_type: EventType = EventType.IN_TRANSIT, minutes: int = 0) -> OutboxEvent:
    with transaction.atomic():
        result = milestone(shipment, event_type, minutes)
        return outbox.outbox_event_record(result=result, subscriptions=outbox.subscriptions_active())


# --- Recording and fan-out ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_event_record_makes_one_delivery_per_matching_subscription():
    everything = subscribe(webhook("all-events"))
    delivered_only = subscribe(webhook("delivered-only"), "DELIVERED")
    transit_only = subscribe(webhook("transit-only"), "IN_TRANSIT", "DELAYED")
    subscribe(webhook("paused-sub"), active=False)
    paused_connection = webhook("paused-conn")
    subscribe(paused_connection)
    Connection.objects.filter(pk=paused_connection.pk).update(is_active=False)
    shipment = ShipmentFactory()

    in_transit = record(shipment, EventType.IN_TRANSIT, 10)
    delivered = record(shipment, EventType.DELIVERED, 20)

    assert set(in_transit.deliveries.values_list("subscription_id", flat=True)) == {
        everything.pk,
        transit_only.pk,
    }
    assert set(delivered.deliveries.values_list("subscription_id", flat=True)) == {
        everything.pk,
        delivered_only.pk,
    }


@pytest.mark.django_db
def test_event_without_interested_subscriptions_is_recorded_with_no_deliveries():
    subscribe(webhook("delivered-only"), "DELIVERED")

    event = record(ShipmentFactory(), EventType.IN_TRANSIT)

    assert OutboxEvent.objects.filter(pk=event.pk).exists()
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_delivery_is_unique_per_event_and_subscription():
    subscription = subscribe(webhook("all"))
    event = record(ShipmentFactory())
    existing = Delivery.objects.get(event=event)

    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            event=event,
            subscription=subscription,
            next_attempt_at=timezone.now(),
            ordering_key=existing.ordering_key,
            ordering_seq=existing.ordering_seq,
        )

    assert Delivery.objects.filter(event=event, subscription=subscription).count() == 1


@pytest.mark.django_db
def test_outbox_rows_commit_with_the_change_or_not_at_all():
    subscribe(webhook("all"))
    shipment = ShipmentFactory()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        record(shipment)
        raise Abort

    assert not ShipmentEvent.objects.filter(shipment=shipment).exists()
    assert not OutboxEvent.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_event_data_carries_the_shipment_state_and_sequence():
    subscribe(webhook("all"))
    shipment = ShipmentFactory()
    record(shipment, EventType.DELAYED, 5)

    event = record(shipment, EventType.IN_TRANSIT, 10)

    state = event.data["shipment"]
    assert (state["reference"], state["status"], state["sequence"]) == (shipment.reference, "IN_TRANSIT", 2)
    assert state["open_exceptions"] == ["DELAYED"]
    assert event.shipment_sequence == 2
    delivery = event.deliveries.get()
    assert (delivery.ordering_key, delivery.ordering_seq) == (str(shipment.pk), 2)


@pytest.mark.django_db
def test_outbox_wake_up_is_sent_only_on_commit(django_capture_on_commit_callbacks):
    subscribe(webhook("all"))
    queue_purge("outbound")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            record(ShipmentFactory())
        before = queue_size("outbound")
        for callback in callbacks:
            callback()
        after = queue_size("outbound")
    finally:
        queue_purge("outbound")

    assert (before, after) == (0, 1)


# --- Envelope ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_envelope_is_cloudevents_1_0():
    shipment = ShipmentFactory()
    event = record(shipment, EventType.DELIVERED, 30)

    envelope = outbox.envelope(event)

    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == str(event.id)
    assert envelope["source"] == "/crossdock/shipments"
    assert envelope["type"] == "crossdock.shipment.DELIVERED"
    assert datetime.fromisoformat(envelope["time"]) == T0 + timedelta(minutes=30)
    assert envelope["subject"] == shipment.reference
    assert envelope["data"]["event"]["event_type"] == "DELIVERED"
    assert envelope["data"]["shipment"]["status"] == "DELIVERED"
    json.dumps(envelope)  # serialisable as it stands


# --- Claiming in per-shipment order ------------------------------------------------------------------


@pytest.mark.django_db
def test_claim_returns_only_the_head_of_each_subscription_shipment_line():
    subscribe(webhook("all"))
    first, second = ShipmentFactory(), ShipmentFactory()
    a1 = record(first, EventType.DEPARTED_PICKUP, 10).deliveries.get()
    a2 = record(first, EventType.IN_TRANSIT, 20).deliveries.get()
    b1 = record(second, EventType.IN_TRANSIT, 10).deliveries.get()

    claimed = outbox.delivery_batch_claim()

    assert set(claimed.ids) == {a1.pk, b1.pk}
    assert outbox.delivery_batch_claim().ids == []  # a2 waits while a1 is in flight
    Delivery.objects.filter(pk=a1.pk).update(status=Delivery.Status.DELIVERED)
    assert outbox.delivery_batch_claim().ids == [a2.pk]


@pytest.mark.django_db
def test_each_subscription_has_its_own_line_for_the_same_shipment():
    fast, slow = subscribe(webhook("fast")), subscribe(webhook("slow"))
    shipment = ShipmentFactory()
    record(shipment, EventType.DEPARTED_PICKUP, 10)
    record(shipment, EventType.IN_TRANSIT, 20)
    fast_first = Delivery.objects.get(subscription=fast, ordering_seq=1)
    Delivery.objects.filter(pk=fast_first.pk).update(status=Delivery.Status.DELIVERED)

    claimed = Delivery.objects.filter(pk__in=outbox.delivery_batch_claim().ids)

    assert set(claimed.values_list("subscription_id", "ordering_seq")) == {(fast.pk, 2), (slow.pk, 1)}


@pytest.mark.django_db
def test_claim_skips_deliveries_not_yet_due_and_a_dead_head_does_not_block_its_line():
    subscribe(webhook("all"))
    shipment = ShipmentFactory()
    head = record(shipment, EventType.DEPARTED_PICKUP, 10).deliveries.get()
    nxt = record(shipment, EventType.IN_TRANSIT, 20).deliveries.get()
    Delivery.objects.filter(pk=head.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert outbox.delivery_batch_claim().ids == []  # the head is not due, and the next waits for it

    Delivery.objects.filter(pk=head.pk).update(status=Delivery.Status.DEAD)
    assert outbox.delivery_batch_claim().ids == [nxt.pk]


def _deliveries_for(count: int, *, followers: bool) -> tuple[set, set]:
    subscribe(webhook("all"))
    heads, tails = set(), set()
    for index in range(count):
        shipment = ShipmentFactory()
        heads.add(record(shipment, EventType.DEPARTED_PICKUP, 10).deliveries.get().pk)
        if followers and index % 2 == 0:
            tails.add(record(shipment, EventType.IN_TRANSIT, 20).deliveries.get().pk)
    return heads, tails


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_delivery_claimers_never_get_the_same_row():
    heads, tails = _deliveries_for(30, followers=True)

    claims = claimers_race(lambda: outbox.delivery_batch_claim(limit=3).ids)

    assert not claims.errors
    a, b = claims.a, claims.b
    assert len(a) + len(b) == len(set(a) | set(b))
    assert set(a) | set(b) == heads  # every head once; no follower while its head is in flight
    assert not (set(a) | set(b)) & tails


@pytest.mark.django_db(transaction=True)
def test_delivery_claimer_skips_rows_held_by_another_claimer():
    heads, _ = _deliveries_for(8, followers=False)

    claims = claimers_while_held(
        lambda: outbox.delivery_batch_claim(limit=3).ids, lambda: outbox.delivery_batch_claim(limit=100).ids
    )

    assert not claims.errors
    claimed = {"a": claims.a, "b": claims.b}
    assert (len(claimed["a"]), len(claimed["b"])) == (3, 5)
    assert set(claimed["a"]).isdisjoint(claimed["b"])
    assert set(claimed["a"]) | set(claimed["b"]) == heads


# --- Retry schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 5.0), (2, 10.0), (3, 20.0), (6, 160.0)])
def test_backoff_is_full_jitter_between_zero_and_base_times_two_to_the_attempt(attempt: int, ceiling: float):
    rng = random.Random(1234)
    delays = [backoff_delay(attempt=attempt, base_s=5.0, rng=rng) for _ in range(2000)]

    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(delays) < ceiling * 0.05
    assert max(delays) > ceiling * 0.95


def test_backoff_draws_from_the_given_random_source():
    assert backoff_delay(attempt=3, base_s=5.0, rng=random.Random(42)) == random.Random(42).uniform(0, 20.0)


def test_backoff_is_capped():
    rng = random.Random(9)
    delays = [backoff_delay(attempt=40, base_s=60.0, rng=rng) for _ in range(500)]

    assert max(delays) <= MAX_BACKOFF_S
    assert max(delays) > MAX_BACKOFF_S * 0.9


def test_retry_after_is_a_floor_on_the_backoff():
    rng = random.Random(3)
    delays = [backoff_delay(attempt=1, base_s=5.0, retry_after_s=120.0, rng=rng) for _ in range(200)]

    assert all(d == 120.0 for d in delays)


def test_backoff_above_retry_after_is_kept():
    rng = random.Random(5)
    delays = [backoff_delay(attempt=8, base_s=5.0, retry_after_s=1.0, rng=rng) for _ in range(200)]

    assert all(d >= 1.0 for d in delays)
    assert max(delays) > 100.0


def test_retry_after_beyond_the_cap_is_capped():
    assert backoff_delay(attempt=1, base_s=5.0, retry_after_s=10 * MAX_BACKOFF_S) == MAX_BACKOFF_S


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_server_errors_are_retryable(status: int):
    assert is_retryable_status(status) is True


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 409, 410, 413, 422])
def test_other_client_errors_and_redirects_are_not_retryable(status: int):
    assert is_retryable_status(status) is False


# --- Rate limit (real Redis; the breaker's own tests are in test_breaker.py) -----------------------


def _start_of_a_second() -> None:
    # The limit counts per wall-clock second: start early in one so the test never straddles two.
    while time.time() % 1.0 > 0.3:
        time.sleep(0.02)


def test_rate_limit_grants_per_second_slots_then_asks_to_wait():
    conn_id, other = uuid.uuid4(), uuid.uuid4()
    _start_of_a_second()

    waits = [breaker.rate_limit_take(conn_id, 3) for _ in range(4)]
    other_wait = breaker.rate_limit_take(other, 3)

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.0 < waits[3] <= 1.001
    assert other_wait == 0.0


def test_no_rate_limit_configured_never_waits():
    conn_id = uuid.uuid4()

    assert all(breaker.rate_limit_take(conn_id, None) == 0.0 for _ in range(50))


# --- Leases -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_delivery_lease_returns_it_to_pending_now():
    subscribe(webhook("all"))
    abandoned = record(ShipmentFactory()).deliveries.get()
    working = record(ShipmentFactory()).deliveries.get()
    assert set(outbox.delivery_batch_claim().ids) == {abandoned.pk, working.pk}
    Delivery.objects.filter(pk=abandoned.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    returned = outbox.delivery_leases_expire()

    assert returned == 1
    back = Delivery.objects.get(pk=abandoned.pk)
    assert (back.status, back.lease_until) == ("pending", None)
    assert back.next_attempt_at <= timezone.now()
    assert back.attempts == 0  # a lost attempt is not counted against the delivery
    assert Delivery.objects.get(pk=working.pk).status == "in_flight"
    assert outbox.deliveries_due_exist() is True


# --- Sending to a real HTTP peer ----------------------------------------------------------------------


@dataclass
class Peer:
    url: str = ""
    responses: deque = field(default_factory=deque)
    requests: list = field(default_factory=list)

    def reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.responses.append((status, headers or {}, body))


@pytest.fixture
def peer():
    state = Peer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status, headers, payload = state.responses.popleft() if state.responses else (200, {}, b"ok")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def _send_due() -> list:
    claim = outbox.delivery_batch_claim()
    outbox.delivery_batch_send(claim)
    return claim.ids


@pytest.mark.django_db
def test_2xx_delivers_a_signed_cloudevent_with_the_delivery_id_as_idempotency_key(peer):
    subscribe(webhook("peer", peer.url))
    event = record(ShipmentFactory(), EventType.IN_TRANSIT)
    delivery = event.deliveries.get()
    peer.reply(202, body=b"thanks")

    _send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 202)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.outcome, attempt.status_code, attempt.response_excerpt) == ("delivered", 202, "thanks")
    headers, body = peer.requests[0]
    assert headers["idempotency-key"] == str(delivery.pk)
    assert headers["content-type"].startswith("application/cloudevents+json")
    signing.verify(SECRET, body, headers["x-crossdock-signature"])
    sent = json.loads(body)
    assert (sent["specversion"], sent["id"], sent["type"]) == (
        "1.0",
        str(event.pk),
        "crossdock.shipment.IN_TRANSIT",
    )


@pytest.mark.django_db
def test_5xx_with_retry_after_schedules_a_retry_no_sooner_than_the_peer_asked(peer):
    subscribe(webhook("peer", peer.url, backoff_base_s=1))
    delivery = record(ShipmentFactory()).deliveries.get()
    peer.reply(503, {"Retry-After": "120"}, b"busy")
    before = timezone.now()

    _send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.outcome == "retry"
    assert attempt.next_attempt_at == delivery.next_attempt_at
    assert not DeadLetter.objects.exists()
    assert outbox.delivery_batch_claim().ids == []  # not due yet


@pytest.mark.django_db
def test_4xx_dead_letters_at_once(peer):
    connection = webhook("peer", peer.url)
    subscribe(connection)
    delivery = record(ShipmentFactory()).deliveries.get()
    peer.reply(400, body=b'{"error": "bad field"}')

    _send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    letter = DeadLetter.objects.get(delivery=delivery)
    assert (letter.stage, letter.status, letter.connection_id) == ("deliver", "open", connection.pk)
    assert "HTTP 400" in letter.reason
    assert letter.error_class == "PermanentError"
    assert json.loads(bytes(letter.payload))["id"] == str(delivery.event_id)


@pytest.mark.django_db
def test_transient_errors_dead_letter_after_max_attempts(peer):
    subscribe(webhook("peer", peer.url, max_attempts=2, backoff_base_s=0.01))
    delivery = record(ShipmentFactory()).deliveries.get()
    peer.reply(500)
    peer.reply(502)

    _send_due()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    _send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.attempts_total) == ("dead", 2, 2)
    assert list(delivery.attempt_log.values_list("number", "outcome")) == [(1, "retry"), (2, "dead")]
    letter = DeadLetter.objects.get(delivery=delivery)
    assert "gave up after 2 attempts" in letter.reason
    assert letter.error_class == "TransientError"


@pytest.mark.django_db
def test_open_breaker_defers_deliveries_without_spending_attempts(peer, settings):
    settings.CROSSDOCK_BREAKER_MIN_CALLS = 1
    settings.CROSSDOCK_BREAKER_OPEN_S = 60
    subscribe(webhook("peer", peer.url, backoff_base_s=0.01))
    first = record(ShipmentFactory()).deliveries.get()
    second = record(ShipmentFactory()).deliveries.get()
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    peer.reply(500)

    _send_due()  # the failure opens the circuit
    Delivery.objects.filter(pk__in=[first.pk, second.pk]).update(next_attempt_at=timezone.now())
    _send_due()

    assert len(peer.requests) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts) == ("pending", 1)
    assert (second.status, second.attempts) == ("pending", 0)
    assert second.last_error == "deferred: circuit open"
    assert second.next_attempt_at > timezone.now() + timedelta(seconds=30)


@pytest.mark.django_db
def test_rate_limit_defers_sends_over_the_limit(peer):
    subscribe(webhook("peer", peer.url, rate_limit_per_s=2))
    deliveries = [record(ShipmentFactory()).deliveries.get() for _ in range(5)]
    _start_of_a_second()

    _send_due()

    statuses = sorted(
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("status", flat=True)
    )
    assert statuses == ["delivered", "delivered", "pending", "pending", "pending"]
    assert len(peer.requests) == 2
    assert set(Delivery.objects.filter(status="pending").values_list("last_error", "attempts")) == {
        ("deferred: rate limited", 0)
    }


@pytest.mark.django_db
def test_claim_whose_lease_expired_sends_nothing_and_the_new_claim_sends_once(peer):
    subscribe(webhook("peer", peer.url))
    delivery = record(ShipmentFactory()).deliveries.get()
    stale = outbox.delivery_batch_claim()
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert outbox.delivery_leases_expire() == 1

    outbox.delivery_batch_send(stale)  # the slow worker wakes up after losing its lease

    assert peer.requests == []
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"
    _send_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts_total, len(peer.requests)) == ("delivered", 1, 1)


@pytest.mark.django_db
def test_a_worker_whose_rows_were_claimed_again_records_nothing_over_the_new_claim(peer):
    subscribe(webhook("peer", peer.url))
    delivery = record(ShipmentFactory()).deliveries.get()
    stale = outbox.delivery_batch_claim()
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    outbox.delivery_leases_expire()
    fresh = outbox.delivery_batch_claim()  # in flight again, under another worker's claim
    assert fresh.ids == stale.ids and fresh.token != stale.token

    outbox.delivery_batch_send(stale)  # the slow worker wakes up: the row is in flight, but not its

    assert peer.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claim, delivery.attempts_total) == ("in_flight", fresh.token, 0)
    assert outbox._deliveries_lease_renew(stale) == 0  # its heartbeat cannot extend the new lease
    outbox.delivery_batch_send(fresh)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claim, delivery.attempts_total) == ("delivered", None, 1)
    assert len(peer.requests) == 1


@pytest.mark.django_db
def test_replayed_dead_delivery_gets_a_fresh_round_and_the_letter_is_marked_replayed(peer):
    subscribe(webhook("peer", peer.url))
    delivery = record(ShipmentFactory()).deliveries.get()
    peer.reply(410)
    _send_due()
    letter = DeadLetter.objects.get(delivery=delivery)

    outcome = dead_letter_replay(letter_id=letter.pk, actor="ops", reason="peer fixed")

    assert outcome.succeeded is None  # delivery replays complete asynchronously
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.attempts_total) == ("pending", 0, 1)
    peer.reply(200)
    _send_due()
    delivery.refresh_from_db()
    letter.refresh_from_db()
    assert (delivery.status, delivery.attempts_total) == ("delivered", 2)
    assert (letter.status, letter.replay_count) == ("replayed", 1)
    # Every attempt went out under the same idempotency key.
    assert {headers["idempotency-key"] for headers, _ in peer.requests} == {str(delivery.pk)}
