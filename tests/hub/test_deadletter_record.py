"""hub.deadletters.services.dead_letter_record: recording why something failed never fails itself."""

from __future__ import annotations

import pytest

from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.deadletters.services import dead_letter_record
from hub.inbox.services import inbound_message_receive


@pytest.mark.django_db
def test_a_reason_quoting_a_nul_character_is_recorded_with_the_nul_spelled_out():
    connection = connection_save(
        data={"slug": "nul-in", "system": "tms", "connector": "canonical", "config": {}}
    )
    message = inbound_message_receive(
        connection=connection,
        body=b"A\x00B",
        content_type="text/plain",
        headers={},
        idempotency_key="nul-1",
        correlation_id="corr-nul",
    ).message

    letter = dead_letter_record(
        stage="map",
        reason="unknown status code 'A\x00B'",
        error_class="MappingError",
        connection=connection,
        payload=b"A\x00B",
        message=message,
        waiting_for_shipment="SHP\x001",
    )

    stored = DeadLetter.objects.get(pk=letter.pk)
    assert stored.reason == "unknown status code 'A\\x00B'"
    assert stored.waiting_for_shipment == "SHP\\x001"
    assert bytes(stored.payload) == b"A\x00B"  # the original bytes are kept as they came
