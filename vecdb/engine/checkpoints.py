"""Index checkpoints: the files of a saved ANN index and the LMDB manifest that names them.

A checkpoint of vector space ``i`` is a main file ``<collection>/index/space<i>.<generation><suffix>``
(the kind's ``file_suffix``: ``.hnsw``, ``.ivfpq``) plus the kind's side files beside it
(``<main><side>``), and a manifest in the ``meta`` table under :func:`manifest_key`::

    {<the index's manifest: "kind" (absent for HNSW), "format", parameters>,
     "file": <main file name>, "covered": <internal-id watermark>, "ntotal": <indexed vectors>}

The order of a save is what makes it crash-safe and lets a backup copy a consistent one: the
files are written under a new name (never rewritten), *then* the manifest naming them commits,
and only then are the files of the previous manifest removed (:func:`remove_superseded`). The
optimizer writes checkpoints, the collection's open loads them, the backup archive copies the
files a manifest names; all three read the format here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

from vecdb.engine.planner import AnnState
from vecdb.errors import Corruption
from vecdb.index.base import kind_for_manifest
from vecdb.index.sparse import InvertedIndex

log = logging.getLogger(__name__)

INDEX_DIR = "index"
"""The folder of a collection holding its checkpoint files."""


def manifest_key(space: int) -> str:
    """The ``meta`` key of a space's index manifest (named when HNSW was the only kind; other kinds'
    manifests carry ``"kind"``)."""
    return f"hnsw:{space}"


def write_checkpoint(
    folder: Path, space_index: int, state: AnnState, put_meta: Callable[[str, Any], None]
) -> dict[str, Any]:
    """Save ``state``'s index under a new generation's name, then commit the manifest naming it (with
    ``put_meta``, one durable LMDB write). Returns the manifest (its ``file``: the main file's name);
    the caller removes the files it superseded (:func:`remove_superseded`) once this returned."""
    index = state.index
    name = f"space{space_index}.{time.time_ns()}{index.file_suffix}"
    index.save(folder / name)
    manifest = {**index.manifest(), "file": name, "covered": state.covered, "ntotal": index.ntotal}
    put_meta(manifest_key(space_index), manifest)
    return manifest


def checkpoint_files(manifest: Mapping[str, Any]) -> list[str]:
    """The names of the files a manifest's checkpoint consists of: its main file, then its side files
    (none known for a kind this build does not have)."""
    main = str(manifest.get("file", ""))
    try:
        sides = kind_for_manifest(manifest).SIDE_FILES
    except ValueError:
        sides = ()
    return [main] + [main + side for side in sides]


def load_checkpoint(
    folder: Path, manifest: Optional[dict[str, Any]], next_iid: int, shared: bool = False
) -> Optional[AnnState]:
    """The index a manifest names, or None (and a log line) if it is missing or does not fit.
    ``shared``: memory-map what the kind can (a follower process, which never grows the index)."""
    if not manifest:
        return None
    path = folder / manifest["file"]
    try:
        index = kind_for_manifest(manifest).load(path, manifest, shared=shared)
        covered = int(manifest["covered"])
        if (
            index.ntotal != manifest["ntotal"]
            or covered > next_iid
            or (index.ntotal and int(index.labels[-1]) >= covered)
        ):
            raise ValueError("index file does not match its manifest")
    except (OSError, ValueError, RuntimeError, Corruption) as exc:
        log.warning("ignoring index checkpoint %s (%s); it will be rebuilt", path, exc)
        return None
    return AnnState(index, covered)


def remove_superseded(folder: Path, space_index: int, keep: Optional[str]) -> None:
    """Remove a space's index files but ``keep`` and its sidecars (``keep.*`` that are not temp files)."""
    prefix = f"space{space_index}."
    for path in folder.iterdir():
        name = path.name
        kept = keep is not None and (name == keep or (name.startswith(keep + ".") and not name.endswith(".tmp")))
        if name.startswith(prefix) and not kept:
            path.unlink(missing_ok=True)


# --- sparse inverted indexes ---------------------------------------------------------------------
#
# A sparse space ``i``'s checkpoint is ``<collection>/index/sparse<i>.<generation>.npz`` and the manifest
# ``sparse:<i>`` in ``meta``: ``{"format", "file", "covered": internal-id watermark, "postings"}``. The same
# order as above makes it crash-safe (file durable, then manifest, then older files removed); an open loads
# it and replays only the ``sparse`` rows of internal ids >= ``covered`` from LMDB.


def sparse_manifest_key(space: int) -> str:
    return f"sparse:{space}"


def write_sparse_checkpoint(
    folder: Path,
    space: int,
    index: InvertedIndex,
    alive: Any,
    known: int,
    put_meta: Callable[[str, Any], None],
    compact: bool = True,
) -> str:
    """Save ``index`` (less postings of ids below ``known`` that ``alive`` says are dead; ``compact=False``:
    ``index`` is a :meth:`~InvertedIndex.compacted` one already) under a new name, then commit its
    manifest; returns the file's name (the caller then removes older ones)."""
    name = f"sparse{space}.{time.time_ns()}.npz"
    manifest = index.save(folder / name, alive, known, compact)
    put_meta(sparse_manifest_key(space), {**manifest, "file": name})
    return name


def load_sparse_checkpoint(folder: Path, manifest: Optional[dict[str, Any]], next_iid: int) -> Optional[InvertedIndex]:
    """The inverted index a manifest names, or None (and a log line: the open replays it from LMDB)."""
    if not manifest:
        return None
    path = folder / str(manifest.get("file", ""))
    try:
        index = InvertedIndex.load(path, manifest)
        if index.n > next_iid:
            raise ValueError("sparse index covers internal ids the store never allotted")
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring sparse index checkpoint %s (%s); it will be rebuilt from storage", path, exc)
        return None
    return index


def remove_superseded_sparse(folder: Path, space: int, keep: Optional[str]) -> None:
    """Remove a sparse space's checkpoint files but ``keep`` (temp files of a crashed save included)."""
    prefix = f"sparse{space}."
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name.startswith(prefix) and path.name != keep:
            path.unlink(missing_ok=True)


__all__ = [
    "load_sparse_checkpoint",
    "remove_superseded_sparse",
    "sparse_manifest_key",
    "write_sparse_checkpoint",
    "INDEX_DIR",
    "checkpoint_files",
    "load_checkpoint",
    "manifest_key",
    "remove_superseded",
    "write_checkpoint",
]
