"""Signed calls to `POST /api/v1/inbound/<slug>/` (no API key): any malformed signature header,
non-ASCII included, is a 401 problem (never a 500), and a valid signature is accepted once: a
replay inside its tolerance window is refused (nonce in real Redis)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid

import pytest
from django.core.cache import cache

from connectors import signing
from hub.connections.services import connection_save, signature_nonce_claim, signature_nonce_release
from hub.inbox.models import InboundMessage

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
SECRET = "whsec_inbound_test"
BODY = b'{"event_type": "IN_TRANSIT", "occurred_at": "2026-11-20T08:00:00Z", "shipment": {"reference": "S1"}}'
# {t} is now: a fresh timestamp, so the check reaches the digest comparison.
NON_ASCII = [
    "t={t},v1=\u00e9\u00e9",
    "t={t},v1=abc\u00ff",
    "t=\u0661\u0662\u0663,v1=abc",
    "sha256=\u00ff\u00fe",
    "\u00e9",
]


def _canonical():
    return connection_save(
        data={"slug": "partner-in", "system": "partner", "connector": "canonical", "config": {}},
        secret=SECRET,
    )


def _bottlecrm(dns):
    dns["crm.example"] = ["93.184.215.14"]  # the outbound URL is checked on save; never called here
    return connection_save(
        data={
            "slug": "crm-in",
            "system": "crm",
            "connector": "bottlecrm",
            "config": {"url": "https://crm.example"},
        },
        secret=SECRET,
    )


def _dcsa():
    return connection_save(
        data={"slug": "carrier-in", "system": "carrier", "connector": "dcsa", "config": {}}, secret=SECRET
    )


def _post_json(client, slug: str, body: bytes = BODY, **headers):
    """POST ``body`` as JSON to the inbound endpoint of connection ``slug``."""
    return client.post(f"/api/v1/inbound/{slug}/", data=body, content_type="application/json", **headers)


def _assert_401(response) -> dict:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:crossdock:problem:authentication-failed"
    return body


# --- Non-ASCII headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_crossdock_signature_is_a_401_problem(anonymous, header):
    _canonical()

    response = _post_json(
        anonymous, "partner-in", HTTP_X_CROSSDOCK_SIGNATURE=header.format(t=int(time.time()))
    )

    assert "X-Crossdock-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_bottlecrm_signature_is_a_401_problem(anonymous, dns, header):
    _bottlecrm(dns)

    response = _post_json(anonymous, "crm-in", HTTP_X_BOTTLECRM_SIGNATURE=header.format(t=int(time.time())))

    assert "X-BottleCRM-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_dcsa_signature_is_a_401_problem(anonymous, header):
    _dcsa()

    response = _post_json(
        anonymous, "carrier-in", HTTP_NOTIFICATION_SIGNATURE=header.format(t=int(time.time()))
    )

    assert "Notification-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()


# --- Replays ------------------------------------------------------------------------------------------


def _crm_body() -> bytes:
    return b'{"event": "ticket.updated", "id": "%s", "data": {}}' % uuid.uuid4().hex.encode()


@pytest.mark.parametrize("kind", ["canonical", "bottlecrm"])
def test_a_signed_request_replayed_inside_the_window_is_refused(anonymous, dns, kind):
    if kind == "canonical":
        _canonical()
        url, meta, body = "/api/v1/inbound/partner-in/", "HTTP_X_CROSSDOCK_SIGNATURE", BODY
    else:
        _bottlecrm(dns)
        url, meta, body = "/api/v1/inbound/crm-in/", "HTTP_X_BOTTLECRM_SIGNATURE", _crm_body()
    signed = {meta: signing.sign(SECRET, body)}

    first = anonymous.post(url, data=body, content_type="application/json", **signed)
    replay = anonymous.post(url, data=body, content_type="application/json", **signed)

    assert first.status_code == 202, first.content
    assert "signature already used" in _assert_401(replay)["detail"]
    assert InboundMessage.objects.count() == 1
    # The sender's next request, signed afresh, is accepted (a duplicate of the same body).
    time.sleep(1.01)  # a new timestamp, so a new signature
    again = anonymous.post(
        url, data=body, content_type="application/json", **{meta: signing.sign(SECRET, body)}
    )
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "duplicate"


def test_the_nonce_lives_in_redis_until_the_signature_leaves_its_window(anonymous):
    _canonical()
    t = int(time.time()) - 100  # signed 100 s ago: 200 s of validity left
    header = signing.sign(SECRET, BODY, timestamp=t)

    response = _post_json(anonymous, "partner-in", HTTP_X_CROSSDOCK_SIGNATURE=header)

    assert response.status_code == 202, response.content
    client = cache._cache.get_client(write=True)
    [key] = list(client.scan_iter(match=cache.make_key("signature-nonce:*")))
    assert 195 <= client.ttl(key) <= 202


def test_a_dcsa_notification_has_no_time_window_so_its_retry_is_a_duplicate(anonymous):
    _dcsa()
    body = b'{"events": []}'
    header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    first = _post_json(anonymous, "carrier-in", body=body, HTTP_NOTIFICATION_SIGNATURE=header)
    retry = _post_json(anonymous, "carrier-in", body=body, HTTP_NOTIFICATION_SIGNATURE=header)

    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json()["status"] == "duplicate"


def test_two_processes_claiming_the_same_signature_at_once_let_exactly_one_through():
    connection = _canonical()
    barrier = threading.Barrier(2)
    outcomes: list[str | None] = []

    def claim() -> None:
        barrier.wait()
        outcomes.append(signature_nonce_claim(connection=connection, nonce="1700000000.ab12", ttl_s=60))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcome is None for outcome in outcomes) == [False, True]


def test_a_released_nonce_can_be_claimed_again():
    # What the inbound view does when the message could not be stored: the sender's retry of the
    # very same request is not a replay.
    connection = _canonical()
    key = signature_nonce_claim(connection=connection, nonce="1700000000.cd34", ttl_s=60)
    assert key is not None
    assert signature_nonce_claim(connection=connection, nonce="1700000000.cd34", ttl_s=60) is None

    signature_nonce_release(key=key)

    assert signature_nonce_claim(connection=connection, nonce="1700000000.cd34", ttl_s=60) == key
