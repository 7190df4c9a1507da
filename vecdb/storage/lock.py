"""Exclusive ownership of a data directory by one process.

An advisory ``flock`` on ``<data>/.lock`` is held for the life of the process
that opened the directory. The kernel drops it when that process dies, even by
``kill -9``, so a stale lock file never blocks a restart; the file's text
(pid, host, command) only serves to name the holder in the error message.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path

from vecdb.errors import DataDirLocked


def redacted(argv: list[str]) -> list[str]:
    """The command line without the values of key options (``--api-key X``, ``--read-only-api-key=X``):
    the lock file is world-readable and its text goes into error messages."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
        elif arg.startswith("--") and "key" in arg.split("=", 1)[0]:
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
        else:
            out.append(arg)
    return out


class DataDirLock:
    """Holds the lock until :meth:`release`; raises DataDirLocked if another process has it."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder()
            os.close(self._fd)
            raise DataDirLocked(
                f"data directory {root} is in use by another process ({holder}); stop it or choose another --path"
            ) from None
        owner = f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(redacted(sys.argv))[:200]}"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, owner.encode(), 0)

    def _read_holder(self) -> str:
        try:
            return os.pread(self._fd, 512, 0).decode(errors="replace").strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
