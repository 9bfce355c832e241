"""Golden files: every published sample in tests/fixtures/x12 read, checked and mapped with the packaged
default mappings, compared with its hand-reviewed ``<sample>.expected.json``. Milestones must also pass
the canonical contract (v1 ``MilestoneEvent``) as the hub will validate them."""

from __future__ import annotations

import hashlib
import json
import re
import sys

import pytest

from canonical.contracts.v1 import MilestoneEvent
from tests.connectors.x12.support import FIXTURES, SAMPLES, outcome
from tests.support.golden import expected_path


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_reads_and_maps_to_its_golden_output(sample):
    expected = json.loads(expected_path(sample).read_text(encoding="utf-8"))

    assert outcome(sample.read_bytes()) == expected


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_milestones_of_every_sample_pass_the_canonical_contract(sample):
    result = outcome(sample.read_bytes())
    milestones = [
        doc
        for entry in result.get("documents", [])
        for doc in entry.get("canonical", [])
        if "kind" not in doc
    ]

    for doc in milestones:
        MilestoneEvent.model_validate(doc)


def test_every_sample_has_a_golden_file_and_every_golden_file_a_sample():
    goldens = {p.name for p in FIXTURES.glob("*.expected.json")}

    assert goldens == {expected_path(s).name for s in SAMPLES}
    assert len(SAMPLES) == 8


def test_fixture_files_match_their_recorded_checksums():
    for folder in (FIXTURES, FIXTURES / "codelists"):
        recorded = dict(
            (name, digest)
            for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", (folder / "SOURCES").read_text(), re.M)
        )
        files = {p.name for p in folder.iterdir() if p.is_file()} - {"SOURCES", "README.md"}
        files = {n for n in files if not n.endswith(".expected.json")}
        assert set(recorded) == files
        for name, digest in recorded.items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


if __name__ == "__main__" and "--write" in sys.argv:  # regenerate, then review every diff by hand
    for sample in SAMPLES:
        text = json.dumps(outcome(sample.read_bytes()), indent=1, ensure_ascii=False) + "\n"
        expected_path(sample).write_text(text, encoding="utf-8")
