"""hub.inbox.services: store-first receive with message dedupe, concurrent claims, the parse -> validate ->
apply pipeline with dead letters and replay, lease expiry, and wake-ups sent only on commit."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from canonical.models import Shipment, ShipmentEvent
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.deadletters.replay import dead_letter_replay, letters_waiting_ready
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage
from hub.mappings.services import mapping_cache_clear
from hub.outbox.models import OutboxEvent
from tests.factories.canonical import ShipmentFactory
from tests.support.broker import queue_purge, queue_size
from tests.support.claimers import claimers_race, claimers_while_held

JSON = "application/json"


def canonical_connection(slug: str = "tms-in") -> Connection:
    return connection_save(data={"slug": slug, "system": "tms", "connector": "canonical", "config": {}})


def event_doc(reference: str, event_type: str = "IN_TRANSIT", when: str = "2026-11-20T14:05:00Z", **extra):
    return {"event_type": event_type, "occurred_at": when, "shipment": {"reference": reference}, **extra}


def body_of(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def receive(connection: Connection, body: bytes, *, key: str | None = None) -> inbox.Received:
    return inbox.inbound_message_receive(
        connection=connection,
        body=body,
        content_type=JSON,
        headers={"content-type": JSON, "x-not-kept": "dropped"},
        idempotency_key=key,
        correlation_id="corr-test",
    )


def receive_and_process(connection: Connection, body: bytes, *, key: str | None = None) -> InboundMessage:
    message = receive(connection, body, key=key).message
    assert message.pk in inbox.inbound_batch_claim()
    processed = inbox.inbound_message_process(message_id=message.pk)
    assert processed is not None
    return processed


# --- Receive: message-level dedupe ------------------------------------------------------------------


@pytest.mark.django_db
def test_idempotency_key_header_is_the_message_key():
    connection = canonical_connection()

    received = receive(connection, body_of(event_doc("SHP-1", event_id="tms-1")), key="hdr-123")

    assert received.created is True
    message = InboundMessage.objects.get(pk=received.message.pk)
    assert (message.idempotency_key, message.key_source) == ("hdr-123", "header")
    assert message.status == "received"
    assert message.headers == {"content-type": JSON}  # only the kept headers are stored


@pytest.mark.django_db
def test_connector_natural_id_is_the_key_when_no_header_is_sent():
    connection = canonical_connection()

    received = receive(connection, body_of(event_doc("SHP-1", event_id="tms-88121")))

    assert (received.message.idempotency_key, received.message.key_source) == ("event:tms-88121", "natural")


@pytest.mark.django_db
def test_body_hash_is_the_key_without_header_or_natural_id():
    connection = canonical_connection()
    body = body_of([event_doc("SHP-1"), event_doc("SHP-2")])  # a batch has no single natural id

    received = receive(connection, body)

    expected = "sha256:" + hashlib.sha256(body).hexdigest()
    assert (received.message.idempotency_key, received.message.key_source) == (expected, "body_hash")


@pytest.mark.django_db
def test_unreadable_body_is_still_stored_under_its_body_hash():
    connection = canonical_connection()

    received = receive(connection, b"{not json")

    assert received.created is True
    assert received.message.key_source == "body_hash"
    assert bytes(InboundMessage.objects.get(pk=received.message.pk).body) == b"{not json"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second", "key"),
    [
        pytest.param(b'{"event_id": "a", "v": 1}', b'{"event_id": "b", "v": 2}', "same-header", id="header"),
        pytest.param(b'{"event_id": "n-1", "v": 1}', b'{"event_id": "n-1", "v": 2}', None, id="natural"),
        pytest.param(b"[1, 2, 3]", b"[1, 2, 3]", None, id="body-hash"),
    ],
)
def test_repeat_returns_the_stored_message_and_stores_nothing(first: bytes, second: bytes, key: str | None):
    connection = canonical_connection()
    original = receive(connection, first, key=key)

    repeat = receive(connection, second, key=key)

    assert repeat.created is False
    assert repeat.message.pk == original.message.pk
    assert InboundMessage.objects.count() == 1
    assert bytes(InboundMessage.objects.get().body) == first  # the first body wins, untouched


@pytest.mark.django_db
def test_same_key_on_another_connection_is_a_different_message():
    one, two = canonical_connection("feed-one"), canonical_connection("feed-two")

    receive(one, b"{}", key="k-1")
    other = receive(two, b"{}", key="k-1")

    assert other.created is True
    assert InboundMessage.objects.count() == 2


# --- Wake-ups on commit -------------------------------------------------------------------------------


@pytest.fixture
def inbound_queue():
    """The real broker's inbound queue, empty before and after the test."""
    queue_purge("inbound")
    yield "inbound"
    queue_purge("inbound")


@pytest.mark.django_db
def test_wake_up_is_enqueued_only_when_the_transaction_commits(
    inbound_queue, django_capture_on_commit_callbacks
):
    connection = canonical_connection()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        receive(connection, b"{}", key="w-1")

    # Not committed yet: nothing on the broker, no pending-wake flag.
    assert queue_size(inbound_queue) == 0
    assert cache.get("wake:inbox") is None
    assert len(callbacks) == 1

    callbacks[0]()  # the commit

    assert queue_size(inbound_queue) == 1
    assert cache.get("wake:inbox") == 1


@pytest.mark.django_db
def test_rolled_back_receive_sends_no_wake_up(inbound_queue, django_capture_on_commit_callbacks):
    connection = canonical_connection()

    class Abort(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Abort),
        transaction.atomic(),
    ):
        receive(connection, b"{}", key="w-rollback")
        raise Abort

    assert callbacks == []
    assert queue_size(inbound_queue) == 0
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_a_pending_wake_up_suppresses_duplicates_and_repeats_send_none(
    inbound_queue, django_capture_on_commit_callbacks
):
    connection = canonical_connection()

    with django_capture_on_commit_callbacks(execute=True):
        receive(connection, b"{}", key="w-1")
    with django_capture_on_commit_callbacks(execute=True):
        receive(connection, b"{}", key="w-2")  # a new message while a wake-up is pending
    with django_capture_on_commit_callbacks(execute=True) as repeat_callbacks:
        receive(connection, b"{}", key="w-1")  # a duplicate stores nothing, so wakes nobody

    assert queue_size(inbound_queue) == 1
    assert repeat_callbacks == []

    inbox.wake_clear(inbox.INBOX_WAKE)  # a drainer took the wake-up: the next message wakes again
    with django_capture_on_commit_callbacks(execute=True):
        receive(connection, b"{}", key="w-3")

    assert queue_size(inbound_queue) == 2


# --- Claiming ---------------------------------------------------------------------------------------


def _stored_messages(count: int) -> list:
    connection = canonical_connection()
    return [receive(connection, b"{}", key=f"claim-{i}").message.pk for i in range(count)]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claimers_never_get_the_same_message_and_together_get_all():
    ids = set(_stored_messages(60))

    claims = claimers_race(lambda: inbox.inbound_batch_claim(limit=7))

    assert not claims.errors
    a, b = claims.a, claims.b
    assert len(a) == len(set(a)) and len(b) == len(set(b))
    assert set(a).isdisjoint(b)
    assert set(a) | set(b) == ids
    assert InboundMessage.objects.filter(status="processing").count() == 60


@pytest.mark.django_db(transaction=True)
def test_claimer_skips_rows_another_claimer_holds_without_waiting():
    ids = set(_stored_messages(10))

    # A claims inside a longer transaction, so its row locks are held while B claims.
    claims = claimers_while_held(
        lambda: inbox.inbound_batch_claim(limit=4), lambda: inbox.inbound_batch_claim(limit=100)
    )

    assert not claims.errors
    assert claims.b_finished
    claimed = {"a": claims.a, "b": claims.b}
    assert len(claimed["a"]) == 4
    assert len(claimed["b"]) == 6
    assert set(claimed["a"]).isdisjoint(claimed["b"])
    assert set(claimed["a"]) | set(claimed["b"]) == ids


@pytest.mark.django_db
def test_claim_takes_oldest_first_and_marks_a_lease():
    ids = _stored_messages(3)

    first = inbox.inbound_batch_claim(limit=2)

    assert first == ids[:2]
    leased = InboundMessage.objects.get(pk=ids[0])
    assert leased.status == "processing"
    assert leased.claimed_until > timezone.now()
    assert inbox.inbound_batch_claim(limit=5) == ids[2:]
    assert inbox.inbound_batch_claim(limit=5) == []


# --- Processing -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_single_event_is_applied_and_the_message_processed():
    connection = canonical_connection()
    shipment = ShipmentFactory()

    message = receive_and_process(connection, body_of(event_doc(shipment.reference, event_id="e-1")))

    assert message.status == "processed"
    assert (message.events_applied, message.events_duplicate, message.events_failed) == (1, 0, 0)
    assert message.claimed_until is None
    assert [t["stage"] for t in message.trace] == ["receive", "parse", "apply"]
    shipment.refresh_from_db()
    assert shipment.status == "IN_TRANSIT"
    assert OutboxEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_malformed_json_fails_the_message_with_a_parse_letter():
    connection = canonical_connection()

    message = receive_and_process(connection, b'{"event_type": ')

    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "parse"
    assert letter.item_index is None
    assert "malformed JSON" in letter.reason
    assert "line 1 column" in letter.reason
    assert bytes(letter.payload) == b'{"event_type": '
    assert letter.status == "open"


@pytest.mark.django_db
def test_batch_with_one_bad_document_is_partial_and_letters_only_that_document():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    bad = event_doc(shipment.reference, "DELIVERED", "2026-11-20T18:00:00")  # no UTC offset
    body = body_of(
        [
            event_doc(shipment.reference, "DEPARTED_PICKUP", "2026-11-20T10:00:00Z"),
            bad,
            event_doc(shipment.reference, "IN_TRANSIT", "2026-11-20T12:00:00Z"),
        ]
    )

    message = receive_and_process(connection, body)

    assert message.status == "partial"
    assert (message.events_applied, message.events_failed) == (2, 1)
    assert sorted(ShipmentEvent.objects.filter(shipment=shipment).values_list("event_type", flat=True)) == [
        "DEPARTED_PICKUP",
        "IN_TRANSIT",
    ]
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.item_index) == ("validate", 1)
    assert "occurred_at" in letter.reason
    assert json.loads(bytes(letter.payload)) == bad


@pytest.mark.django_db
def test_unknown_field_is_dead_lettered_at_validate_naming_it():
    connection = canonical_connection()
    shipment = ShipmentFactory()

    message = receive_and_process(connection, body_of(event_doc(shipment.reference, colour="red")))

    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "validate"
    assert "colour" in letter.reason


@pytest.mark.django_db
def test_unknown_shipment_is_dead_lettered_at_apply_waiting_for_it():
    connection = canonical_connection()

    message = receive_and_process(connection, body_of(event_doc("SHP-LATER")))

    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.waiting_for_shipment) == ("apply", "SHP-LATER")
    assert "SHP-LATER" in letter.reason
    assert letters_waiting_ready() == []
    ShipmentFactory(reference="SHP-LATER")
    assert letters_waiting_ready() == [letter.pk]


@pytest.mark.django_db
def test_same_event_in_a_second_message_is_a_duplicate_applied_once():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    body = body_of(event_doc(shipment.reference, event_id="tms-1"))

    receive_and_process(connection, body, key="first-delivery")
    second = receive_and_process(connection, body, key="second-delivery")

    assert second.status == "processed"
    assert (second.events_applied, second.events_duplicate) == (0, 1)
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1
    assert OutboxEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_duplicate_wake_up_processing_a_finished_message_again_is_a_no_op():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    message = receive_and_process(connection, body_of(event_doc(shipment.reference)))

    again = inbox.inbound_message_process(message_id=message.pk)

    assert again.status == "processed"
    assert again.attempts == 1
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_crash_mid_apply_rolls_everything_back_and_the_expired_lease_reprocesses_once():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    message = receive(connection, body_of(event_doc(shipment.reference))).message
    inbox.inbound_batch_claim()

    class WorkerKilled(Exception):
        pass

    with pytest.raises(WorkerKilled), transaction.atomic():
        inbox.inbound_message_process(message_id=message.pk)
        assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1
        raise WorkerKilled  # the process dies before its transaction commits

    assert not ShipmentEvent.objects.filter(shipment=shipment).exists()
    assert InboundMessage.objects.get(pk=message.pk).status == "processing"

    InboundMessage.objects.filter(pk=message.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert inbox.inbound_leases_expire() == 1
    assert inbox.inbound_batch_claim() == [message.pk]
    done = inbox.inbound_message_process(message_id=message.pk)

    assert done.status == "processed"
    assert done.attempts == 1
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


# --- Replay -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_replay_that_fails_again_updates_the_same_letter():
    connection = canonical_connection()
    message = receive_and_process(connection, body_of(event_doc("SHP-MISSING")))
    letter = DeadLetter.objects.get(message=message)

    outcome = dead_letter_replay(letter_id=letter.pk, actor="ops@example.com", reason="try again")

    assert outcome.succeeded is False
    assert DeadLetter.objects.count() == 1
    again = DeadLetter.objects.get()
    assert again.pk == letter.pk
    assert (again.replay_count, again.status, again.stage) == (1, "open", "apply")
    assert again.last_replayed_by == "ops@example.com"
    assert InboundMessage.objects.get(pk=message.pk).status == "failed"


@pytest.mark.django_db
def test_replay_that_succeeds_marks_the_letter_replayed_and_applies_the_event():
    connection = canonical_connection()
    message = receive_and_process(connection, body_of(event_doc("SHP-SOON")))
    letter = DeadLetter.objects.get(message=message)
    shipment = ShipmentFactory(reference="SHP-SOON")

    outcome = dead_letter_replay(letter_id=letter.pk, actor="ops", reason="shipment created")

    assert outcome.succeeded is True
    letter.refresh_from_db()
    assert (letter.status, letter.replay_count, letter.waiting_for_shipment) == ("replayed", 1, "")
    assert InboundMessage.objects.get(pk=message.pk).status == "processed"
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_replaying_one_document_of_a_partial_batch_completes_the_message():
    connection = canonical_connection()
    known = ShipmentFactory()
    body = body_of(
        [
            event_doc(known.reference, "IN_TRANSIT", "2026-11-20T10:00:00Z"),
            event_doc("SHP-SECOND", "IN_TRANSIT", "2026-11-20T10:00:00Z"),
        ]
    )
    message = receive_and_process(connection, body)
    assert message.status == "partial"
    letter = DeadLetter.objects.get(message=message)
    assert letter.item_index == 1
    ShipmentFactory(reference="SHP-SECOND")

    outcome = dead_letter_replay(letter_id=letter.pk, actor="ops", reason="created")

    assert outcome.succeeded is True
    message.refresh_from_db()
    assert message.status == "processed"
    assert (message.events_applied, message.events_failed) == (2, 0)
    # The document that had applied the first time was not applied twice.
    assert ShipmentEvent.objects.filter(shipment=known).count() == 1


@pytest.mark.django_db
def test_replayed_parse_letter_that_fails_again_stays_one_open_letter():
    connection = canonical_connection()
    message = receive_and_process(connection, b"[")
    letter = DeadLetter.objects.get(message=message)

    dead_letter_replay(letter_id=letter.pk, actor="ops", reason="again")

    letter.refresh_from_db()
    assert DeadLetter.objects.filter(message=message).count() == 1
    assert (letter.stage, letter.status, letter.replay_count) == ("parse", "open", 1)


# --- Leases -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_lease_returns_an_abandoned_message_to_received():
    abandoned, working = _stored_messages(2)
    inbox.inbound_batch_claim()
    InboundMessage.objects.filter(pk=abandoned).update(claimed_until=timezone.now() - timedelta(seconds=5))

    returned = inbox.inbound_leases_expire()

    assert returned == 1
    back = InboundMessage.objects.get(pk=abandoned)
    assert (back.status, back.claimed_until) == ("received", None)
    assert InboundMessage.objects.get(pk=working).status == "processing"
    assert inbox.inbound_waiting_exists() is True
    assert inbox.inbound_batch_claim() == [abandoned]


# --- The batch fast path ---------------------------------------------------------------------------


def _claimed(connection: Connection, docs: list) -> list:
    ids = [receive(connection, body_of(doc)).message.pk for doc in docs]
    InboundMessage.objects.filter(pk__in=ids).update(status=InboundMessage.Status.PROCESSING)
    return ids


@pytest.mark.django_db
def test_fast_path_applies_a_batch_with_the_same_number_of_queries_whatever_its_size():
    connection = canonical_connection()
    counts = []
    for size in (4, 24):
        shipments = ShipmentFactory.create_batch(size)
        docs = [event_doc(s.reference, "DEPARTED_PICKUP", event_id=f"{s.reference}-dep") for s in shipments]
        ids = _claimed(connection, docs)
        mapping_cache_clear()  # each batch reads its connection's mapping set once (cold cache)
        with CaptureQueriesContext(db_connection) as captured:
            careful = inbox.inbound_batch_process(ids=ids, subscriptions=[])
        counts.append(len(captured))
        assert careful == []
        assert (
            InboundMessage.objects.filter(pk__in=ids, status=InboundMessage.Status.PROCESSED).count() == size
        )
        assert ShipmentEvent.objects.filter(shipment__in=shipments).count() == size
        statuses = set(
            Shipment.objects.filter(pk__in=[s.pk for s in shipments]).values_list("status", flat=True)
        )
        assert statuses == {"PICKED_UP"}
    assert counts[0] == counts[1], counts


@pytest.mark.django_db
def test_fast_path_opens_and_resolves_exceptions_and_carries_them_on_each_update(private_networks):
    connection = canonical_connection()
    out = connection_save(
        data={
            "slug": "out",
            "system": "crm",
            "connector": "webhook",
            "config": {"url": "http://127.0.0.1:9/h"},
        }
    )
    from hub.connections.services import subscription_save
    from hub.outbox.services import subscriptions_active

    subscription_save(data={"connection": out, "event_types": []})
    shipment = ShipmentFactory()
    ids = _claimed(
        connection,
        [
            event_doc(shipment.reference, "IN_TRANSIT", "2026-11-20T09:00:00Z", event_id="t"),
            event_doc(shipment.reference, "DELAYED", "2026-11-20T10:00:00Z", event_id="d"),
            event_doc(shipment.reference, "DELIVERED", "2026-11-20T12:00:00Z", event_id="x"),
        ],
    )
    assert inbox.inbound_batch_process(ids=ids, subscriptions=subscriptions_active()) == []
    exception = shipment.exceptions.get()
    assert (exception.kind, exception.status) == ("DELAYED", "RESOLVED")
    carried = [
        (row.event_type, row.data["shipment"]["open_exceptions"])
        for row in OutboxEvent.objects.filter(shipment=shipment).order_by("shipment_sequence")
    ]
    assert carried == [("IN_TRANSIT", []), ("DELAYED", ["DELAYED"]), ("DELIVERED", [])]


@pytest.mark.django_db
def test_fast_path_applies_a_repeat_inside_the_batch_once():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    ids = _claimed(
        connection,
        [
            [event_doc(shipment.reference, "IN_TRANSIT", event_id="same")],
            [
                event_doc(shipment.reference, "IN_TRANSIT", event_id="same"),
                event_doc(shipment.reference, "ARRIVED_AT_DELIVERY", event_id="arr"),
            ],
        ],
    )
    assert inbox.inbound_batch_process(ids=ids, subscriptions=[]) == []
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 2
    second = InboundMessage.objects.get(pk=ids[1])
    assert (second.events_applied, second.events_duplicate) == (1, 1)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.sequence) == ("AT_DELIVERY", 2)


@pytest.mark.django_db
def test_released_claims_go_back_to_the_queue():
    connection = canonical_connection()
    ids = _claimed(connection, [event_doc("SHP-X", event_id=f"r{i}") for i in range(3)])
    assert inbox.inbound_claims_release(ids=ids) == 3
    assert set(InboundMessage.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"received"}


@pytest.mark.django_db
def test_a_closer_in_a_later_batch_resolves_the_exception_opened_in_an_earlier_one():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    first = _claimed(
        connection, [event_doc(shipment.reference, "DELAYED", "2026-11-20T10:00:00Z", event_id="d")]
    )
    assert inbox.inbound_batch_process(ids=first, subscriptions=[]) == []
    assert shipment.exceptions.get().status == "OPEN"

    second = _claimed(
        connection, [event_doc(shipment.reference, "DELIVERED", "2026-11-20T12:00:00Z", event_id="x")]
    )
    assert inbox.inbound_batch_process(ids=second, subscriptions=[]) == []
    assert shipment.exceptions.get().status == "RESOLVED"
