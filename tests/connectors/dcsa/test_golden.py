"""Golden files: every DCSA example body in tests/fixtures/dcsa validated against DCSA's schema and mapped
with the packaged default mappings, compared with its hand-reviewed ``<example>.expected.json``."""

from __future__ import annotations

import hashlib
import json
import re
import sys

import pytest

from canonical.contracts.v1 import MilestoneEvent
from tests.connectors.dcsa.support import EXAMPLES, FIXTURES, outcome
from tests.support.golden import expected_path


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_maps_to_its_golden_output(example):
    expected = json.loads(expected_path(example).read_text(encoding="utf-8"))

    assert outcome(example.read_bytes()) == expected


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_milestones_of_every_example_pass_the_canonical_contract(example):
    result = outcome(example.read_bytes())

    for entry in result.get("events", []):
        for doc in entry.get("canonical", []):
            MilestoneEvent.model_validate(doc)


def test_every_example_has_a_golden_file():
    assert {p.name for p in FIXTURES.glob("*.expected.json")} == {expected_path(e).name for e in EXAMPLES}
    assert len(EXAMPLES) == 7


def test_fixture_files_match_their_recorded_checksums():
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", (FIXTURES / "SOURCES").read_text(), re.M)
    )
    files = {p.name for p in FIXTURES.iterdir() if p.is_file()} - {"SOURCES", "README.md"}
    assert set(recorded) == {n for n in files if not n.endswith(".expected.json")}
    for name, digest in recorded.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name


if __name__ == "__main__" and "--write" in sys.argv:  # regenerate, then review every diff by hand
    for example in EXAMPLES:
        text = json.dumps(outcome(example.read_bytes()), indent=1, ensure_ascii=False) + "\n"
        expected_path(example).write_text(text, encoding="utf-8")
