"""Durable files for index checkpoints: write to a temp file, fsync, rename; fsync the folder last.

A crash at any point leaves either the old file or the complete new one, never a torn one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (so that a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` fills a temp file beside ``path``, which then replaces ``path`` once on disk.
    The caller fsyncs the folder after its last file (one directory sync per checkpoint)."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    fsync_path(tmp)
    os.replace(tmp, path)


__all__ = ["fsync_path", "write_durably"]
