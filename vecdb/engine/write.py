"""The write path: validate everything, apply it in one LMDB transaction, then publish a snapshot.

Nothing touches storage until the whole request has been validated. Then one
transaction applies it; if anything inside fails (a missing point, a full
disk) the transaction aborts and nothing is written. Only after the durable
commit does the in-memory snapshot change, so a search never sees a write that
could still be lost, and never half of one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import lmdb
import numpy as np
import orjson

from vecdb.engine.point_view import StoredPointView, stored_has_vector
from vecdb.engine.settings import VectorSpace, space_by_name
from vecdb.engine.views import Snapshot, prepare_rows, split_point_vectors
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.filtering.payload_ops import delete_path, set_at_key
from vecdb.ids import PointId, id_to_key
from vecdb.models.filters import Filter
from vecdb.models.points import (
    Batch,
    DeletePayload,
    DeleteVectors,
    FilterSelector,
    PointIdsList,
    PointInsertOperations,
    PointsBatch,
    PointsSelector,
    SetPayload,
    UpdateVectors,
)
from vecdb.storage.points import PointsTables, StoredPoint

if TYPE_CHECKING:
    from vecdb.storage.env import Environment

T = TypeVar("T")
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


def encode_payload(payload: Optional[dict[str, Any]], field: str) -> bytes:
    if payload is None:
        return b"{}"
    if not isinstance(payload, dict):
        raise InvalidInput(f"{field}: payload must be a JSON object, got {type(payload).__name__}")
    try:
        return orjson.dumps(payload, option=_JSON_OPTS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"{field}: payload is not valid JSON: {exc}") from None


KEPT_SNAPSHOTS = 4
"""Snapshots kept after they are replaced, for reads that opened their LMDB transaction just before."""


class PreparedPoints:
    """A validated upsert: canonical ids, encoded payloads and float32 rows per vector space."""

    def __init__(self, ids: list[PointId], payloads: list[bytes], rows: dict[int, tuple[list[int], np.ndarray]]):
        self.ids = ids
        self.payloads = payloads
        self.rows = rows

    @staticmethod
    def from_request(op: PointInsertOperations, spaces: list[VectorSpace]) -> PreparedPoints:
        if isinstance(op, PointsBatch):
            return PreparedPoints._from_batch(op.batch, spaces)
        ids = [p.id for p in op.points]
        payloads = [encode_payload(p.payload, f"points[{i}].payload") for i, p in enumerate(op.points)]
        grouped = split_point_vectors([p.vector for p in op.points], spaces, "points")
        return PreparedPoints(ids, payloads, _prepare_groups(grouped, spaces, "points.vector"))

    @staticmethod
    def _from_batch(batch: Batch, spaces: list[VectorSpace]) -> PreparedPoints:
        n = len(batch.ids)
        payloads_in = batch.payloads if batch.payloads is not None else [None] * n
        if len(payloads_in) != n:
            raise InvalidInput(f"batch.payloads: expected {n} payloads (one per id), got {len(payloads_in)}")
        payloads = [encode_payload(p, f"batch.payloads[{i}]") for i, p in enumerate(payloads_in)]
        if isinstance(batch.vectors, np.ndarray):  # the embedded client's array fast path
            if len(batch.vectors) != n:
                raise InvalidInput(f"batch.vectors: expected {n} vectors (one per id), got {len(batch.vectors)}")
            space = space_by_name(spaces, None)
            rows = {space.index: (list(range(n)), prepare_rows(batch.vectors, space, "batch.vectors"))}
            return PreparedPoints(list(batch.ids), payloads, rows)
        if isinstance(batch.vectors, dict):
            per_point: list[dict[str, Any]] = [{} for _ in range(n)]
            for name, column in batch.vectors.items():
                if len(column) != n:
                    raise InvalidInput(f"batch.vectors.{name}: expected {n} vectors (one per id), got {len(column)}")
                for i, row in enumerate(column):
                    per_point[i][name] = row
            grouped = split_point_vectors(per_point, spaces, "batch.vectors")
        else:
            if len(batch.vectors) != n:
                raise InvalidInput(f"batch.vectors: expected {n} vectors (one per id), got {len(batch.vectors)}")
            grouped = split_point_vectors(batch.vectors, spaces, "batch.vectors")
        return PreparedPoints(list(batch.ids), payloads, _prepare_groups(grouped, spaces, "batch.vectors"))


def _prepare_groups(
    grouped: dict[int, tuple[list[int], list[Any]]], spaces: list[VectorSpace], field: str
) -> dict[int, tuple[list[int], np.ndarray]]:
    out = {}
    for space in spaces:
        positions, raw = grouped[space.index]
        if positions:
            label = f"{field}.{space.name}" if space.name else field
            out[space.index] = (positions, prepare_rows(raw, space, label))
    return out


class WriteTxn:
    """One write transaction plus the memory changes it implies (applied only after commit)."""

    def __init__(self, txn: lmdb.Transaction, tables: PointsTables, spaces: list[VectorSpace]):
        self.txn = txn
        self.tables = tables
        self.spaces = spaces
        counters = tables.get_meta_json(txn, "counters")
        self.next_iid: int = counters["next_iid"]
        self.seq: int = counters["seq"] + 1
        self.born: list[int] = []
        self.born_keys: list[bytes] = []
        self.died: list[int] = []
        self.touched: list[int] = []
        """Internal ids whose payload alone was rewritten (a new version, same internal id)."""
        self.payload_writes: list[tuple[int, Any]] = []
        """(iid, payload JSON bytes, dict, or None when the iid died), in order, for payload indexes."""
        self.rows: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {s.index: [] for s in spaces}

    def lookup(self, point_id: PointId) -> Optional[StoredPoint]:
        return self.lookup_key(id_to_key(point_id))

    def require(self, point_id: PointId) -> StoredPoint:
        point = self.lookup(point_id)
        if point is None:
            raise NotFound(f"No point with id {point_id} found")
        return point

    def lookup_key(self, key: bytes) -> Optional[StoredPoint]:
        iid = self.tables.iid_of(self.txn, key)
        return None if iid is None else self.tables.get(self.txn, iid)

    def insert(self, point_id: PointId, payload_json: bytes, vectors: dict[int, np.ndarray]) -> None:
        one_row = np.zeros(1, dtype=np.int64)
        self.insert_many(
            [id_to_key(point_id)], [payload_json], {s: (one_row, row[None, :]) for s, row in vectors.items()}
        )

    def insert_many(
        self, keys: list[bytes], payloads: list[bytes], vectors: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Store new points (whose keys are not in the ids table) under fresh internal ids.

        ``vectors``: space -> (ascending positions into ``keys``, float32 rows).
        """
        first = self.next_iid
        self.next_iid += len(keys)
        self.tables.put_new(self.txn, first, self.seq, keys, payloads, vectors)
        self.payload_writes.extend(zip(range(first, self.next_iid), payloads))
        for space, (positions, rows) in vectors.items():
            self.rows[space].append((positions + first, rows))
        self.born.extend(range(first, self.next_iid))
        self.born_keys.extend(keys)

    def remove(self, point: StoredPoint) -> None:
        self.tables.delete(self.txn, point.iid, point.id, len(self.spaces))
        self.died.append(point.iid)
        self.payload_writes.append((point.iid, None))

    def rewrite_payload(self, point: StoredPoint, payload: dict[str, Any]) -> None:
        """Payload-only change: same internal id (vectors and indexes are untouched), new version."""
        self.tables.put(self.txn, point.iid, self.seq, id_to_key(point.id), encode_payload(payload, "payload"))
        self.payload_writes.append((point.iid, payload))
        self.touched.append(point.iid)

    def vectors_of(self, point: StoredPoint) -> dict[int, np.ndarray]:
        out = {}
        for space in self.spaces:
            row = self.tables.get_vector(self.txn, point.iid, space.index)
            if row is not None:
                out[space.index] = row.copy()
        return out

    def select(self, selector: PointsSelector | list[PointId] | None, flt: Optional[Filter]) -> list[StoredPoint]:
        """Points named by ids (missing ones skipped) or matching a filter, as of this transaction."""
        if isinstance(selector, FilterSelector):
            flt, selector = selector.filter, None
        if isinstance(selector, PointIdsList):
            selector = selector.points
        if selector is not None:
            found = (self.lookup(pid) for pid in dict.fromkeys(selector))
            return [p for p in found if p is not None]
        predicate = compile_filter(flt)
        if predicate is None:
            raise InvalidInput("either points or filter must be given")
        view = StoredPointView(lambda iid, name: self._has_vector(iid, name))
        return [p for p in self.tables.iter_points(self.txn) if predicate(view.bind(p))]

    def _has_vector(self, iid: int, name: str) -> bool:
        return stored_has_vector(self.tables, self.txn, self.spaces, iid, name)

    def finish(self) -> None:
        self.tables.put_meta_json(self.txn, "counters", {"next_iid": self.next_iid, "seq": self.seq})


class WritePath:
    """Mixin of :class:`vecdb.engine.collection.Collection` holding every mutation."""

    env: Environment
    tables: PointsTables
    spaces: list[VectorSpace]
    snapshot: Snapshot
    payload_index: PayloadIndex
    _write_lock: threading.Lock
    publishing: int
    recent_snapshots: dict[int, Snapshot]

    def _write(self, body: Callable[[WriteTxn], T]) -> tuple[int, T]:
        """Run ``body`` in one durable transaction, then publish the new snapshot."""

        def run(txn: lmdb.Transaction) -> tuple[WriteTxn, T]:
            w = WriteTxn(txn, self.tables, self.spaces)
            result = body(w)
            w.finish()
            return w, result

        with self._write_lock:
            w, result = self.env.write(run)
            rows = {
                space: chunks[0]
                if len(chunks) == 1
                else (np.concatenate([c[0] for c in chunks]), np.vstack([c[1] for c in chunks]))
                for space, chunks in w.rows.items()
                if chunks
            }
            with self.publishing_change():
                if self.payload_index.fields and w.payload_writes:
                    self.payload_index.update_many(
                        [iid for iid, _ in w.payload_writes],
                        [orjson.loads(p) if isinstance(p, bytes) else p for _, p in w.payload_writes],
                    )
                snap = self.snapshot.apply(
                    w.next_iid,
                    np.asarray(w.born, dtype=np.int64),
                    np.asarray(w.died, dtype=np.int64),
                    rows,
                    born_keys=w.born_keys,
                    version=w.seq,
                    touched=w.touched,
                )
                kept = {seq: old for seq, old in self.recent_snapshots.items() if seq > w.seq - KEPT_SNAPSHOTS}
                self.recent_snapshots = {**kept, w.seq: snap}
                self.snapshot = snap
        self.written()
        return w.seq, result

    @contextlib.contextmanager
    def publishing_change(self) -> Iterator[None]:
        """Mark the payload indexes and the snapshot as changing (``publishing`` odd) for the block:
        a read that used the payload indexes meanwhile starts again (see ``ReadPath.consistent_read``)."""
        self.publishing += 1
        try:
            yield
        finally:
            self.publishing += 1

    def written(self) -> None:
        """Hook run after each committed write (the collection wakes its optimizer)."""

    # --- operations (each runs inside a WriteTxn, so points/batch can chain them) ----------

    def _upsert(self, w: WriteTxn, op: PointInsertOperations, prepared: PreparedPoints) -> None:
        mode = op.update_mode or "upsert"
        if mode not in ("upsert", "insert_only", "update_only"):
            raise InvalidInput(f"update_mode: expected upsert, insert_only or update_only, got {mode!r}")
        guard = compile_filter(op.update_filter)
        last = {pid: pos for pos, pid in enumerate(prepared.ids)}  # a repeated id: the last one wins
        view = StoredPointView(lambda iid, name: w._has_vector(iid, name))
        keys: list[bytes] = []
        chosen: list[int] = []
        for pid, pos in last.items():
            key = id_to_key(pid)
            old = w.lookup_key(key)
            if old is not None:
                if mode == "insert_only" or (guard is not None and not guard(view.bind(old))):
                    continue
                w.remove(old)
            elif mode == "update_only":
                continue
            keys.append(key)
            chosen.append(pos)
        if not chosen:
            return
        picked = np.asarray(chosen, dtype=np.int64)
        vectors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for space, (positions, matrix) in prepared.rows.items():
            row_of = np.full(len(prepared.ids), -1, dtype=np.int64)
            row_of[np.asarray(positions, dtype=np.int64)] = np.arange(len(positions))
            rows = row_of[picked]
            has = np.flatnonzero(rows >= 0)
            if len(has):
                vectors[space] = (has, matrix[rows[has]])
        w.insert_many(keys, [prepared.payloads[pos] for pos in chosen], vectors)

    def _delete(self, w: WriteTxn, selector: PointsSelector) -> None:
        for point in w.select(selector, None):
            w.remove(point)

    def _set_payload(self, w: WriteTxn, req: SetPayload, overwrite: bool) -> None:
        for point in self._payload_targets(w, req.points, req.filter):
            if overwrite:
                new = (
                    set_at_key({}, None, req.payload)
                    if req.key is None
                    else set_at_key(point.payload, req.key, req.payload)
                )
            else:
                new = set_at_key(point.payload, req.key, req.payload)
            w.rewrite_payload(point, new)

    def _delete_payload(self, w: WriteTxn, req: DeletePayload) -> None:
        for point in self._payload_targets(w, req.points, req.filter):
            payload = point.payload
            for key in req.keys:
                delete_path(payload, key)
            w.rewrite_payload(point, payload)

    def _clear_payload(self, w: WriteTxn, selector: PointsSelector) -> None:
        ids = selector.points if isinstance(selector, PointIdsList) else None
        flt = selector.filter if isinstance(selector, FilterSelector) else None
        for point in self._payload_targets(w, ids, flt):
            w.rewrite_payload(point, {})

    def _payload_targets(
        self, w: WriteTxn, ids: Optional[Sequence[PointId]], flt: Optional[Filter]
    ) -> list[StoredPoint]:
        if ids is not None and flt is not None:
            raise InvalidInput("give either points or filter, not both")
        if ids is not None:
            return [w.require(pid) for pid in dict.fromkeys(ids)]
        return w.select(None, flt)

    def _update_vectors(self, w: WriteTxn, req: UpdateVectors) -> None:
        if req.update_filter is not None:
            raise Unsupported("update_filter on vector updates is not supported yet")
        grouped = split_point_vectors([p.vector for p in req.points], self.spaces, "points")
        prepared = _prepare_groups(grouped, self.spaces, "points.vector")
        new_vectors: dict[int, dict[int, np.ndarray]] = {}
        for space, (positions, matrix) in prepared.items():
            for row_no, pos in enumerate(positions):
                new_vectors.setdefault(pos, {})[space] = matrix[row_no]
        for pos, point_vectors in enumerate(req.points):
            old = w.require(point_vectors.id)
            vectors = {**w.vectors_of(old), **new_vectors.get(pos, {})}
            w.remove(old)
            w.insert(old.id, old.payload_json, vectors)

    def _delete_vectors(self, w: WriteTxn, req: DeleteVectors) -> None:
        names = set(req.vector)
        drop = {s.index for s in self.spaces if s.name in names}
        unknown = names - {s.name for s in self.spaces}
        if unknown:
            raise InvalidInput(f"vector: Not existing vector name error: {sorted(unknown)[0]}")
        for point in self._payload_targets(w, req.points, req.filter):
            vectors = {k: v for k, v in w.vectors_of(point).items() if k not in drop}
            w.remove(point)
            w.insert(point.id, point.payload_json, vectors)
