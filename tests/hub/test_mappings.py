"""Mapping versions (hub/mappings): drafts validated on save, publish, the set the pipeline uses,
the version each processed message records, an unmapped code dead-lettered at ``map``, the admin
preview on a stored message."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from canonical.errors import ConflictError, ValidationFailed
from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from hub.mappings.models import Mapping
from hub.mappings.services import mapping_publish, mapping_save, mapping_set_for
from tests.factories.canonical import ShipmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(test_peer_connector):
    return connection_save(data={"slug": "peer-in", "system": "tms", "connector": "testpeer", "config": {}})


def _process(connection, doc) -> object:
    received = inbox.inbound_message_receive(
        connection=connection,
        body=json.dumps(doc).encode(),
        content_type="application/json",
        headers={},
        idempotency_key=None,
        correlation_id="corr-map",
    )
    assert received.message.pk in inbox.inbound_batch_claim()
    return inbox.inbound_message_process(message_id=received.message.pk)


def test_a_draft_gets_the_next_version_and_invalid_rules_are_refused_naming_each_problem(connection):
    first = mapping_save(
        connection=connection, direction="inbound", data={"codes": {"status": {"IT": "IN_TRANSIT"}}}
    )
    second = mapping_save(connection=connection, direction="inbound", data={})
    assert (first.version, second.version, first.status) == (1, 2, "draft")
    with pytest.raises(ValidationFailed) as caught:
        mapping_save(
            connection=connection, direction="inbound", data={"codes": {"status": {"XX": "TELEPORTED"}}}
        )
    assert "codes.status.XX: 'TELEPORTED' is not a canonical value" in caught.value.detail
    assert Mapping.objects.filter(connection=connection).count() == 2


def test_publishing_retires_the_previous_version_and_published_ones_never_change(connection):
    v1 = mapping_publish(
        mapping=mapping_save(connection=connection, direction="inbound", data={}), user="ops"
    )
    v2 = mapping_publish(
        mapping=mapping_save(
            connection=connection, direction="inbound", data={"codes": {"status": {"IT": "IN_TRANSIT"}}}
        ),
        user="ops",
    )
    v1.refresh_from_db()
    assert (v1.status, v2.status, v2.published_by) == ("retired", "published", "ops")
    with pytest.raises(ConflictError, match="version 2 is published and cannot change"):
        mapping_save(instance=v2, data={})
    with pytest.raises(ConflictError, match="only a draft can be published"):
        mapping_publish(mapping=v1)


def test_the_pipeline_uses_defaults_plus_the_published_version_and_records_it(connection):
    shipment = ShipmentFactory()
    message = _process(
        connection, {"id": 1, "ref": shipment.reference, "status": "PU", "at": "2026-11-20T10:00:00Z"}
    )
    assert (message.status, message.mapping_version) == ("processed", 0)  # connector defaults only

    mapping_publish(
        mapping=mapping_save(
            connection=connection, direction="inbound", data={"codes": {"status": {"IT": "IN_TRANSIT"}}}
        )
    )
    rules = mapping_set_for(connection=connection, direction="inbound")
    assert rules.version == 1
    assert rules.codes["status"] == {"PU": "DEPARTED_PICKUP", "DL": "DELIVERED", "IT": "IN_TRANSIT"}
    message = _process(
        connection, {"id": 2, "ref": shipment.reference, "status": "IT", "at": "2026-11-20T11:00:00Z"}
    )
    assert (message.status, message.mapping_version) == ("processed", 1)
    shipment.refresh_from_db()
    assert shipment.status == "IN_TRANSIT"


def test_an_unmapped_code_dead_letters_at_map_and_names_the_code(connection):
    shipment = ShipmentFactory()
    message = _process(
        connection, {"id": 3, "ref": shipment.reference, "status": "QQ", "at": "2026-11-20T10:00:00Z"}
    )
    assert message.status == "failed"
    letter = DeadLetter.objects.get(message=message)
    assert (letter.stage, letter.reason) == ("map", "status: unmapped status code 'QQ'")


def test_the_admin_preview_runs_a_stored_message_through_a_draft_without_applying_it(
    connection, admin_client
):
    shipment = ShipmentFactory()
    stored = _process(
        connection, {"id": 4, "ref": shipment.reference, "status": "QQ", "at": "2026-11-20T10:00:00Z"}
    )
    draft = mapping_save(
        connection=connection, direction="inbound", data={"codes": {"status": {"QQ": "IN_TRANSIT"}}}
    )
    url = reverse("admin:mappings_mapping_preview", args=[draft.pk])
    assert admin_client.get(url).status_code == 200

    page = admin_client.post(url, {"message": str(stored.pk), "content_type": ""}).content.decode()
    assert "Canonical result (1 document)" in page
    assert "&quot;event_type&quot;: &quot;IN_TRANSIT&quot;" in page
    shipment.refresh_from_db()
    assert shipment.status == "PLANNED"  # a preview applies nothing

    broken = mapping_save(connection=connection, direction="inbound", data={})
    page = admin_client.post(
        reverse("admin:mappings_mapping_preview", args=[broken.pk]), {"message": str(stored.pk)}
    ).content.decode()
    assert "document: map: status: unmapped status code &#x27;QQ&#x27;" in page


def test_the_admin_saves_a_draft_and_reports_an_invalid_one(connection, admin_client):
    add = reverse("admin:mappings_mapping_add")
    response = admin_client.post(
        add,
        {
            "connection": str(connection.pk),
            "direction": "inbound",
            "data": json.dumps({"codes": {"status": {"XX": "TELEPORTED"}}}),
            "notes": "",
        },
    )
    assert response.status_code == 200
    assert "&#x27;TELEPORTED&#x27; is not a canonical value" in response.content.decode()
    assert not Mapping.objects.exists()
    response = admin_client.post(
        add,
        {
            "connection": str(connection.pk),
            "direction": "inbound",
            "data": json.dumps({"codes": {"status": {"XX": "IN_TRANSIT"}}}),
            "notes": "carrier X",
        },
    )
    assert response.status_code == 302
    assert Mapping.objects.get().data == {"codes": {"status": {"XX": "IN_TRANSIT"}}}
