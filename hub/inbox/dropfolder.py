"""Drop-folder transport: carriers and 3PLs that deliver files (EDI over SFTP, nightly exports).

Each active connection with a ``drop_folder`` is scanned by beat. A file is claimed by an atomic
rename into ``processing/`` (so two scanners never take the same file), stored as an inbound
message exactly like a pushed one (same dedupe: the connector's natural id, else the body hash, so a
file dropped twice is stored once), then moved to ``processed/``. A file that cannot be stored (empty,
over CROSSDOCK_INBOUND_MAX_BYTES, unreadable) goes to ``failed/`` with ``<name>.error.txt`` saying why.
What is wrong *inside* a stored file (a broken envelope, an unknown code) is a dead letter like any
other message. A file left in ``processing/`` by a crashed scanner goes back after STUCK_S.

Files still being written are left alone: names starting with ``.`` or ending in ``.tmp``/``.part``,
and files modified less than SETTLE_S ago.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from hub.connections.models import Connection
from hub.core.correlation import correlation_id_new
from hub.inbox.services import inbound_message_receive

logger = logging.getLogger(__name__)

SETTLE_S = 2.0  # seconds a file must be unmodified before it is taken (still being uploaded)
STUCK_S = 600.0  # seconds after which a file left in processing/ is returned to the folder
MAX_FILES_PER_SCAN = 500  # files one scan of one folder takes; the rest wait for the next scan
CONTENT_TYPES = {".edi": "application/edi-x12", ".x12": "application/edi-x12", ".json": "application/json"}
SKIP_SUFFIXES = (".tmp", ".part", ".error.txt")


@dataclass
class ScanResult:
    stored: int = 0
    duplicates: int = 0
    failed: int = 0


def _stamp() -> str:
    return datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _move(path: Path, folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / f"{_stamp()}-{name}"
    os.replace(path, target)
    return target


def _fail(path: Path, root: Path, name: str, reason: str) -> None:
    target = _move(path, root / "failed", name)
    target.with_name(target.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
    logger.warning("drop folder %s: %s failed: %s", root, name, reason)


def _return_stuck(root: Path) -> None:
    processing = root / "processing"
    if not processing.is_dir():
        return
    now = time.time()
    for path in processing.iterdir():
        if path.is_file() and now - path.stat().st_mtime > STUCK_S:
            os.replace(path, root / path.name)


def drop_folder_scan(*, connection: Connection) -> ScanResult:
    """Take every settled file in the connection's drop folder. Safe to run concurrently."""
    result = ScanResult()
    root = Path(connection.drop_folder)
    if not root.is_dir():
        logger.warning("drop folder %s of %s does not exist", root, connection.slug)
        return result
    _return_stuck(root)
    processing = root / "processing"
    processing.mkdir(exist_ok=True)
    limit = settings.CROSSDOCK_INBOUND_MAX_BYTES
    now = time.time()
    candidates = sorted(
        (
            p
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(SKIP_SUFFIXES)
        ),
        key=lambda p: p.stat().st_mtime,
    )
    for path in candidates[:MAX_FILES_PER_SCAN]:
        try:
            if now - path.stat().st_mtime < SETTLE_S:
                continue
            claimed = processing / path.name
            os.replace(path, claimed)  # atomic: the scanner that renames first owns the file
        except FileNotFoundError:
            continue  # another scanner took it
        name = path.name
        try:
            size = claimed.stat().st_size
            if size == 0:
                _fail(claimed, root, name, "empty file")
                result.failed += 1
                continue
            if size > limit:
                _fail(claimed, root, name, f"file of {size} bytes exceeds the limit of {limit} bytes")
                result.failed += 1
                continue
            body = claimed.read_bytes()
        except OSError as exc:
            _fail(claimed, root, name, f"unreadable: {exc.strerror or exc}")
            result.failed += 1
            continue
        received = inbound_message_receive(
            connection=connection,
            body=body,
            content_type=CONTENT_TYPES.get(path.suffix.lower(), "text/plain"),
            headers={"x-drop-file": name},
            idempotency_key=None,
            correlation_id=correlation_id_new(),
        )
        _move(claimed, root / "processed", name)
        if received.created:
            result.stored += 1
        else:
            result.duplicates += 1
    return result


def drop_folders_scan() -> ScanResult:
    """Scan every active connection's drop folder (beat)."""
    total = ScanResult()
    for connection in Connection.objects.filter(is_active=True).exclude(drop_folder=""):
        one = drop_folder_scan(connection=connection)
        total.stored += one.stored
        total.duplicates += one.duplicates
        total.failed += one.failed
    return total
