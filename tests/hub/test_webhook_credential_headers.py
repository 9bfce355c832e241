"""Webhook headers that carry credentials (Authorization, X-Api-Key, ...) live in the encrypted
secret, never in the plain config the API returns; deliveries still carry them (a real receiver on
127.0.0.1), and the data migration moves the ones stored before."""

from __future__ import annotations

import importlib
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.apps import apps
from django.db import transaction

from canonical.contracts.v1 import MilestoneEvent
from canonical.milestones import shipment_apply_milestone
from connectors import signing
from hub.connections.models import Connection
from hub.connections.services import connection_save, connection_secret, subscription_save
from hub.core import crypto
from hub.outbox import services as outbox
from tests.factories.canonical import ShipmentFactory
from tests.factories.pipeline import ConnectionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_networks")]  # receiver on 127.0.0.1

SIGNING_SECRET = "whsec-headers-test"
CREDENTIALS = {"Authorization": "Bearer tok-123", "X-Api-Key": "key-456", "X-Auth-Token": "tok-789"}


@pytest.fixture
def receiver():
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append({**{k.lower(): v for k, v in self.headers.items()}, "_body": body.decode()})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()


def _deliver_one_event(connection: Connection) -> None:
    subscription_save(data={"connection": connection, "event_types": []})
    shipment = ShipmentFactory()
    with transaction.atomic():
        event = MilestoneEvent.model_validate(
            {
                "event_type": "IN_TRANSIT",
                "occurred_at": datetime(2026, 11, 20, 8, tzinfo=UTC).isoformat(),
                "shipment": {"reference": shipment.reference},
            }
        )
        result = shipment_apply_milestone(event=event, source="test")
        outbox.outbox_event_record(result=result, subscriptions=outbox.subscriptions_active())
    outbox.delivery_batch_send(outbox.delivery_batch_claim())


def _stored_text(connection: Connection) -> str:
    row = Connection.objects.get(pk=connection.pk)
    return json.dumps(row.config) + row.secret_encrypted


def test_credential_headers_sent_through_the_api_are_encrypted_and_still_delivered(admin_caller, receiver):
    response = admin_caller.http.post(
        "/api/v1/connections/",
        {
            "slug": "hooked",
            "name": "Hooked",
            "system": "partner",
            "connector": "webhook",
            "config": {"url": receiver.url, "headers": {**CREDENTIALS, "X-Tenant": "acme"}},
            "secret": SIGNING_SECRET,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["config"]["headers"] == {"X-Tenant": "acme"}
    connection = Connection.objects.get(slug="hooked")
    assert connection.config["headers"] == {"X-Tenant": "acme"}
    for value in CREDENTIALS.values():
        assert value not in _stored_text(connection)  # neither plain config nor readable secret
    assert "tok-123" not in admin_caller.http.get(f"/api/v1/connections/{connection.pk}/").content.decode()

    _deliver_one_event(connection)

    [request] = receiver.received
    assert request["authorization"] == "Bearer tok-123"
    assert (request["x-api-key"], request["x-auth-token"], request["x-tenant"]) == (
        "key-456",
        "tok-789",
        "acme",
    )
    signing.verify(SIGNING_SECRET, request["_body"].encode(), request["x-crossdock-signature"])


def test_a_new_signing_secret_keeps_the_credential_headers_and_an_empty_value_removes_one(receiver):
    connection = connection_save(
        data={
            "slug": "hooked",
            "system": "partner",
            "connector": "webhook",
            "config": {"url": receiver.url, "headers": dict(CREDENTIALS)},
        },
        secret="first-secret",
    )
    connection_save(instance=connection, data={}, secret=SIGNING_SECRET)
    connection_save(
        instance=connection,
        data={"config": {"url": receiver.url, "headers": {"X-Auth-Token": ""}}},
        secret=None,
    )

    _deliver_one_event(Connection.objects.get(pk=connection.pk))

    [request] = receiver.received
    assert (request["authorization"], request["x-api-key"]) == ("Bearer tok-123", "key-456")
    assert "x-auth-token" not in request
    signing.verify(SIGNING_SECRET, request["_body"].encode(), request["x-crossdock-signature"])


def test_a_webhook_without_credential_headers_keeps_its_plain_signing_secret():
    connection = connection_save(
        data={
            "slug": "plain",
            "system": "partner",
            "connector": "webhook",
            "config": {"url": "http://127.0.0.1:9/hook", "headers": {"X-Tenant": "acme"}},
        },
        secret=SIGNING_SECRET,
    )

    assert connection_secret(Connection.objects.get(pk=connection.pk)) == SIGNING_SECRET
    assert Connection.objects.get(pk=connection.pk).config["headers"] == {"X-Tenant": "acme"}


def test_the_data_migration_moves_stored_credential_headers_into_the_secret(receiver):
    migration = importlib.import_module(
        "hub.connections.migrations.0006_webhook_credential_headers_to_secret"
    )
    connection = ConnectionFactory(
        slug="legacy",
        connector="webhook",
        config={"url": receiver.url, "headers": {"Authorization": "Bearer old-tok", "X-Tenant": "acme"}},
        secret_encrypted=crypto.encrypt(SIGNING_SECRET),
    )
    untouched = ConnectionFactory(slug="inbound", connector="canonical", config={})

    migration.move_credential_headers(apps, None)

    connection.refresh_from_db()
    assert connection.config["headers"] == {"X-Tenant": "acme"}
    assert "old-tok" not in _stored_text(connection)
    assert Connection.objects.get(pk=untouched.pk).config == {}
    _deliver_one_event(connection)
    [request] = receiver.received
    assert (request["authorization"], request["x-tenant"]) == ("Bearer old-tok", "acme")
    signing.verify(SIGNING_SECRET, request["_body"].encode(), request["x-crossdock-signature"])
