"""The side-effect ledger (hub/ledger): a write is made once however often it is asked for, after a
crash between the write and its record, under concurrent attempts, and across an operator's retry.

The peer here is the test connector's record store (tests/support/ledger_connector.py); the same
rules are proven against Tryton, Karrio and BottleCRM in tests/connectors/<key>/.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from connectors.errors import NotSupported, PermanentError, TransientError
from hub.connections.services import connection_save
from hub.ledger.models import SideEffect
from hub.ledger.services import (
    Begun,
    side_effect_begin,
    side_effect_lease_expire,
    side_effect_perform,
    side_effect_retry,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connection(test_peer_connector):
    return connection_save(data={"slug": "peer-out", "system": "erp", "connector": "testpeer", "config": {}})


def perform(connection, key="SO-1", **payload):
    return side_effect_perform(
        connection=connection, operation="record.create", business_key=key, payload={"key": key, **payload}
    )


def test_the_same_write_asked_twice_is_made_once_and_returns_the_recorded_result(
    connection, test_peer_connector
):
    first = perform(connection, name="ACME")
    second = perform(connection, name="ACME")
    assert (first.status, first.external_id, first.result) == ("done", "rec-1", {"name": "ACME"})
    assert (second.pk, second.external_id, second.attempts) == (first.pk, "rec-1", 1)
    assert test_peer_connector.PEER.writes == 1


def test_a_crash_between_the_write_and_its_record_is_found_by_lookup_not_written_again(
    connection, test_peer_connector
):
    begun = side_effect_begin(
        connection=connection, operation="record.create", business_key="SO-2", payload={"key": "SO-2"}
    )
    assert isinstance(begun, Begun) and begun.unknown_outcome is False
    # The crashed attempt wrote to the peer and died before recording anything.
    test_peer_connector.TestPeerConnector().operate("record.create", {"key": "SO-2", "name": "ACME"}, None)
    with pytest.raises(TransientError, match="being written by another worker"):
        perform(connection, key="SO-2")  # its lease still holds
    side_effect_lease_expire(effect_id=begun.effect.pk)  # what time does to a dead worker's lease

    effect = perform(connection, key="SO-2")
    assert (effect.status, effect.external_id, effect.found_by_lookup, effect.attempts) == (
        "done",
        "rec-1",
        True,
        2,
    )
    assert test_peer_connector.PEER.writes == 1


def test_a_transient_error_leaves_the_write_pending_for_a_retry(connection, test_peer_connector):
    test_peer_connector.PEER.fail_next.append(TransientError("peer restarting"))
    with pytest.raises(TransientError):
        perform(connection, key="SO-3")
    effect = SideEffect.objects.get(business_key="SO-3")
    assert (effect.status, effect.last_error, effect.lease_until) == ("pending", "peer restarting", None)
    effect = perform(connection, key="SO-3")
    assert (effect.status, effect.attempts, effect.last_error) == ("done", 2, "")
    assert test_peer_connector.PEER.writes == 1


def test_a_permanent_error_fails_the_write_and_an_operator_retry_completes_it(
    connection, test_peer_connector
):
    test_peer_connector.PEER.fail_next.append(PermanentError("customer is blocked"))
    with pytest.raises(PermanentError):
        perform(connection, key="SO-4")
    effect = SideEffect.objects.get(business_key="SO-4")
    assert (effect.status, effect.last_error) == ("failed", "customer is blocked")
    retried = side_effect_retry(effect_id=effect.pk)
    assert (retried.status, retried.external_id) == ("done", "rec-1")
    assert side_effect_retry(effect_id=effect.pk).attempts == 2  # done: nothing runs again
    assert test_peer_connector.PEER.writes == 1


def test_an_unknown_operation_is_refused_before_anything_is_recorded(connection):
    with pytest.raises(NotSupported, match=r"no operation 'record\.delete'"):
        side_effect_perform(connection=connection, operation="record.delete", business_key="x", payload={})
    assert not SideEffect.objects.exists()


def test_a_write_inside_a_transaction_is_refused_because_the_intent_must_commit_first(connection):
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a transaction"):
        perform(connection, key="SO-5")


def test_secrets_in_a_result_are_not_stored_in_the_ledger(connection, test_peer_connector):
    effect = perform(connection, key="SO-6", name="hook")
    assert effect.result == {"name": "hook"}
    from connectors.base import OperationResult
    from hub.ledger.services import _record

    recorded = _record(
        effect, OperationResult(external_id="w1", data={"secret": "whsec_x", "url": "u"}), found=False
    )
    assert recorded.result == {"secret": "whsec_x", "url": "u"}  # the caller gets it once
    recorded.refresh_from_db()
    assert recorded.result == {"secret": "(redacted)", "url": "u"}


@pytest.mark.parametrize("serialize", [False, True])
def test_a_connection_that_asks_for_it_gets_one_write_at_a_time(test_peer_connector, serialize):
    import threading

    from django.db import connections

    connection = connection_save(
        data={
            "slug": "serial-peer",
            "system": "erp",
            "connector": "testpeer",
            "config": {"serialize_writes": serialize},
        }
    )

    def write(key):
        try:
            perform(connection, key=key, sleep_s=0.3)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(f"SO-P{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert test_peer_connector.PEER.writes == 3
    assert (test_peer_connector.PEER.most_in_flight == 1) is serialize
