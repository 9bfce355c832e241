"""Wake-ups when the broker is down: the work is committed, so the request that stored it succeeds.

Found by the chaos soak (docs/reliability.md): with Redis down, the inbound endpoint stored and
committed the message, then the wake-up publish raised in the on-commit hook and the sender got a
500 for a message Crossdock had accepted. The broker here is real: a Redis URL on a port where
nothing listens.
"""

from __future__ import annotations

import json
import socket

import pytest

from celery_app import app
from hub.connections.services import connection_save
from hub.inbox.models import InboundMessage

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # released on close: nothing listens there


def _reset_producers() -> None:
    """Forget the cached connection and producer pools, so the next publish uses the broker URL."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down():
    names = ("broker_url", "broker_write_url", "broker_read_url")
    saved = {name: app.conf[name] for name in names}
    port = _closed_port()
    app.conf.update(dict.fromkeys(names, f"redis://127.0.0.1:{port}/0"))
    _reset_producers()
    assert app.connection_for_write().port == port
    yield
    app.conf.update(saved)
    _reset_producers()


def test_inbound_post_is_accepted_when_the_broker_is_down(broker_down, admin_caller):
    connection_save(data={"slug": "wake-in", "system": "carrier", "connector": "canonical", "config": {}})
    event = {
        "event_id": "wake-1",
        "event_type": "DEPARTED_PICKUP",
        "occurred_at": "2026-11-20T08:00:00Z",
        "shipment": {"reference": "SHP-WAKE-1"},
    }

    response = admin_caller.http.post(
        "/api/v1/inbound/wake-in/", data=json.dumps(event), content_type="application/json"
    )

    assert response.status_code == 202, response.content
    message = InboundMessage.objects.get()
    assert message.status == InboundMessage.Status.RECEIVED  # waits for the sweeper's wake-up
