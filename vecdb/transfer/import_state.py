"""The resume file of ``vecdb import``: where an interrupted import of one file into one collection stopped.

After every batch the server acknowledged (``wait=true``: durable and
visible), the import records the reader's cursor here, written atomically
(temp file, fsync, rename), so a crash leaves either the previous or the new
record, never a torn one. Upserts by id are idempotent, so a crash between the
acknowledgement and the record only re-sends one batch.

The record also names what it is the position *in*: the file's size and
modification time, the import options that map rows to points and the target.
A re-run whose file or options differ refuses to resume, since the recorded
row offset would then point somewhere else; ``--restart`` starts over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from vecdb.durable import fsync_path
from vecdb.transfer.importers import Cursor, DataFileError

log = logging.getLogger(__name__)

VERSION = 1


class ResumeRefused(DataFileError):
    """A state file exists but does not belong to this file, collection or set of options."""


def default_state_path(data_file: Path, collection: str) -> Path:
    """``<FILE>.vecdb-import-<collection>.json`` next to the data file."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in collection)
    return data_file.with_name(f"{data_file.name}.vecdb-import-{safe}.json")


class ImportState:
    """Load, check, update and remove one state file.

    ``identity`` is everything that must match for a saved cursor to mean the
    same thing again: ``{"file": signature, "collection", "target", "format", "options"}``.
    """

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    def load(self) -> Optional[dict[str, Any]]:
        """The saved record (with ``cursor`` and ``rows_done``), None when there is none.

        Raises :class:`ResumeRefused` when the record belongs to another import or the file changed.
        """
        try:
            record = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ResumeRefused(
                f"state file {self.path} is unreadable ({exc}); pass --restart to import from the start"
            ) from None
        if not isinstance(record, dict) or record.get("version") != VERSION or "cursor" not in record:
            raise ResumeRefused(
                f"state file {self.path} is not a vecdb import state (version {VERSION}); "
                f"pass --restart to import from the start"
            )
        saved_file, now_file = record.get("file", {}), self.identity["file"]
        if (saved_file.get("size"), saved_file.get("mtime_ns")) != (now_file["size"], now_file["mtime_ns"]):
            how = (
                f"its size went from {saved_file.get('size')} to {now_file['size']} bytes"
                if saved_file.get("size") != now_file["size"]
                else "its modification time differs"
            )
            raise ResumeRefused(
                f"{now_file['path']} changed since the interrupted import recorded in {self.path} ({how}), so "
                f"the recorded position no longer applies. Pass --restart to import the file from the start "
                f"(upserts by id overwrite what the first run stored)"
            )
        differing = [k for k in ("collection", "target", "format", "options") if record.get(k) != self.identity.get(k)]
        if differing:
            raise ResumeRefused(
                f"state file {self.path} records an import with other {', '.join(differing)} "
                f"(it has {', '.join(f'{k}={record.get(k)!r}' for k in differing)}); "
                f"pass --restart to start over, or --state to use another file"
            )
        return record

    def save(self, cursor: Cursor, rows_done: int) -> None:
        """Record ``cursor`` atomically: write a temp file beside it, fsync, rename over the old one."""
        record = {
            "version": VERSION,
            **self.identity,
            "cursor": cursor,
            "rows_done": rows_done,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        fsync_path(tmp)
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # where directories cannot be opened, the rename is all there is
            fsync_path(self.path.parent)

    def remove(self) -> None:
        """Delete the record, and temp files a process killed mid-save left beside it."""
        for stale in [self.path, *self.path.parent.glob(f".{self.path.name}.*.tmp")]:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


__all__ = ["ImportState", "ResumeRefused", "default_state_path"]
