"""Polling systems that have no webhooks (an ERP's confirmed sales): each poll stores what it fetched
in the inbox, exactly like a pushed message, and only then moves the connection's cursor.

A crash between storing and moving the cursor re-reads the same page next time; the connector's
natural id (e.g. ``sale:<id>:<write_date>``) makes those repeats duplicates, so nothing is applied
twice and nothing is skipped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from connectors import registry
from connectors.errors import ConnectorError
from hub.connections.models import Connection
from hub.core.correlation import correlation_id_new, correlation_scope
from hub.core.lease import LEASE_S, lease_kept
from hub.inbox.services import inbound_message_receive
from hub.mappings.context import connection_context

logger = logging.getLogger(__name__)

POLL_LEASE_S = LEASE_S  # seconds a poll holds its connection, renewed by a heartbeat while it runs


POLLS = "polls"  # the work queue of connections due a poll (hub.core.work)


def connections_poll_due() -> list[UUID]:
    """Active connections with a poll interval whose last poll is at least that old."""
    now = timezone.now()
    due = []
    for pk, interval, polled_at, connector in Connection.objects.filter(
        is_active=True, poll_interval_s__isnull=False
    ).values_list("pk", "poll_interval_s", "polled_at", "connector"):
        if polled_at is not None and polled_at + timedelta(seconds=interval) > now:
            continue
        if "poll" in registry.get(connector).capabilities:
            due.append(pk)
    return due


def _poll_lease_renew(connection_id: UUID) -> int:
    return Connection.objects.filter(pk=connection_id, poll_lease_until__isnull=False).update(
        poll_lease_until=timezone.now() + timedelta(seconds=POLL_LEASE_S)
    )


def connection_poll(*, connection_id: UUID) -> int:
    """Poll one connection once. Returns how many new messages were stored.

    Safe to run concurrently and repeatedly: a lease on the connection row lets one poll at a time,
    and re-reads are duplicates. A connector error is recorded on the connection
    (``last_poll_error``) and the cursor stays where it was, so the next poll retries the same page.
    """
    now = timezone.now()
    claimed = (
        Connection.objects.filter(pk=connection_id, is_active=True)
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        .update(poll_lease_until=now + timedelta(seconds=POLL_LEASE_S))
    )
    if claimed != 1:
        return 0
    connection = Connection.objects.get(pk=connection_id)
    correlation_id = correlation_id_new()
    stored = 0
    with (
        correlation_scope(correlation_id),
        lease_kept(partial(_poll_lease_renew, connection_id), name="poll"),
    ):
        try:
            connector = registry.get(connection.connector).instance()
            result = connector.poll(
                connection.poll_cursor or None, connection_context(connection, direction="inbound")
            )
            for body in result.messages:
                received = inbound_message_receive(
                    connection=connection,
                    body=body,
                    content_type=result.content_type,
                    headers={},
                    idempotency_key=None,
                    correlation_id=correlation_id,
                )
                stored += int(received.created)
        except ConnectorError as exc:
            logger.warning("poll of %s failed: %s", connection.slug, exc.detail)
            Connection.objects.filter(pk=connection_id).update(
                poll_lease_until=None,
                polled_at=timezone.now(),
                last_poll_error=f"{type(exc).__name__}: {exc.detail}"[:2000],
            )
            return 0
        except Exception:
            Connection.objects.filter(pk=connection_id).update(poll_lease_until=None)
            raise
    Connection.objects.filter(pk=connection_id).update(
        poll_cursor=result.cursor or connection.poll_cursor,
        polled_at=timezone.now(),
        poll_lease_until=None,
        last_poll_error="",
    )
    return stored
