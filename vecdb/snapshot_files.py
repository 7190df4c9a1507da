"""The snapshot file format's shared facts: what an archive's metadata member is, the sha256 beside it.

The engine's backup writes and reads whole archives (``vecdb/engine/backup``); the command line
checks a downloaded or local snapshot file (its metadata, its checksum) without an engine. Both
read the format from here.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path
from typing import IO, Any, Optional

import orjson

from vecdb.errors import InvalidInput

FORMAT = "vecdb-collection-snapshot/1"
META_MEMBER = "snapshot.json"
MAX_META_BYTES = 16 << 20
COPY_CHUNK = 1 << 20
CHECKSUM_SUFFIX = ".sha256"
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class HashingReader:
    """A read-only stream that hashes what is read; :meth:`drain` hashes the rest."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src = src
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.src.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> str:
        while self.read(COPY_CHUNK):
            pass
        return self.sha.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a whole file, read in chunks."""
    with open(path, "rb") as f:
        return HashingReader(f).drain()


def read_meta(archive: Path) -> dict[str, Any]:
    """The metadata of an archive (its first member), without reading the rest."""
    label = f"`{archive}`"
    try:
        with tarfile.open(archive, mode="r|") as tar:  # type: ignore[call-overload]
            member = tar.next()
            if member is None or member.name != META_MEMBER or not member.isreg() or member.size > MAX_META_BYTES:
                raise ValueError(f"its first member is not {META_MEMBER}")
            src = tar.extractfile(member)
            assert src is not None
            meta = orjson.loads(src.read())
    except OSError as exc:
        raise InvalidInput(f"snapshot {label}: cannot read the file ({exc.strerror or exc})") from None
    except (tarfile.TarError, ValueError, EOFError) as exc:
        raise InvalidInput(f"snapshot {label} is not a valid vecdb collection snapshot: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidInput(f"snapshot {label} is not a valid vecdb collection snapshot: unknown format")
    return meta


def check_checksum(checksum: Optional[str]) -> Optional[str]:
    """Lower-case hex sha256, or None; anything else is refused before any work starts."""
    if checksum is None:
        return None
    if not isinstance(checksum, str) or not _SHA256_RE.match(checksum):
        raise InvalidInput(f"checksum {checksum!r} is invalid: expected a sha256 as 64 hexadecimal digits")
    return checksum.lower()


def stored_checksum(path: Path) -> Optional[str]:
    """The sha256 recorded beside a snapshot file (``<file>.sha256``), if there is one."""
    try:
        text = path.with_name(path.name + CHECKSUM_SUFFIX).read_text().split()
    except OSError:
        return None
    return text[0].lower() if text and _SHA256_RE.match(text[0]) else None
