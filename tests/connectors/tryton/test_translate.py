"""The `tryton` connector's pure side: a polled sale to an OrderDocument (golden files captured from
the live peer, see tests/fixtures/tryton/README.md), its code maps and field maps, the natural id,
and the JSON-RPC wire codec and error classification."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from canonical.contracts.v1 import OrderDocument
from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import AuthError, MappingError, ParseError, PermanentError, TransientError
from connectors.mapping import MappingSet, merge
from connectors.tryton import DEFAULT_MAPPINGS, Config
from connectors.tryton.client import _error, decode, encode, jsonable, nest
from connectors.tryton.operations import cursor_format, cursor_parse, sale_message, sales_domain
from connectors.tryton.translate import write_targets

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tryton"
CASES = sorted(p.name.removesuffix(".json") for p in FIXTURES.glob("*.json") if ".expected" not in p.name)
CONFIG = Config.model_validate({"url": "http://127.0.0.1:18010", "database": "db", "username": "admin"})
INBOUND = MappingSet.from_data(DEFAULT_MAPPINGS["inbound"])


def request(body: bytes) -> InboundRequest:
    return InboundRequest(body=body, content_type="application/json", headers={})


def sale(case: str = "globex_mixed_units_and_comment") -> dict:
    return json.loads((FIXTURES / f"{case}.json").read_text())


def map_sale(document: dict, mappings: MappingSet = INBOUND) -> dict:
    (order,) = registry.get("tryton").instance().map(document, CONFIG, mappings)
    return order


def test_there_are_golden_cases():
    assert len(CASES) >= 3


@pytest.mark.parametrize("case", CASES)
def test_polled_sale_maps_to_the_expected_order(case):
    connector = registry.get("tryton").instance()
    body = (FIXTURES / f"{case}.json").read_bytes()
    (document,) = connector.parse(request(body), CONFIG).documents

    mapped = connector.map(document, CONFIG, INBOUND)

    assert mapped == json.loads((FIXTURES / f"{case}.expected.json").read_text())
    for order in mapped:
        OrderDocument.model_validate(order)  # the hub's contract accepts it


def test_the_freight_line_and_comment_lines_are_not_order_lines():
    document = sale()
    assert [line["type"] for line in document["lines"]] == ["line", "line", "comment", "line"]
    assert document["lines"][3]["shipment_cost"] is not None  # sale_shipment_cost's freight line

    order = map_sale(document)

    assert [(line["line_number"], line["sku"]) for line in order["lines"]] == [(1, "WIDGET"), (2, "CABLE")]


def test_natural_id_is_the_sale_id_and_its_last_change():
    connector = registry.get("tryton").instance()
    document = sale()
    changed = {**document, "last_modified_at": "2026-11-26T20:00:00.000001Z"}

    first = connector.natural_id(request(json.dumps(document).encode()), CONFIG)
    second = connector.natural_id(request(json.dumps(changed).encode()), CONFIG)

    assert first == f"sale:{document['id']}:{document['last_modified_at']}"
    assert second == f"sale:{document['id']}:2026-11-26T20:00:00.000001Z" != first


def test_an_unmapped_sale_state_is_a_mapping_error_naming_it():
    document = {**sale(), "state": "quotation"}

    with pytest.raises(MappingError, match="unmapped sale_state code 'quotation'") as caught:
        map_sale(document)

    assert (caught.value.field, caught.value.value) == ("state", "quotation")


def test_an_unmapped_unit_is_a_mapping_error_naming_the_line():
    document = copy.deepcopy(sale())
    document["lines"][1]["unit"]["symbol"] = "in²"

    with pytest.raises(MappingError, match="unmapped unit code 'in²'") as caught:
        map_sale(document)

    assert caught.value.field == "lines.1.unit"


def test_a_connection_code_map_override_maps_a_new_state_and_unit():
    mappings = MappingSet.from_data(
        merge(
            DEFAULT_MAPPINGS["inbound"],
            {"codes": {"sale_state": {"quotation": "DRAFT"}, "unit": {"m": "MTR"}}},
        )
    )
    document = {**sale(), "state": "quotation"}

    order = map_sale(document, mappings)

    assert order["status"] == "DRAFT"
    assert order["lines"][1]["unit_of_measure"] == "MTR"


def test_customer_code_and_reference_follow_the_field_map_templates():
    mappings = MappingSet.from_data(
        merge(
            DEFAULT_MAPPINGS["inbound"],
            {
                "fields": {
                    "customer.code": "ERP2-{party.code}",
                    "reference": "SO-{number}",
                    "notes": "reference",
                }
            },
        )
    )

    order = map_sale(sale(), mappings)

    assert order["customer"]["code"] == "ERP2-4"
    assert order["reference"] == "SO-2"
    assert order["notes"] == "PO-778"
    assert map_sale(sale())["customer"]["code"] == "TRY-4"  # the default


def test_a_template_whose_source_is_empty_leaves_a_required_field_unmapped():
    document = copy.deepcopy(sale())
    document["party"]["code"] = None

    with pytest.raises(MappingError, match=r"no value for customer\.code") as caught:
        map_sale(document)

    assert caught.value.field == "customer.code"


def test_a_line_without_product_or_with_a_return_quantity_is_refused():
    no_product = copy.deepcopy(sale())
    no_product["lines"][0]["product"] = None
    negative = copy.deepcopy(sale())
    negative["lines"][0]["quantity"] = -2.0

    with pytest.raises(MappingError, match="has no product") as missing:
        map_sale(no_product)
    with pytest.raises(MappingError, match="only positive") as returned:
        map_sale(negative)

    assert missing.value.field == "lines.0.product"
    assert returned.value.field == "lines.0.quantity"


def test_a_sale_with_only_freight_has_nothing_to_order():
    document = copy.deepcopy(sale())
    document["lines"] = [line for line in document["lines"] if line["shipment_cost"] is not None]

    with pytest.raises(MappingError, match="no product lines") as caught:
        map_sale(document)

    assert caught.value.field == "lines"


def test_external_refs_use_the_configured_system_name():
    config = Config.model_validate({**CONFIG.model_dump(mode="json"), "ref_system": "tryton-eu"})

    (order,) = registry.get("tryton").instance().map(sale(), config, INBOUND)

    assert order["external_refs"] == [{"system": "tryton-eu", "external_id": "2"}]
    assert order["customer"]["external_refs"] == [{"system": "tryton-eu", "external_id": "4"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "malformed JSON"), (b'[{"id": 1}]', "one Tryton sale object"), (b"\xff", "UTF-8")],
)
def test_unreadable_messages_are_parse_errors(body, message):
    with pytest.raises(ParseError, match=message):
        registry.get("tryton").instance().parse(request(body), CONFIG)


def test_outbound_field_map_chooses_where_link_values_are_written():
    defaults = MappingSet.from_data(DEFAULT_MAPPINGS["outbound"])
    to_comment = MappingSet.from_data(
        merge(DEFAULT_MAPPINGS["outbound"], {"fields": {"tms_shipment_id": "sale.comment"}})
    )
    nowhere = MappingSet.from_data({"fields": {"tracking_number": "party.name"}})
    values = {"tms_shipment_id": "SHP-1", "tracking_number": "1Z999"}

    assert write_targets(defaults, values) == {
        "sale": {"reference": "SHP-1"},
        "shipment": {"reference": "1Z999"},
    }
    assert write_targets(to_comment, values)["sale"] == {"comment": "SHP-1"}
    assert write_targets(defaults, {"tms_shipment_id": "SHP-1", "tracking_number": None})["shipment"] == {}
    with pytest.raises(MappingError, match=r"cannot be written to 'party\.name'"):
        write_targets(nowhere, values)


def test_the_spec_declares_its_capabilities_operations_and_valid_default_mappings():
    spec = registry.get("tryton")

    assert (spec.key, spec.system, spec.secret_fields) == ("tryton", "erp", ("password",))
    assert spec.capabilities == ["natural_id", "parse", "map", "poll", "operate", "lookup"]
    assert spec.connector.operations == (
        "sale.link_shipment",
        "shipment.record_cost",
        "invoice.post",
        "invoice.recreate",
        "invoice.credit",
        "invoice.debit",
        "freight.accrue",
        "freight.accrual_reverse",
    )
    from connectors.mapping import validate

    for direction in ("inbound", "outbound"):
        assert validate(spec.default_mappings[direction], spec.mapping_targets) == []


def test_config_refuses_an_unknown_poll_state():
    with pytest.raises(ValueError, match="unknown sale state"):
        Config.model_validate({**CONFIG.model_dump(mode="json"), "poll_states": ["confirmed", "shipped"]})


# --- Wire codec, cursor, error classification ------------------------------------------------------------


def test_wire_types_round_trip_through_trytons_json_form():
    values = [
        Decimal("20.00"),
        dt.date(2026, 11, 26),
        dt.datetime(2026, 11, 26, 19, 51, 22, 580916),
        b"\x00pdf",
    ]

    wire = json.dumps(encode(values)).encode()

    assert decode(wire) == values
    assert json.loads(wire)[0] == {"__class__": "Decimal", "decimal": "20.00"}
    assert jsonable(values) == ["20.00", "2026-11-26", "2026-11-26T19:51:22.580916Z", "AHBkZg=="]


def test_dotted_read_rows_are_nested():
    row = {
        "id": 1,
        "party": 3,
        "party.": {"id": 3, "name": "ACME"},
        "carrier": None,
        "carrier.": None,
        "lines": [7],
        "lines.": [{"id": 7, "product": 2, "product.": {"id": 2, "code": "WIDGET"}}],
    }

    assert nest(row) == {
        "id": 1,
        "party": {"id": 3, "name": "ACME"},
        "carrier": None,
        "lines": [{"id": 7, "product": {"id": 2, "code": "WIDGET"}}],
    }


def test_cursor_is_timestamp_and_id_and_an_unreadable_one_is_refused():
    stamp = dt.datetime(2026, 11, 26, 19, 51, 22)

    assert cursor_format(stamp, 12) == "2026-11-26T19:51:22.000000|12"
    assert cursor_parse(cursor_format(stamp, 12)) == (stamp, 12)
    assert cursor_parse(None) is None
    with pytest.raises(PermanentError, match="unreadable Tryton poll cursor"):
        cursor_parse("yesterday")


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            ["UserError", ["Value too long", "Field Name", None]],
            PermanentError,
            "Value too long (Field Name)",
        ),
        (["UserWarning", ["sale_warn", "Sale is late", ""]], PermanentError, "Sale is late"),
        (
            ["ConcurrencyException", "Records were modified in the meanwhile"],
            TransientError,
            "changed meanwhile",
        ),
        ([], TransientError, "rate-limited"),
        (["LoginException", ["totp", "Code", "char"]], AuthError, "more login parameters"),
        (["database is locked", ""], TransientError, "database is locked"),
        (["'name'", ""], PermanentError, "server error"),
    ],
)
def test_json_rpc_errors_are_classified(error, kind, text):
    exc = _error("model.sale.sale.write", error)

    assert type(exc) is kind
    assert text in exc.detail


def test_the_reconciliation_listing_pages_by_id_over_the_polled_states_and_a_change_window():
    before, since = dt.datetime(2026, 5, 2, 10), dt.datetime(2026, 4, 2, 10)
    assert sales_domain(CONFIG, modified_before=before, modified_since=since, after_id=41) == [
        ["state", "in", ["confirmed", "processing", "done"]],
        ["last_modified_at", "<=", before],
        ["last_modified_at", ">=", since],
        ["id", ">", 41],
    ]
    company = CONFIG.model_copy(update={"company": 2})
    assert sales_domain(company, modified_before=before, modified_since=None) == [
        ["state", "in", ["confirmed", "processing", "done"]],
        ["last_modified_at", "<=", before],
        ["company", "=", 2],
    ]
    # The listing's document is stored with the poll's bytes: the same natural id, one message.
    document = {"id": 7, "last_modified_at": "2026-05-01T09:00:00", "lines": []}
    assert sale_message(document) == b'{"id":7,"last_modified_at":"2026-05-01T09:00:00","lines":[]}'
