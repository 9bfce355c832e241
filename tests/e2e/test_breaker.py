"""The outbound circuit breaker end to end: a real `celery worker` (tests/e2e/worker.py) delivering to a
real local HTTP receiver.

- A flaky receiver (it fails the first attempt of every other delivery) must not hold a backlog
  back: the breaker's failure rate stays below its threshold, so 100 deliveries drain on their own
  back-off schedule, each delivered exactly once.
- A dead receiver (always 503) still opens the circuit; while it is open nothing is sent and no
  attempt is spent, and each cool-off ends with a few probes, not a batch.

Deliveries are written straight through the outbox service in one transaction (the pipeline up to
the outbox is covered by test_pipeline.py), so the clock starts when they are committed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import transaction

from canonical.contracts.v1 import EventType, MilestoneEvent
from canonical.milestones import shipment_apply_milestone
from hub.connections.models import Connection
from hub.connections.services import connection_save, subscription_save
from hub.core.schedule import PERIODIC_TASKS
from hub.core.work import work_sweep
from hub.deadletters.models import DeadLetter
from hub.outbox import breaker
from hub.outbox import services as outbox
from hub.outbox.models import Delivery, DeliveryAttempt
from hub.outbox.retry import MAX_BACKOFF_S
from tests.e2e.conftest import BASE_TIME, wait_until
from tests.factories.canonical import ShipmentFactory

# The receiver listens on 127.0.0.1: the URL guard is lifted for these tests (checked on save) and
# in the worker (started with private_networks=True, tests/e2e/worker.py).
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_networks"),
]

FLAKY_DELIVERIES = 100  # deliveries in the backlog
BACKOFF_BASE_S = 0.2  # seconds; the connection's back-off base (the ceiling of the first retry's wait)
# Seconds a 2-core machine shared with other work may take to claim, send and record 100 deliveries
# and 50 retries with no back-off at all (measured: about 3 s on a quiet machine). Generous, yet
# below one breaker cool-off: a drain that waited out even one open circuit cannot meet the bound.
WORK_ALLOWANCE_S = 20.0
SCHEDULE_MULTIPLE = 5  # how many times its back-off schedule a delivery may take on top of the work
DEAD_DELIVERIES = 30  # more than the default breaker_min_calls, all due at once
DEAD_OPEN_S = 5  # seconds; the dead receiver's cool-off (long enough to watch it stay shut)
OBSERVE_OPEN_S = 2.5  # seconds of watching an open circuit send nothing (less than DEAD_OPEN_S)


@pytest.fixture
def worker(celery_worker_process):
    assert celery_worker_process.alive, f"the session worker is down; see {celery_worker_process.log_path}"
    return celery_worker_process


@dataclass
class Receiver:
    """A local webhook receiver. ``mode``: "flaky" fails the first attempt of every other new
    Idempotency-Key (then accepts its retries); "dead" answers 503 to everything; "up" accepts all."""

    mode: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[tuple[float, str, int]] = field(default_factory=list)  # (at, key, status)
    first_seen: dict[str, int] = field(default_factory=dict)  # key -> order of its first arrival

    def answer(self, key: str) -> int:
        with self.lock:
            first = key not in self.first_seen
            if first:
                self.first_seen[key] = len(self.first_seen)
            every_other_first = self.mode == "flaky" and first and self.first_seen[key] % 2 == 1
            status = 503 if self.mode == "dead" or every_other_first else 200
            self.records.append((time.time(), key, status))
            return status

    def snapshot(self) -> list[tuple[float, str, int]]:
        with self.lock:
            return list(self.records)

    def delivered(self) -> Counter:
        return Counter(key for _, key, status in self.snapshot() if status == 200)


@pytest.fixture
def receiver():
    made: list[ThreadingHTTPServer] = []

    def start(mode: str) -> tuple[Receiver, str]:
        state = Receiver(mode)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # see bench/sink.py: keep-alive requests without 40 ms stalls

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = state.answer(self.headers.get("Idempotency-Key") or "")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
        return state, f"http://127.0.0.1:{server.server_address[1]}/hook"

    yield start
    for server in made:
        server.shutdown()
        server.server_close()


def _backlog(url: str, n: int, **config) -> Connection:
    """A webhook connection subscribed to everything, and ``n`` deliveries to it committed at once."""
    connection = connection_save(
        data={
            "slug": "partner-out",
            "system": "partner",
            "connector": "webhook",
            "config": {"url": url, "backoff_base_s": BACKOFF_BASE_S, **config},
        },
        secret="s3cret-for-signing",
    )
    subscription_save(data={"connection": connection, "event_types": []})
    shipments = [ShipmentFactory() for _ in range(n)]
    with transaction.atomic():
        subscriptions = outbox.subscriptions_active()
        for shipment in shipments:
            event = MilestoneEvent.model_validate(
                {
                    "event_type": EventType.IN_TRANSIT.value,
                    "occurred_at": BASE_TIME.isoformat(),
                    "shipment": {"reference": shipment.reference},
                }
            )
            outbox.outbox_event_record(
                result=shipment_apply_milestone(event=event, source="test"), subscriptions=subscriptions
            )
    return connection


def _beat() -> Callable[[], None]:
    """The pipeline sweep on beat's schedule (no beat process runs in these tests): it wakes
    deliveries due later than a timed wake-up covers, such as those held for a whole cool-off."""
    every_s = PERIODIC_TASKS["sweep"].every_s
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            work_sweep()

    return tick


def _backoff_schedule_s(*, failures: int, base_s: float) -> float:
    """The longest a delivery can wait on its back-off after ``failures`` failed attempts (full
    jitter: after attempt n the wait is at most base * 2^(n-1), capped)."""
    return sum(min(MAX_BACKOFF_S, base_s * 2 ** (n - 1)) for n in range(1, failures + 1))


def test_flaky_receiver_failing_half_of_first_attempts_drains_100_deliveries_on_their_backoff(
    worker, receiver
):
    state, url = receiver("flaky")
    # Each delivery fails at most once, so its schedule is one retry's back-off; a breaker that
    # opened even once would add a whole cool-off (CROSSDOCK_BREAKER_OPEN_S) to the deliveries it held.
    bound_s = WORK_ALLOWANCE_S + SCHEDULE_MULTIPLE * _backoff_schedule_s(failures=1, base_s=BACKOFF_BASE_S)
    assert bound_s < settings.CROSSDOCK_BREAKER_OPEN_S, "the bound must be tighter than one cool-off"
    connection = _backlog(url, FLAKY_DELIVERIES, max_attempts=8)
    committed_at = time.time()
    states_seen: set[str] = set()
    beat = _beat()

    def all_delivered() -> bool:
        states_seen.add(breaker.breaker_state(connection.pk))
        return len(state.delivered()) == FLAKY_DELIVERIES

    try:
        wait_until(
            all_delivered,
            timeout=bound_s,
            what=f"{FLAKY_DELIVERIES} deliveries within {bound_s:.1f}s",
            each=beat,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; {len(state.delivered())} delivered, circuit states seen {states_seen}"
        ) from None
    drained_s = max(at for at, _, status in state.snapshot() if status == 200) - committed_at
    wait_until(
        lambda: set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED},
        timeout=10,
        what="every delivery recorded as delivered",
    )
    time.sleep(1.0)  # anything extra (a duplicate send) would arrive now

    assert drained_s <= bound_s, f"drained in {drained_s:.1f}s; bound {bound_s:.1f}s"
    assert states_seen == {"closed"}, f"the circuit left closed: {states_seen}"
    delivered = state.delivered()
    assert set(delivered) == {str(pk) for pk in Delivery.objects.values_list("id", flat=True)}
    assert set(delivered.values()) == {1}, "a delivery reached the receiver twice"
    # Half the keys failed once: 100 first attempts + 50 retries, each recorded as one attempt.
    records = state.snapshot()
    assert Counter(status for _, _, status in records) == {200: 100, 503: 50}
    assert DeliveryAttempt.objects.count() == 150
    assert sorted(Counter(Delivery.objects.values_list("attempts", flat=True)).items()) == [(1, 50), (2, 50)]
    assert not DeadLetter.objects.exists()


def test_dead_receiver_opens_the_circuit_spends_no_attempts_while_open_and_probes_a_few(worker, receiver):
    state, url = receiver("dead")
    connection = _backlog(url, DEAD_DELIVERIES, max_attempts=50, breaker_open_s=DEAD_OPEN_S)

    wait_until(lambda: breaker.breaker_state(connection.pk) == "open", timeout=30, what="the circuit to open")
    opened_at = time.monotonic()
    # A batch the other worker process had admitted just before the circuit opened may still be
    # finishing: wait until every request the receiver saw is recorded as an attempt.
    wait_until(
        lambda: len(state.snapshot()) == DeliveryAttempt.objects.count(), timeout=2, what="attempts recorded"
    )
    sent = len(state.snapshot())
    spent = DeliveryAttempt.objects.count()
    # It opened on the failure rate: at least min_calls sends, all failed, one attempt row each.
    assert sent >= settings.CROSSDOCK_BREAKER_MIN_CALLS
    assert spent == sent
    assert {status for _, _, status in state.snapshot()} == {503}

    # While open: no request, no attempt spent, deliveries wait (pending, not dead).
    time.sleep(max(0.0, OBSERVE_OPEN_S - (time.monotonic() - opened_at)))
    assert breaker.breaker_state(connection.pk) == "open"
    assert len(state.snapshot()) == sent
    assert DeliveryAttempt.objects.count() == spent
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.PENDING}
    assert sum(Delivery.objects.values_list("attempts_total", flat=True)) == spent

    # The cool-off ends: the default number of probes go out (not a batch), fail, and it opens again.
    probes = settings.CROSSDOCK_BREAKER_PROBES
    wait_until(lambda: len(state.snapshot()) >= sent + probes, timeout=DEAD_OPEN_S + 10, what="the probes")
    wait_until(lambda: breaker.breaker_state(connection.pk) == "open", timeout=5, what="the circuit reopened")
    time.sleep(1.0)
    assert len(state.snapshot()) == sent + probes
    assert DeliveryAttempt.objects.count() == spent + probes
    assert not DeadLetter.objects.exists()
