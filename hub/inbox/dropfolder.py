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

Symbolic links are never followed: a folder outside CROSSDOCK_DROP_ROOT or reached through a link
is not scanned (an error is logged; connection_save refuses it in the first place), nor is one whose
processing/, processed/ or failed/ is a link; a dropped file that is a link goes to ``failed/`` as
is (the link, not its target), and files are opened with O_NOFOLLOW.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from hub.connections.models import Connection
from hub.connections.services import drop_folder_refusal
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


SUBFOLDERS = ("processing", "processed", "failed")


def _move(path: Path, folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / f"{_stamp()}-{name}"
    os.replace(path, target)  # renames a symbolic link itself, never its target
    return target


def _fail(path: Path, root: Path, name: str, reason: str) -> None:
    target = _move(path, root / "failed", name)
    note = target.with_name(target.name + ".error.txt")
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(reason + "\n")
    logger.warning("drop folder %s: %s failed: %s", root, name, reason)


def _read_no_follow(path: Path, limit: int) -> bytes | str:
    """The file's bytes, or why it cannot be stored. Opened with O_NOFOLLOW, so a file swapped for a
    link after it was listed is refused, not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link: links are not followed"
        return f"unreadable: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size == 0:
            return "empty file"
        if info.st_size > limit:
            return f"file of {info.st_size} bytes exceeds the limit of {limit} bytes"
        return handle.read(limit + 1)


def _return_stuck(root: Path) -> None:
    processing = root / "processing"
    if not processing.is_dir():
        return
    now = time.time()
    for path in processing.iterdir():
        info = path.lstat()
        if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STUCK_S:
            os.replace(path, root / path.name)


def drop_folder_scan(*, connection: Connection) -> ScanResult:
    """Take every settled file in the connection's drop folder. Safe to run concurrently."""
    result = ScanResult()
    refusal = drop_folder_refusal(connection.drop_folder)
    if refusal:
        # Saved before the rule, CROSSDOCK_DROP_ROOT changed, or the folder was replaced by a link.
        logger.error("drop folder %s of %s not scanned: %s", connection.drop_folder, connection.slug, refusal)
        return result
    root = Path(connection.drop_folder)
    if not root.is_dir():
        logger.warning("drop folder %s of %s does not exist", root, connection.slug)
        return result
    linked = [name for name in SUBFOLDERS if (root / name).is_symlink()]
    if linked:
        logger.error(
            "drop folder %s of %s not scanned: %s is a symbolic link", root, connection.slug, linked[0]
        )
        return result
    _return_stuck(root)
    processing = root / "processing"
    processing.mkdir(exist_ok=True)
    limit = settings.CROSSDOCK_INBOUND_MAX_BYTES
    now = time.time()
    listed = []
    for p in root.iterdir():
        if p.name.startswith(".") or p.name.endswith(SKIP_SUFFIXES) or p.name in SUBFOLDERS:
            continue
        try:
            info = p.lstat()  # the entry itself: a symbolic link is not followed
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            listed.append((info.st_mtime, p, stat.S_ISLNK(info.st_mode)))
    listed.sort(key=lambda item: item[0])
    for mtime, path, is_link in listed[:MAX_FILES_PER_SCAN]:
        if not is_link and now - mtime < SETTLE_S:
            continue
        claimed = processing / path.name
        try:
            os.replace(path, claimed)  # atomic: the scanner that renames first owns the file
        except FileNotFoundError:
            continue  # another scanner took it
        name = path.name
        body = _read_no_follow(claimed, limit)
        if isinstance(body, str):
            _fail(claimed, root, name, body)
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
