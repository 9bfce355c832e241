"""Arbitrary bodies through the real path: POST to the inbound endpoint, then drain the inbox.

Whatever the body (arbitrary bytes, arbitrary JSON, a real sample mutated), every reader's connection
answers 202/200 (never a 500) and the message ends processed, or failed/partial with a dead letter
that says why (never a crash's poison letter); nothing is left waiting or claimed. Bounded to a few dozen examples per reader.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.connections.services import connection_save
from hub.deadletters.models import DeadLetter
from hub.inbox import services as inbox
from hub.inbox.models import InboundMessage
from tests.factories.canonical import ShipmentFactory
from tests.support.fuzz import ALL_KEYS, CONFIGS, JSON_VALUES, mutated_bytes, mutated_documents, sample_bytes
from tests.support.timing import within

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def bodies(key: str):
    return (
        st.binary(max_size=800)
        | JSON_VALUES.map(lambda value: json.dumps(value).encode())
        | mutated_bytes(sample_bytes(key))
        | (mutated_documents(key) if key != "x12" else st.sampled_from(sample_bytes(key)))
        | st.just(b"[" * 100_000 + b"]" * 100_000)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("key", ALL_KEYS)
def test_any_body_posted_and_drained_ends_processed_or_dead_lettered_with_a_reason(admin_caller, dns, key):
    for host in ("erp.example", "crm.example", "karrio.example"):
        dns[host] = ["93.184.215.14"]  # the connections' URLs must resolve to a public address
    connection_save(
        data={"slug": f"fuzz-{key}", "system": "partner", "connector": key, "config": CONFIGS[key]}
    )
    for reference in ("SHP-1", "SHP-2", "SHP-3", "SHP-42"):  # so some samples apply
        ShipmentFactory(reference=reference)

    @FUZZ
    @given(body=bodies(key))
    def run(body: bytes) -> None:
        response = admin_caller.http.post(
            f"/api/v1/inbound/fuzz-{key}/", data=body, content_type="application/json"
        )
        assert response.status_code in (200, 202), response.content[:300]
        with within(30):
            inbox.inbox_drain(budget_s=20)

        message = InboundMessage.objects.get(pk=response.json()["message_id"])
        assert message.status in ("processed", "partial", "failed"), (message.status, message.trace)
        if message.status != "processed":
            letters = DeadLetter.objects.filter(message=message)
            assert letters.exists(), message.trace
            assert all(letter.reason.strip() for letter in letters)
            # A poison letter would mean processing crashed: a bug to fix, not an answer.
            assert not any(letter.reason.startswith("poison:") for letter in letters), letters[0].reason
        assert not InboundMessage.objects.filter(status__in=["received", "processing"]).exists()

    run()
