"""The snapshot files of a data directory: names, locations, checksums, listing and deletion.

Layout (beside ``collections/``, so a snapshot is never taken for a collection
and the open's sweep of ``collections/`` never touches one)::

    <root>/snapshots/<collection>/<collection>-<YYYY-MM-DD-HH-MM-SS>-<id>.snapshot
    <root>/snapshots/<collection>/<same name>.sha256      "<hex>  <name>" (sha256sum -c reads it)
    <root>/snapshots/**/.tmp-*                           snapshots and uploads in progress

The checksum file is written (durably) before the archive is renamed into
place, so a listed snapshot always has its checksum and listing never re-reads
an archive. Leftovers of a crash (temp files, a checksum without its archive)
are swept when the data directory opens, while its ownership lock is held.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

from vecdb.durable import fsync_path, write_durably
from vecdb.engine.backup.archive import pack
from vecdb.errors import InvalidInput, NotFound
from vecdb.models.snapshots import SnapshotDescription
from vecdb.names import check_name
from vecdb.snapshot_files import (  # noqa: F401  (check_checksum, stored_checksum re-exported)
    CHECKSUM_SUFFIX,
    COPY_CHUNK,
    check_checksum,
    file_sha256,
    stored_checksum,
)
from vecdb.storage.env import storage_errors

if TYPE_CHECKING:
    from vecdb.engine.collection import Collection

log = logging.getLogger(__name__)

SNAPSHOTS_DIR = "snapshots"
SUFFIX = ".snapshot"
TEMP_PREFIX = ".tmp-"


def check_snapshot_name(name: str) -> str:
    """A snapshot name is a plain file name of ours: a valid name (see check_name) ending in ``.snapshot``."""
    if not isinstance(name, str) or not name.endswith(SUFFIX):
        raise InvalidInput(f"snapshot name {name!r} is invalid: a snapshot name ends in {SUFFIX!r}")
    return check_name(name, "snapshot")


class SnapshotStore:
    """The ``snapshots/`` folder of one data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, collection: str) -> Path:
        return self.root / check_name(collection)

    # --- create, list, delete ----------------------------------------------------------------

    def create(self, coll: Collection) -> SnapshotDescription:
        """Snapshot ``coll`` (a collection in use by the caller) into its folder."""
        folder = self.folder(coll.name)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        name = f"{coll.name[:200]}-{stamp}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        tmp = folder / f"{TEMP_PREFIX}{name}"
        work = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}.work"
        try:
            with storage_errors(f"snapshot {name}"):
                digest, meta = pack(coll, tmp, work)
                line = f"{digest}  {name}\n"
                write_durably(folder / (name + CHECKSUM_SUFFIX), lambda t: _write_text(t, line))
                os.replace(tmp, folder / name)
                fsync_path(folder)
        except BaseException:
            tmp.unlink(missing_ok=True)
            (folder / (name + CHECKSUM_SUFFIX)).unlink(missing_ok=True)
            raise
        log.info(
            "collection %s: snapshot %s written (seq %s, index files of spaces %s)",
            coll.name,
            name,
            meta["seq"],
            sorted(meta["indexes"]),
        )
        return self.describe(folder / name)

    def list(self, collection: str) -> list[SnapshotDescription]:
        folder = self.folder(collection)
        if not folder.is_dir():
            return []
        found = [
            self.describe(p)
            for p in folder.iterdir()
            if p.name.endswith(SUFFIX) and not p.name.startswith(".") and p.is_file()
        ]
        return sorted(found, key=lambda d: (d.creation_time or "", d.name))

    def path_of(self, collection: str, snapshot: str) -> Path:
        """The file of an existing snapshot of ``collection``; NotFound naming it otherwise."""
        path = self.folder(collection) / check_snapshot_name(snapshot)
        if not path.is_file():
            raise _not_found(collection, snapshot)
        return path

    def open_file(self, collection: str, snapshot: str) -> BinaryIO:
        """An existing snapshot of ``collection``, open for reading: a delete racing the reader then
        unlinks a file it keeps reading, instead of failing it halfway."""
        try:
            return open(self.path_of(collection, snapshot), "rb")
        except FileNotFoundError:  # deleted since path_of looked
            raise _not_found(collection, snapshot) from None

    def delete(self, collection: str, snapshot: str) -> bool:
        """Archive first, checksum after: a crash in between leaves a checksum the next open sweeps."""
        path = self.path_of(collection, snapshot)
        path.unlink(missing_ok=True)
        path.with_name(path.name + CHECKSUM_SUFFIX).unlink(missing_ok=True)
        return True

    def describe(self, path: Path) -> SnapshotDescription:
        st = path.stat()
        created = datetime.fromtimestamp(st.st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return SnapshotDescription(
            name=path.name, creation_time=created, size=st.st_size, checksum=stored_checksum(path)
        )

    # --- locations and uploads ----------------------------------------------------------------

    def locate(self, collection: str, location: str) -> Path:
        """The file a recover request names: ``file:///abs/path`` (or an absolute path), or the name
        of a snapshot held here (of ``collection``, else of any collection). URLs of other schemes
        are refused: vecdb does not fetch from the network."""
        try:
            parts = urlsplit(location)
        except ValueError as exc:
            raise InvalidInput(f"location {location!r} is not a valid URL ({exc})") from None
        if "\x00" in location:
            raise InvalidInput(f"location {location!r}: a path cannot hold a NUL character")
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InvalidInput(
                    f"location {location!r}: a file:// URL must name a path on the server, as file:///absolute/path"
                )
            path = Path(unquote(parts.path))
        elif location.startswith("/"):
            path = Path(location)
        elif parts.scheme:
            raise InvalidInput(
                f"location {location!r}: only file:// paths and snapshot names are accepted (vecdb does not "
                "download snapshots); fetch the file yourself and upload it to "
                f"POST /collections/{collection}/snapshots/upload"
            )
        else:
            return self._named(collection, check_snapshot_name(location))
        if not path.is_absolute():
            raise InvalidInput(f"location {location!r}: the path of a file:// URL must be absolute")
        if not path.is_file():
            raise NotFound(f"Snapshot file `{path}` doesn't exist!")
        return path

    def _named(self, collection: str, snapshot: str) -> Path:
        own = self.folder(collection) / snapshot
        if own.is_file():
            return own
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir()):
                if (folder / snapshot).is_file() and not folder.name.startswith("."):
                    return folder / snapshot
        raise NotFound(f"Snapshot `{snapshot}` doesn't exist!")

    def stage_upload(self, source: BinaryIO) -> Path:
        """Copy an uploaded archive into a temp file here (swept at open if a crash leaves it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{TEMP_PREFIX}upload-{uuid.uuid4().hex}{SUFFIX}"
        try:
            with storage_errors("an uploaded snapshot"), open(path, "wb") as out:
                shutil.copyfileobj(source, out, COPY_CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    # --- housekeeping ---------------------------------------------------------------------------

    def sweep(self) -> None:
        """Remove what a crash left: temp files and folders, checksums whose archive is gone.
        Called at open, under the data directory's lock, so no snapshot is in progress."""
        if not self.root.is_dir():
            return
        for entry in [self.root, *(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
            for path in entry.iterdir():
                stale = (
                    path.name.startswith(TEMP_PREFIX)
                    or (path.name.endswith(".tmp") and path.is_file())
                    or (
                        path.name.endswith(SUFFIX + CHECKSUM_SUFFIX)
                        and not path.with_name(path.name[: -len(CHECKSUM_SUFFIX)]).exists()
                    )
                )
                if not stale:
                    continue
                log.warning("removing %s: left by an interrupted snapshot", path)
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:  # write_durably wants a writer that returns None
    path.write_text(text)


def _not_found(collection: str, snapshot: str) -> NotFound:
    return NotFound(f"Snapshot `{snapshot}` of collection `{collection}` doesn't exist!")


__all__ = ["SNAPSHOTS_DIR", "SnapshotStore", "check_checksum", "check_snapshot_name", "file_sha256", "stored_checksum"]
