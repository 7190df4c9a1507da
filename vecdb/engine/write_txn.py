"""One write transaction and the in-memory changes it implies, applied only after the commit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import lmdb
import numpy as np

from vecdb.engine.point_view import StoredPointView, stored_has_vector
from vecdb.engine.prepare import encode_payload
from vecdb.engine.settings import MultiSpace, SparseSpace, VectorSpace
from vecdb.engine.views import SparseRow
from vecdb.errors import InvalidInput, NotFound
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.fulltext import TextAnalyzer
from vecdb.filtering.keypath import KeyPath
from vecdb.ids import PointId, id_to_key
from vecdb.models.filters import Filter
from vecdb.models.points import FilterSelector, PointIdsList, PointsSelector
from vecdb.storage.points import PointsTables, StoredPoint, encode_change, encode_sparse


class WriteTxn:
    """One write transaction plus the memory changes it implies (applied only after commit)."""

    def __init__(
        self,
        txn: lmdb.Transaction,
        tables: PointsTables,
        spaces: list[VectorSpace],
        sparse_spaces: Optional[list[SparseSpace]] = None,
        multi_spaces: Optional[list[MultiSpace]] = None,
    ):
        self.txn = txn
        self.tables = tables
        self.spaces = spaces
        self.sparse_spaces = sparse_spaces or []
        self.multi_spaces = multi_spaces or []
        self.analyzers: Mapping[KeyPath, TextAnalyzer] = {}
        """Tokenizers of text-indexed fields, for filters (set by the writer)."""
        counters = tables.get_meta_json(txn, "counters")
        self.next_iid: int = counters["next_iid"]
        self.first_iid = self.next_iid
        self.seq: int = counters["seq"] + 1
        self.born: list[int] = []
        self.born_keys: list[bytes] = []
        self.died: list[int] = []
        self.touched: list[int] = []
        """Internal ids whose payload alone was rewritten (a new version, same internal id)."""
        self.payload_writes: list[tuple[int, Any]] = []
        """(iid, payload JSON bytes, dict, or None when the iid died), in order, for payload indexes."""
        self.rows: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {s.index: [] for s in spaces}
        self.sparse_rows: dict[int, list[tuple[int, SparseRow]]] = {s.index: [] for s in self.sparse_spaces}
        """Per sparse space, (new internal id, row) in id order, for the inverted index."""
        self.versions: Optional[tuple[np.ndarray, np.ndarray]] = None
        """Every version this write sets is ``seq`` (a catch-up over several writes gives them per point)."""

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

    def insert(
        self,
        point_id: PointId,
        payload_json: bytes,
        vectors: dict[int, np.ndarray],
        sparse: Optional[dict[int, SparseRow]] = None,
        multi: Optional[dict[int, np.ndarray]] = None,
    ) -> None:
        one_row = np.zeros(1, dtype=np.int64)
        self.insert_many(
            [id_to_key(point_id)],
            [payload_json],
            {s: (one_row, row[None, :]) for s, row in vectors.items()},
            {s: ([0], [row]) for s, row in (sparse or {}).items()},
            {s: ([0], [m]) for s, m in (multi or {}).items()},
        )

    def insert_many(
        self,
        keys: list[bytes],
        payloads: list[bytes],
        vectors: dict[int, tuple[np.ndarray, np.ndarray]],
        sparse: Optional[dict[int, tuple[list[int], list[SparseRow]]]] = None,
        multi: Optional[dict[int, tuple[list[int], list[np.ndarray]]]] = None,
    ) -> None:
        """Store new points (whose keys are not in the ids table) under fresh internal ids.

        ``vectors``: space -> (ascending positions into ``keys``, float32 rows); ``sparse``: sparse
        space -> (ascending positions into ``keys``, sparse rows); ``multi``: multivector space ->
        (positions into ``keys``, float32 matrices).
        """
        first = self.next_iid
        self.next_iid += len(keys)
        self.tables.put_new(self.txn, first, self.seq, keys, payloads, vectors)
        if sparse:
            items = []
            for space, (sparse_positions, sparse_rows) in sparse.items():
                born = self.sparse_rows[space]
                for pos, row in zip(sparse_positions, sparse_rows, strict=True):
                    items.append((first + pos, space, encode_sparse(*row)))
                    born.append((first + pos, row))
            self.tables.put_sparse_many(self.txn, items)
        if multi:
            self.tables.put_multi_many(
                self.txn,
                [(first + pos, space, m) for space, (ps, ms) in multi.items() for pos, m in zip(ps, ms, strict=True)],
            )
        self.payload_writes.extend(zip(range(first, self.next_iid), payloads, strict=True))
        for space, (positions, rows) in vectors.items():
            self.rows[space].append((positions + first, rows))
        self.born.extend(range(first, self.next_iid))
        self.born_keys.extend(keys)

    def remove(self, point: StoredPoint) -> None:
        self.tables.delete(
            self.txn, point.iid, point.id, len(self.spaces), len(self.sparse_spaces), len(self.multi_spaces)
        )
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

    def sparse_of(self, point: StoredPoint) -> dict[int, SparseRow]:
        out = {}
        for space in self.sparse_spaces:
            row = self.tables.get_sparse(self.txn, point.iid, space.index)
            if row is not None:
                out[space.index] = row
        return out

    def multi_of(self, point: StoredPoint) -> dict[int, np.ndarray]:
        out = {}
        for space in self.multi_spaces:
            matrix = self.tables.get_multi(self.txn, point.iid, space.index, space.size)
            if matrix is not None:
                out[space.index] = matrix
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
        if flt is None:
            raise InvalidInput("either points or filter must be given")
        predicate = compile_filter(flt, self.analyzers)
        if predicate is None:  # an empty filter ({} or {"must": []}) selects every point, as in Qdrant
            return list(self.tables.iter_points(self.txn))
        view = StoredPointView(lambda iid, name: self._has_vector(iid, name))
        return [p for p in self.tables.iter_points(self.txn) if predicate(view.bind(p))]

    def _has_vector(self, iid: int, name: str) -> bool:
        return stored_has_vector(self.tables, self.txn, self.spaces, iid, name, self.sparse_spaces, self.multi_spaces)

    def finish(self) -> None:
        self.tables.put_meta_json(self.txn, "counters", {"next_iid": self.next_iid, "seq": self.seq})
        change = encode_change(self.first_iid, self.next_iid, self.died, self.touched)
        self.tables.put_change(self.txn, self.seq, change)
