"""The event pipeline end to end: API -> inbox -> worker -> shipment state -> outbox -> HTTP sink.

Real pieces only: a `celery worker` subprocess (tests/e2e/worker.py) on the real Redis broker and the
pytest PostgreSQL database, the webhook connector posting to a real HTTP sink (bench/sink.py), and
the public API v1 driven with an admin API key. The tests wait (bounded) for the observable outcome.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter, defaultdict

import pytest
from django.conf import settings

from canonical.models import Shipment, ShipmentEvent
from connectors import signing
from hub.core.work import work_sweep
from hub.deadletters.models import DeadLetter
from hub.inbox.models import InboundMessage
from hub.outbox import breaker
from hub.outbox.models import Delivery, DeliveryAttempt, OutboxEvent
from tests.e2e.conftest import milestone, wait_until

# The sink listens on 127.0.0.1: the URL policy must allow it in the test process (a connection's URL
# is checked on save) and in the worker (started with private_networks=True, tests/e2e/worker.py).
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_networks"),
]

SECRET = "s3cret-for-signing"
SETTLE_S = 1.0  # seconds to keep watching for anything extra after the expected state is reached
PROBLEM = "application/problem+json"
SINK_DELAY_S = 2.0  # seconds the sink takes per request in the crash test

# A valid milestone set at increasing times (minutes after the base time).
MILESTONES = [
    ("TENDER_ACCEPTED", 0),
    ("ARRIVED_AT_PICKUP", 60),
    ("DEPARTED_PICKUP", 90),
    ("IN_TRANSIT", 180),
    ("DELAYED", 240),
    ("EXCEPTION_RESOLVED", 300),
    ("ARRIVED_AT_DELIVERY", 600),
    ("DELIVERED", 630),
    ("POD_RECEIVED", 700),
]


@pytest.fixture
def worker(celery_worker_process):
    assert celery_worker_process.alive, f"the session worker is down; see {celery_worker_process.log_path}"
    return celery_worker_process


def _all_messages_done() -> bool:
    pending = InboundMessage.objects.filter(
        status__in=[InboundMessage.Status.RECEIVED, InboundMessage.Status.PROCESSING]
    )
    return InboundMessage.objects.exists() and not pending.exists()


def _deliveries_settled(expected: int):
    """All ``expected`` deliveries exist and none is pending or in flight (delivered or dead)."""
    rows = list(Delivery.objects.values_list("status", flat=True))
    busy = {Delivery.Status.PENDING, Delivery.Status.IN_FLIGHT}
    return len(rows) == expected and not any(s in busy for s in rows)


def _keys(records: list[dict]) -> list[str]:
    return [r["idempotency_key"] for r in records]


# --- 1, 2: exactly once ------------------------------------------------------------------------------


def test_duplicate_idempotency_key_is_stored_once_and_applied_once(worker, pipeline, sink, unique):
    ref = f"SHP-{unique}"
    _shipments_routed(pipeline, sink, [ref])

    key = f"idem-{unique}"
    first = pipeline.post_inbound("tms-in", milestone(ref, "DEPARTED_PICKUP", 90), HTTP_IDEMPOTENCY_KEY=key)
    # A retry by the sender under the same key: even with a different body, it is the same message.
    second = pipeline.post_inbound("tms-in", milestone(ref, "IN_TRANSIT", 180), HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "accepted"
    assert second.status_code == 200, second.content
    assert second.json() == {"message_id": first.json()["message_id"], "status": "duplicate"}

    wait_until(lambda: len(sink.delivered()) >= 1, what="the delivery at the sink")
    time.sleep(SETTLE_S)

    message = InboundMessage.objects.get()
    assert (message.idempotency_key, message.key_source) == (key, InboundMessage.KeySource.HEADER)
    assert message.status == InboundMessage.Status.PROCESSED
    assert message.events_applied == 1
    events = list(ShipmentEvent.objects.values_list("event_type", flat=True))
    assert events == ["DEPARTED_PICKUP"]
    assert Shipment.objects.get(reference=ref).sequence == 1
    assert len(sink.records()) == 1
    assert sink.delivered()[0]["envelope"]["data"]["event"]["event_type"] == "DEPARTED_PICKUP"


def test_duplicate_event_id_in_a_later_batch_is_applied_once_and_the_rest_apply(
    worker, pipeline, sink, unique
):
    ref = f"SHP-{unique}"
    _shipments_routed(pipeline, sink, [ref])

    repeated = milestone(ref, "ARRIVED_AT_PICKUP", 60, event_id=f"ev-{unique}-1")
    single = pipeline.send("tms-in", repeated)
    wait_until(_all_messages_done, what="the single message processed")
    batch = pipeline.send(
        "tms-in",
        [
            milestone(ref, "DEPARTED_PICKUP", 90, event_id=f"ev-{unique}-2"),
            repeated,
            milestone(ref, "IN_TRANSIT", 180, event_id=f"ev-{unique}-3"),
        ],
    )
    assert batch["message_id"] != single["message_id"]
    wait_until(_all_messages_done, what="the batch processed")
    wait_until(lambda: len(sink.delivered()) >= 3, what="three deliveries at the sink")
    time.sleep(SETTLE_S)

    events = list(ShipmentEvent.objects.order_by("occurred_at").values_list("source_event_id", flat=True))
    assert events == [f"ev-{unique}-1", f"ev-{unique}-2", f"ev-{unique}-3"]
    single_msg = InboundMessage.objects.get(pk=single["message_id"])
    assert (single_msg.key_source, single_msg.events_applied) == (InboundMessage.KeySource.NATURAL, 1)
    batch_msg = InboundMessage.objects.get(pk=batch["message_id"])
    assert batch_msg.status == InboundMessage.Status.PROCESSED
    assert (batch_msg.events_applied, batch_msg.events_duplicate, batch_msg.events_failed) == (2, 1, 0)
    assert not DeadLetter.objects.exists()
    delivered = sink.delivered()
    assert len(sink.records()) == len(delivered) == 3
    assert sorted(r["envelope"]["data"]["event"]["source_event_id"] for r in delivered) == sorted(events)
    assert Shipment.objects.get(reference=ref).status == "IN_TRANSIT"


# --- 3: out of order ------------------------------------------------------------------------------


def test_shuffled_duplicated_milestones_converge_and_reach_the_sink_in_per_shipment_order(
    worker, pipeline, sink, unique
):
    refs = [f"SHP-{unique}-A", f"SHP-{unique}-B"]
    _shipments_routed(pipeline, sink, refs)

    rng = random.Random(20261120)
    originals = []
    for ref in refs:
        for event_type, minutes in MILESTONES:
            extra = {"details": {"exception": "DELAYED"}} if event_type == "EXCEPTION_RESOLVED" else {}
            extra.update({"reason_code": "WX"} if event_type == "DELAYED" else {})
            originals.append(milestone(ref, event_type, minutes, **extra))
    sends: list[tuple[dict, dict]] = [(doc, {}) for doc in originals]
    # Byte-identical repeats (message-level dedupe) and repeats under a new Idempotency-Key (so they
    # pass the message level and are dropped by the event-level key).
    for index, doc in enumerate(rng.sample(originals, 6)):
        headers = {"HTTP_IDEMPOTENCY_KEY": f"again-{unique}-{index}"} if index % 2 else {}
        sends.append((doc, headers))
    rng.shuffle(sends)
    for ref in refs:
        arrival = [doc["occurred_at"] for doc, _ in sends if doc["shipment"]["reference"] == ref]
        assert arrival != sorted(arrival), "the shuffle must put events out of time order"

    codes = Counter()
    for doc, headers in sends:
        response = pipeline.post_inbound("tms-in", doc, **headers)
        codes[response.status_code] += 1
        assert response.status_code in (200, 202), response.content
    assert codes[200] == 3 and codes[202] == len(sends) - 3, codes

    wait_until(_all_messages_done, what="every message processed")
    wait_until(lambda: _deliveries_settled(len(originals)), what="every delivery settled")
    wait_until(lambda: len(sink.delivered()) >= len(originals), what="every update at the sink")
    time.sleep(SETTLE_S)

    assert not DeadLetter.objects.exists()
    assert ShipmentEvent.objects.count() == len(originals)
    for ref in refs:
        body = pipeline.shipment_read(ref)
        assert body["status"] == "DELIVERED"
        assert body["pod_received_at"] is not None
        assert body["delivered_at"] is not None
        assert body["open_exceptions"] == []
        timeline = body["events"]
        assert [e["event_type"] for e in timeline] == [t for t, _ in MILESTONES]
        times = [e["occurred_at"] for e in timeline]
        assert times == sorted(times)

        # Late = applied after an event with a later time. The order of application is the order of
        # the shipment's sequence numbers (one per applied event), carried on each outbox event.
        applied = list(
            OutboxEvent.objects.filter(subject=ref)
            .order_by("shipment_sequence")
            .values_list("data", flat=True)
        )
        assert len(applied) == len(MILESTONES)
        latest = None
        expected_late = {}
        for data in applied:
            occurred = data["event"]["occurred_at"]
            expected_late[data["event"]["source_event_id"]] = latest is not None and occurred < latest
            latest = occurred if latest is None else max(latest, occurred)
        flags = dict(
            ShipmentEvent.objects.filter(shipment__reference=ref).values_list("source_event_id", "late")
        )
        assert flags == expected_late
        assert any(flags.values()), "some events must have arrived late"
        assert not all(flags.values())

    delivered = sink.delivered()
    assert len(sink.records()) == len(delivered) == len(originals)
    assert len(set(_keys(delivered))) == len(originals)
    per_shipment = defaultdict(list)
    for record in delivered:
        per_shipment[record["envelope"]["subject"]].append(record["envelope"]["data"]["shipment"]["sequence"])
    for ref in refs:
        sequences = per_shipment[ref]
        assert len(sequences) == len(MILESTONES)
        assert all(a < b for a, b in itertools.pairwise(sequences)), sequences
    last = [r for r in delivered if r["envelope"]["subject"] == refs[0]][-1]["envelope"]["data"]["shipment"]
    assert last["status"] == "DELIVERED" and last["open_exceptions"] == []


# --- 4, 5, 6: delivery outcomes -------------------------------------------------------------------


def _shipments_routed(pipeline, sink, refs: list[str], **outbound) -> dict:
    """A carrier's shipments ``refs``, the ``tms-in`` inbound connection and an outbound connection
    to the sink (``outbound``: its options, e.g. backoff_base_s); returns the outbound connection."""
    scac = pipeline.carrier()
    for ref in refs:
        pipeline.shipment(ref, carrier=scac)
    pipeline.inbound_connection("tms-in")
    return pipeline.outbound_connection(sink.url, **outbound)


def _one_event(pipeline, sink, unique, **outbound) -> str:
    ref = f"SHP-{unique}"
    _shipments_routed(pipeline, sink, [ref], **outbound)
    pipeline.send("tms-in", milestone(ref, "DEPARTED_PICKUP", 90))
    return ref


def test_server_error_is_retried_with_the_same_key_and_a_valid_signature(worker, pipeline, sink, unique):
    sink.script([500])
    _one_event(pipeline, sink, unique, secret=SECRET, backoff_base_s=0.2)

    wait_until(lambda: _deliveries_settled(1), what="the delivery settled")
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED
    assert (delivery.attempts, delivery.attempts_total) == (2, 2)
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
        (1, DeliveryAttempt.Outcome.RETRY, 500),
        (2, DeliveryAttempt.Outcome.DELIVERED, 200),
    ]
    assert attempts[0].next_attempt_at is not None

    records = sink.records()
    assert [r["status"] for r in records] == [500, 200]
    assert _keys(records) == [str(delivery.id)] * 2
    for record in records:
        signing.verify(SECRET, record["body"], record["signature"])  # raises AuthError if invalid
        assert record["content_type"].startswith("application/cloudevents+json")
        assert record["envelope"]["id"] == str(delivery.event_id)
        assert record["envelope"]["specversion"] == "1.0"
    with pytest.raises(signing.AuthError):
        signing.verify("another-secret", records[1]["body"], records[1]["signature"])
    assert not DeadLetter.objects.exists()


def test_client_error_dead_letters_at_once_after_one_attempt(worker, pipeline, sink, unique):
    sink.script([400])
    _one_event(pipeline, sink, unique)

    wait_until(lambda: _deliveries_settled(1), what="the delivery settled")
    time.sleep(SETTLE_S)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DEAD
    assert (delivery.attempts, delivery.attempts_total, delivery.last_status_code) == (1, 1, 400)
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome", "status_code"))
    assert attempts == [(DeliveryAttempt.Outcome.DEAD, 400)]
    assert len(sink.records()) == 1

    letter = DeadLetter.objects.get()
    assert (letter.stage, letter.status, letter.delivery_id) == ("deliver", "open", delivery.id)
    assert "HTTP 400" in letter.reason
    listed = pipeline.http.get("/api/v1/dead-letters/", {"connection": "partner-out", "stage": "deliver"})
    assert listed.status_code == 200
    [item] = listed.json()["results"]
    assert item["id"] == str(letter.id) and "HTTP 400" in item["reason"]
    assert item["payload"]["body"]  # the rendered request body is kept for the replay


def test_retry_after_from_the_receiver_is_honoured_over_a_tiny_backoff(worker, pipeline, sink, unique):
    sink.script([429], retry_after=2)
    _one_event(pipeline, sink, unique, backoff_base_s=0.01)

    wait_until(lambda: _deliveries_settled(1), what="the delivery settled")
    records = sink.records()
    assert [r["status"] for r in records] == [429, 200]
    gap = records[1]["at"] - records[0]["at"]
    assert gap >= 1.9, f"second attempt came {gap:.2f}s after the first; Retry-After said 2"
    assert gap < 10, gap
    assert records[0]["idempotency_key"] == records[1]["idempotency_key"]
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED


def test_sub_second_retries_are_woken_by_their_timers_and_finish_within_twice_their_schedule(
    worker, pipeline, sink, unique
):
    # Six deliveries fail twice each, then succeed. No sweeper runs here: every retry must be woken by
    # its own timed wake-up, close to its due time, never left for the 5 s sweeper.
    refs = [f"SHP-{unique}-{n}" for n in range(6)]
    _shipments_routed(pipeline, sink, refs, backoff_base_s=0.3)
    sink.script([500] * 2 * len(refs))
    pipeline.send("tms-in", [milestone(ref, "DEPARTED_PICKUP", 90) for ref in refs])

    wait_until(lambda: _deliveries_settled(len(refs)), timeout=30, what="every delivery settled")

    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}
    late_s, spans = [], []
    for delivery in Delivery.objects.all():
        attempts = list(delivery.attempt_log.order_by("number"))
        assert [a.outcome for a in attempts][-1] == DeliveryAttempt.Outcome.DELIVERED
        retries = [a for a in attempts if a.outcome == DeliveryAttempt.Outcome.RETRY]
        # How late each retry started after it fell due; the sweeper would make this seconds.
        late_s += [
            (nxt.started_at - a.next_attempt_at).total_seconds()
            for a, nxt in itertools.pairwise(attempts)
            if a.next_attempt_at
        ]
        schedule = (retries[-1].next_attempt_at - attempts[0].started_at).total_seconds() if retries else 0.0
        actual = (attempts[-1].started_at - attempts[0].started_at).total_seconds()
        spans.append((actual, schedule))
    assert len(late_s) == 2 * len(refs), "two retries each"
    assert max(late_s) < 1.0, sorted(late_s)
    # The whole: each delivery's last attempt within twice its schedule (plus a timer slot per retry).
    assert all(actual <= 2 * schedule + 0.5 for actual, schedule in spans), spans


# --- 7: circuit breaker ---------------------------------------------------------------------------


def test_circuit_opens_defers_without_spending_attempts_and_closes_on_recovery(
    celery_worker_with_env, pipeline, sink, unique
):
    celery_worker_with_env({"CROSSDOCK_BREAKER_MIN_CALLS": "2", "CROSSDOCK_BREAKER_OPEN_S": "3"})
    sink.script([503] * 100)  # down until told otherwise
    refs = [f"SHP-{unique}-{n}" for n in range(5)]
    connection = _shipments_routed(pipeline, sink, refs, max_attempts=20, backoff_base_s=0.2)
    connection_id = connection["id"]

    # One event fails twice: two sends, both failed, reach the minimum calls at 100 % and open the circuit.
    pipeline.send("tms-in", milestone(refs[0], "DEPARTED_PICKUP", 90))
    wait_until(lambda: breaker.breaker_state(connection_id) == "open", what="the circuit to open")
    assert [r["status"] for r in sink.records()] == [503, 503]
    assert DeliveryAttempt.objects.count() == 2
    api_view = pipeline.http.get(f"/api/v1/connections/{connection['slug']}/").json()
    assert api_view["circuit"] == "open"

    # While it is open, new events wait: deferred, no request, no attempt spent.
    pipeline.send("tms-in", [milestone(ref, "DEPARTED_PICKUP", 90) for ref in refs[1:]])

    def all_deferred():
        rows = list(Delivery.objects.values_list("status", "attempts_total", "last_error"))
        return len(rows) == 5 and all(
            status == Delivery.Status.PENDING and error == "deferred: circuit open"
            for status, _, error in rows
        )

    wait_until(all_deferred, timeout=10, what="every delivery deferred by the open circuit")
    assert breaker.breaker_state(connection_id) == "open"
    assert len(sink.records()) == 2
    assert DeliveryAttempt.objects.count() == 2
    assert sorted(Delivery.objects.values_list("attempts_total", flat=True)) == [0, 0, 0, 0, 2]

    sink.script([])  # the receiver recovers
    wait_until(lambda: _deliveries_settled(5), what="every delivery settled after recovery")
    wait_until(lambda: breaker.breaker_state(connection_id) == "closed", timeout=5, what="circuit closed")
    time.sleep(SETTLE_S)

    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}
    delivered = sink.delivered()
    assert Counter(_keys(delivered)) == Counter(
        str(pk) for pk in Delivery.objects.values_list("id", flat=True)
    )
    # Two failures opened it, then one successful attempt per delivery: nothing spent while open.
    assert len(sink.records()) == 2 + 5
    assert DeliveryAttempt.objects.count() == 2 + 5
    assert not DeadLetter.objects.exists()


# --- 8: replay --------------------------------------------------------------------------------------


def test_dead_letters_replayed_singly_and_in_bulk_after_the_receiver_is_fixed(worker, pipeline, sink, unique):
    bulk_n = 3
    sink.script([400] * (bulk_n + 1))
    refs = [f"SHP-{unique}-{n}" for n in range(bulk_n + 1)]
    _shipments_routed(pipeline, sink, refs)
    pipeline.send("tms-in", [milestone(ref, "IN_TRANSIT", 180) for ref in refs])

    wait_until(
        lambda: DeadLetter.objects.filter(stage="deliver").count() == bulk_n + 1, what="the dead letters"
    )
    assert len(sink.records()) == bulk_n + 1
    sink.script([])  # the receiver is fixed

    # Single replay: a fresh round of attempts, same Idempotency-Key.
    single = DeadLetter.objects.order_by("created_at").first()
    response = pipeline.http.post(
        f"/api/v1/dead-letters/{single.id}/replay/", {"reason": "receiver fixed"}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["replay_count"] == 1
    wait_until(
        lambda: DeadLetter.objects.get(pk=single.id).status == DeadLetter.Status.REPLAYED,
        what="the single replay delivered",
    )
    assert _keys(sink.delivered()) == [str(single.delivery_id)]

    filters = {"connection": "partner-out", "stage": "deliver"}
    dry = pipeline.http.post("/api/v1/dead-letters/replay/", {**filters, "dry_run": True}, format="json")
    assert dry.status_code == 200, dry.content
    assert dry.json()["count"] == bulk_n
    assert len(dry.json()["sample"]) == bulk_n
    no_reason = pipeline.http.post("/api/v1/dead-letters/replay/", filters, format="json")
    assert no_reason.status_code == 400
    assert no_reason["Content-Type"].startswith(PROBLEM)
    time.sleep(SETTLE_S)
    assert len(sink.delivered()) == 1, "a dry run replays nothing"
    assert DeadLetter.objects.filter(status="open", replay_count=0).count() == bulk_n

    response = pipeline.http.post(
        "/api/v1/dead-letters/replay/", {**filters, "reason": "receiver fixed (bulk)"}, format="json"
    )
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == f"/api/v1/replay-jobs/{job['id']}/"
    assert job["total"] == bulk_n

    def job_done():
        body = pipeline.http.get(f"/api/v1/replay-jobs/{job['id']}/").json()
        return body if body["status"] == "done" else None

    done = wait_until(job_done, what="the replay job done")
    assert (done["total"], done["replayed"], done["failed"], done["progress"]) == (bulk_n, bulk_n, 0, 1.0)
    assert done["requested_by"] == "test-admin"

    wait_until(lambda: _deliveries_settled(bulk_n + 1), what="replayed deliveries settled")
    wait_until(
        lambda: not DeadLetter.objects.exclude(status=DeadLetter.Status.REPLAYED).exists(),
        what="every letter replayed",
    )
    time.sleep(SETTLE_S)
    delivered = sink.delivered()
    expected_keys = {str(pk) for pk in Delivery.objects.values_list("id", flat=True)}
    assert sorted(_keys(delivered)) == sorted(expected_keys)
    for letter in DeadLetter.objects.all():
        assert letter.replay_count == 1
        assert letter.last_replayed_by == "test-admin"
        assert letter.last_replayed_at is not None
    bulk_reasons = set(DeadLetter.objects.exclude(pk=single.id).values_list("last_replay_reason", flat=True))
    assert bulk_reasons == {"receiver fixed (bulk)"}
    for delivery in Delivery.objects.all():
        assert (delivery.status, delivery.attempts, delivery.attempts_total) == ("delivered", 1, 2)


# --- 9: crash ---------------------------------------------------------------------------------------


def test_worker_killed_mid_delivery_loses_nothing_and_repeats_keep_their_key(
    celery_worker_with_env, pipeline, sink, unique
):
    env: dict[str, str] = {}  # the default lease: a dead worker's claim must lapse within it
    doomed = celery_worker_with_env(env)
    sink.script(delay_s=SINK_DELAY_S)  # every request takes a while: deliveries stay in flight
    refs = [f"SHP-{unique}-{n}" for n in range(6)]
    _shipments_routed(pipeline, sink, refs, backoff_base_s=0.2)
    docs = [milestone(ref, "DEPARTED_PICKUP", 90) for ref in refs]
    docs += [milestone(ref, "IN_TRANSIT", 180) for ref in refs[:3]]
    pipeline.send("tms-in", docs)

    wait_until(
        lambda: Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT).count() >= 3,
        what="deliveries claimed",
        interval=0.05,
    )
    # Claimed means "about to send": give the requests time to reach the sink, where each one then
    # takes 2 s. The sink records a request when it answers, so nothing is recorded yet.
    time.sleep(SINK_DELAY_S / 2)
    assert not sink.records(), "the kill must come while requests are in flight"
    doomed.kill()
    in_flight = set(Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT).values_list("id", flat=True))
    assert in_flight, "in-flight deliveries stay claimed by the dead worker until their lease expires"

    killed_at = time.monotonic()

    sink.script()  # no more delay
    celery_worker_with_env(env)  # a fresh worker; the beat sweeper is played by the test
    wait_until(
        lambda: _deliveries_settled(len(docs)),
        timeout=settings.CROSSDOCK_DELIVERY_LEASE_S + 30,
        what="every delivery settled",
        interval=0.5,
        each=work_sweep,
    )
    # Picked up again within the lease (30 s by default), plus a sweep and the worker's start.
    recovered_s = time.monotonic() - killed_at
    assert recovered_s <= settings.CROSSDOCK_DELIVERY_LEASE_S + 15, recovered_s
    time.sleep(SETTLE_S)

    deliveries = {str(d.id): d for d in Delivery.objects.all()}
    assert len(deliveries) == len(docs)
    assert {d.status for d in deliveries.values()} == {Delivery.Status.DELIVERED}
    records = sink.delivered()
    keys = set(_keys(records))
    assert keys == set(deliveries), "every delivery reached the sink, under its own key"
    assert len(keys) == len(deliveries)
    envelope_of_key = {}
    for record in records:
        expected = str(deliveries[record["idempotency_key"]].event_id)
        assert record["envelope"]["id"] == expected  # a repeat carries the same key for the same event
        envelope_of_key.setdefault(record["idempotency_key"], set()).add(record["envelope"]["id"])
    assert all(len(ids) == 1 for ids in envelope_of_key.values())
    repeated = [key for key, n in Counter(_keys(records)).items() if n > 1]
    assert repeated, "the requests cut off by the kill were sent again"
    assert set(repeated) <= {str(pk) for pk in in_flight}
    assert not DeadLetter.objects.exists()


def test_a_live_worker_keeps_its_slow_deliveries_past_their_lease_and_nothing_is_sent_twice(
    celery_worker_with_env, pipeline, sink, unique
):
    # Each request takes two leases; the heartbeat renews it every third of a lease, so the sweeper
    # (played by the test, all the time) never hands the deliveries to anyone else. The read timeout
    # is far above the sink's delay: on a loaded CI machine the sink (in this process) answered after
    # the default 10 s, the client timed out and retried, and that looked like a lapsed lease.
    lease_s = 4
    worker = celery_worker_with_env({"CROSSDOCK_DELIVERY_LEASE_S": str(lease_s)})
    sink.script(delay_s=2 * lease_s)
    refs = [f"SHP-{unique}-{n}" for n in range(4)]
    _shipments_routed(pipeline, sink, refs, backoff_base_s=0.2, timeout_s=60)
    pipeline.send("tms-in", [milestone(ref, "DEPARTED_PICKUP", 90) for ref in refs])

    wait_until(
        lambda: _deliveries_settled(len(refs)),
        timeout=90,
        what="every delivery settled",
        interval=0.2,
        each=work_sweep,
    )
    time.sleep(SETTLE_S)

    # A lapsed lease shows as a second request for the same key the moment it is claimed again, long
    # before that request would be answered: count arrivals, not answers.
    expected = sorted(str(pk) for pk in Delivery.objects.values_list("id", flat=True))
    renewals_failed = [line for line in worker.log_path.read_text().splitlines() if "lease renewal" in line]
    attempts = list(DeliveryAttempt.objects.values_list("outcome", "error"))
    assert sorted(sink.arrivals()) == expected, (renewals_failed, attempts, str(worker.log_path))
    assert sorted(_keys(sink.records())) == expected
    assert DeliveryAttempt.objects.count() == len(refs), "one attempt each: no lease lapsed"
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}


# --- 10: failures by stage --------------------------------------------------------------------------


def test_bad_messages_are_kept_and_dead_lettered_by_stage_and_unknown_shipments_replay_automatically(
    worker, pipeline, sink, unique
):
    scac = pipeline.carrier()
    pipeline.inbound_connection("tms-in")
    pipeline.outbound_connection(sink.url)

    malformed = pipeline.post_inbound("tms-in", b'{"event_id": "x",\n  "event_type": ')
    assert malformed.status_code == 202, malformed.content
    invalid = pipeline.send(
        "tms-in",
        {
            "event_id": f"bad-{unique}",
            "event_type": "TELEPORTED",
            "occurred_at": "2026-11-20T14:05:00",
            "shipment": {},
        },
    )
    ref = f"SHP-{unique}-LATER"
    waiting = pipeline.send("tms-in", milestone(ref, "DEPARTED_PICKUP", 90))

    wait_until(_all_messages_done, what="every message processed")
    wait_until(lambda: DeadLetter.objects.count() == 3, what="three dead letters")

    parse = DeadLetter.objects.get(message_id=malformed.json()["message_id"])
    assert parse.stage == "parse"
    assert "malformed JSON" in parse.reason and "line 2 column" in parse.reason, parse.reason
    assert bytes(parse.payload) == b'{"event_id": "x",\n  "event_type": '
    assert InboundMessage.objects.get(pk=parse.message_id).status == InboundMessage.Status.FAILED

    validate = DeadLetter.objects.get(message_id=invalid["message_id"])
    assert validate.stage == "validate"
    for field in ("event_type", "occurred_at", "shipment.reference"):
        assert field in validate.reason, (field, validate.reason)

    apply = DeadLetter.objects.get(message_id=waiting["message_id"])
    assert apply.stage == "apply"
    assert ref in apply.reason
    assert apply.waiting_for_shipment == ref
    api_letters = pipeline.http.get("/api/v1/dead-letters/", {"connection": "tms-in"}).json()["results"]
    assert {item["stage"] for item in api_letters} == {"parse", "validate", "apply"}

    # The shipment appears; the sweeper (beat, every few seconds) replays what waited for it.
    pipeline.shipment(ref, carrier=scac)
    wait_until(
        lambda: DeadLetter.objects.get(pk=apply.pk).status == DeadLetter.Status.REPLAYED,
        what="the waiting letter auto-replayed",
        interval=0.5,
        each=work_sweep,
    )
    letter = DeadLetter.objects.get(pk=apply.pk)
    assert (letter.replay_count, letter.last_replayed_by) == (1, "system:auto-replay")
    assert list(
        ShipmentEvent.objects.filter(shipment__reference=ref).values_list("event_type", flat=True)
    ) == ["DEPARTED_PICKUP"]
    assert InboundMessage.objects.get(pk=waiting["message_id"]).status == InboundMessage.Status.PROCESSED
    assert pipeline.shipment_read(ref)["status"] == "PICKED_UP"
    wait_until(lambda: len(sink.delivered()) == 1, what="the replayed event delivered")
    assert sink.delivered()[0]["envelope"]["subject"] == ref
    # The other two are still open: nothing made them pass.
    assert set(DeadLetter.objects.filter(status="open").values_list("stage", flat=True)) == {
        "parse",
        "validate",
    }


# --- 11: the inbound endpoint's refusals ------------------------------------------------------------


def test_inbound_refusals_are_problem_details(worker, pipeline, make_caller, anonymous, unique):
    own = pipeline.carrier()
    other = pipeline.carrier()
    pipeline.shipment(f"SHP-{unique}", carrier=own)
    pipeline.inbound_connection("own-feed", carrier=own)
    pipeline.inbound_connection("other-feed", carrier=other)
    event = milestone(f"SHP-{unique}", "DEPARTED_PICKUP", 90)

    limit = settings.CROSSDOCK_INBOUND_MAX_BYTES
    big = b'[{"pad": "' + b"x" * limit + b'"}]'
    response = pipeline.post_inbound("own-feed", big)
    assert response.status_code == 413
    assert response["Content-Type"].startswith(PROBLEM)
    assert response.json()["status"] == 413 and str(limit) in response.json()["detail"]

    response = pipeline.post_inbound("no-such-feed", event)
    assert response.status_code == 404
    assert response["Content-Type"].startswith(PROBLEM)
    assert "no-such-feed" in response.json()["detail"]

    response = pipeline.post_inbound("own-feed", event, http=anonymous)
    assert response.status_code == 401
    assert response["Content-Type"].startswith(PROBLEM)

    partner = make_caller(f"carrier-{own}", partner_code=own)
    response = pipeline.post_inbound("other-feed", event, http=partner.http)
    assert response.status_code == 403
    assert response["Content-Type"].startswith(PROBLEM)
    assert "other-feed" in response.json()["detail"]

    assert not InboundMessage.objects.exists(), "refused requests store nothing"
    # The same partner may post to its own carrier's feed, and the event is applied.
    response = pipeline.post_inbound("own-feed", event, http=partner.http)
    assert response.status_code == 202, response.content
    wait_until(
        lambda: Shipment.objects.get(reference=f"SHP-{unique}").status == "PICKED_UP", what="event applied"
    )


# --- 12: trace ---------------------------------------------------------------------------------------


def test_message_trace_shows_every_stage_and_the_correlation_id_reaches_the_receiver(
    worker, pipeline, sink, unique
):
    ref = f"SHP-{unique}"
    _shipments_routed(pipeline, sink, [ref])
    correlation_id = f"e2e-trace-{unique}"

    accepted = pipeline.send(
        "tms-in",
        [milestone(ref, "ARRIVED_AT_PICKUP", 60), milestone(ref, "DEPARTED_PICKUP", 90)],
        HTTP_X_CORRELATION_ID=correlation_id,
    )
    wait_until(lambda: _deliveries_settled(2), what="both deliveries settled")

    response = pipeline.http.get(f"/api/v1/messages/{accepted['message_id']}/")
    assert response.status_code == 200
    trace = response.json()
    assert trace["correlation_id"] == correlation_id
    assert trace["status"] == "processed"
    assert (trace["events_applied"], trace["events_duplicate"], trace["events_failed"]) == (2, 0, 0)
    stages = [stage["stage"] for stage in trace["stages"]]
    assert stages[:3] == ["receive", "parse", "apply"], stages
    assert all(stage["ok"] for stage in trace["stages"])
    assert [(e["shipment"], e["event_type"]) for e in trace["events"]] == [
        (ref, "ARRIVED_AT_PICKUP"),
        (ref, "DEPARTED_PICKUP"),
    ]
    outbox = sorted(trace["outbox_events"], key=lambda e: e["shipment_sequence"])
    assert [(e["event_type"], e["shipment_sequence"]) for e in outbox] == [
        ("ARRIVED_AT_PICKUP", 1),
        ("DEPARTED_PICKUP", 2),
    ]
    for event in outbox:
        [delivery] = event["deliveries"]
        assert (delivery["connection"], delivery["status"], delivery["attempts"]) == (
            "partner-out",
            "delivered",
            1,
        )
        [attempt] = delivery["attempt_log"]
        assert (attempt["number"], attempt["outcome"], attempt["status_code"]) == (1, "delivered", 200)
    assert trace["dead_letters"] == []

    records = sink.delivered()
    assert len(records) == 2
    assert {r["correlation_id"] for r in records} == {correlation_id}
    assert OutboxEvent.objects.filter(correlation_id=correlation_id).count() == 2
