"""Acknowledging received X12 groups with 997s (hub/inbox/acks.py), sent to the partner's HTTP
gateway (a real local HTTP server) through the ledger: one 997 per group with control numbers from
the connection's counters, never sent twice, and the identical interchange resent after a failure."""

from __future__ import annotations

import pytest

from bench.sink import Sink
from connectors.x12 import parser as x12_parser
from hub.connections.services import connection_save
from hub.inbox import services as inbox
from hub.inbox.acks import message_acknowledge
from hub.ledger.models import ControlCounter, SideEffect
from hub.ledger.services import control_number_next, side_effect_retry, side_effects_due
from tests.connectors.x12.support import FIXTURES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gateway(private_networks):
    """The partner's gateway, on 127.0.0.1 (so the test opts in to private networks)."""
    sink = Sink().start()
    yield sink
    sink.stop()


def _partner(url: str | None):
    config = {"sender_id": "CROSSDOCK", "receiver_id": "PARTNER"}
    if url:
        config["outbound_url"] = url
    return connection_save(
        data={"slug": "edi-partner", "system": "carrier", "connector": "x12", "config": config}
    )


def _receive(connection, name: str):
    received = inbox.inbound_message_receive(
        connection=connection,
        body=(FIXTURES / name).read_bytes(),
        content_type="application/edi-x12",
        headers={},
        idempotency_key=None,
        correlation_id="corr-ack",
    )
    assert received.message.pk in inbox.inbound_batch_claim()
    inbox.inbound_message_process(message_id=received.message.pk)
    return received.message


def test_each_received_group_gets_one_997_with_the_connections_control_numbers(gateway):
    connection = _partner(gateway.url)
    message = _receive(connection, "990_nodex12edi_multi.edi")
    assert message_acknowledge(message_id=message.pk) == 1
    message_acknowledge(message_id=message.pk)  # again (a duplicate task): the ledger row is done
    assert len(gateway.state.received) == 1
    sent = gateway.state.received[0]
    assert sent["content_type"] == "application/edi-x12"
    reading = x12_parser.read(sent["body"])
    (interchange,) = reading.interchanges
    assert interchange.control_number == "000000001"
    (group,) = interchange.groups
    assert (group.functional_id, group.control_number) == ("FA", "1")
    assert ControlCounter.objects.get(connection=connection, name="interchange").last_value == 1


def test_a_failed_send_is_retried_with_the_identical_interchange(gateway):
    connection = _partner(gateway.url)
    gateway.state.script = [503]
    message = _receive(connection, "214_edifabric_shipmentstatus.edi")
    assert message_acknowledge(message_id=message.pk) == 0
    effect = SideEffect.objects.get(connection=connection, operation="ack.997")
    assert (effect.status, effect.last_error.startswith("partner answered HTTP 503")) == ("pending", True)
    SideEffect.objects.filter(pk=effect.pk).update(updated_at=effect.updated_at.replace(year=2020))
    assert side_effects_due() == [effect.pk]
    assert side_effect_retry(effect_id=effect.pk).status == "done"
    first, second = gateway.state.received
    assert first["body"] == second["body"]  # same control numbers: the partner sees one interchange
    assert control_number_next(connection=connection, name="interchange") == 2


def test_a_connection_without_an_outbound_address_sends_nothing():
    connection = _partner(None)
    message = _receive(connection, "990_nodex12edi_multi.edi")
    assert message_acknowledge(message_id=message.pk) == 0
    assert not SideEffect.objects.exists()


def test_a_shipment_is_tendered_as_a_204_once_and_reads_back_through_our_parser(gateway, make_caller):
    from canonical.models import Location, Stop
    from hub.outbox.tenders import shipment_tender
    from tests.factories.canonical import CarrierFactory, ShipmentFactory

    connection = _partner(gateway.url)
    shipment = ShipmentFactory(reference="TND-1", carrier=CarrierFactory(scac="ABCD"))
    for sequence, kind, code in ((1, "PICKUP", "DOCK-A"), (2, "DELIVERY", "STORE-9")):
        location = Location.objects.create(code=code, name=code.title(), city="Ottawa", country="CA")
        Stop.objects.create(shipment=shipment, sequence=sequence, kind=kind, location=location)

    admin = make_caller("ops", admin=True)
    response = admin.http.post(
        f"/api/v1/shipments/{shipment.pk}/tender/", {"connection": "edi-partner"}, format="json"
    )
    assert response.status_code == 202
    refused = admin.http.post(
        f"/api/v1/shipments/{shipment.pk}/tender/", {"connection": "nope"}, format="json"
    )
    assert refused.status_code == 400

    effect = shipment_tender(shipment_id=shipment.pk, connection_id=connection.pk)
    shipment_tender(shipment_id=shipment.pk, connection_id=connection.pk)  # again: nothing new is sent
    assert (effect.status, effect.external_id) == ("done", "000000001")
    (sent,) = [r for r in gateway.state.received]
    from connectors.x12.documents import documents

    (document,) = documents(x12_parser.read(sent["body"]))
    assert document["set"] == "204" and not document["rejected"]
