"""The write path: validate everything, apply it in one LMDB transaction, then publish a read view.

Nothing touches storage until the whole request has been validated. Then one
transaction applies it; if anything inside fails (a missing point, a full
disk) the transaction aborts and nothing is written. Only after the durable
commit does the in-memory read view change, so a search never sees a write that
could still be lost, and never half of one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional, Protocol, TypeVar

import lmdb
import numpy as np
import orjson

from vecdb.engine.documents import resolve_insert, resolve_update_vectors
from vecdb.engine.point_view import StoredPointView
from vecdb.engine.prepare import PreparedPoints, encode_payload, prepare_groups
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView, split_point_vectors
from vecdb.engine.write_txn import WriteTxn
from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.payload_ops import payload_deleter, payload_setter
from vecdb.ids import PointId, id_to_key
from vecdb.index.base import BuildInterrupted
from vecdb.models.collections import CreateFieldIndex, PayloadSchemaType
from vecdb.models.filters import Filter
from vecdb.models.points import (
    ClearPayloadOperation,
    DeleteOperation,
    DeletePayload,
    DeletePayloadOperation,
    DeleteVectors,
    DeleteVectorsOperation,
    FilterSelector,
    OverwritePayloadOperation,
    PointIdsList,
    PointInsertOperations,
    PointsSelector,
    SetPayload,
    SetPayloadOperation,
    UpdateOperation,
    UpdateVectors,
    UpdateVectorsOperation,
    UpsertOperation,
)
from vecdb.storage.points import StoredPoint

log = logging.getLogger(__name__)
T = TypeVar("T")


INDEX_PARAMS: dict[str, set[str]] = {
    "keyword": {"type", "is_tenant", "on_disk", "enable_hnsw"},
    "integer": {"type", "lookup", "range", "is_principal", "on_disk", "enable_hnsw"},
    "float": {"type", "is_principal", "on_disk", "enable_hnsw"},
    "datetime": {"type", "is_principal", "on_disk", "enable_hnsw"},
    "geo": {"type", "on_disk", "enable_hnsw"},
    "bool": {"type", "on_disk", "enable_hnsw"},
    "uuid": {"type", "is_tenant", "on_disk", "enable_hnsw"},
}
"""Qdrant's payload index parameters per type (a ``text`` index checks its own); others are refused.
``lookup: false`` (integer) turns off match and facet, ``range: false`` ranges and order_by; the
placement hints (``is_tenant``, ``is_principal``, ``on_disk``, ``enable_hnsw``) change no answer."""


class Writer:
    """Every mutation of one collection: each request is validated whole, then applied in one
    durable transaction and published through the collection's :class:`~vecdb.engine.mvcc.Mvcc`."""

    def __init__(self, state: CollectionState, written: Callable[[], None]) -> None:
        self.state = state
        self._written = written
        """Run after each committed write (the collection wakes its optimizer)."""

    def _write(self, body: Callable[[WriteTxn], T]) -> tuple[int, T]:
        """Run ``body`` in one durable transaction, then publish the payload-index deltas and the new view."""
        state = self.state

        def run(txn: lmdb.Transaction) -> tuple[WriteTxn, T]:
            w = WriteTxn(txn, state.tables, state.spaces, state.sparse_spaces, state.multi_spaces)
            w.analyzers = state.payload_index.analyzers  # filters tokenize text-indexed fields as their index
            result = body(w)
            w.finish()
            return w, result

        def publish(done: tuple[WriteTxn, T], view: ReadView) -> ReadView:
            return publish_delta(state, done[0], view)

        w, result = state.mvcc.write(run, publish)
        state.last_write = time.monotonic()
        self._written()
        return w.seq, result

    def new_ids(self, ids: Sequence[PointId]) -> int:
        """How many of ``ids`` are not stored (what an upsert of them would add; strict mode's count)."""
        tables = self.state.tables
        with self.state.env.read() as txn:
            return sum(tables.iid_of(txn, id_to_key(pid)) is None for pid in dict.fromkeys(ids))

    # --- requests (each one transaction) -------------------------------------------------------

    def upsert(self, op: PointInsertOperations) -> int:
        prepared = self._prepared(op, "points")
        return self._write(lambda w: self._upsert(w, op, prepared))[0]

    def _prepared(self, op: PointInsertOperations, field: str) -> PreparedPoints:
        state = self.state
        op = resolve_insert(op, state.settings, field)
        prepared = PreparedPoints.from_request(op, state.spaces, state.sparse_spaces, state.multi_spaces)
        state.limits.check_points(len(prepared.ids), field)
        state.limits.check_payloads(prepared.payloads, f"{field}.payload")
        return prepared

    def delete(self, selector: PointsSelector) -> int:
        return self._write(lambda w: self._delete(w, selector))[0]

    def set_payload(self, req: SetPayload, overwrite: bool = False) -> int:
        self.state.limits.check_payloads([encode_payload(req.payload, "payload")], "payload")
        return self._write(lambda w: self._set_payload(w, req, overwrite))[0]

    def delete_payload(self, req: DeletePayload) -> int:
        return self._write(lambda w: self._delete_payload(w, req))[0]

    def clear_payload(self, selector: PointsSelector) -> int:
        return self._write(lambda w: self._clear_payload(w, selector))[0]

    def update_vectors(self, req: UpdateVectors) -> int:
        req = resolve_update_vectors(req, self.state.settings, "points")
        return self._write(lambda w: self._update_vectors(w, req))[0]

    def delete_vectors(self, req: DeleteVectors) -> int:
        return self._write(lambda w: self._delete_vectors(w, req))[0]

    def batch(self, operations: list[UpdateOperation]) -> int:
        """All operations of ``points/batch`` in one transaction: all of them apply, or none."""
        settings = self.state.settings
        operations = [  # texts embedded before the transaction, as upserts are prepared before it
            UpdateVectorsOperation(
                update_vectors=resolve_update_vectors(
                    op.update_vectors, settings, f"operations[{i}].update_vectors.points"
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
        self.state.limits.check_points(sum(len(p.ids) for p in prepared if p is not None), "operations")

        def body(w: WriteTxn) -> None:
            for op, prep in zip(operations, prepared, strict=True):
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

    # --- settings and payload indexes ----------------------------------------------------------

    def save_settings(self, settings: dict[str, Any]) -> None:
        with self.state.mvcc.write_lock:
            self._save_settings_locked(settings)

    def _save_settings_locked(self, settings: dict[str, Any]) -> None:
        self.state.env.write(lambda txn: self.state.tables.put_meta_json(txn, "config", settings))
        self.state.use_settings(settings)

    def create_payload_index(self, req: CreateFieldIndex) -> int:
        state = self.state
        schema = req.field_schema
        if schema is None:
            raise InvalidInput('field_schema: a payload index needs a type, e.g. "keyword"')
        if isinstance(schema, dict):
            try:
                data_type = PayloadSchemaType(schema.get("type")).value
            except ValueError:
                raise InvalidInput(f"field_schema.type: unknown index type {schema.get('type')!r}") from None
            allowed = INDEX_PARAMS.get(data_type)
            unknown = sorted(set(schema) - allowed) if allowed is not None else []
            if unknown:
                raise InvalidInput(
                    f"field_schema.{unknown[0]}: not a parameter of {data_type} indexes "
                    f"(expected some of {', '.join(sorted(allowed))})"  # type: ignore[arg-type]
                )
            spec = {"data_type": data_type, "params": schema}
        else:
            spec = {"data_type": schema.value}
        settings = dict(state.settings)
        settings["payload_schema"] = {**(settings.get("payload_schema") or {}), req.field_name: spec}
        mvcc = state.mvcc
        with mvcc.write_lock, mvcc.publishing_change():  # no write lands between the scan and the schema change
            if req.field_name in state.payload_index.fields:
                state.payload_index.drop_field(req.field_name)
            build_payload_index(state, {req.field_name: spec})
            self._save_settings_locked(settings)
        return self._bump_seq()

    def delete_payload_index(self, field_name: str) -> int:
        state = self.state
        settings = dict(state.settings)
        settings["payload_schema"] = {
            k: v for k, v in (settings.get("payload_schema") or {}).items() if k != field_name
        }
        mvcc = state.mvcc
        with mvcc.write_lock, mvcc.publishing_change():
            self._save_settings_locked(settings)
            if field_name in state.payload_index.fields:
                state.payload_index.drop_field(field_name)
        return self._bump_seq()

    def _bump_seq(self) -> int:
        return self._write(lambda w: None)[0]

    # --- operations (each runs inside a WriteTxn, so points/batch can chain them) ------------

    def _upsert(self, w: WriteTxn, op: PointInsertOperations, prepared: PreparedPoints) -> None:
        mode = op.update_mode or "upsert"
        if mode not in ("upsert", "insert_only", "update_only"):
            raise InvalidInput(f"update_mode: expected upsert, insert_only or update_only, got {mode!r}")
        guard = compile_filter(op.update_filter, self.state.payload_index.analyzers)
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
        new_pos = {pos: j for j, pos in enumerate(chosen)}
        sparse: dict[int, tuple[list[int], list[Any]]] = {}
        for space, (positions, sparse_rows) in prepared.sparse.items():
            kept = [(new_pos[p], r) for p, r in zip(positions, sparse_rows, strict=True) if p in new_pos]
            kept.sort(key=lambda item: item[0])
            if kept:
                sparse[space] = ([j for j, _ in kept], [r for _, r in kept])
        multi: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        for space, (positions, matrices) in prepared.multi.items():
            order = sorted((new_pos[p], j) for j, p in enumerate(positions) if p in new_pos)
            if order:
                multi[space] = ([at for at, _ in order], [matrices[j] for _, j in order])
        vectors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for space, (positions, matrix) in prepared.rows.items():
            row_of = np.full(len(prepared.ids), -1, dtype=np.int64)
            row_of[np.asarray(positions, dtype=np.int64)] = np.arange(len(positions))
            rows = row_of[picked]
            has = np.flatnonzero(rows >= 0)
            if len(has):
                vectors[space] = (has, matrix[rows[has]])
        w.insert_many(keys, [prepared.payloads[pos] for pos in chosen], vectors, sparse, multi)

    def _delete(self, w: WriteTxn, selector: PointsSelector) -> None:
        for point in w.select(selector, None):
            w.remove(point)

    def _set_payload(self, w: WriteTxn, req: SetPayload, overwrite: bool) -> None:
        edit = payload_setter(req.key, req.payload, overwrite)  # a bad key fails before any point
        for point in self._payload_targets(w, req.points, req.filter):
            w.rewrite_payload(point, edit(point.payload))

    def _delete_payload(self, w: WriteTxn, req: DeletePayload) -> None:
        edit = payload_deleter(req.keys)  # a bad key fails before any point
        for point in self._payload_targets(w, req.points, req.filter):
            payload = point.payload
            edit(payload)
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
        """New vectors for existing points (all named ones exist or none is written); with ``update_filter``
        only the points passing it are changed, the others left as they were (as qdrant-client's local mode)."""
        guard = compile_filter(req.update_filter, self.state.payload_index.analyzers)
        view = StoredPointView(lambda iid, name: w._has_vector(iid, name))
        state = self.state
        split = split_point_vectors(
            [p.vector for p in req.points], state.spaces, "points", state.sparse_spaces, state.multi_spaces
        )
        prepared = prepare_groups(split.dense, state.spaces, "points.vector")
        new_vectors: dict[int, dict[int, np.ndarray]] = {}
        for space, (positions, matrix) in prepared.items():
            for row_no, pos in enumerate(positions):
                new_vectors.setdefault(pos, {})[space] = matrix[row_no]
        new_sparse: dict[int, dict[int, Any]] = {}
        for space, (positions, sparse_rows) in split.sparse.items():
            for pos, row in zip(positions, sparse_rows, strict=True):
                new_sparse.setdefault(pos, {})[space] = row
        new_multi: dict[int, dict[int, np.ndarray]] = {}
        for space, (positions, matrices) in split.multi.items():
            for pos, m in zip(positions, matrices, strict=True):
                new_multi.setdefault(pos, {})[space] = m
        for pos, point_vectors in enumerate(req.points):
            old = w.require(point_vectors.id)
            if guard is not None and not guard(view.bind(old)):
                continue
            vectors = {**w.vectors_of(old), **new_vectors.get(pos, {})}
            sparse = {**w.sparse_of(old), **new_sparse.get(pos, {})}
            multi = {**w.multi_of(old), **new_multi.get(pos, {})}
            w.remove(old)
            w.insert(old.id, old.payload_json, vectors, sparse, multi)

    def _delete_vectors(self, w: WriteTxn, req: DeleteVectors) -> None:
        names = set(req.vector)
        drop = {s.index for s in self.state.spaces if s.name in names}
        drop_sparse = {s.index for s in self.state.sparse_spaces if s.name in names}
        drop_multi = {s.index for s in self.state.multi_spaces if s.name in names}
        state = self.state
        known = (
            {s.name for s in state.spaces}
            | {s.name for s in state.sparse_spaces}
            | {s.name for s in state.multi_spaces}
        )
        unknown = names - known
        if unknown:
            raise InvalidInput(f"vector: Not existing vector name error: {sorted(unknown)[0]}")
        for point in self._payload_targets(w, req.points, req.filter):
            vectors = {k: v for k, v in w.vectors_of(point).items() if k not in drop}
            sparse = {k: v for k, v in w.sparse_of(point).items() if k not in drop_sparse}
            multi = {k: v for k, v in w.multi_of(point).items() if k not in drop_multi}
            w.remove(point)
            w.insert(point.id, point.payload_json, vectors, sparse, multi)


class Delta(Protocol):
    """What one write (or, for a process catching up, several) changed in memory terms: a
    :class:`WriteTxn` after its commit, or :class:`vecdb.engine.follow.CaughtUp`."""

    seq: int
    next_iid: int
    born: list[int]
    born_keys: list[bytes]
    died: list[int]
    touched: list[int]
    payload_writes: list[tuple[int, Any]]
    rows: dict[int, list[tuple[np.ndarray, np.ndarray]]]
    sparse_rows: dict[int, list[tuple[int, Any]]]
    versions: Optional[tuple[np.ndarray, np.ndarray]]


def publish_delta(state: CollectionState, w: Delta, view: ReadView) -> ReadView:
    """Apply a committed write's payload-index deltas and sparse postings, and return the view after
    it (the caller publishes it: :meth:`~vecdb.engine.mvcc.Mvcc.write` or a catch-up)."""
    if state.payload_index.fields and w.payload_writes:
        state.payload_index.update_many(
            [iid for iid, _ in w.payload_writes],
            [orjson.loads(p) if isinstance(p, bytes) else p for _, p in w.payload_writes],
        )
    rows = {
        space: chunks[0]
        if len(chunks) == 1
        else (np.concatenate([c[0] for c in chunks]), np.vstack([c[1] for c in chunks]))
        for space, chunks in w.rows.items()
        if chunks
    }
    new_view = view.apply(
        w.next_iid,
        np.asarray(w.born, dtype=np.int64),
        np.asarray(w.died, dtype=np.int64),
        rows,
        born_keys=w.born_keys,
        version=w.seq,
        touched=w.touched,
        versions=w.versions,
    )
    if state.sparse_spaces:  # published before the view (Mvcc assigns it after this returns)
        state.sparse = _sparse_published(state, w, new_view)
    return new_view


def _sparse_published(state: CollectionState, w: Delta, view: ReadView) -> dict[int, Any]:
    """Every sparse space's inverted index after the write ``w`` (whose view is ``view``)."""
    out = {}
    for space in state.sparse_spaces:
        index = state.sparse[space.index]
        born = w.sparse_rows.get(space.index) or []
        if born:
            iids = np.fromiter((iid for iid, _ in born), dtype=np.int64, count=len(born))
            out[space.index] = index.added(
                w.next_iid, iids, [r[0] for _, r in born], [r[1] for _, r in born], view.alive, view.seq
            )
        else:
            out[space.index] = index.advanced(w.next_iid)
    return out


def build_payload_index(
    state: CollectionState,
    schema: dict[str, Any],
    txn: Optional[lmdb.Transaction] = None,
    opening: bool = False,
    should_stop: Optional[Callable[[], bool]] = None,
) -> None:
    """Index ``schema``'s fields from one pass over the stored payloads (as ``txn`` sees them, if given),
    a chunk of decoded payloads at a time. ``opening``: the background build of an open (see
    :meth:`PayloadIndex.hold_until_built`), which ``should_stop`` may cut short (the collection closes)."""
    if not schema:
        return
    t0 = time.perf_counter()
    specs = {field: (spec["data_type"], spec.get("params")) for field, spec in schema.items()}
    seen = 0

    def chunks(read: lmdb.Transaction) -> Iterator[tuple[list[int], list[Any]]]:
        nonlocal seen
        for iids, payloads in state.tables.iter_payloads(read):
            if should_stop is not None and should_stop():
                raise BuildInterrupted("payload index build stopped: the collection is closing")
            seen += len(iids)
            yield iids, payloads

    if txn is None:
        with state.env.read() as own:
            state.payload_index.add_fields(specs, chunks(own), opening)
    else:
        state.payload_index.add_fields(specs, chunks(txn), opening)
    log.info(
        "collection %s: payload indexes on %s built from %d points in %.2f s",
        state.name,
        sorted(schema),
        seen,
        time.perf_counter() - t0,
    )
