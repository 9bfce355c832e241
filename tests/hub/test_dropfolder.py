"""Drop-folder transport (hub/inbox/dropfolder.py): files become inbound messages and move to
processed/ or failed/ with the reason; repeats are stored once; half-written files are left alone."""

from __future__ import annotations

import json
import os
import time

import pytest

from canonical.errors import ValidationFailed
from hub.connections.services import connection_save
from hub.inbox.dropfolder import STUCK_S, drop_folder_scan, drop_folders_scan
from hub.inbox.models import InboundMessage

pytestmark = pytest.mark.django_db


def _aged(path, seconds=10.0):
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def _drop(folder, name, text, *, age=10.0):
    path = folder / name
    path.write_text(text)
    return _aged(path, age)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "drop"


@pytest.fixture
def connection(folder):
    folder.mkdir()
    return connection_save(
        data={
            "slug": "edi-drop",
            "system": "carrier",
            "connector": "canonical",
            "config": {},
            "drop_folder": str(folder),
        }
    )


def _event(ref):
    return json.dumps(
        {"event_type": "IN_TRANSIT", "occurred_at": "2026-11-20T10:00:00Z", "shipment": {"reference": ref}}
    )


def test_a_dropped_file_is_stored_as_a_message_and_moved_to_processed(folder, connection):
    _drop(folder, "status-1.json", _event("S-1"))
    result = drop_folder_scan(connection=connection)
    assert (result.stored, result.duplicates, result.failed) == (1, 0, 0)
    message = InboundMessage.objects.get(connection=connection)
    assert (bytes(message.body).decode(), message.content_type, message.headers) == (
        _event("S-1"),
        "application/json",
        {"x-drop-file": "status-1.json"},
    )
    assert [p.name.endswith("-status-1.json") for p in (folder / "processed").iterdir()] == [True]
    assert not [p for p in folder.iterdir() if p.is_file()]


def test_the_same_file_dropped_twice_is_stored_once(folder, connection):
    for name in ("a.json", "again-a.json"):
        _drop(folder, name, _event("S-2"))
    result = drop_folder_scan(connection=connection)
    assert (result.stored, result.duplicates) == (1, 1)
    assert InboundMessage.objects.count() == 1
    assert len(list((folder / "processed").iterdir())) == 2


def test_empty_and_oversized_files_go_to_failed_with_the_reason(folder, connection, settings):
    settings.CROSSDOCK_INBOUND_MAX_BYTES = 50
    _drop(folder, "empty.edi", "")
    _drop(folder, "big.edi", "ISA" + "*" * 100)
    result = drop_folder_scan(connection=connection)
    assert (result.stored, result.failed) == (0, 2)
    reasons = sorted(p.read_text() for p in (folder / "failed").glob("*.error.txt"))
    assert reasons == ["empty file\n", "file of 103 bytes exceeds the limit of 50 bytes\n"]
    assert not InboundMessage.objects.exists()


def test_files_still_being_written_are_left_alone(folder, connection):
    (folder / "fresh.json").write_text(_event("S-3"))  # modified just now
    _drop(folder, "upload.part", "ISA*")
    _drop(folder, ".hidden", "x")
    assert drop_folder_scan(connection=connection).stored == 0
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [".hidden", "fresh.json", "upload.part"]
    _aged(folder / "fresh.json")
    assert drop_folders_scan().stored == 1


def test_a_file_left_in_processing_by_a_crashed_scanner_is_taken_again(folder, connection):
    (folder / "processing").mkdir()
    stuck = folder / "processing" / "crashed.json"
    stuck.write_text(_event("S-4"))
    _aged(stuck, STUCK_S + 5)
    assert drop_folder_scan(connection=connection).stored == 1
    assert not list((folder / "processing").iterdir())


def test_a_drop_folder_must_be_absolute_and_readable_by_the_connector(tmp_path, dns):
    dns["example.com"] = ["93.184.215.14"]  # the URL policy resolves the host on save
    with pytest.raises(ValidationFailed, match="drop_folder: must be an absolute path"):
        connection_save(
            data={"slug": "rel", "system": "carrier", "connector": "canonical", "drop_folder": "drop"}
        )
    with pytest.raises(ValidationFailed, match="connector 'webhook' cannot read inbound files"):
        connection_save(
            data={
                "slug": "out",
                "system": "erp",
                "connector": "webhook",
                "config": {"url": "https://example.com/hook"},
                "drop_folder": str(tmp_path),
            }
        )
