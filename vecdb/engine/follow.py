"""Catching up on writes that another process committed to the same collection.

``vecdb serve --workers N`` runs one writing process (the primary) and readers (followers) over
one data directory. LMDB is the source of truth they share; what each holds in memory (the read
view, payload indexes, sparse postings, loaded graphs) a follower brings up to date before it
answers, from the ``changes`` records every write leaves (:mod:`vecdb.storage.points`):

* Before a request uses a collection, :meth:`Follower.sync` compares LMDB's last transaction id
  with the one it last caught up to (one read transaction, about a microsecond). Equal: nothing
  to do. Otherwise it reads, in one transaction, the writes it has not seen, rebuilds them as one
  delta and publishes it exactly as the primary published each write
  (:func:`vecdb.engine.write.publish_delta`), then loads index checkpoints the primary saved since.
  A write acknowledged before the request started is therefore in what the request reads.
* What it cannot replay (changed settings, records no longer kept) it reports, and the database
  reopens the collection.

A follower never writes to LMDB and never builds an index: its graphs are the primary's
checkpoints, memory-mapped where the kind allows, so their pages are shared between processes;
points written after the last checkpoint are searched exactly until the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import lmdb
import numpy as np

from vecdb.engine.checkpoints import INDEX_DIR, load_checkpoint, manifest_key
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView
from vecdb.engine.write import publish_delta
from vecdb.ids import id_to_key
from vecdb.storage.points import decode_sparse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """This process's place among ``vecdb serve --workers``: worker 0 is the primary (it writes and
    builds indexes), the others follow it."""

    number: int
    count: int

    @property
    def follower(self) -> bool:
        return self.number > 0


def file_identity(path: Path) -> tuple[int, int]:
    """Device and inode of a collection's LMDB file (a restore or a re-create replaces it)."""
    try:
        st = (path / "data.mdb").stat()
    except OSError:
        return (-1, -1)
    return (st.st_dev, st.st_ino)


@dataclass
class CaughtUp:
    """The writes ``after+1 .. seq`` as one delta, in the shape a :class:`~vecdb.engine.write_txn.WriteTxn`
    leaves (see :class:`vecdb.engine.write.Delta`), read from one transaction at ``seq``."""

    seq: int
    next_iid: int
    born: list[int] = field(default_factory=list)
    born_keys: list[bytes] = field(default_factory=list)
    died: list[int] = field(default_factory=list)
    touched: list[int] = field(default_factory=list)
    payload_writes: list[tuple[int, Any]] = field(default_factory=list)
    rows: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    sparse_rows: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)
    versions: Optional[tuple[np.ndarray, np.ndarray]] = None


def caught_up(state: CollectionState, txn: lmdb.Transaction, view: ReadView, seq: int) -> Optional[CaughtUp]:
    """The delta from ``view`` to commit ``seq`` (what ``txn`` holds), or None when the change records
    of those writes are no longer all kept."""
    tables = state.tables
    changes = tables.changes_after(txn, view.seq, seq)
    if changes is None or (changes and changes[0].first_iid != view.n):
        return None
    first = view.n
    next_iid = changes[-1].next_iid if changes else view.n
    delta = CaughtUp(seq, next_iid)
    dead = np.concatenate([c.dead for c in changes]) if changes else np.zeros(0, np.int64)
    old_dead = np.unique(dead[dead < first])
    touched = np.unique(np.concatenate([c.touched for c in changes])) if changes else np.zeros(0, np.int64)
    touched = np.setdiff1d(touched[touched < first], old_dead, assume_unique=True)
    delta.died = old_dead.tolist()
    delta.payload_writes = [(iid, None) for iid in delta.died]
    born_versions: list[int] = []
    if next_iid > first:
        for born in tables.records_from(txn, first):
            delta.born.append(born.iid)
            delta.born_keys.append(id_to_key(born.id))
            born_versions.append(born.version)
            delta.payload_writes.append((born.iid, born.payload_json))
        for space, iids, rows in tables.vector_chunks_from(txn, first, [s.size for s in state.spaces]):
            delta.rows.setdefault(space, []).append((iids, rows))
        for sparse_space in state.sparse_spaces:
            delta.sparse_rows[sparse_space.index] = []
        for iid, space_index, raw in tables.sparse_from(txn, first):
            if space_index in delta.sparse_rows:
                delta.sparse_rows[space_index].append((iid, decode_sparse(raw)))
    touched_versions: list[int] = []
    for iid, point in zip(touched.tolist(), tables.get_many(txn, touched.tolist()), strict=True):
        if point is not None:
            delta.touched.append(iid)
            touched_versions.append(point.version)
            delta.payload_writes.append((iid, point.payload_json))
    delta.versions = (np.asarray(born_versions, dtype=np.int64), np.asarray(touched_versions, dtype=np.int64))
    return delta


class Follower:
    """Keeps one collection of a follower process as current as LMDB (see the module doc)."""

    def __init__(self, state: CollectionState) -> None:
        self.state = state
        self.txn_id = -1
        """LMDB's transaction id of the commit this process last caught up to."""
        self.config: Optional[bytes] = None
        """The stored settings this process opened with (a change means reopening)."""
        self.manifests: dict[int, Any] = {}
        """The index manifests whose checkpoints are loaded, by vector space."""

    def opened(self, txn: lmdb.Transaction) -> None:
        """Note what the open read: its transaction is the starting point."""
        self.config = txn.get(b"config", db=self.state.tables.meta)
        self.txn_id = txn.id()
        self._load_checkpoints(txn)

    def sync(self) -> bool:
        """Catch up with every commit made before this call; False when the collection must be reopened."""
        state = self.state
        with state.env.read() as txn:
            if txn.id() == self.txn_id:
                return True
        with state.mvcc.write_lock, state.env.read() as txn:
            return self.sync_to(txn)

    def sync_to(self, txn: lmdb.Transaction) -> bool:
        """:meth:`sync` to the commit ``txn`` holds (the caller holds the collection's ``write_lock``)."""
        state = self.state
        mvcc = state.mvcc
        if txn.id() == self.txn_id:
            return True
        if txn.get(b"config", db=state.tables.meta) != self.config:
            return False
        seq = state.tables.committed_seq(txn)
        view = mvcc.view
        if seq != view.seq:
            delta = caught_up(state, txn, view, seq)
            if delta is None:
                return False
            with mvcc.publishing_change():
                mvcc.adopt(publish_delta(state, delta, view))
        self._load_checkpoints(txn)
        self.txn_id = txn.id()
        return True

    def _load_checkpoints(self, txn: lmdb.Transaction) -> None:
        """Load the graphs the primary saved since the last look (memory-mapped: shared pages)."""
        state = self.state
        for space in state.spaces:
            manifest = state.tables.get_meta_json(txn, manifest_key(space.index))
            if not manifest or manifest == self.manifests.get(space.index):
                continue
            loaded = load_checkpoint(state.path / INDEX_DIR, manifest, state.view.n, shared=True)
            if loaded is None:  # (superseded and removed meanwhile: the next look finds the newer one)
                continue
            self.manifests[space.index] = manifest
            state.publish_ann(space.index, loaded)
            log.info("collection %s space %d: graph of %d points", state.name, space.index, loaded.index.ntotal)
