"""Poison messages: no stored message can stall the inbox.

- a body the readers cannot take (a list nested 100,000 deep) is dead-lettered at parse with the depth
  reason while the rest of its batch applies;
- a message whose processing crashes (an unexpected exception, or a worker killed mid-message so its
  claim expires) is retried, and after CROSSDOCK_INBOX_POISON_AFTER crashes dead-lettered as poison and
  never claimed again;
- a settled message forgets its crashes; claims handed back untouched do not count;
- the web tier answers 202 to such a body for every connector that reads JSON (never a 500).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from canonical.models import ShipmentEvent
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage
from tests.factories.canonical import ShipmentFactory
from tests.support.fuzz import CONFIGS
from tests.support.timing import within

JSON = "application/json"
NESTED = b"[" * 100_000 + b"]" * 100_000  # the body: stored (the web tier does not parse lists)


def canonical_connection(slug: str = "tms-in") -> Connection:
    return connection_save(data={"slug": slug, "system": "tms", "connector": "canonical", "config": {}})


def event_body(reference: str, event_type: str = "IN_TRANSIT") -> bytes:
    doc = {
        "event_type": event_type,
        "occurred_at": "2026-11-20T14:05:00Z",
        "shipment": {"reference": reference},
    }
    return json.dumps(doc).encode()


def receive(connection: Connection, body: bytes) -> InboundMessage:
    return inbox.inbound_message_receive(
        connection=connection,
        body=body,
        content_type=JSON,
        headers={"content-type": JSON},
        idempotency_key=None,
        correlation_id="corr-poison",
    ).message


def drain() -> int:
    with within(20):
        return inbox.inbox_drain(budget_s=10)


def expire_claims() -> int:
    InboundMessage.objects.filter(status="processing").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    return inbox.inbound_leases_expire()


# --- A body no reader can take ----------------------------------------------------------------------


@pytest.mark.django_db
def test_deeply_nested_body_is_dead_lettered_at_parse_and_the_rest_of_its_batch_applies():
    connection = canonical_connection()
    first, last = ShipmentFactory(), ShipmentFactory()
    before = receive(connection, event_body(first.reference))
    nested = receive(connection, NESTED)
    after = receive(connection, event_body(last.reference))

    drain()

    nested.refresh_from_db()
    assert nested.status == "failed"
    letter = DeadLetter.objects.get(message=nested)
    assert letter.stage == "parse"
    assert letter.reason.startswith("JSON nested deeper than 64 levels at byte 64")
    for message, shipment in ((before, first), (after, last)):
        message.refresh_from_db()
        assert message.status == "processed"
        assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1
    assert not InboundMessage.objects.filter(status__in=["received", "processing"]).exists()


@pytest.mark.django_db
def test_deeply_nested_body_in_a_reprocessed_batch_takes_the_careful_path_too():
    connection = canonical_connection()
    shipment = ShipmentFactory()
    nested = receive(connection, NESTED)
    good = receive(connection, event_body(shipment.reference))
    InboundMessage.objects.filter(pk=nested.pk).update(crash_count=1)  # crashed once before

    drain()

    assert InboundMessage.objects.get(pk=nested.pk).status == "failed"
    assert "nested deeper than 64 levels" in DeadLetter.objects.get(message=nested).reason
    assert InboundMessage.objects.get(pk=good.pk).status == "processed"


# --- Crashes: an unexpected exception -----------------------------------------------------------------


@pytest.fixture
def crashing(crashing_connector, settings):
    settings.CROSSDOCK_INBOX_POISON_AFTER = 3
    connection = connection_save(
        data={"slug": "crashy", "system": "partner", "connector": crashing_connector.KEY, "config": {}}
    )
    return crashing_connector, connection


@pytest.mark.django_db
def test_message_whose_processing_crashes_is_poison_after_n_claims_and_its_batch_applies(crashing):
    module, crashy = crashing
    shipment = ShipmentFactory()
    bad = receive(crashy, b'{"anything": 1}')
    good = receive(canonical_connection(), event_body(shipment.reference))

    drain()

    bad.refresh_from_db()
    # Claimed and crashed three times (the first claim's batch planning read it once more), then never
    # again.
    assert module.CALLS["parse"] == 1 + 3
    assert (bad.status, bad.crash_count, bad.claimed_until) == ("failed", 3, None)
    letter = DeadLetter.objects.get(message=bad)
    assert letter.stage == "parse"
    assert letter.reason == "poison: crashed 3 times: RuntimeError: reader bug: index out of range"
    assert letter.error_class == "RuntimeError"
    assert [entry["detail"] for entry in bad.trace if not entry["ok"]][:2] == [
        "crashed (1 of 3): RuntimeError: reader bug: index out of range",
        "crashed (2 of 3): RuntimeError: reader bug: index out of range",
    ]
    assert InboundMessage.objects.get(pk=good.pk).status == "processed"
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1

    assert inbox.inbound_batch_claim() == []
    drain()
    assert module.CALLS["parse"] == 1 + 3


@pytest.mark.django_db
def test_a_bug_in_a_connectors_natural_id_stores_the_message_under_its_body_hash(crashing):
    _module, crashy = crashing

    message = receive(crashy, b'{"id": 7}')

    assert (message.key_source, message.status) == ("body_hash", "received")


@pytest.mark.django_db
def test_crash_under_the_limit_hands_the_message_back_for_another_try(crashing):
    _module, crashy = crashing
    message = receive(crashy, b"{}")
    assert inbox.inbound_batch_claim() == [message.pk]

    with pytest.raises(inbox.Crash) as crashed:
        inbox.inbound_message_process(message_id=message.pk)
    assert (crashed.value.stage, type(crashed.value.error)) == ("parse", RuntimeError)
    inbox.inbound_message_fail(message_id=message.pk, exc=crashed.value)

    message.refresh_from_db()
    assert (message.status, message.crash_count, message.claimed_until) == ("received", 1, None)
    assert message.trace[-1]["detail"] == "crashed (1 of 3): RuntimeError: reader bug: index out of range"
    assert not DeadLetter.objects.filter(message=message).exists()
    assert inbox.inbound_batch_claim() == [message.pk]


@pytest.mark.django_db
def test_time_limit_hands_claims_back_counting_only_the_message_that_was_running(crashing):
    module, crashy = crashing
    running, waiting = receive(crashy, b'{"n": 1}'), receive(crashy, b'{"n": 2}')
    # Crashed once before each: the careful path takes them one by one, in arrival order.
    InboundMessage.objects.filter(pk__in=[running.pk, waiting.pk]).update(crash_count=1)
    module.RAISE_NEXT.append(SoftTimeLimitExceeded())

    with pytest.raises(SoftTimeLimitExceeded):
        drain()

    running.refresh_from_db()
    waiting.refresh_from_db()
    assert (running.status, running.crash_count) == ("received", 2)  # it was running: counted
    assert (waiting.status, waiting.crash_count) == ("received", 1)  # never started: not counted
    assert not DeadLetter.objects.exists()


# --- Crashes: a worker killed mid-message (its claim expires) ------------------------------------------


@pytest.mark.django_db
def test_claim_that_expired_counts_as_a_crash_and_the_nth_makes_the_message_poison(settings):
    settings.CROSSDOCK_INBOX_POISON_AFTER = 3
    connection = canonical_connection()
    message = receive(connection, event_body(ShipmentFactory().reference))

    for crash in (1, 2):
        assert inbox.inbound_batch_claim() == [message.pk]  # ... and the worker is kill -9'd
        assert expire_claims() == 1
        message.refresh_from_db()
        assert (message.status, message.crash_count) == ("received", crash)

    assert inbox.inbound_batch_claim() == [message.pk]  # killed a third time
    assert expire_claims() == 1

    message.refresh_from_db()
    assert (message.status, message.claimed_until) == ("failed", None)
    letter = DeadLetter.objects.get(message=message)
    assert letter.stage == "apply"
    assert letter.reason.startswith("poison: crashed 3 times: its claim expired")
    assert inbox.inbound_batch_claim() == []


@pytest.mark.django_db
def test_a_killed_batch_does_not_poison_its_innocent_messages(settings):
    """Workers killed every few seconds (the chaos soak) must not poison the messages of the batches
    they held: after a crash, a message is claimed alone, so only its own crashes add up."""
    settings.CROSSDOCK_INBOX_POISON_AFTER = 3
    connection = canonical_connection()
    messages = [receive(connection, event_body(ShipmentFactory().reference)) for _ in range(5)]
    ids = [m.pk for m in messages]

    assert inbox.inbound_batch_claim() == ids  # the worker holding all five is kill -9'd
    assert expire_claims() == 5
    for _ in range(2):  # the oldest, now claimed alone, kills its worker twice more
        assert inbox.inbound_batch_claim() == [ids[0]]
        assert expire_claims() == 1

    assert inbox.inbox_drain() == 4
    statuses = dict(InboundMessage.objects.values_list("pk", "status"))
    assert statuses[ids[0]] == "failed"  # three crashes, the last two its own alone
    assert DeadLetter.objects.get(message_id=ids[0]).reason.startswith("poison: crashed 3 times")
    assert [statuses[pk] for pk in ids[1:]] == ["processed"] * 4
    assert set(InboundMessage.objects.filter(pk__in=ids[1:]).values_list("crash_count", flat=True)) == {0}


@pytest.mark.django_db
def test_message_that_settles_forgets_its_earlier_crash(settings):
    settings.CROSSDOCK_INBOX_POISON_AFTER = 2
    connection = canonical_connection()
    shipment = ShipmentFactory()
    message = receive(connection, event_body(shipment.reference))
    inbox.inbound_batch_claim()
    expire_claims()  # one crash

    drain()

    message.refresh_from_db()
    assert (message.status, message.crash_count) == ("processed", 0)
    assert ShipmentEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_claims_handed_back_untouched_do_not_count_as_crashes(settings):
    settings.CROSSDOCK_INBOX_POISON_AFTER = 2
    connection = canonical_connection()
    message = receive(connection, event_body(ShipmentFactory().reference))

    for _ in range(3):
        assert inbox.inbound_batch_claim() == [message.pk]
        assert inbox.inbound_claims_release(ids=[message.pk]) == 1

    message.refresh_from_db()
    assert (message.status, message.crash_count) == ("received", 0)


@pytest.mark.django_db
def test_message_over_the_limit_without_a_crash_handler_is_poisoned_at_claim(settings):
    """Backstop: whatever path returned it (a time limit mid-message), a message that already has N
    unsettled claims is dead-lettered when claimed, not processed an (N+1)th time."""
    settings.CROSSDOCK_INBOX_POISON_AFTER = 2
    connection = canonical_connection()
    poisoned = receive(connection, event_body("SHP-X"))
    fine = receive(connection, event_body("SHP-Y"))
    InboundMessage.objects.filter(pk=poisoned.pk).update(crash_count=2)

    assert inbox.inbound_batch_claim() == [fine.pk]

    poisoned.refresh_from_db()
    assert poisoned.status == "failed"
    assert DeadLetter.objects.get(message=poisoned).reason.startswith("poison: crashed 2 times:")


# --- The web tier -------------------------------------------------------------------------------------

# Every connector that reads a JSON body (all but x12), with the fuzz suite's configs.
JSON_CONNECTIONS = {key: config for key, config in CONFIGS.items() if key != "x12"}


@pytest.mark.django_db
@pytest.mark.parametrize("connector", sorted(JSON_CONNECTIONS))
@pytest.mark.parametrize("body", [NESTED, b'{"a":' * 100_000 + b"1" + b"}" * 100_000], ids=["list", "object"])
def test_inbound_endpoint_stores_a_deeply_nested_body_and_answers_202(admin_caller, dns, connector, body):
    for host in ("erp.example", "crm.example", "karrio.example"):
        dns[host] = ["93.184.215.14"]  # the connections' URLs must resolve to a public address
    connection_save(
        data={
            "slug": f"in-{connector}",
            "system": "partner",
            "connector": connector,
            "config": JSON_CONNECTIONS[connector],
        }
    )

    response = admin_caller.http.post(f"/api/v1/inbound/in-{connector}/", data=body, content_type=JSON)

    assert response.status_code == 202, response.content[:300]
    message = InboundMessage.objects.get(pk=response.json()["message_id"])
    assert bytes(message.body) == body


@pytest.mark.django_db
def test_a_crash_whose_error_quotes_a_nul_byte_is_still_recorded(crashing):
    module, crashy = crashing
    module.RAISE_NEXT.extend(RuntimeError("bad byte \x00 in input") for _ in range(4))
    message = receive(crashy, b"{}")

    drain()

    assert DeadLetter.objects.get(message=message).reason == (
        "poison: crashed 3 times: RuntimeError: bad byte \\x00 in input"
    )
