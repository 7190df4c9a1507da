"""One collection: its LMDB environment, settings, read view, indexes and optimizer, composed.

``Collection`` builds the parts and hands each request to the one that owns it: the
:class:`~vecdb.engine.write.Writer` (mutations), the :class:`~vecdb.engine.read.Reader`
(queries, scroll, count, retrieve) and the :class:`~vecdb.engine.optimizer.Optimizer` (index
builds, whose host it is). They share one :class:`~vecdb.engine.state.CollectionState`; the
consistency protocol between writer and readers lives in :mod:`vecdb.engine.mvcc`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import numpy as np

from vecdb.engine.checkpoints import (
    INDEX_DIR,
    load_checkpoint,
    load_sparse_checkpoint,
    manifest_key,
    sparse_manifest_key,
)
from vecdb.engine.follow import Follower, Worker, file_identity
from vecdb.engine.groups import query_groups
from vecdb.engine.inspection import Inspection
from vecdb.engine.mvcc import Mvcc
from vecdb.engine.optimizer import Optimizer
from vecdb.engine.planner import AnnState
from vecdb.engine.read import Reader
from vecdb.engine.settings import apply_update, collection_config, raise_missing_collection
from vecdb.engine.state import CollectionState
from vecdb.engine.strict import StrictMode
from vecdb.engine.views import FileRowStore, ReadView, RowStore
from vecdb.engine.write import Writer, build_payload_index
from vecdb.errors import Corruption, Unsupported
from vecdb.ids import PointId
from vecdb.index.base import BuildInterrupted
from vecdb.index.sparse import InvertedIndex
from vecdb.limits import DEFAULT_MAX_MAP_SIZE, NO_LIMITS, Limits
from vecdb.models.collections import (
    CollectionInfo,
    CollectionStatus,
    CreateFieldIndex,
    PayloadIndexInfo,
    UpdateCollection,
)
from vecdb.models.points import (
    CountRequest,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    FilterSelector,
    PointInsertOperations,
    PointRequest,
    PointsBatch,
    PointsList,
    PointsSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    SetPayload,
    UpdateOperation,
    UpdateVectors,
)
from vecdb.models.query import PointGroup, QueryGroupsRequest, QueryRequest, QueryResponse, SearchMatrixRequest
from vecdb.models.stats import CollectionStats
from vecdb.storage.env import Environment
from vecdb.storage.points import POINTS_DBS, IdChunk, PointsTables, decode_sparse

log = logging.getLogger(__name__)

VECTORS_DIR = "vectors"
"""Memory-mapped float32 rows of on_disk spaces (rebuilt from LMDB at every open)."""


class Collection:
    def __init__(
        self,
        name: str,
        path: Path,
        *,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        limits: Limits = NO_LIMITS,
        worker: Optional[Worker] = None,
    ) -> None:
        env = Environment(path, POINTS_DBS, max_map_size=max_map_size)
        tables = PointsTables(env.dbs)
        self.state = CollectionState(
            name=name,
            path=path,
            env=env,
            tables=tables,
            limits=limits,
            mvcc=Mvcc(env, tables, ReadView.empty([])),
        )
        self._users = 0
        self._closed = False
        self._users_changed = threading.Condition(threading.Lock())
        self.writer = Writer(self.state, self.written)
        self.reader = Reader(self.state)
        self.optimizer = Optimizer(self)
        self.worker = worker
        """This process's place among ``vecdb serve --workers`` (None: the directory's only process)."""
        self.follower: Optional[Follower] = None
        if worker is not None and worker.follower:
            env.follower = True
            self.follower = Follower(self.state)
            self.state.mvcc.follow = self.follower
        self.identity = file_identity(path)
        """The LMDB file this object opened (a restore or a re-create replaces it: a follower reopens)."""
        self._payload_build: Optional[threading.Thread] = None
        """The background build of the payload indexes an open starts (see :meth:`_build_payload_indexes`)."""
        self._stop_payload_build = threading.Event()

    @classmethod
    def create(cls, name: str, path: Path, settings: dict[str, Any], **kw: Any) -> Collection:
        coll = cls(name, path, **kw)
        coll.env.write(lambda txn: coll.tables.init(txn, settings))
        coll.state.use_settings(settings)
        coll.state.mvcc.reset(ReadView.empty(coll.spaces, coll._row_stores()))
        coll.optimizer.start()
        return coll

    @classmethod
    def open(cls, name: str, path: Path, **kw: Any) -> Collection:
        coll = cls(name, path, **kw)
        coll._load()
        if coll.follower is None:  # (a follower's graphs are the primary's checkpoints)
            coll.optimizer.start()
        return coll

    # --- what the parts share (the optimizer's host interface, the backup's and the tests') ----

    name = property(lambda self: self.state.name)
    path = property(lambda self: self.state.path)
    env = property(lambda self: self.state.env)
    tables = property(lambda self: self.state.tables)
    limits = property(lambda self: self.state.limits)
    settings = property(lambda self: self.state.settings)
    spaces = property(lambda self: self.state.spaces)
    search_device = property(lambda self: self.state.search_device)
    ann = property(lambda self: self.state.ann)
    payload_index = property(lambda self: self.state.payload_index)
    sparse = property(lambda self: self.state.sparse)
    last_write = property(lambda self: self.state.last_write)

    @property
    def view(self) -> ReadView:
        """The current read view: the state the last published commit left in memory."""
        return self.state.view

    def publish_ann(self, space_index: int, state: Optional[AnnState]) -> None:
        self.state.publish_ann(space_index, state)

    def publish_sparse(self, space_index: int, expected: InvertedIndex, index: InvertedIndex) -> bool:
        state = self.state
        with state.mvcc.write_lock:  # writers publish their index under it: compare and swap
            if state.sparse.get(space_index) is not expected:
                return False
            state.sparse = {**state.sparse, space_index: index}
            return True

    def put_meta(self, key: str, value: Any) -> None:
        """One small durable write to ``meta`` (index manifests); ``None`` deletes the key."""

        def body(txn: Any) -> None:
            if value is None:
                txn.delete(key.encode(), db=self.tables.meta)
            else:
                self.tables.put_meta_json(txn, key, value)

        self.env.write(body)

    def inspect(self) -> Inspection:
        """What tests and diagnostics may read of the internals, as values (the index states published
        to readers are immutable): one name to go through instead of the parts' attributes."""
        view = self.state.view
        with self.env.read() as txn:
            manifests = {s.index: self.tables.get_meta_json(txn, manifest_key(s.index)) for s in self.spaces}
        return Inspection(
            points=view.count,
            view_rows=view.n,
            indexes=dict(self.state.ann),
            manifests={k: v for k, v in manifests.items() if v},
            index_loaded=self.optimizer.loaded.is_set() and self.state.payload_index.is_built,
            pending=self.optimizer.pending(),
            on_disk_rows={
                s.index: isinstance(getattr(view.spaces[s.index].matrix, "base", None), np.memmap) for s in self.spaces
            },
        )

    # --- opening -------------------------------------------------------------------------------

    def _row_stores(self) -> list[RowStore]:
        """Per space: memory, or a memory-mapped file under ``<collection>/vectors/`` for on_disk spaces."""
        if self.worker is not None:  # every space in one file all workers map: its pages are in memory once
            shared = FileRowStore(self.path / VECTORS_DIR, shared=True)
            return [shared for _ in self.spaces]
        files = FileRowStore(self.path / VECTORS_DIR)
        for space in self.spaces:  # a file a --workers run left for a space now held in memory: disk space back
            if not space.on_disk:
                files.path(space.index).unlink(missing_ok=True)
        return [files if s.on_disk else RowStore() for s in self.spaces]

    @property
    def maps_checkpoints(self) -> bool:
        """Whether this process searches its saved graphs through the checkpoint file's pages (shared
        with the other workers) rather than its own copy (the optimizer copies one before growing it)."""
        return self.worker is not None

    def _load(self) -> None:
        """Rebuild the in-memory read view from LMDB: one cursor pass over points and vectors."""
        with self.env.read() as txn:
            if not self.tables.check_format(txn):
                raise Corruption(f"collection directory {self.path} holds no collection")
            self.state.use_settings(self.tables.get_meta_json(txn, "config"))
            counters = self.tables.get_meta_json(txn, "counters")
            next_iid = counters["next_iid"]
            legacy = False

            def id_chunks() -> Iterator[IdChunk]:
                nonlocal legacy
                for chunk in self.tables.id_chunks(txn):
                    legacy |= chunk.legacy
                    yield chunk

            chunks = self.tables.vector_chunks(txn, [s.size for s in self.spaces])
            view = ReadView.loaded(self.spaces, next_iid, id_chunks(), chunks, self._row_stores(), seq=counters["seq"])
            self._load_sparse(txn, view)
            self.state.mvcc.reset(view)
            manifests = {s.index: self.tables.get_meta_json(txn, manifest_key(s.index)) for s in self.spaces}
            if self.follower is not None:
                build_payload_index(self.state, self.settings.get("payload_schema") or {}, txn)
                self.follower.opened(txn)
                self.optimizer.loaded.set()  # (its saved graphs are loaded: /readyz may say so)
                log.info("following collection %s: %d points", self.name, view.count)
                return
        if legacy:  # once: later opens read versions from the ids table alone
            upgraded = self.env.write(self.tables.upgrade_ids)
            log.info("collection %s: stored the version beside %d internal ids", self.name, upgraded)
        schema = self.settings.get("payload_schema") or {}
        if schema:  # (in the background: searches without a filter on them need not wait for it)
            self.state.payload_index.hold_until_built()
            self._payload_build = threading.Thread(
                target=self._build_payload_indexes, args=(schema,), name=f"vecdb-payload-index-{self.name}", daemon=True
            )
            self._payload_build.start()
        self.optimizer.to_load = {k: v for k, v in manifests.items() if v}
        log.info(
            "opened collection %s: %d points; %d index checkpoints load in the background",
            self.name,
            view.count,
            len(self.optimizer.to_load),
        )

    REPLAY_CHUNK = 65536
    """Sparse rows replayed per index update at open (bounded memory beside the index)."""

    def _load_sparse(self, txn: Any, view: ReadView) -> None:
        """Each sparse space's inverted index: its checkpoint, then the ``sparse`` rows stored after it.

        Synchronous (before the collection serves): unlike a dense index, whose missing part an exact
        scan covers, a sparse search reads the inverted index alone.
        """
        state = self.state
        folder = self.path / INDEX_DIR
        indexes: dict[int, InvertedIndex] = {}
        loaded: dict[int, dict[str, int]] = {}
        for space in state.sparse_spaces:
            manifest = self.tables.get_meta_json(txn, sparse_manifest_key(space.index))
            index = load_sparse_checkpoint(folder, manifest, view.n)
            indexes[space.index] = index if index is not None else InvertedIndex.empty()
            loaded[space.index] = {"checkpoint": indexes[space.index].n if index is not None else -1, "replayed": 0}
        if not indexes:
            return
        first = min(i.n for i in indexes.values())
        pending: dict[int, list[tuple[int, bytes]]] = {k: [] for k in indexes}

        def flush(space: int, upto: int) -> None:
            rows = pending[space]
            decoded = [decode_sparse(raw) for _, raw in rows]
            iids = np.fromiter((iid for iid, _ in rows), dtype=np.int64, count=len(rows))
            index = indexes[space]
            indexes[space] = index.added(
                max(upto, index.n), iids, [d[0] for d in decoded], [d[1] for d in decoded], view.alive, view.seq
            )
            loaded[space]["replayed"] += len(rows)
            pending[space] = []

        for iid, space, raw in self.tables.sparse_from(txn, first):
            index = indexes.get(space)
            if index is None or iid < index.n:
                continue
            pending[space].append((iid, raw))
            if len(pending[space]) >= self.REPLAY_CHUNK:
                flush(space, iid + 1)
        for space_index in indexes:
            flush(space_index, view.n)
        state.sparse = indexes
        state.sparse_loaded = loaded
        files = {}
        for space in state.sparse_spaces:
            manifest = self.tables.get_meta_json(txn, sparse_manifest_key(space.index))
            if manifest and loaded[space.index]["checkpoint"] >= 0:
                files[space.index] = manifest["file"]
        for space in state.sparse_spaces:
            got = loaded[space.index]
            log.info(
                "collection %s sparse space %d: %s, replayed %d stored rows after it",
                self.name,
                space.index,
                f"loaded sparse checkpoint covering internal ids < {got['checkpoint']}"
                if got["checkpoint"] >= 0
                else "no sparse checkpoint",
                got["replayed"],
            )
        unchanged = {k: v for k, v in indexes.items() if k in files and not loaded[k]["replayed"]}
        self.optimizer.sparse_saved_from(unchanged, files)

    def load_checkpoints(self, manifests: dict[int, Any]) -> None:
        """Load saved graphs (the optimizer thread does this first, so that opening does not wait)."""
        next_iid = self.state.view.n
        for index, manifest in manifests.items():
            state = load_checkpoint(self.path / INDEX_DIR, manifest, next_iid, shared=self.maps_checkpoints)
            if state is not None:
                self.publish_ann(index, state)
                log.info("collection %s space %d: loaded graph of %d points", self.name, index, state.index.ntotal)

    def in_use(self) -> InUse:
        """Count one request in (``with coll.in_use():``); a closed collection answers "not found"
        (it was deleted meanwhile)."""
        return InUse(self)

    def enter(self) -> None:
        """:meth:`in_use`'s entry, as a plain call: it runs on every request."""
        with self._users_changed:
            if self._closed:
                raise raise_missing_collection(self.name)
            self._users += 1

    def leave(self) -> None:
        with self._users_changed:
            self._users -= 1
            if self._closed:  # (only a close waits for the count)
                self._users_changed.notify_all()

    def _build_payload_indexes(self, schema: dict[str, Any]) -> None:
        """An open's payload-index build, in the background: the stored payloads are decoded and indexed
        while the collection already serves (200k points: 0.45 s on the development machine, most of
        an open). Until it ends, whatever reads or changes the payload indexes waits for it (a filter,
        a write's index update; :meth:`PayloadIndex.hold_until_built`); searches, retrievals and the
        LMDB side of writes go on. A write committed meanwhile updates the indexes once it is done."""
        try:
            build_payload_index(self.state, schema, opening=True, should_stop=self._stop_payload_build.is_set)
        except BuildInterrupted:
            pass  # the collection closes
        except Exception:  # filters then scan the stored payloads: slower, still exact
            log.exception("collection %s: building the payload indexes failed", self.name)
        finally:
            self.state.payload_index.built()

    def close(self, checkpoint: bool = True) -> None:
        """Wait for the requests in progress, stop the optimizer (saving its graphs unless the
        collection is being deleted), then close LMDB. Later requests get "not found"."""
        with self._users_changed:
            self._closed = True
            self._users_changed.wait_for(lambda: self._users == 0)
        if self._payload_build is not None:
            self._stop_payload_build.set()
            self._payload_build.join()
        self.optimizer.stop()
        if checkpoint and self.follower is None:
            self.optimizer.flush()
        with self.state.mvcc.write_lock:
            self.env.close()

    def written(self) -> None:
        """Called after each committed write: wake the optimizer."""
        self.optimizer.notify()

    # --- description ---------------------------------------------------------------------

    def _status(self) -> CollectionStatus:
        if self.optimizer.error:
            return CollectionStatus.RED
        if self.optimizer.busy or self.optimizer.pending():
            return CollectionStatus.YELLOW
        return CollectionStatus.GREEN

    def _indexed(self) -> int:
        snap = self.state.view
        return sum(s.index.ntotal - s.dead_count(snap) for s in self.ann.values())

    def unindexed_bytes(self) -> int:
        """Bytes of float32 rows a search must scan exactly beside the indexes: rows written after the
        last graph that covers them, summed over indexed spaces (a follower's tail runs to the primary's
        last checkpoint). Spaces without an index count 0: everything is scanned there, in any process."""
        snap = self.view
        return sum(
            (snap.n - state.covered) * 4 * space.size
            for space in self.spaces
            if (state := self.ann.get(space.index)) is not None and state.covered < snap.n
        )

    def stats(self) -> CollectionStats:
        """The figures ``/metrics`` and ``/readyz`` report, cheap enough for every scrape."""
        return CollectionStats(
            name=self.name,
            points=self.state.view.count,
            indexed_vectors=self._indexed(),
            status=self._status().value,
            index_backlog=self.optimizer.backlog(),
            index_loaded=self.optimizer.loaded.is_set() and self.state.payload_index.is_built,
            payload_indexes=len(self.settings.get("payload_schema") or {}),
        )

    def info(self) -> CollectionInfo:
        error = self.optimizer.error
        return CollectionInfo(
            status=self._status(),
            optimizer_status={"error": error} if error else "ok",
            indexed_vectors_count=self._indexed(),
            points_count=self.state.view.count,
            segments_count=1,
            config=collection_config(self.settings),
            payload_schema=self._payload_schema(),
        )

    def _payload_schema(self) -> dict[str, PayloadIndexInfo]:
        schema = self.settings.get("payload_schema") or {}
        return {
            field: PayloadIndexInfo(
                data_type=spec["data_type"], params=spec.get("params"), points=self.payload_index.points_count(field)
            )
            for field, spec in schema.items()
        }

    def update(self, req: UpdateCollection) -> None:
        self.writer.save_settings(apply_update(self.settings, req))
        self.written()  # new hnsw_config / optimizers_config: the optimizer may rebuild

    # --- requests, each handed to the part that owns it -----------------------------------------

    def _strict(self) -> Optional[StrictMode]:
        """The collection's strict mode when enabled (``engine/strict.py``), else None."""
        config = self.settings.get("strict_mode_config")
        if not config or not config.get("enabled"):
            return None
        return StrictMode(config, self.state.payload_index.fields)

    def _check_write(self, strict: StrictMode, op: Any) -> None:
        """One write operation against strict mode: its size and its filters."""
        if isinstance(op, (PointsList, PointsBatch)):
            strict.batch(len(op.points) if isinstance(op, PointsList) else len(op.batch.ids))
            strict.filter(op.update_filter, read=False)
            most = strict.config.get("max_points_count")
            if most is not None:
                ids = [p.id for p in op.points] if isinstance(op, PointsList) else op.batch.ids
                strict.points_after(self.view.count + self.writer.new_ids(ids))
        elif isinstance(op, UpdateVectors):
            strict.batch(len(op.points), "update limit")
            strict.filter(op.update_filter, read=False)
        elif isinstance(op, FilterSelector):
            strict.filter(op.filter, read=False)
        elif isinstance(op, (SetPayload, DeletePayload, DeleteVectors)):
            strict.filter(op.filter, read=False)

    def _checked(self, op: Any) -> None:
        _no_shard_key(op)
        strict = self._strict()
        if strict is not None:
            self._check_write(strict, op)

    def upsert(self, op: PointInsertOperations) -> int:
        self._checked(op)
        return self.writer.upsert(op)

    def delete(self, selector: PointsSelector) -> int:
        self._checked(selector)
        return self.writer.delete(selector)

    def set_payload(self, req: SetPayload, overwrite: bool = False) -> int:
        self._checked(req)
        return self.writer.set_payload(req, overwrite)

    def delete_payload(self, req: DeletePayload) -> int:
        self._checked(req)
        return self.writer.delete_payload(req)

    def clear_payload(self, selector: PointsSelector) -> int:
        self._checked(selector)
        return self.writer.clear_payload(selector)

    def update_vectors(self, req: UpdateVectors) -> int:
        self._checked(req)
        return self.writer.update_vectors(req)

    def delete_vectors(self, req: DeleteVectors) -> int:
        self._checked(req)
        return self.writer.delete_vectors(req)

    def batch(self, operations: list[UpdateOperation]) -> int:
        for operation in operations:
            _no_shard_key(next(iter(operation.__dict__.values())))
        strict = self._strict()
        if strict is not None:
            for operation in operations:
                self._check_write(strict, next(iter(operation.__dict__.values())))
        return self.writer.batch(operations)

    def create_payload_index(self, req: CreateFieldIndex) -> int:
        return self.writer.create_payload_index(req)

    def delete_payload_index(self, field_name: str) -> int:
        return self.writer.delete_payload_index(field_name)

    def query(self, req: QueryRequest) -> QueryResponse:
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.query(req)
        return self.reader.query(req)

    def query_batch(self, reqs: list[QueryRequest]) -> list[QueryResponse]:
        for req in reqs:
            _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            for req in reqs:
                strict.query(req)
        return self.reader.query_batch(reqs)

    def query_groups(self, req: QueryGroupsRequest) -> list[PointGroup]:
        """A grouped query (``engine/groups.py``); strict mode limits ``limit x group_size``."""
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.query(req, limit=req.limit * req.group_size)
        return query_groups(self.reader.query, req, self.view.count)

    def scroll(self, req: ScrollRequest) -> ScrollResult:
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.limit(req.limit or 10)
            strict.filter(req.filter, read=True)
        return self.reader.scroll(req)

    def count(self, req: CountRequest) -> int:
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.filter(req.filter, read=True)
        return self.reader.count(req)

    def facet(self, req: FacetRequest) -> FacetResponse:
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.limit(req.limit)
            strict.filter(req.filter, read=True)
        return self.reader.facet(req)

    def distance_matrix(self, req: SearchMatrixRequest) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
        _no_shard_key(req)
        strict = self._strict()
        if strict is not None:
            strict.filter(req.filter, read=True)
        return self.reader.distance_matrix(req)

    def retrieve(self, req: PointRequest) -> list[Record]:
        _no_shard_key(req)
        return self.reader.retrieve(req)


def _no_shard_key(req: Any) -> None:
    """Refuse a shard key: a collection is one shard (``sharding_method: custom`` is refused at creation)."""
    if getattr(req, "shard_key", None) is not None:
        raise Unsupported("shard_key: custom sharding is not supported yet (one shard per collection)")


class InUse:
    """``with coll.in_use():`` a request counted in, without a generator's cost (every request takes one)."""

    __slots__ = ("coll",)

    def __init__(self, coll: Collection) -> None:
        self.coll = coll

    def __enter__(self) -> Collection:
        self.coll.enter()
        return self.coll

    def __exit__(self, *exc: object) -> None:
        self.coll.leave()
