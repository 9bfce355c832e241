"""The connector contract (connectors/base.py): one operation table per connector, the parse result's
declared fields, the attributes the hub reads, and the shared JSON-body and signature helpers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors import registry, signing
from connectors.base import Connector, InboundRequest, Operation, OperationContext, ParseResult
from connectors.errors import AuthError, NotSupported, ParseError, PermanentError
from connectors.jsonbody import json_body_or_none, json_object

# --- Operation tables -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", registry.keys())
def test_declared_operations_are_the_names_of_the_operation_table(key: str):
    connector = registry.get(key).connector

    assert connector.operations == tuple(connector.operation_table)
    assert registry.get(key).describe()["operations"] == list(connector.operation_table)


@pytest.mark.parametrize("key", registry.keys())
def test_every_operation_the_hub_performs_on_its_own_is_in_the_table(key: str):
    connector = registry.get(key).connector

    for name in (
        connector.event_operation,
        connector.acknowledge_operation,
        connector.interchange_acknowledge_operation,
    ):
        assert name is None or name in connector.operation_table


def test_the_builtin_tables_hold_the_operations_they_always_offered():
    assert {spec.key: spec.connector.operations for spec in registry.all_specs()} == {
        "bottlecrm": (
            "account.upsert",
            "contact.upsert",
            "shipment.status",
            "case.open",
            "case.comment",
            "case.close",
            "case.reopen",
        ),
        "canonical": (),
        "dcsa": (),
        "karrio": ("order.create", "shipment.create", "shipment.cancel", "webhook.register"),
        "tryton": (
            "sale.link_shipment",
            "shipment.record_cost",
            "invoice.post",
            "invoice.recreate",
            "invoice.credit",
            "invoice.debit",
            "freight.accrue",
            "freight.accrual_reverse",
        ),
        "webhook": (),
        "x12": ("ack.997", "ack.ta1", "tender.204"),
    }


def test_a_connector_cannot_declare_operations_beside_its_table():
    with pytest.raises(TypeError, match="declare operation_table"):

        class Listed(Connector):
            operations = ("record.create",)


def test_an_event_or_acknowledge_operation_missing_from_the_table_is_refused():
    with pytest.raises(TypeError, match=r"event_operation 'record\.create' is not in its operation_table"):

        class Evented(Connector):
            event_operation = "record.create"

    with pytest.raises(TypeError, match=r"interchange_acknowledge_operation 'ack\.ta1'"):

        class Acknowledging(Connector):
            operation_table = {"ack.997": Operation(perform=lambda payload: None)}
            acknowledge_operation = "ack.997"
            interchange_acknowledge_operation = "ack.ta1"


_NO_IO: Any = OperationContext(config=None, secret=None, client=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["tryton", "karrio", "bottlecrm"])
def test_an_unknown_operation_is_not_supported_before_any_io(key: str):
    connector = registry.get(key).instance()

    with pytest.raises(NotSupported, match=rf"{key} has no operation 'nothing\.here'"):
        connector.operate("nothing.here", {}, _NO_IO)
    with pytest.raises(NotSupported, match=rf"{key} has no operation 'nothing\.here'"):
        connector.lookup("nothing.here", {}, _NO_IO)


def test_an_unknown_x12_operation_is_a_permanent_error():
    with pytest.raises(PermanentError, match=r"x12 has no operation 'nothing\.here'"):
        registry.get("x12").instance().operate("nothing.here", {"control": {}}, _NO_IO)


# --- Parse results and declared attributes ----------------------------------------------------------


def test_a_parse_result_declares_every_field_the_hub_reads_empty_by_default():
    result = ParseResult()

    assert (
        result.documents,
        result.problems,
        result.acknowledgements,
        result.interchange_acknowledgements,
    ) == ([], [], [], [])


def test_the_connectors_that_verify_their_own_webhooks_come_from_the_registry():
    # The same set the inbound view used to compute as "has verify, and is neither canonical
    # (the Crossdock signature, recognised by its header) nor webhook".
    own = {spec.key for spec in registry.all_specs() if spec.verifies_own_webhooks}

    assert own == {"karrio", "bottlecrm", "dcsa"}
    assert own == {
        spec.key
        for spec in registry.all_specs()
        if spec.key not in ("canonical", "webhook") and "verify" in spec.capabilities
    }


# --- Shared helpers ---------------------------------------------------------------------------------


def test_json_object_returns_an_object_with_the_required_keys():
    doc = json_object(b'{"event": "x", "data": {}}', required={"event": str, "data": dict}, expected="no")

    assert doc == {"event": "x", "data": {}}


@pytest.mark.parametrize(
    "body", [b"[]", b'{"event": 1, "data": {}}', b'{"event": "x"}', b'{"event": "x", "data": []}']
)
def test_json_object_refuses_another_shape_with_the_connectors_sentence(body: bytes):
    with pytest.raises(ParseError, match=r"^expected a thing$"):
        json_object(body, required={"event": str, "data": dict}, expected="expected a thing")


def test_json_object_any_value_means_present_even_when_null():
    assert json_object(b'{"id": null}', required={"id": object}, expected="no") == {"id": None}


def test_json_object_keeps_the_decoders_detail_for_a_body_that_is_not_json():
    with pytest.raises(ParseError, match="malformed JSON"):
        json_object(b"{", required={}, expected="expected a thing")


def test_json_body_or_none_is_none_for_an_unreadable_body():
    assert json_body_or_none(b"{") is None
    assert json_body_or_none(b'{"a": 1}') == {"a": 1}


def test_a_signature_scheme_verifies_under_its_own_header_and_names_its_nonce():
    scheme = signing.SignatureScheme(header="X-Peer-Signature", tolerance_s=60)
    now = int(time.time())
    header = signing.sign("s3cret", b"{}", timestamp=now)
    request = InboundRequest(
        body=b"{}", content_type="application/json", headers={"x-peer-signature": header}
    )

    scheme.verify_request(request, "s3cret")
    nonce, ttl_s = scheme.replay_nonce_of(request)
    assert nonce == header.replace("t=", "").replace(",v1=", ".")
    assert 1 <= ttl_s <= 61
    crossdock_headed = InboundRequest(
        body=b"{}", content_type="application/json", headers={"x-crossdock-signature": header}
    )
    with pytest.raises(AuthError, match="missing X-Peer-Signature header"):
        scheme.verify_request(crossdock_headed, "s3cret")
    assert scheme.replay_nonce_of(crossdock_headed) is None
