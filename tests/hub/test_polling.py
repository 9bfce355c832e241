"""Polling connections (hub/inbox/polling.py): pages stored in the inbox, cursor moved only after,
repeats are duplicates, errors recorded without moving the cursor, due connections by interval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.errors import AuthError, TransientError
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.inbox.models import InboundMessage
from hub.inbox.polling import connection_poll, connections_poll_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(test_peer_connector):
    test_peer_connector.PEER.feed.extend(
        {"id": n, "ref": f"S-{n}", "status": "PU", "at": "2026-11-20T10:00:00Z"} for n in range(5)
    )
    return connection_save(
        data={
            "slug": "erp-poll",
            "system": "erp",
            "connector": "testpeer",
            "config": {"page_size": 2},
            "poll_interval_s": 60,
        }
    )


def test_each_poll_stores_a_page_and_moves_the_cursor(connection):
    assert connection_poll(connection_id=connection.pk) == 2
    assert connection_poll(connection_id=connection.pk) == 2
    assert connection_poll(connection_id=connection.pk) == 1
    assert connection_poll(connection_id=connection.pk) == 0
    connection.refresh_from_db()
    assert (connection.poll_cursor, connection.last_poll_error) == ("5", "")
    keys = sorted(
        InboundMessage.objects.filter(connection=connection).values_list("idempotency_key", flat=True)
    )
    assert keys == [f"item:{n}:1" for n in range(5)]


def test_a_re_read_page_is_stored_once(connection):
    connection_poll(connection_id=connection.pk)
    Connection.objects.filter(pk=connection.pk).update(
        poll_cursor=""
    )  # as after a crash before the cursor moved
    assert connection_poll(connection_id=connection.pk) == 0
    assert InboundMessage.objects.filter(connection=connection).count() == 2


def test_an_error_is_recorded_and_the_next_poll_retries_the_same_page(connection, test_peer_connector):
    connection_poll(connection_id=connection.pk)
    test_peer_connector.PEER.fail_next.append(TransientError("connection refused"))
    assert connection_poll(connection_id=connection.pk) == 0
    connection.refresh_from_db()
    assert (connection.poll_cursor, connection.last_poll_error) == ("2", "TransientError: connection refused")
    test_peer_connector.PEER.fail_next.append(AuthError("password refused"))
    connection_poll(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.last_poll_error == "AuthError: password refused"
    assert connection_poll(connection_id=connection.pk) == 2
    connection.refresh_from_db()
    assert (connection.poll_cursor, connection.last_poll_error) == ("4", "")


def test_a_connection_being_polled_is_not_polled_twice_at_once(connection):
    Connection.objects.filter(pk=connection.pk).update(
        poll_lease_until=timezone.now() + timedelta(seconds=60)
    )
    assert connection_poll(connection_id=connection.pk) == 0
    assert not InboundMessage.objects.exists()


def test_due_connections_are_those_whose_interval_has_passed(connection):
    other = connection_save(
        data={"slug": "no-interval", "system": "erp", "connector": "testpeer", "config": {}}
    )
    assert connections_poll_due() == [connection.pk]
    connection_poll(connection_id=connection.pk)
    assert connections_poll_due() == []
    Connection.objects.filter(pk=connection.pk).update(polled_at=timezone.now() - timedelta(seconds=61))
    assert connections_poll_due() == [connection.pk]
    assert other.pk not in connections_poll_due()
