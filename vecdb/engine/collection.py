"""One collection: its LMDB environment, its settings and its in-memory snapshot.

The write path and the read path live in their own modules (mixins); this one
opens, creates and describes a collection, and exposes the request-level write
operations, each as one durable transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from vecdb.engine.documents import resolve_insert, resolve_update_vectors
from vecdb.engine.optimizer import INDEX_DIR, Optimizer, load_checkpoint, manifest_key
from vecdb.engine.planner import AnnState
from vecdb.engine.read import ReadPath
from vecdb.engine.settings import apply_update, collection_config, index_config, raise_missing_collection, vector_spaces
from vecdb.engine.views import FileRowStore, RowStore, Snapshot
from vecdb.engine.write import PreparedPoints, WritePath, WriteTxn, encode_payload
from vecdb.errors import Corruption, InvalidInput
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.index.device import gpu_available
from vecdb.limits import NO_LIMITS, Limits
from vecdb.models.collections import (
    CollectionInfo,
    CollectionStatus,
    CreateFieldIndex,
    PayloadIndexInfo,
    PayloadSchemaType,
    UpdateCollection,
)
from vecdb.models.points import (
    ClearPayloadOperation,
    DeleteOperation,
    DeletePayload,
    DeletePayloadOperation,
    DeleteVectors,
    DeleteVectorsOperation,
    OverwritePayloadOperation,
    PointInsertOperations,
    PointsSelector,
    SetPayload,
    SetPayloadOperation,
    UpdateOperation,
    UpdateVectors,
    UpdateVectorsOperation,
    UpsertOperation,
)
from vecdb.models.stats import CollectionStats  # noqa: E402
from vecdb.storage.env import DEFAULT_MAX_MAP_SIZE, Environment
from vecdb.storage.points import POINTS_DBS, IdChunk, PointsTables

log = logging.getLogger(__name__)


VECTORS_DIR = "vectors"
"""Memory-mapped float32 rows of on_disk spaces (rebuilt from LMDB at every open)."""


class Collection(WritePath, ReadPath):
    def __init__(
        self,
        name: str,
        path: Path,
        *,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        limits: Limits = NO_LIMITS,
    ) -> None:
        self.name = name
        self.path = path
        self.limits = limits
        self.env = Environment(path, POINTS_DBS, max_map_size=max_map_size)
        self.tables = PointsTables(self.env.dbs)
        self._write_lock = threading.Lock()
        self.publishing = 0
        """Odd while a write updates the payload indexes and publishes its snapshot (see ``ReadPath``)."""
        self.recent_snapshots: dict[int, Snapshot] = {}
        """The last few snapshots by write sequence number, for reads whose transaction is a write behind."""
        self._users = 0
        self._closed = False
        self._users_changed = threading.Condition()
        self.settings: dict[str, Any] = {}
        self.spaces = []
        self.snapshot = Snapshot.empty([])
        self.ann: dict[int, AnnState] = {}
        """Published HNSW graphs by vector-space index; replaced whole, never changed in place."""
        self.last_write = 0.0
        self.optimizer = Optimizer(self)
        self.payload_index = PayloadIndex({})

    @classmethod
    def create(cls, name: str, path: Path, settings: dict[str, Any], **kw: Any) -> Collection:
        coll = cls(name, path, **kw)
        coll.env.write(lambda txn: coll.tables.init(txn, settings))
        coll._use_settings(settings)
        coll.snapshot = Snapshot.empty(coll.spaces, coll._row_stores())
        coll.optimizer.start()
        return coll

    @classmethod
    def open(cls, name: str, path: Path, **kw: Any) -> Collection:
        coll = cls(name, path, **kw)
        coll._load()
        coll.optimizer.start()
        return coll

    def publish_ann(self, space_index: int, state: Optional[AnnState]) -> None:
        ann = {k: v for k, v in self.ann.items() if k != space_index}
        if state is not None:
            ann[space_index] = state
        self.ann = ann

    def put_meta(self, key: str, value: Any) -> None:
        """One small durable write to ``meta`` (index manifests); ``None`` deletes the key."""

        def body(txn: Any) -> None:
            if value is None:
                txn.delete(key.encode(), db=self.tables.meta)
            else:
                self.tables.put_meta_json(txn, key, value)

        self.env.write(body)

    def _use_settings(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.spaces = vector_spaces(settings)
        self.search_device = _index_device(self.name, index_config(settings))

    def _row_stores(self) -> list[RowStore]:
        """Per space: memory, or a memory-mapped file under ``<collection>/vectors/`` for on_disk spaces."""
        files = FileRowStore(self.path / VECTORS_DIR)
        return [files if s.on_disk else RowStore() for s in self.spaces]

    def _load(self) -> None:
        """Rebuild the in-memory snapshot from LMDB: one cursor pass over points and vectors."""
        with self.env.read() as txn:
            if not self.tables.check_format(txn):
                raise Corruption(f"collection directory {self.path} holds no collection")
            self._use_settings(self.tables.get_meta_json(txn, "config"))
            counters = self.tables.get_meta_json(txn, "counters")
            next_iid = counters["next_iid"]
            legacy = False

            def id_chunks() -> Iterator[IdChunk]:
                nonlocal legacy
                for chunk in self.tables.id_chunks(txn):
                    legacy |= chunk.legacy
                    yield chunk

            chunks = self.tables.vector_chunks(txn, [s.size for s in self.spaces])
            self.snapshot = Snapshot.loaded(
                self.spaces, next_iid, id_chunks(), chunks, self._row_stores(), seq=counters["seq"]
            )
            manifests = {s.index: self.tables.get_meta_json(txn, manifest_key(s.index)) for s in self.spaces}
        if legacy:  # once: later opens read versions from the ids table alone
            upgraded = self.env.write(self.tables.upgrade_ids)
            log.info("collection %s: stored the version beside %d internal ids", self.name, upgraded)
        self._build_payload_index(self.settings.get("payload_schema") or {})
        self.optimizer.to_load = {k: v for k, v in manifests.items() if v}
        log.info(
            "opened collection %s: %d points; %d index checkpoints load in the background",
            self.name,
            self.snapshot.count,
            len(self.optimizer.to_load),
        )

    def load_checkpoints(self, manifests: dict[int, Any]) -> None:
        """Load saved graphs (the optimizer thread does this first, so that opening does not wait)."""
        next_iid = self.snapshot.n
        for index, manifest in manifests.items():
            state = load_checkpoint(self.path / INDEX_DIR, manifest, next_iid)
            if state is not None:
                self.publish_ann(index, state)
                log.info("collection %s space %d: loaded graph of %d points", self.name, index, state.index.ntotal)

    @contextlib.contextmanager
    def in_use(self) -> Iterator[Collection]:
        """Count one request in; a closed collection answers "not found" (it was deleted meanwhile)."""
        with self._users_changed:
            if self._closed:
                raise raise_missing_collection(self.name)
            self._users += 1
        try:
            yield self
        finally:
            with self._users_changed:
                self._users -= 1
                self._users_changed.notify_all()

    def close(self, checkpoint: bool = True) -> None:
        """Wait for the requests in progress, stop the optimizer (saving its graphs unless the
        collection is being deleted), then close LMDB. Later requests get "not found"."""
        with self._users_changed:
            self._closed = True
            self._users_changed.wait_for(lambda: self._users == 0)
        self.optimizer.stop()
        if checkpoint:
            self.optimizer.flush()
        with self._write_lock:
            self.env.close()

    def written(self) -> None:
        """Called after each committed write: wake the optimizer."""
        self.last_write = time.monotonic()
        self.optimizer.notify()

    # --- description ---------------------------------------------------------------------

    def _status(self) -> CollectionStatus:
        if self.optimizer.error:
            return CollectionStatus.RED
        if self.optimizer.busy or self.optimizer.pending():
            return CollectionStatus.YELLOW
        return CollectionStatus.GREEN

    def _indexed(self) -> int:
        snap = self.snapshot
        return sum(s.index.ntotal - s.dead_count(snap) for s in self.ann.values())

    def stats(self) -> CollectionStats:
        """The figures ``/metrics`` and ``/readyz`` report, cheap enough for every scrape."""
        return CollectionStats(
            name=self.name,
            points=self.snapshot.count,
            indexed_vectors=self._indexed(),
            status=self._status().value,
            index_backlog=self.optimizer.backlog(),
            index_loaded=self.optimizer.loaded.is_set(),
            payload_indexes=len(self.settings.get("payload_schema") or {}),
        )

    def info(self) -> CollectionInfo:
        error = self.optimizer.error
        return CollectionInfo(
            status=self._status(),
            optimizer_status={"error": error} if error else "ok",
            indexed_vectors_count=self._indexed(),
            points_count=self.snapshot.count,
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

    def _build_payload_index(self, schema: dict[str, Any]) -> None:
        """Index ``schema``'s fields from one pass over the stored payloads."""
        if not schema:
            return
        t0 = time.perf_counter()
        with self.env.read() as txn:
            items = [(p.iid, p.payload) for p in self.tables.iter_points(txn)]
        for field, spec in schema.items():
            self.payload_index.add_field(field, spec["data_type"], items)
        log.info(
            "collection %s: payload indexes on %s built from %d points in %.2f s",
            self.name,
            sorted(schema),
            len(items),
            time.perf_counter() - t0,
        )

    def update(self, req: UpdateCollection) -> None:
        self._save_settings(apply_update(self.settings, req))
        self.written()  # new hnsw_config / optimizers_config: the optimizer may rebuild

    def _save_settings(self, settings: dict[str, Any]) -> None:
        with self._write_lock:
            self._save_settings_locked(settings)

    def _save_settings_locked(self, settings: dict[str, Any]) -> None:
        self.env.write(lambda txn: self.tables.put_meta_json(txn, "config", settings))
        self._use_settings(settings)

    def create_payload_index(self, req: CreateFieldIndex) -> int:
        schema = req.field_schema
        if schema is None:
            raise InvalidInput('field_schema: a payload index needs a type, e.g. "keyword"')
        if isinstance(schema, dict):
            try:
                data_type = PayloadSchemaType(schema.get("type")).value
            except ValueError:
                raise InvalidInput(f"field_schema.type: unknown index type {schema.get('type')!r}") from None
            spec = {"data_type": data_type, "params": schema}
        else:
            spec = {"data_type": schema.value}
        settings = dict(self.settings)
        settings["payload_schema"] = {**(settings.get("payload_schema") or {}), req.field_name: spec}
        with self._write_lock, self.publishing_change():  # no write lands between the scan and the schema change
            if req.field_name in self.payload_index.fields:
                self.payload_index.drop_field(req.field_name)
            self._build_payload_index({req.field_name: spec})
            self._save_settings_locked(settings)
        return self._bump_seq()

    def delete_payload_index(self, field_name: str) -> int:
        settings = dict(self.settings)
        settings["payload_schema"] = {
            k: v for k, v in (settings.get("payload_schema") or {}).items() if k != field_name
        }
        with self._write_lock, self.publishing_change():
            self._save_settings_locked(settings)
            if field_name in self.payload_index.fields:
                self.payload_index.drop_field(field_name)
        return self._bump_seq()

    def _bump_seq(self) -> int:
        return self._write(lambda w: None)[0]

    # --- writes (one durable transaction each) --------------------------------------------

    def upsert(self, op: PointInsertOperations) -> int:
        prepared = self._prepared(op, "points")
        return self._write(lambda w: self._upsert(w, op, prepared))[0]

    def _prepared(self, op: PointInsertOperations, field: str) -> PreparedPoints:
        op = resolve_insert(op, self.settings.get("embedding"), field)
        prepared = PreparedPoints.from_request(op, self.spaces)
        self.limits.check_points(len(prepared.ids), field)
        self.limits.check_payloads(prepared.payloads, f"{field}.payload")
        return prepared

    def delete(self, selector: PointsSelector) -> int:
        return self._write(lambda w: self._delete(w, selector))[0]

    def set_payload(self, req: SetPayload, overwrite: bool = False) -> int:
        self.limits.check_payloads([encode_payload(req.payload, "payload")], "payload")
        return self._write(lambda w: self._set_payload(w, req, overwrite))[0]

    def delete_payload(self, req: DeletePayload) -> int:
        return self._write(lambda w: self._delete_payload(w, req))[0]

    def clear_payload(self, selector: PointsSelector) -> int:
        return self._write(lambda w: self._clear_payload(w, selector))[0]

    def update_vectors(self, req: UpdateVectors) -> int:
        req = resolve_update_vectors(req, self.settings.get("embedding"), "points")
        return self._write(lambda w: self._update_vectors(w, req))[0]

    def delete_vectors(self, req: DeleteVectors) -> int:
        return self._write(lambda w: self._delete_vectors(w, req))[0]

    def batch(self, operations: list[UpdateOperation]) -> int:
        """All operations of ``points/batch`` in one transaction: all of them apply, or none."""
        embedding = self.settings.get("embedding")
        operations = [  # texts embedded before the transaction, as upserts are prepared before it
            UpdateVectorsOperation(
                update_vectors=resolve_update_vectors(
                    op.update_vectors, embedding, f"operations[{i}].update_vectors.points"
                )
            )
            if isinstance(op, UpdateVectorsOperation)
            else op
            for i, op in enumerate(operations)
        ]
        prepared = [
            self._prepared(op.upsert, f"operations[{i}].upsert") if isinstance(op, UpsertOperation) else None
            for i, op in enumerate(operations)
        ]
        self.limits.check_points(sum(len(p.ids) for p in prepared if p is not None), "operations")

        def body(w: WriteTxn) -> None:
            for op, prep in zip(operations, prepared):
                self._apply_operation(w, op, prep)

        return self._write(body)[0]

    def _apply_operation(self, w: WriteTxn, op: UpdateOperation, prepared: PreparedPoints | None) -> None:
        if isinstance(op, UpsertOperation):
            assert prepared is not None
            self._upsert(w, op.upsert, prepared)
        elif isinstance(op, DeleteOperation):
            self._delete(w, op.delete)
        elif isinstance(op, SetPayloadOperation):
            self._set_payload(w, op.set_payload, False)
        elif isinstance(op, OverwritePayloadOperation):
            self._set_payload(w, op.overwrite_payload, True)
        elif isinstance(op, DeletePayloadOperation):
            self._delete_payload(w, op.delete_payload)
        elif isinstance(op, ClearPayloadOperation):
            self._clear_payload(w, op.clear_payload)
        elif isinstance(op, UpdateVectorsOperation):
            self._update_vectors(w, op.update_vectors)
        elif isinstance(op, DeleteVectorsOperation):
            self._delete_vectors(w, op.delete_vectors)
        else:  # pragma: no cover - the model union is closed
            raise InvalidInput(f"unknown operation {type(op).__name__}")


def _index_device(name: str, cfg: dict[str, Any]) -> str:
    """Where IVF-PQ trains and searches: the GPU when asked for (or ``auto``) and CuPy sees one.

    A collection created with ``device: cuda`` and opened where no GPU is
    usable still opens, on the CPU, with a warning: its data must stay reachable.
    """
    if cfg.get("type") != "ivf_pq" or cfg.get("device", "auto") == "cpu":
        return "cpu"
    if gpu_available():
        return "cuda"
    if cfg.get("device") == "cuda":
        log.warning("collection %s asks for index device cuda, but no GPU is usable here: using the CPU", name)
    return "cpu"
