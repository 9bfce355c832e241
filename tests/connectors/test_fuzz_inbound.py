"""Hypothesis fuzzing of every inbound reader: canonical JSON, DCSA, Karrio and BottleCRM webhooks,
Tryton sales and X12 (whose own deeper fuzzing is tests/connectors/x12/test_fuzz.py).

Fed arbitrary bytes, arbitrary JSON, and real samples (tests/fixtures/<key>/) mutated at the JSON
level (a value replaced, a key dropped, a type changed) and at the byte level, only the connector
error taxonomy's ParseError / MappingError may escape ``parse`` and ``map``, and ``natural_id`` (run
in the web process, before the 202) raises nothing outside the taxonomy. Bounded: the whole file
runs in well under a minute.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import (
    ALL_KEYS,
    JSON_KEYS,
    JSON_VALUES,
    SAMPLES,
    exercise,
    mutated_bytes,
    mutated_documents,
    sample_bytes,
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- Tests --------------------------------------------------------------------------------------------


def test_every_json_reader_has_samples():
    assert all(SAMPLES[key] for key in JSON_KEYS), {key: len(SAMPLES[key]) for key in JSON_KEYS}
    for key in JSON_KEYS:  # and the unmutated samples read without error
        for sample in sample_bytes(key):
            exercise(key, sample)


@pytest.mark.parametrize("key", ALL_KEYS)
@FUZZ
@given(body=st.binary(max_size=1500))
def test_arbitrary_bytes_raise_only_parse_or_mapping_errors(key, body):
    exercise(key, body)


@pytest.mark.parametrize("key", ALL_KEYS)
@FUZZ
@given(value=JSON_VALUES)
def test_arbitrary_json_raises_only_parse_or_mapping_errors(key, value):
    exercise(key, json.dumps(value).encode())


@pytest.mark.parametrize("key", JSON_KEYS)
@FUZZ
@given(data=st.data())
def test_mutated_samples_raise_only_parse_or_mapping_errors(key, data):
    exercise(key, data.draw(mutated_documents(key)))


@pytest.mark.parametrize("key", ALL_KEYS)
@FUZZ
@given(data=st.data())
def test_byte_mutated_samples_raise_only_parse_or_mapping_errors(key, data):
    exercise(key, data.draw(mutated_bytes(sample_bytes(key))))


@pytest.mark.parametrize("key", ALL_KEYS)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"1" * 5000,
        b'{"event": "x", "data": {"n": NaN}}',
    ],
    ids=["deep-list", "deep-object", "deep-events", "long-int", "nan"],
)
def test_pathological_bodies_raise_only_parse_or_mapping_errors(key, body):
    exercise(key, body)
