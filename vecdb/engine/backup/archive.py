"""The snapshot archive of one collection: pack a consistent copy while writes go on; unpack it safely.

An archive is an uncompressed POSIX tar (vectors hardly compress) whose members are::

    snapshot.json              what it holds: format, collection name, config, write sequence, index files
    collection/data.mdb        a compacted copy of the collection's LMDB, taken in ONE read transaction
    collection/index/<file>    the index checkpoint files the manifests of that copy name

Why the index files match the copied LMDB: a checkpoint
(:mod:`vecdb.engine.checkpoints`) writes its files under a new name
(``space<i>.<generation>.hnsw`` and sidecars, never rewritten), *then* commits
the manifest naming them, and only then deletes the files of the previous
manifest. So, inside the read transaction that the
copy is taken in, the manifests name complete files; opening those files
right there pins their contents (an open descriptor keeps reading an unlinked
file), and the copy is taken in that same transaction. If a concurrent
checkpoint removed a file between the manifest read and the open, the whole
read starts again (a fresh transaction sees the newer manifest); after a few
tries the space's index is left out and the restore rebuilds it from the
vectors, which the copy always holds. A restored collection is therefore the
state of one commit, and its index, when included, is the one that commit names.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Optional

import lmdb
import orjson

from vecdb import __version__
from vecdb.engine.checkpoints import INDEX_DIR, checkpoint_files, manifest_key, sparse_manifest_key
from vecdb.engine.settings import sparse_spaces, vector_spaces
from vecdb.errors import Corruption, InvalidInput
from vecdb.snapshot_files import (  # noqa: F401  (read_meta, file_sha256 re-exported)
    COPY_CHUNK,
    FORMAT,
    MAX_META_BYTES,
    META_MEMBER,
    HashingReader,
    file_sha256,
    read_meta,
)
from vecdb.storage.env import Environment
from vecdb.storage.points import POINTS_DBS, PointsTables

if TYPE_CHECKING:
    from vecdb.engine.collection import Collection

log = logging.getLogger(__name__)

DATA_MEMBER = "collection/data.mdb"
INDEX_PREFIX = "collection/index/"
PIN_ATTEMPTS = 3
"""Fresh read transactions tried when a checkpoint removes the named index files under our feet."""

_INDEX_FILE_RE = re.compile(r"^(space|sparse)\d+\.[A-Za-z0-9_.\-]{1,200}$")


@dataclass
class _Pinned:
    """An index file opened inside the snapshot's read transaction."""

    name: str
    file: BinaryIO
    size: int


class _HashingWriter:
    """A write-only stream that hashes what passes through it (so the checksum costs no second read)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)


# --- packing ------------------------------------------------------------------------------------


def pack(coll: Collection, dest: Path, work: Path) -> tuple[str, dict[str, Any]]:
    """Write the archive of ``coll`` to ``dest`` (fsynced; the caller renames it into place),
    using ``work`` (a fresh folder, removed here) for the LMDB copy. Returns (sha256, metadata)."""
    pinned: dict[Any, list[_Pinned]] = {}
    try:
        state, pinned, missing = _copy_consistent(coll, work)
        if missing:
            log.warning(
                "snapshot of %s: index files of spaces %s were replaced while copying; "
                "a restore rebuilds those indexes",
                coll.name,
                missing,
            )
        meta = {
            "format": FORMAT,
            "vecdb_version": __version__,
            "collection": coll.name,
            "created_at": time.time(),
            "seq": state["counters"].get("seq"),
            "config": state["config"],
            "indexes": {str(space): [p.name for p in files] for space, files in pinned.items()},
        }
        with open(dest, "wb") as out:
            writer = _HashingWriter(out)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                body = orjson.dumps(meta, option=orjson.OPT_INDENT_2)
                _add(tar, META_MEMBER, io.BytesIO(body), len(body))
                data = work / "data.mdb"
                with open(data, "rb") as f:
                    _add(tar, DATA_MEMBER, f, data.stat().st_size)
                for files in pinned.values():
                    for p in files:
                        _add(tar, INDEX_PREFIX + p.name, p.file, p.size)
            out.flush()
            os.fsync(out.fileno())
        return writer.sha.hexdigest(), meta
    finally:
        _close(pinned)
        shutil.rmtree(work, ignore_errors=True)


def _copy_consistent(coll: Collection, work: Path) -> tuple[dict[str, Any], dict[Any, list[_Pinned]], list[Any]]:
    """In one read transaction: read config, counters and manifests, pin the index files they
    name, and copy the LMDB. Retried in a fresh transaction when a pin fails."""
    folder = coll.path / INDEX_DIR
    coll.env.reserve_headroom()
    for attempt in range(PIN_ATTEMPTS):
        with coll.env.read() as txn:
            config = coll.tables.get_meta_json(txn, "config")
            counters = coll.tables.get_meta_json(txn, "counters") or {}
            manifests: dict[Any, Any] = {
                s.index: coll.tables.get_meta_json(txn, manifest_key(s.index)) for s in vector_spaces(config)
            }
            for sparse in sparse_spaces(config):  # (keyed "sparse<i>": an open then loads it, no replay from LMDB)
                manifests[f"sparse{sparse.index}"] = coll.tables.get_meta_json(txn, sparse_manifest_key(sparse.index))
            pinned, missing = _pin_index_files(folder, manifests)
            if missing and attempt + 1 < PIN_ATTEMPTS:
                _close(pinned)
                continue
            try:
                coll.env.copy_to(work, txn)
            except BaseException:
                _close(pinned)
                raise
            return {"config": config, "counters": counters}, pinned, missing
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt always returns


def _pin_index_files(folder: Path, manifests: dict[Any, Any]) -> tuple[dict[Any, list[_Pinned]], list[Any]]:
    """Open every file of each manifest's checkpoint (dense spaces by number, sparse ones as
    ``sparse<i>``); spaces with a file gone are reported missing."""
    pinned: dict[Any, list[_Pinned]] = {}
    missing: list[Any] = []
    for space, manifest in manifests.items():
        if not manifest:
            continue
        main = str(manifest.get("file", ""))
        if not _INDEX_FILE_RE.match(main):
            log.warning("index manifest of space %d names an unexpected file %r; leaving it out", space, main)
            missing.append(space)
            continue
        names = checkpoint_files(manifest) if isinstance(space, int) else [main]  # (and a dense kind's side files)
        files: list[_Pinned] = []
        try:
            for name in names:
                f = open(folder / name, "rb")
                files.append(_Pinned(name, f, os.fstat(f.fileno()).st_size))
        except FileNotFoundError:
            for p in files:
                p.file.close()
            missing.append(space)
            continue
        pinned[space] = files
    return pinned, missing


def _add(tar: tarfile.TarFile, name: str, src: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, src)


def _close(pinned: dict[Any, list[_Pinned]]) -> None:
    for files in pinned.values():
        for p in files:
            p.file.close()


# --- unpacking ----------------------------------------------------------------------------------


def unpack(archive: Path, dest: Path, label: str, expected_sha256: Optional[str] = None) -> dict[str, Any]:
    """Extract ``archive`` into ``dest`` (``data.mdb`` and ``index/``), hashing it in the same pass.

    Only the members this format defines are accepted (regular files, known names, no paths of
    their own), so a hostile archive cannot write outside ``dest``. A checksum mismatch is
    reported before anything else that is wrong with the file. Returns the archive's metadata.
    """
    dest.mkdir(parents=True, exist_ok=True)
    problem: Optional[str] = None
    meta: Optional[dict[str, Any]] = None
    seen: set[str] = set()
    try:
        raw = open(archive, "rb")
    except OSError as exc:
        raise InvalidInput(f"snapshot {label}: cannot read the file ({exc.strerror})") from None
    with raw:
        reader = HashingReader(raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    target = _target_of(member, seen)
                    src = tar.extractfile(member)
                    assert src is not None  # a regular file, checked above
                    if target is None:
                        if member.size > MAX_META_BYTES:
                            raise ValueError(f"{META_MEMBER} is {member.size} bytes")
                        meta = orjson.loads(src.read())
                    else:
                        _write_file(src, dest / target)
        except (tarfile.TarError, ValueError, EOFError, orjson.JSONDecodeError) as exc:
            problem = str(exc) or type(exc).__name__
        digest = reader.drain()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise InvalidInput(
            f"snapshot {label}: checksum mismatch: expected {expected_sha256.lower()}, the file's sha256 is {digest}"
        )
    if problem is None:
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            problem = f"{META_MEMBER} is missing or not of format {FORMAT}"
        elif DATA_MEMBER not in seen:
            problem = f"{DATA_MEMBER} is missing"
    if problem is None:
        problem = _check_collection(dest)
    if problem is not None:
        raise InvalidInput(f"snapshot {label} is not a valid vecdb collection snapshot: {problem}")
    assert meta is not None
    return meta


def _check_collection(folder: Path) -> Optional[str]:
    """What is wrong with the unpacked LMDB, or None when it opens as a collection with a config."""
    try:
        env = Environment(folder, POINTS_DBS)
    except lmdb.Error as exc:
        return f"its database does not open ({exc})"
    try:
        with env.read() as txn:
            tables = PointsTables(env.dbs)
            if not tables.check_format(txn) or not tables.get_meta_json(txn, "config"):
                return "its database holds no collection"
    except (lmdb.Error, Corruption, orjson.JSONDecodeError) as exc:
        return f"its database is unreadable ({exc})"
    finally:
        env.close()
    return None


def _target_of(member: tarfile.TarInfo, seen: set[str]) -> Optional[str]:
    """Where a member goes under the restore folder (None for the metadata); refuses anything else."""
    name = member.name
    if not member.isreg():
        raise ValueError(f"member {name!r} is not a regular file")
    if name in seen:
        raise ValueError(f"member {name!r} appears twice")
    seen.add(name)
    if name == META_MEMBER:
        return None
    if name == DATA_MEMBER:
        return "data.mdb"
    if name.startswith(INDEX_PREFIX) and _INDEX_FILE_RE.match(name[len(INDEX_PREFIX) :]):
        return f"{INDEX_DIR}/{name[len(INDEX_PREFIX) :]}"
    raise ValueError(f"unexpected member {name!r}")


def _write_file(src: IO[bytes], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)
        out.flush()
        os.fsync(out.fileno())


__all__ = ["FORMAT", "file_sha256", "pack", "read_meta", "unpack"]
