"""The connector framework: the registry, the signature scheme, canonical parsing errors, and the webhook
connector's classification of responses (through a tiny HttpClient, the connector's injected I/O)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors import registry, signing
from connectors.base import InboundRequest, OutboundRequest, SendResult
from connectors.errors import AuthError, ParseError, PermanentError, TransientError

# --- Registry ---------------------------------------------------------------------------------------


def test_registry_lists_the_builtin_connectors():
    assert {"canonical", "webhook"} <= set(registry.keys())
    assert registry.check_keys() == registry.keys()


def test_canonical_connector_reads_inbound_only():
    spec = registry.get("canonical")

    assert spec.key == "canonical"
    assert spec.capabilities == ["verify", "natural_id", "parse", "map"]


def test_webhook_connector_delivers_only():
    spec = registry.get("webhook")

    assert spec.capabilities == ["render", "send"]
    described = spec.describe()
    assert (described["key"], described["system"]) == ("webhook", "partner")
    assert "url" in described["config_schema"]["properties"]
    assert "url" in described["config_schema"]["required"]


def test_unknown_connector_key_is_refused_naming_the_installed_ones():
    with pytest.raises(registry.UnknownConnectorError, match="canonical"):
        registry.get("no-such-connector")


class _FakeEntryPoint:
    def __init__(self, name: str, value: str):
        self.name, self.value = name, value


@pytest.fixture
def fresh_registry():
    """The registry's caches are emptied around the test, so a patched entry-point list is read and
    never outlives it."""
    registry._targets.cache_clear()
    registry.get.cache_clear()
    yield
    registry._targets.cache_clear()
    registry.get.cache_clear()


def test_duplicate_entry_point_key_fails_at_startup(monkeypatch, fresh_registry):
    def entry_points(*, group: str):
        assert group == registry.ENTRY_POINT_GROUP
        return [_FakeEntryPoint("webhook", "thirdparty.webhook:CONNECTOR")]

    monkeypatch.setattr(registry, "entry_points", entry_points)

    with pytest.raises(registry.RegistryError, match="'webhook' is registered twice"):
        registry.check_keys()


def test_entry_point_connector_with_a_new_key_is_registered(monkeypatch, fresh_registry):
    monkeypatch.setattr(
        registry,
        "entry_points",
        lambda *, group: [_FakeEntryPoint("webhook2", "connectors.webhook:CONNECTOR")],
    )

    assert "webhook2" in registry.check_keys()
    # The target's spec carries another key: refused rather than served under the wrong name.
    with pytest.raises(registry.RegistryError, match="not a ConnectorSpec with key 'webhook2'"):
        registry.get("webhook2")


# --- Signing ----------------------------------------------------------------------------------------

BODY = b'{"event_type": "DELIVERED"}'


def test_signature_round_trip_verifies():
    header = signing.sign("s3cret", BODY)

    assert signing.verify("s3cret", BODY, header) is None
    assert header.startswith("t=") and ",v1=" in header


def test_tampered_body_is_refused():
    header = signing.sign("s3cret", BODY)

    with pytest.raises(AuthError, match="does not match"):
        signing.verify("s3cret", BODY + b" ", header)


def test_signature_with_another_secret_is_refused():
    header = signing.sign("other", BODY)

    with pytest.raises(AuthError, match="does not match"):
        signing.verify("s3cret", BODY, header)


def test_stale_timestamp_is_refused_even_with_a_valid_digest():
    then = int(time.time()) - signing.TOLERANCE_S - 5
    header = signing.sign("s3cret", BODY, timestamp=then)

    with pytest.raises(AuthError, match="timestamp"):
        signing.verify("s3cret", BODY, header)
    # Within the tolerance window the same header is fine.
    assert signing.verify("s3cret", BODY, header, now=then + 10) is None


@pytest.mark.parametrize("header", ["garbage", "t=abc,v1=00", "v1=00", "t=123"])
def test_malformed_signature_header_is_refused(header: str):
    with pytest.raises(AuthError, match="malformed"):
        signing.verify("s3cret", BODY, header)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_signature_header_is_refused(header):
    with pytest.raises(AuthError, match="missing"):
        signing.verify("s3cret", BODY, header)


# --- Canonical connector: parse and natural id ------------------------------------------------------


def _request(body: bytes) -> InboundRequest:
    return InboundRequest(body=body, content_type="application/json", headers={})


def _canonical():
    spec = registry.get("canonical")
    return spec.instance(), spec.config_schema()


def test_canonical_parse_reports_malformed_json_with_its_position():
    connector, config = _canonical()

    with pytest.raises(ParseError) as caught:
        connector.parse(_request(b'{"event_type":\n  }'), config)

    assert caught.value.position == "line 2 column 3"
    assert "malformed JSON" in caught.value.detail
    assert caught.value.stage == "parse"


def test_canonical_parse_refuses_an_empty_list():
    connector, config = _canonical()

    with pytest.raises(ParseError, match="empty list"):
        connector.parse(_request(b"[]"), config)


@pytest.mark.parametrize(("body", "kind"), [(b"42", "int"), (b'"text"', "str"), (b"null", "NoneType")])
def test_canonical_parse_refuses_a_scalar(body: bytes, kind: str):
    connector, config = _canonical()

    with pytest.raises(ParseError, match=f"got {kind}"):
        connector.parse(_request(body), config)


def test_canonical_parse_refuses_bytes_that_are_not_utf8_with_the_byte_offset():
    connector, config = _canonical()

    with pytest.raises(ParseError) as caught:
        connector.parse(_request(b'{"a": "\xff"}'), config)

    assert caught.value.position == "byte 7"


def test_canonical_parse_reads_one_object_or_a_list():
    connector, config = _canonical()

    assert connector.parse(_request(b'{"a": 1}'), config).documents == [{"a": 1}]
    assert connector.parse(_request(b'[{"a": 1}, {"b": 2}]'), config).documents == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"event_id": "tms-1"}', "event:tms-1"),
        (b'  {"event_id": "tms-1"}', "event:tms-1"),
        (b'{"event_id": ""}', None),
        (b'{"event_id": 7}', None),
        (b'[{"event_id": "tms-1"}]', None),  # a batch has no single id
        (b"{broken", None),
    ],
)
def test_canonical_natural_id_is_a_single_events_event_id(body: bytes, expected: str | None):
    connector, config = _canonical()

    assert connector.natural_id(_request(body), config) == expected


def test_canonical_verify_checks_the_signature_header():
    connector, config = _canonical()
    header = signing.sign("s3cret", BODY)
    good = InboundRequest(
        body=BODY, content_type="application/json", headers={"x-crossdock-signature": header}
    )

    assert connector.verify(good, "s3cret", config) is None
    with pytest.raises(AuthError):
        connector.verify(good, "wrong", config)


# --- Webhook connector: render and send classification ----------------------------------------------


class FakeHttpClient:
    """Answers every request with one canned response and records what was sent."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b""):
        self.response = (status, dict(headers or {}), body, 12)
        self.sent: list[tuple[str, str, Mapping[str, str], bytes]] = []

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes):
        self.sent.append((method, url, headers, body))
        return self.response


def _webhook():
    spec = registry.get("webhook")
    return spec.instance(), spec.config_schema.model_validate({"url": "https://peer.example/hook"})


def _outbound() -> OutboundRequest:
    return OutboundRequest(method="POST", url="https://peer.example/hook", headers={}, body=b"{}")


def test_webhook_render_signs_the_body_and_sets_the_idempotency_key():
    connector, config = _webhook()
    envelope = {"specversion": "1.0", "id": "evt-1", "type": "crossdock.shipment.DELIVERED"}

    request = connector.render(envelope, config, "s3cret", idempotency_key="dlv-1")

    assert (request.method, request.url) == ("POST", "https://peer.example/hook")
    assert json.loads(request.body) == envelope
    assert request.headers["Idempotency-Key"] == "dlv-1"
    assert request.headers["Content-Type"].startswith("application/cloudevents+json")
    signing.verify("s3cret", request.body, request.headers[signing.HEADER])


def test_webhook_render_without_a_secret_sends_no_signature():
    connector, config = _webhook()

    request = connector.render({"id": "x"}, config, None, idempotency_key="k")

    assert signing.HEADER not in request.headers


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webhook_send_2xx_is_delivered(status: int):
    connector, _ = _webhook()
    client = FakeHttpClient(status, body=b"accepted")

    result = connector.send(_outbound(), client)

    assert result == SendResult(status_code=status, body_excerpt="accepted", duration_ms=12)
    assert client.sent[0][:2] == ("POST", "https://peer.example/hook")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_webhook_send_timeouts_throttling_and_5xx_are_transient(status: int):
    connector, _ = _webhook()

    with pytest.raises(TransientError) as caught:
        connector.send(_outbound(), FakeHttpClient(status, body=b"try later"))

    assert caught.value.status_code == status
    assert caught.value.retry_after is None
    assert f"HTTP {status}" in caught.value.detail


def test_webhook_send_reads_retry_after_in_seconds():
    connector, _ = _webhook()

    with pytest.raises(TransientError) as caught:
        connector.send(_outbound(), FakeHttpClient(429, {"Retry-After": "7"}))

    assert caught.value.retry_after == 7.0


def test_webhook_send_reads_retry_after_as_an_http_date():
    connector, _ = _webhook()
    when = datetime.now(UTC) + timedelta(seconds=90)

    with pytest.raises(TransientError) as caught:
        connector.send(_outbound(), FakeHttpClient(503, {"retry-after": format_datetime(when, usegmt=True)}))

    assert 80 <= caught.value.retry_after <= 91


def test_webhook_send_ignores_an_unreadable_retry_after():
    connector, _ = _webhook()

    with pytest.raises(TransientError) as caught:
        connector.send(_outbound(), FakeHttpClient(503, {"Retry-After": "soon"}))

    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [401, 403])
def test_webhook_send_refused_credentials_are_an_auth_error(status: int):
    connector, _ = _webhook()

    with pytest.raises(AuthError) as caught:
        connector.send(_outbound(), FakeHttpClient(status))

    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [400, 404, 409, 410, 413, 422, 301])
def test_webhook_send_other_non_2xx_is_permanent(status: int):
    connector, _ = _webhook()

    with pytest.raises(PermanentError) as caught:
        connector.send(_outbound(), FakeHttpClient(status, body=b"no such field"))

    assert not isinstance(caught.value, AuthError)
    assert caught.value.status_code == status
    assert "no such field" in caught.value.detail
