"""Inbound bodies for fuzzing: real samples per reader (tests/fixtures/<key>/), configs that validate,
and Hypothesis strategies for arbitrary JSON and for samples mutated at the JSON and byte levels.
Used by tests/connectors/test_fuzz_inbound.py (pure readers) and tests/hub/test_inbox_fuzz.py (the
whole receive + drain path)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import ConnectorError, MappingError, ParseError
from connectors.mapping import MappingSet

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CONFIGS: dict[str, dict[str, Any]] = {
    "canonical": {},
    "dcsa": {},
    "x12": {},
    "tryton": {"url": "http://erp.example:8000", "database": "erp", "username": "hub"},
    "bottlecrm": {"url": "http://crm.example:8000"},
    "karrio": {
        "url": "http://karrio.example:5002",
        "carrier_id": "offline",
        "service": "offline_standard",
        "shipper": {
            "person_name": "Dock 4",
            "address_line1": "1 Dock St",
            "city": "Montreal",
            "country_code": "CA",
        },
    },
}
CANONICAL_SAMPLES = [
    {
        "event_id": "tms-1",
        "event_type": "IN_TRANSIT",
        "occurred_at": "2026-11-20T14:05:00Z",
        "shipment": {"reference": "SHP-1"},
        "location": {"code": "YUL", "name": "Montreal"},
    },
    [
        {
            "event_type": "DELIVERED",
            "occurred_at": "2026-11-21T09:00:00Z",
            "shipment": {"reference": "SHP-2"},
        },
        {"event_type": "DELAYED", "occurred_at": "2026-11-21T08:00:00Z", "shipment": {"reference": "SHP-3"}},
    ],
]


def _samples(folder: Path, pattern: str = "*.json") -> list[Any]:
    return [
        json.loads(p.read_bytes())
        for p in sorted(folder.glob(pattern))
        if not p.name.endswith((".expected.json", ".meta.json"))
    ]


SAMPLES: dict[str, list[Any]] = {
    "canonical": CANONICAL_SAMPLES,
    "dcsa": _samples(FIXTURES / "dcsa", "example_*.json"),
    "karrio": _samples(FIXTURES / "karrio"),
    "bottlecrm": _samples(FIXTURES / "bottlecrm" / "responses", "webhook_*.json"),
    "tryton": _samples(FIXTURES / "tryton"),
}
JSON_KEYS = sorted(SAMPLES)
ALL_KEYS = [*JSON_KEYS, "x12"]
X12_SAMPLES = [p.read_bytes() for p in sorted((FIXTURES / "x12").glob("*.edi"))]


def _reader(key: str):
    spec = registry.get(key)
    config = spec.config_schema.model_validate(CONFIGS[key])
    mappings = MappingSet.from_data(spec.default_mappings.get("inbound"))
    return spec.instance(), config, mappings


READERS = {key: _reader(key) for key in ALL_KEYS}


def exercise(key: str, body: bytes) -> None:
    """What the hub calls on an inbound body; only the taxonomy's parse/map errors may escape."""
    connector, config, mappings = READERS[key]
    request = InboundRequest(body=body, content_type="application/json", headers={})
    with contextlib.suppress(ConnectorError):  # the web tier then stores the body under its hash
        connector.natural_id(request, config)
    try:
        parsed = connector.parse(request, config)
    except (ParseError, MappingError):
        return
    for document in parsed.documents:
        with contextlib.suppress(ParseError, MappingError):
            connector.map(document, config, mappings)


# --- Strategies ---------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "2026-11-20T14:05:00Z",
            "2026-13-45",
            "SHP-1",
            "IN_TRANSIT",
            "DLV",
            "kg",
            "-1",
            "1e309",
            "nul\x00",
            "half\ud800",
        ]
    )
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(value: Any) -> list[tuple]:
    """Every path into a JSON value (iteratively), the root included."""
    paths: list[tuple] = []
    stack: list[tuple[tuple, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        paths.append(path)
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return paths


@st.composite
def mutated_documents(draw, key: str) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from(SAMPLES[key]))))  # a deep copy
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "drop", "wrap", "stringify", "nullify"]))
        if action == "replace":
            parent[last] = draw(JSON_VALUES)
        elif action == "drop":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]]
        elif action == "stringify":
            parent[last] = json.dumps(parent[last])
        else:
            parent[last] = None
    return json.dumps(doc).encode()


@st.composite
def mutated_bytes(draw, samples: list[bytes]) -> bytes:
    body = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        position = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        action = draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
        if action == "replace" and body:
            body[position] = draw(st.sampled_from(b'{}[]",:0\\ \xff'))
        elif action == "delete" and body:
            del body[position]
        elif action == "insert":
            body[position:position] = draw(
                st.sampled_from([b"[", b"{", b'"', b"\\", b"\x00", b"1e999", b"NaN"])
            )
        elif action == "truncate":
            del body[position:]
    return bytes(body)


def sample_bytes(key: str) -> list[bytes]:
    return X12_SAMPLES if key == "x12" else [json.dumps(s).encode() for s in SAMPLES[key]]
