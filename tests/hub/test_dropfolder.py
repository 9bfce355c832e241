"""Drop-folder transport (hub/inbox/dropfolder.py): files become inbound messages and move to
processed/ or failed/ with the reason; repeats are stored once; half-written files are left alone."""

from __future__ import annotations

import json
import os
import time

import pytest

from canonical.errors import ValidationFailed
from hub.connections.models import Connection
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


@pytest.fixture(autouse=True)
def root(tmp_path, settings):
    """CROSSDOCK_DROP_ROOT for the test: every drop folder must lie inside it."""
    settings.CROSSDOCK_DROP_ROOT = str(tmp_path)
    return tmp_path


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


# --- The drop root and symbolic links ------------------------------------------------------------------


def _save(slug: str, drop_folder: str):
    return connection_save(
        data={
            "slug": slug,
            "system": "carrier",
            "connector": "canonical",
            "config": {},
            "drop_folder": drop_folder,
        }
    )


@pytest.mark.parametrize("where", ["outside", "dot-dot", "etc"])
def test_a_drop_folder_outside_the_drop_root_is_refused_at_save(tmp_path, settings, where):
    settings.CROSSDOCK_DROP_ROOT = str(tmp_path / "root")
    (tmp_path / "root").mkdir()
    path = {
        "outside": str(tmp_path / "elsewhere"),
        "dot-dot": str(tmp_path / "root" / ".." / "elsewhere"),
        "etc": "/etc",
    }[where]

    with pytest.raises(ValidationFailed, match="drop_folder: must be inside CROSSDOCK_DROP_ROOT") as caught:
        _save("outside", path)

    assert [e["field"] for e in caught.value.errors] == ["drop_folder"]
    assert not Connection.objects.exists()


def test_a_drop_folder_inside_the_root_is_saved(root):
    connection = _save("inside", str(root / "partners" / "acme"))

    assert Connection.objects.get(pk=connection.pk).drop_folder == str(root / "partners" / "acme")


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_a_drop_folder_that_is_a_symbolic_link_is_refused_at_save(tmp_path, root, target):
    real = (root / "real") if target == "inside" else (tmp_path.parent / f"{tmp_path.name}-outside")
    real.mkdir()
    (root / "link").symlink_to(real, target_is_directory=True)

    with pytest.raises(ValidationFailed) as caught:
        _save("linked", str(root / "link"))

    assert [e["field"] for e in caught.value.errors] == ["drop_folder"]
    assert ("symbolic link" in caught.value.detail) or ("must be inside" in caught.value.detail)
    assert not Connection.objects.exists()


def test_a_dropped_symbolic_link_goes_to_failed_and_its_target_is_never_read(tmp_path, folder, connection):
    outside = tmp_path.parent / f"{tmp_path.name}-secret.json"
    outside.write_text(_event("S-SECRET"))
    (folder / "status.json").symlink_to(outside)

    result = drop_folder_scan(connection=connection)

    assert (result.stored, result.failed) == (0, 1)
    assert not InboundMessage.objects.exists()
    [moved] = [p for p in (folder / "failed").iterdir() if not p.name.endswith(".error.txt")]
    assert moved.is_symlink()  # the link itself was moved; its target stays where it was
    assert outside.read_text() == _event("S-SECRET")
    [note] = (folder / "failed").glob("*.error.txt")
    assert "symbolic link" in note.read_text()


def test_a_dropped_link_to_a_folder_goes_to_failed(tmp_path, folder, connection):
    (folder / "sub").symlink_to(tmp_path.parent, target_is_directory=True)

    assert drop_folder_scan(connection=connection).failed == 1
    assert not (folder / "sub").exists()
    assert len(list((folder / "failed").glob("*.error.txt"))) == 1


def test_a_folder_replaced_by_a_link_after_save_is_not_scanned(tmp_path, folder, connection, caplog):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    _drop(elsewhere, "status.json", _event("S-9"))
    folder.rmdir()
    folder.symlink_to(elsewhere, target_is_directory=True)

    result = drop_folder_scan(connection=connection)

    assert (result.stored, result.failed) == (0, 0)
    assert not InboundMessage.objects.exists()
    assert (elsewhere / "status.json").exists()
    assert "not scanned" in caplog.text


def test_a_processing_subfolder_that_is_a_link_stops_the_scan(tmp_path, folder, connection, caplog):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-processing"
    elsewhere.mkdir()
    (folder / "processing").symlink_to(elsewhere, target_is_directory=True)
    _drop(folder, "status.json", _event("S-10"))

    assert drop_folder_scan(connection=connection).stored == 0
    assert (folder / "status.json").exists()
    assert not list(elsewhere.iterdir())
    assert "processing is a symbolic link" in caplog.text
