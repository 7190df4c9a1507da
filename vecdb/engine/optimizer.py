"""The background optimizer: builds, grows, rebuilds and checkpoints each collection's ANN indexes.

The index kind comes from the collection's ``index`` setting: ``hnsw`` (a
graph), ``ivf_pq`` (inverted lists of PQ codes, trained by vecdb's K-Means on
a sample of the live vectors) or ``flat`` (none: every search is exact).

Writes never wait for it. It wakes when a write lands (or every few seconds),
and per vector space:

* builds the first graph once the space holds more than
  ``optimizers_config.indexing_threshold`` KB of vectors (0 disables
  indexing; below the threshold an exact scan is as fast);
* adds fresh points in chunks, each to a clone of the published graph, then
  publishes the clone: a search never waits for, nor sees, a half-built graph;
* rebuilds from the live points when deleted ones pass
  ``deleted_threshold`` of the index (and ``vacuum_min_vector_number``), or
  when ``m`` / ``ef_construct`` changed; retrains IVF-PQ when the space has
  grown to 4x the vectors it was trained on, or when added vectors sit
  farther from their centroids than the training sample did (drift);
* checkpoints the graph to ``<collection>/index/`` and records in the LMDB
  ``meta`` table which internal-id watermark it covers, so that an open loads
  it and indexes only what came later (the format is
  :mod:`vecdb.engine.checkpoints`'s). A changed index is saved once writes
  pause for a second, and while they go on at least every
  ``optimizers_config.flush_interval_sec`` seconds (Qdrant's field, default 5),
  stretched to ten times the last save's duration so that saving a large
  graph never takes more than a tenth of the optimizer's time. A crash then
  costs at most that interval of indexing work, never a full rebuild.

Kinds are looked up in the index registry (:mod:`vecdb.index.base`) by the
``index`` setting's name; what differs between them (parameters, when to
rebuild, the files they save) is the kind's to say.

Why one module of this size: the loop, the per-space build and rebuild rules and the checkpoint
timing (dense indexes and the sparse inverted indexes alike) share one dirty set and one clock;
the file formats themselves live in :mod:`vecdb.engine.checkpoints`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from vecdb.engine.checkpoints import (
    INDEX_DIR,
    load_checkpoint,
    manifest_key,
    remove_superseded,
    remove_superseded_sparse,
    write_checkpoint,
    write_sparse_checkpoint,
)
from vecdb.engine.planner import AnnState
from vecdb.engine.settings import VectorSpace, index_config
from vecdb.engine.views import ReadView
from vecdb.index.base import BuildInterrupted, kind_of
from vecdb.index.sparse import InvertedIndex
from vecdb.index.sparse import warm_up as sparse_warm_up

log = logging.getLogger(__name__)

CHUNK_MIN = 2048
"""Fresh points added per publish at least; at most a quarter of the graph more (clone cost)."""
QUIET_S = 1.0
"""Writes quiet this long: save a changed index now rather than at the next interval."""
SAVE_SHARE = 10.0
"""The interval between saves under writes is at least this many times the last save's duration."""
IDLE_WAKE_S = 5.0


class IndexHost(Protocol):
    """What the optimizer uses of its collection (the collection is one; tests may pass another)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def spaces(self) -> list[VectorSpace]: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def view(self) -> ReadView:
        """The current read view."""
        ...

    @property
    def ann(self) -> dict[int, AnnState]:
        """The published index of each space that has one."""
        ...

    @property
    def last_write(self) -> float:
        """``time.monotonic()`` of the last committed write."""
        ...

    @property
    def search_device(self) -> str:
        """Where a kind that can use a GPU trains (``cpu``, ``cuda``)."""
        ...

    @property
    def sparse(self) -> dict[int, InvertedIndex]:
        """The published inverted index of each sparse space (checkpointed here, updated by the writer)."""
        ...

    def publish_ann(self, space_index: int, state: Optional[AnnState]) -> None: ...
    def publish_sparse(self, space_index: int, expected: InvertedIndex, index: InvertedIndex) -> bool:
        """Replace a sparse space's published index by ``index`` if it still is ``expected`` (no
        write published another meanwhile); whether it did."""
        ...

    def put_meta(self, key: str, value: Any) -> None:
        """One durable write to the ``meta`` table (``None`` deletes the key)."""
        ...

    def load_checkpoints(self, manifests: dict[int, Any]) -> None: ...


def index_kind(settings: dict[str, Any]) -> str:
    return str(index_config(settings)["type"])


def index_params(settings: dict[str, Any]) -> dict[str, Any]:
    """The parameters a kind builds with: Qdrant's ``hnsw_config`` (HNSW's ``m``, ``ef_construct``) and
    vecdb's ``index`` setting (IVF-PQ's ``nlist``, ``pq_m``, ...) in one mapping; each kind reads its own."""
    return {**(settings.get("hnsw_config") or {}), **index_config(settings)}


def wants_index(space: VectorSpace, settings: dict[str, Any], live: int) -> bool:
    """Qdrant's rule: index once the vectors exceed ``indexing_threshold`` KB; 0 turns indexing off."""
    kind = kind_of(index_kind(settings))
    if not kind.ann or not kind.supports(space.distance):
        return False
    if live < kind.min_points:
        return False
    threshold = settings["optimizers_config"].get("indexing_threshold")
    if threshold is None:
        threshold = 10000
    if threshold == 0:
        return False
    return live * space.size * 4 > threshold * 1024


class Optimizer:
    """One daemon thread per collection."""

    def __init__(self, host: IndexHost) -> None:
        self.host = host
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.busy = False
        self.error: Optional[str] = None
        self._dirty: set[int] = set()
        self.to_load: dict[int, Any] = {}
        """Index manifests to load before any other work (set by the collection's open)."""
        self.loaded = threading.Event()
        self._last_checkpoint = time.monotonic()
        self._last_save_s = 0.0
        self._sparse_saved: dict[int, InvertedIndex] = {}
        self._sparse_files: dict[int, str] = {}
        """The sparse index each space's checkpoint holds (one loaded or saved), to tell when it changed."""
        self._thread = threading.Thread(target=self._run, name=f"vecdb-optimizer-{host.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def sparse_saved_from(self, indexes: dict[int, InvertedIndex], files: dict[int, str]) -> None:
        """The indexes an open loaded from their checkpoints (nothing to save until they change)."""
        self._sparse_saved = dict(indexes)
        self._sparse_files = dict(files)

    def _run(self) -> None:
        _lower_priority()
        try:
            if self.to_load:
                self.host.load_checkpoints(self.to_load)
            self._sweep_files()
        except Exception as exc:  # a bad file is logged and rebuilt; anything else shows in CollectionInfo
            log.exception("collection %s: loading index checkpoints failed", self.host.name)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.to_load = {}
            self.loaded.set()
        if self.host.sparse:  # the compiled sparse search, ready before the first query needs it
            try:
                sparse_warm_up()
            except Exception:  # (a query compiles it then, and reports what fails)
                log.exception("collection %s: compiling the sparse search failed", self.host.name)
        while not self._stop.is_set():
            self._wake.wait(IDLE_WAKE_S)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.step():
                    pass
                self.error = None
            except BuildInterrupted:
                return
            except Exception as exc:  # keep serving searches (exactly) and say so in CollectionInfo
                log.exception("optimizer of collection %s failed", self.host.name)
                self.error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(1.0)

    def _sweep_files(self) -> None:
        """Remove index files that no manifest names: a crash in a checkpoint leaves a temp file, or
        the files the committed manifest superseded (they would otherwise stay until the next save)."""
        folder = self.host.path / INDEX_DIR
        if not folder.is_dir():
            return
        for space in self.host.spaces:
            manifest = self.to_load.get(space.index)
            remove_superseded(folder, space.index, keep=manifest["file"] if manifest else None)
        for space_index in self.host.sparse:
            saved = self._sparse_files.get(space_index)
            remove_superseded_sparse(folder, space_index, keep=saved)

    def step(self) -> bool:
        """Do one unit of work (a chunk, a rebuild or a checkpoint); False when there is none."""
        self.busy = True
        try:
            for space in self.host.spaces:
                if self._stop.is_set():
                    return False
                if self._index_space(space):
                    self._checkpoint(force=False, caught_up=False)
                    return True
            self._checkpoint(force=False, caught_up=True)  # (saving is not a unit of work that asks for another step)
            return False
        finally:
            self.busy = False

    def pending(self) -> bool:
        """Whether some space's graph lags behind the stored points, or some sparse index awaits the
        compaction of its checkpoint (CollectionInfo says yellow)."""
        if not self.loaded.is_set():
            return True
        if any(len(index.segments) > 1 for index in self.host.sparse.values()):
            return True
        snap = self.host.view
        for space in self.host.spaces:
            state = self.host.ann.get(space.index)
            if state is None:
                if wants_index(space, self.host.settings, snap.spaces[space.index].live):
                    return True
            elif snap.live(space.index, state.covered).any() or self._needs_rebuild(space, state, snap):
                return True
        return False

    def backlog(self) -> int:
        """Stored vectors that no index holds yet, summed over spaces that want one (``/metrics``)."""
        snap = self.host.view
        total = 0
        for space in self.host.spaces:
            state = self.host.ann.get(space.index)
            if state is None:
                live = snap.spaces[space.index].live
                total += live if wants_index(space, self.host.settings, live) else 0
            else:
                total += int(np.count_nonzero(snap.live(space.index, state.covered)))
        return total

    # --- work ------------------------------------------------------------------------------

    def _index_space(self, space: VectorSpace) -> bool:
        host = self.host
        snap = host.view
        state = host.ann.get(space.index)
        if state is None or self._needs_rebuild(space, state, snap):
            if not wants_index(space, host.settings, snap.spaces[space.index].live):
                if state is not None:
                    host.publish_ann(space.index, None)
                    self._dirty.add(space.index)
                    return True
                return False
            self._build(space, snap, first=state is None)
            return True
        fresh = np.flatnonzero(snap.live(space.index, state.covered)) + state.covered
        if not len(fresh):
            if state.covered < snap.n:  # only dead or vector-less rows above the mark: move it
                host.publish_ann(space.index, AnnState(state.index, snap.n))
            return False
        chunk = fresh[: max(CHUNK_MIN, state.index.ntotal // 4)]
        covered = snap.n if len(chunk) == len(fresh) else int(chunk[-1]) + 1
        grown = state.index.grown(chunk, snap.spaces[space.index].matrix[chunk], self._stop.is_set)
        host.publish_ann(space.index, AnnState(grown, covered))
        self._dirty.add(space.index)
        log.debug("collection %s space %d: indexed %d fresh points", host.name, space.index, len(chunk))
        return True

    def _build(self, space: VectorSpace, snap: ReadView, first: bool) -> None:
        """Build an index of every live point of ``snap``: in chunks (published as they grow) for a
        first build, so searches use part of it early; privately for a rebuild, which replaces a
        working index only when complete."""
        host = self.host
        n = snap.n
        iids = np.flatnonzero(snap.live(space.index))
        matrix = snap.spaces[space.index].matrix
        t0 = time.perf_counter()
        step = len(iids) if not first else 4 * CHUNK_MIN
        head = iids[:step]
        kind = kind_of(index_kind(host.settings))
        index = kind.build(
            space.distance,
            index_params(host.settings),
            matrix,
            head,
            population=iids,
            should_stop=self._stop.is_set,
            device=host.search_device,
        )
        what = index.describe()
        covered = n if len(head) == len(iids) else int(head[-1]) + 1
        host.publish_ann(space.index, AnnState(index, covered))
        self._dirty.add(space.index)
        log.info(
            "collection %s space %d: %s %s over %d points in %.2f s",
            host.name,
            space.index,
            "built" if first else "rebuilt",
            what,
            len(head),
            time.perf_counter() - t0,
        )

    def _needs_rebuild(self, space: VectorSpace, state: AnnState, snap: ReadView) -> bool:
        settings = self.host.settings
        index = state.index
        if index.kind != index_kind(settings):
            return True
        if index.outdated(index_params(settings), snap.spaces[space.index].live):
            return True
        opt = settings["optimizers_config"]
        dead = state.dead_count(snap)
        threshold = opt.get("deleted_threshold")
        return dead >= int(opt.get("vacuum_min_vector_number") or 0) and dead > float(
            0.2 if threshold is None else threshold
        ) * max(index.ntotal, 1)

    # --- checkpoints ------------------------------------------------------------------------

    def _checkpoint(self, force: bool, caught_up: bool = True) -> None:
        """Save the changed indexes when ``force``d, when caught up with writes that paused, or when
        the flush interval has passed (so a long ingest is saved as it goes)."""
        sparse_dirty = [i for i, index in self.host.sparse.items() if self._sparse_saved.get(i) is not index]
        if not self._dirty and not sparse_dirty:
            return
        now = time.monotonic()
        due = now - self._last_checkpoint >= self.interval_s()
        quiet = caught_up and now - self.host.last_write >= QUIET_S
        if not (force or due or quiet):
            return
        t0 = time.perf_counter()
        for space_index in sorted(self._dirty):
            self.checkpoint_space(space_index)
        self._dirty.clear()
        for space_index in sparse_dirty:
            self.checkpoint_sparse(space_index)
        self._last_save_s = time.perf_counter() - t0
        self._last_checkpoint = time.monotonic()

    def interval_s(self) -> float:
        """The longest a changed index goes unsaved while writes continue."""
        flush = self.host.settings["optimizers_config"].get("flush_interval_sec")
        return max(float(5 if flush is None else flush), SAVE_SHARE * self._last_save_s)

    def checkpoint_space(self, space_index: int) -> None:
        """Save the published graph, then record it in ``meta``; only then drop older files."""
        host = self.host
        state = host.ann.get(space_index)
        folder = host.path / INDEX_DIR
        folder.mkdir(exist_ok=True)
        if state is None:
            host.put_meta(manifest_key(space_index), None)
            remove_superseded(folder, space_index, keep=None)
            return
        t0 = time.perf_counter()
        manifest = write_checkpoint(folder, space_index, state, host.put_meta)
        name = manifest["file"]
        if getattr(host, "maps_checkpoints", False) and host.ann.get(space_index) is state:
            # under --workers: search the file's pages, which the followers map too, instead of a
            # private copy of the same graph (growing it copies it first: HnswIndex.grown)
            mapped = load_checkpoint(folder, manifest, host.view.n, shared=True)
            if mapped is not None:
                host.publish_ann(space_index, mapped)
        remove_superseded(folder, space_index, keep=name)
        log.info(
            "collection %s space %d: checkpointed %d indexed points (covers internal ids < %d) in %.2f s",
            host.name,
            space_index,
            state.index.ntotal,
            state.covered,
            time.perf_counter() - t0,
        )

    def checkpoint_sparse(self, space_index: int) -> None:
        """Save a sparse space's inverted index (file, then manifest, then older files removed)."""
        host = self.host
        view = host.view  # (taken before the index: the index is as new as the view, or newer)
        index = host.sparse[space_index]
        saved = self._sparse_saved.get(space_index)
        if saved is not None and saved.segments is index.segments:
            self._sparse_saved[space_index] = index  # (writes that stored no row here: the file still holds it all)
            return
        folder = host.path / INDEX_DIR
        folder.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        one = index.compacted(view.alive, view.n, view.seq)
        name = write_sparse_checkpoint(folder, space_index, one, view.alive, view.n, host.put_meta, compact=False)
        remove_superseded_sparse(folder, space_index, keep=name)
        # Searches then read one segment without the dead postings, unless a write came meanwhile
        # (its index holds segments this one lacks: the next checkpoint compacts again).
        if host.publish_sparse(space_index, index, one):
            index = one
        self._sparse_saved[space_index] = index
        self._sparse_files[space_index] = name
        log.info(
            "collection %s sparse space %d: checkpointed %d postings (covers internal ids < %d) in %.2f s",
            host.name,
            space_index,
            index.postings,
            index.n,
            time.perf_counter() - t0,
        )

    def flush(self) -> None:
        """Checkpoint now what is published (on close)."""
        self._checkpoint(force=True)


def _lower_priority() -> None:
    """Run the optimizer thread at nice 10 (Linux applies nice per thread): background indexing then takes
    the CPU that searches and writes leave. Under a bulk ingest on 2 cores this cut search p99 from 20.8 ms
    to 11.6 ms and raised the writer from 37k to 63k points/s (benchmarks/results/filtered.md)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):
        pass


__all__ = ["INDEX_DIR", "IndexHost", "Optimizer", "index_params", "load_checkpoint", "manifest_key", "wants_index"]
