"""Mappings as data (connectors/mapping.py): lookups, merging, validation, packaged defaults."""

from __future__ import annotations

import json

import pytest

from connectors import mapping
from connectors.errors import MappingError

RULES = mapping.MappingSet.from_data(
    {"fields": {"reference": "data.tracking_number"}, "codes": {"status": {"PU": "DEPARTED_PICKUP"}}},
    version=3,
)


def test_a_mapped_code_gives_its_canonical_value_and_whitespace_is_ignored():
    assert RULES.code("status", " PU ", field="status") == "DEPARTED_PICKUP"


def test_an_unmapped_code_raises_naming_the_code_set_the_code_and_the_field():
    with pytest.raises(MappingError) as caught:
        RULES.code("status", "ZZ", field="events[0].status")
    assert caught.value.detail == "unmapped status code 'ZZ'"
    assert (caught.value.field, caught.value.value, caught.value.stage) == ("events[0].status", "ZZ", "map")


def test_a_missing_code_set_is_a_mapping_error_too():
    with pytest.raises(MappingError, match="no code map 'reason' is configured"):
        RULES.code("reason", "A1", field="reason")


def test_a_catch_all_entry_maps_any_other_code():
    rules = mapping.MappingSet.from_data({"codes": {"status": {"PU": "DEPARTED_PICKUP", "*": "IN_TRANSIT"}}})
    assert rules.code("status", "XX", field="s") == "IN_TRANSIT"


def test_fields_are_read_through_the_configured_path_else_the_default():
    doc = {"data": {"tracking_number": "TRK1", "ref": "SO-1"}, "items": [{"sku": "W"}]}
    assert RULES.get(doc, "reference", "data.ref") == "TRK1"
    assert RULES.get(doc, "other", "data.ref") == "SO-1"
    assert RULES.get(doc, "missing", "data.nope", default="-") == "-"
    assert mapping.dig(doc, "items.0.sku") == "W"
    assert mapping.dig(doc, "items.5.sku") is None


def test_merge_overlays_a_connection_per_field_and_per_code():
    base = {"fields": {"a": "x", "b": "y"}, "codes": {"status": {"PU": "DEPARTED_PICKUP", "DL": "DELIVERED"}}}
    merged = mapping.merge(
        base, {"fields": {"b": "z"}, "codes": {"status": {"DL": "POD_RECEIVED"}, "new": {"1": "A"}}}
    )
    assert merged == {
        "fields": {"a": "x", "b": "z"},
        "codes": {"status": {"PU": "DEPARTED_PICKUP", "DL": "POD_RECEIVED"}, "new": {"1": "A"}},
    }
    assert base["codes"]["status"]["DL"] == "DELIVERED"  # the defaults are not modified


def test_validate_names_each_problem():
    targets = {"codes": {"status": ["DELIVERED"]}, "fields": ["reference"]}
    problems = mapping.validate(
        {
            "fields": {"weight": "w", "reference": ""},
            "codes": {"status": {"DL": "DELIVERD"}, "colour": {}},
            "x": 1,
        },
        targets,
    )
    assert problems == [
        "unknown top-level key(s): x; expected 'fields' and 'codes'",
        "fields.weight: not a mappable field; expected one of reference",
        "fields.reference: the source path must be a non-empty string",
        "codes.status.DL: 'DELIVERD' is not a canonical value; expected one of DELIVERED",
        "codes.colour: unknown code set; expected one of status",
    ]
    assert (
        mapping.validate({"fields": {"reference": "a.b"}, "codes": {"status": {"DL": "DELIVERED"}}}, targets)
        == []
    )
    assert mapping.validate([1, 2]) == ["a mapping must be a JSON object with 'fields' and 'codes'"]


def test_packaged_defaults_load_per_direction_and_are_validated(tmp_path):
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "inbound.json").write_text(json.dumps({"codes": {"s": {"A": "B"}}}))
    assert mapping.load_defaults(tmp_path / "__init__.py") == {"inbound": {"codes": {"s": {"A": "B"}}}}
    (tmp_path / "mappings" / "outbound.json").write_text(json.dumps({"codes": {"s": {"A": ""}}}))
    with pytest.raises(
        ValueError, match=r"outbound\.json: codes\.s\.A: the canonical value must be a non-empty string"
    ):
        mapping.load_defaults(tmp_path)
