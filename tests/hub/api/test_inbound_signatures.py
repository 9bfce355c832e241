"""Signed calls to `POST /api/v1/inbound/<slug>/` (no API key): any malformed signature header,
non-ASCII included, is a 401 problem (never a 500)."""

from __future__ import annotations

import time

import pytest

from hub.connections.services import connection_save
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

    response = anonymous.post(
        "/api/v1/inbound/partner-in/",
        data=BODY,
        content_type="application/json",
        HTTP_X_CROSSDOCK_SIGNATURE=header.format(t=int(time.time())),
    )

    assert "X-Crossdock-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_bottlecrm_signature_is_a_401_problem(anonymous, dns, header):
    _bottlecrm(dns)

    response = anonymous.post(
        "/api/v1/inbound/crm-in/",
        data=BODY,
        content_type="application/json",
        HTTP_X_BOTTLECRM_SIGNATURE=header.format(t=int(time.time())),
    )

    assert "X-BottleCRM-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("header", NON_ASCII)
def test_a_non_ascii_dcsa_signature_is_a_401_problem(anonymous, header):
    _dcsa()

    response = anonymous.post(
        "/api/v1/inbound/carrier-in/",
        data=BODY,
        content_type="application/json",
        HTTP_NOTIFICATION_SIGNATURE=header.format(t=int(time.time())),
    )

    assert "Notification-Signature" in _assert_401(response)["detail"]
    assert not InboundMessage.objects.exists()
