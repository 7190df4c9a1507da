"""Vectors in memory: validation of user input and the copy-on-publish read view that searches read.

Searches never take a lock. A writer builds a new :class:`ReadView` after its
LMDB transaction commits and publishes it with one attribute assignment; a
search keeps using whichever view it started with. Rows are only ever
appended (internal ids are never reused), so a new view can share the
matrix of the old one: the old one simply does not look past its ``n``.
Only the small ``alive``/``present`` masks are copied per write.

Where a space's rows live is its :class:`RowStore`'s business: numpy memory,
or (``on_disk`` spaces, the default under IVF-PQ) a memory-mapped file that
the kernel pages in and out, so a collection's float32 vectors need not fit
in memory. The file is derived data: it is rebuilt from LMDB on every open.
"""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

from vecdb.engine.id_columns import PointIds
from vecdb.engine.settings import DEFAULT_VECTOR, MultiSpace, SparseSpace, VectorSpace
from vecdb.errors import InvalidInput
from vecdb.index.distance import metric_of, normalise
from vecdb.models.points import SparseVector
from vecdb.storage.points import IdChunk

_MIN_CAPACITY = 1024


def prepare_rows(rows: Any, space: VectorSpace, field: str) -> np.ndarray:
    """Turn user vectors for one space into a validated float32 matrix ``[m, size]``.

    Cosine vectors are normalised here, once, at write time (as Qdrant does), so
    cosine search is a plain dot product.
    """
    if isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.dtype.kind in "fiu":
        if rows.shape[1] != space.size:  # an array is validated whole: no per-row Python loop
            raise InvalidInput(f"{field}[0]: Vector dimension error: expected dim: {space.size}, got {rows.shape[1]}")
        with np.errstate(over="ignore"):  # (numbers past float32 become infinities: refused below)
            matrix = rows.astype(np.float32, copy=False)
    else:
        for i, row in enumerate(rows):
            if isinstance(row, SparseVector):
                raise InvalidInput(
                    f"{field}[{i}]: Wrong input: Conversion between sparse and regular vectors failed "
                    f"for vector '{space.name}'"
                )
            if len(row) and isinstance(row[0], (list, tuple)):
                raise InvalidInput(
                    f"{field}[{i}]: Wrong input: Conversion between multi and regular vectors failed for vector "
                    f"'{space.name}' (it holds one vector, not a multivector)"
                )
            if len(row) != space.size:
                raise InvalidInput(f"{field}[{i}]: Vector dimension error: expected dim: {space.size}, got {len(row)}")
        with np.errstate(over="ignore"):
            matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), space.size)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidInput(f"{field}[{bad}]: vector contains NaN or infinite components")
    if space.datatype == "uint8":
        return np.ascontiguousarray(stored_as(matrix, "uint8", field))  # (stored raw: see raw_cosine)
    if metric_of(space.distance).normalised:
        matrix = normalise(matrix)
    if space.datatype != "float32":
        matrix = stored_as(matrix, space.datatype, field)
    return np.ascontiguousarray(matrix)


def raw_cosine(space: VectorSpace) -> bool:
    """A Cosine space of uint8 vectors: its rows are stored as the integers given (Qdrant keeps and returns
    them so, computing the cosine with their norms) and made unit length only in memory, where search
    reads them."""
    return space.datatype == "uint8" and metric_of(space.distance).normalised


def unit(row: np.ndarray, space: VectorSpace) -> np.ndarray:
    """A stored row as search uses it: a raw uint8 Cosine row made unit length; others as they are."""
    return normalise(row[None, :])[0] if raw_cosine(space) else row


FLOAT16_MAX = float(np.finfo(np.float16).max)


def stored_as(matrix: np.ndarray, datatype: str, field: str) -> np.ndarray:
    """Rows as a space of ``datatype`` stores them (float32 arrays): float16 rounds each value to half
    precision, after Cosine's normalisation, as Qdrant stores it; a value past float16's range is refused.
    uint8 takes whole numbers 0..255 as they are and refuses any other (Qdrant requires that range and
    would cast other values silently)."""
    if datatype == "uint8":
        bad = (matrix < 0) | (matrix > 255) | (matrix != np.floor(matrix))
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0]) if matrix.ndim == 2 else 0
            raise InvalidInput(f"{field}[{row}]: uint8 vectors take whole numbers from 0 to 255")
        return matrix
    big = np.abs(matrix) > FLOAT16_MAX
    if big.any():
        row = int(np.flatnonzero(big.any(axis=1))[0]) if matrix.ndim == 2 else 0
        raise InvalidInput(f"{field}[{row}]: a component exceeds the float16 range (+-{FLOAT16_MAX:g})")
    return matrix.astype(np.float16).astype(np.float32)


def prepare_query(vector: np.ndarray, space: VectorSpace, field: str) -> np.ndarray:
    """:func:`prepare_rows` for one 1-d query vector, in a few numpy calls: a query's whole cost
    is a fraction of a millisecond, so its validation must not be a visible part of it."""
    if len(vector) != space.size:
        raise InvalidInput(f"{field}: Vector dimension error: expected dim: {space.size}, got {len(vector)}")
    query = np.ascontiguousarray(vector, dtype=np.float32)
    wide = query.astype(np.float64)  # (squares of float32 cannot overflow float64: no np.errstate needed)
    sq_norm = float(np.dot(wide, wide))  # finite only if every component is
    if not math.isfinite(sq_norm):
        raise InvalidInput(f"{field}: vector contains NaN or infinite components")
    if metric_of(space.distance).normalised:
        if sq_norm == 0:
            return query.copy()
        return (wide * (1.0 / math.sqrt(sq_norm))).astype(np.float32)
    return query


def prepare_multi(value: Any, space: MultiSpace, field: str, stored: bool = False) -> np.ndarray:
    """One multivector as a validated float32 matrix ``[rows, size]``, refused as Qdrant refuses it
    (empty, an empty or wrong-size row, NaN or infinity); Cosine rows normalised one by one at write time,
    as dense vectors are (a zero row stays zero, as in Qdrant's local mode). ``stored``: a matrix to
    write, rounded to the space's datatype (queries are not)."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        rows = value
    else:
        if isinstance(value, SparseVector) or not isinstance(value, (list, tuple)):
            raise InvalidInput(
                f"{field}: Wrong input: Conversion between multi and regular vectors failed for vector '{space.name}' "
                "(expected a list of vectors)"
            )
        if not value:
            raise InvalidInput(f"{field}: Wrong input: Multivector must not be empty for vector '{space.name}'")
        for j, row in enumerate(value):
            if not isinstance(row, (list, tuple, np.ndarray)):
                raise InvalidInput(
                    f"{field}: Wrong input: Conversion between multi and regular vectors failed for vector "
                    f"'{space.name}' (expected a list of vectors, got a single vector)"
                )
            if len(row) != space.size:
                raise InvalidInput(
                    f"{field}[{j}]: Vector dimension error: expected dim: {space.size}, got {len(row)}"
                    if len(row)
                    else f"{field}[{j}]: Wrong input: All vectors of a multivector must be non-empty"
                )
        with np.errstate(over="ignore"):
            rows = np.asarray(value, dtype=np.float32).reshape(len(value), space.size)
    if not len(rows):
        raise InvalidInput(f"{field}: Wrong input: Multivector must not be empty for vector '{space.name}'")
    if rows.shape[1] != space.size:
        raise InvalidInput(f"{field}[0]: Vector dimension error: expected dim: {space.size}, got {rows.shape[1]}")
    with np.errstate(over="ignore"):
        matrix = rows.astype(np.float32)
    if not np.isfinite(matrix).all():
        raise InvalidInput(f"{field}: vector contains NaN or infinite components")
    if metric_of(space.distance).normalised:
        matrix = normalise(matrix)
    if stored and space.datatype != "float32":
        matrix = stored_as(matrix, space.datatype, field)
    return np.ascontiguousarray(matrix)


SparseRow = tuple[np.ndarray, np.ndarray]
"""A validated sparse vector: (indices uint32 ascending and unique, values float32)."""

MAX_SPARSE_INDEX = 2**32 - 1


def prepare_sparse(vector: Any, field: str) -> SparseRow:
    """Validate one sparse vector as Qdrant does and sort it by index (Qdrant returns it sorted).

    Refused, naming ``field``: indices and values of different lengths, repeated indices, indices
    outside u32, values that are NaN or infinite. An empty vector is valid.
    """
    if not isinstance(vector, SparseVector):
        raise InvalidInput(
            f"{field}: Wrong input: Conversion between sparse and regular vectors failed (expected "
            '{"indices": [...], "values": [...]})'
        )
    raw_indices, raw_values = vector.indices, vector.values
    if len(raw_indices) != len(raw_values):
        raise InvalidInput(
            f"{field}: Validation error: indices and values must have the same length "
            f"(got {len(raw_indices)} and {len(raw_values)})"
        )
    if not raw_indices:
        return np.zeros(0, np.uint32), np.zeros(0, np.float32)
    if len(raw_indices) <= _SMALL_SPARSE:  # a query's few terms: plain Python beats ten tiny numpy calls
        return _prepare_small(raw_indices, raw_values, field)
    indices = np.asarray(raw_indices, dtype=np.int64)
    if int(indices.min()) < 0 or int(indices.max()) > MAX_SPARSE_INDEX:
        raise InvalidInput(f"{field}.indices: Validation error: indices must be between 0 and {MAX_SPARSE_INDEX}")
    values = np.asarray(raw_values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InvalidInput(f"{field}.values: Validation error: values must be finite (no NaN or infinity)")
    order = np.argsort(indices, kind="stable")
    indices = indices[order]
    if len(indices) > 1 and bool((indices[1:] == indices[:-1]).any()):
        raise InvalidInput(f"{field}.indices: Validation error: indices must be unique")
    return indices.astype(np.uint32), values[order].astype(np.float32)


_SMALL_SPARSE = 32


def _prepare_small(raw_indices: list[int], raw_values: list[float], field: str) -> SparseRow:
    """:func:`prepare_sparse`'s checks, in the same order, for a short vector."""
    if min(raw_indices) < 0 or max(raw_indices) > MAX_SPARSE_INDEX:
        raise InvalidInput(f"{field}.indices: Validation error: indices must be between 0 and {MAX_SPARSE_INDEX}")
    if not all(math.isfinite(v) for v in raw_values):
        raise InvalidInput(f"{field}.values: Validation error: values must be finite (no NaN or infinity)")
    order = sorted(range(len(raw_indices)), key=raw_indices.__getitem__)
    indices = [raw_indices[i] for i in order]
    if len(set(indices)) != len(indices):
        raise InvalidInput(f"{field}.indices: Validation error: indices must be unique")
    return np.array(indices, dtype=np.uint32), np.array([raw_values[i] for i in order], dtype=np.float32)


class SplitVectors(NamedTuple):
    """Each point's vector struct grouped by space: dense space index -> (point positions, raw rows); sparse
    and multivector space index -> (point positions, validated rows); spaces no point named are left out
    of ``sparse`` and ``multi``."""

    dense: dict[int, tuple[list[int], list[Any]]]
    sparse: dict[int, tuple[list[int], list[SparseRow]]]
    multi: dict[int, tuple[list[int], list[np.ndarray]]]


def split_point_vectors(
    vectors: Sequence[Any],
    spaces: list[VectorSpace],
    field: str,
    sparse: Sequence[SparseSpace] = (),
    multi: Sequence[MultiSpace] = (),
) -> SplitVectors:
    """Group each point's vector struct by space (:class:`SplitVectors`), validating sparse and multi rows."""
    by_name = {s.name: s for s in spaces}
    sparse_by_name = {s.name: s for s in sparse}
    multi_by_name = {s.name: s for s in multi}
    grouped: dict[int, tuple[list[int], list[Any]]] = {s.index: ([], []) for s in spaces}
    sparse_grouped: dict[int, tuple[list[int], list[SparseRow]]] = {s.index: ([], []) for s in sparse}
    multi_grouped: dict[int, tuple[list[int], list[np.ndarray]]] = {s.index: ([], []) for s in multi}
    for pos, vec in enumerate(vectors):
        named = vec if isinstance(vec, dict) else {DEFAULT_VECTOR: vec}
        for name, row in named.items():
            space = by_name.get(name)
            if space is None:
                label = f"{field}[{pos}].vector.{name}" if field == "points" else f"{field}.{name}[{pos}]"
                if not name:
                    label = f"{field}[{pos}].vector" if field == "points" else f"{field}[{pos}]"
                multi_space = multi_by_name.get(name)
                if multi_space is not None:
                    multi_grouped[multi_space.index][0].append(pos)
                    multi_grouped[multi_space.index][1].append(prepare_multi(row, multi_space, label, stored=True))
                    continue
                sparse_space = sparse_by_name.get(name)
                if sparse_space is None:
                    raise InvalidInput(f"{field}[{pos}]: Not existing vector name error: {name}")
                sparse_grouped[sparse_space.index][0].append(pos)
                sparse_grouped[sparse_space.index][1].append(prepare_sparse(row, label))
                continue
            grouped[space.index][0].append(pos)
            grouped[space.index][1].append(row)
    return SplitVectors(
        grouped,
        {k: v for k, v in sparse_grouped.items() if v[0]},
        {k: v for k, v in multi_grouped.items() if v[0]},
    )


class RowStore:
    """Rows held in numpy memory; growth copies them into a larger array."""

    def allocate(self, space: int, capacity: int, dim: int, old: Optional[np.ndarray], used: int) -> np.ndarray:
        matrix = np.zeros((capacity, dim), dtype=np.float32)
        if old is not None and used:
            matrix[:used] = old[:used]
        return matrix

    def reset(self, space: int) -> None:
        """Forget what a previous life of the collection left (nothing to do in memory)."""


class FileRowStore(RowStore):
    """Rows in ``<folder>/space<N>.f32``, memory-mapped: growth extends the file, nothing is copied.

    Older views keep their own (shorter) mappings of the same file, which
    stay valid: rows are only ever appended or written once at a new id.

    ``shared``: the processes of ``vecdb serve --workers`` map one file, so its pages are in memory
    once. The file is then never truncated (another process may be reading any row of it): an open
    rewrites every stored row in place, the same bytes each process would write, and growth takes
    the file's lock so that two processes extending it cannot shrink it.
    """

    def __init__(self, folder: Path, shared: bool = False) -> None:
        self.folder = folder
        self.shared = shared

    def path(self, space: int) -> Path:
        return self.folder / f"space{space}.f32"

    def reset(self, space: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path(space), "ab" if self.shared else "wb"):
            pass

    def allocate(self, space: int, capacity: int, dim: int, old: Optional[np.ndarray], used: int) -> np.ndarray:
        path = self.path(space)
        size = capacity * dim * 4
        with open(path, "r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # (released with the file)
            if os.fstat(f.fileno()).st_size < size:
                f.truncate(size)  # sparse: blocks are allocated as rows are written
        # a plain ndarray over the mapping (it keeps the mapping alive): np.memmap's Python-level
        # __getitem__ cost ~10 us per gather of re-ranking candidates
        return np.memmap(path, dtype=np.float32, mode="r+", shape=(capacity, dim)).view(np.ndarray)


_RAM = RowStore()


@dataclass(frozen=True, slots=True)
class SpaceData:
    """Rows of one vector space, indexed by internal id."""

    matrix: np.ndarray  # float32 [capacity, size]
    present: np.ndarray  # bool [capacity]: the row holds a vector of this space
    sq_norms: np.ndarray  # float32 [capacity]: squared norms, for Euclid scoring
    live: int = 0  # rows that are alive and hold a vector of this space
    normalise: bool = False  # rows are stored raw and made unit length as they enter memory (uint8 Cosine)


@dataclass(frozen=True, slots=True)
class ReadView:
    """An immutable view of which internal ids are live and what their vectors are."""

    n: int
    alive: np.ndarray  # bool [capacity]
    count: int
    spaces: tuple[SpaceData, ...]
    ids: PointIds  # external id and version of each internal id
    stores: tuple[RowStore, ...] = ()  # per space; empty: all in memory
    seq: int = 0  # the write (``counters.seq`` in LMDB) this view is the state after

    def live(self, space: int, lo: int = 0) -> np.ndarray:
        """Bool mask over internal ids ``lo .. n-1``: alive and holding a vector of ``space``."""
        return self.alive[lo : self.n] & self.spaces[space].present[lo : self.n]  # type: ignore[no-any-return]

    def store(self, space: int) -> RowStore:
        return self.stores[space] if self.stores else _RAM

    @staticmethod
    def empty(spaces: list[VectorSpace], stores: Sequence[RowStore] = ()) -> ReadView:
        return ReadView.loaded(spaces, 0, (), (), stores)

    @staticmethod
    def loaded(
        spaces: list[VectorSpace],
        next_iid: int,
        id_chunks: Iterable[IdChunk],
        chunks: Iterable[tuple[int, np.ndarray, np.ndarray]],
        stores: Sequence[RowStore] = (),
        seq: int = 0,
    ) -> ReadView:
        """The view of a collection read from storage: the live points' ``id_chunks``, then
        ``chunks`` of ``(space, ids, rows)``.

        Rows are copied into memory numpy allocates itself (or the space's file):
        a matrix left in the bytes LMDB's values were joined into scanned ~25% slower.
        """
        capacity = max(next_iid, _MIN_CAPACITY)
        ids = PointIds.empty(capacity)
        alive = np.zeros(capacity, dtype=bool)
        for part in id_chunks:
            ids.put(part.iids, part.keys, part.versions)
            alive[part.iids] = True
        store_list = tuple(stores) or tuple(_RAM for _ in spaces)
        matrices, presents, norms = [], [], []
        for s, store in zip(spaces, store_list, strict=True):
            store.reset(s.index)
            matrices.append(store.allocate(s.index, capacity, s.size, None, 0))
            presents.append(np.zeros(capacity, dtype=bool))
            norms.append(np.zeros(capacity, dtype=np.float32))
        raw = {s.index for s in spaces if raw_cosine(s)}
        for space, iids, rows in chunks:
            where = _rows_at(iids)
            if space in raw:
                rows = normalise(rows)
            matrices[space][where] = rows
            norms[space][where] = np.einsum("ij,ij->i", rows, rows)
            presents[space][where] = True
        datas = tuple(
            SpaceData(m, p, q, int(np.count_nonzero(p[:next_iid] & alive[:next_iid])), raw_cosine(s))
            for s, m, p, q in zip(spaces, matrices, presents, norms, strict=True)
        )
        return ReadView(next_iid, alive, int(np.count_nonzero(alive[:next_iid])), datas, ids, tuple(stores), seq)

    def apply(
        self,
        next_iid: int,
        born: np.ndarray,
        died: np.ndarray,
        rows: dict[int, tuple[np.ndarray, np.ndarray]],
        *,
        born_keys: Sequence[bytes],
        version: int,
        touched: Sequence[int] = (),
        versions: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> ReadView:
        """Return the view after one committed write (its sequence number: ``version``).

        ``born``: new internal ids, ``born_keys`` their external id keys; ``died``:
        ids that were deleted or replaced (may include ids born in the same
        write); ``rows``: space -> (ids, rows); ``touched``: ids whose payload
        alone changed (a new version, same internal id); ``versions``: the versions of ``born`` and of
        ``touched`` when they are not all ``version`` (a catch-up over several writes).
        """
        capacity = len(self.alive)
        if next_iid > capacity:
            capacity = max(next_iid, 2 * capacity)
        point_ids = self.ids if capacity == self.ids.capacity else self.ids.grown(capacity, self.n)
        if versions is None:
            point_ids.put(born, born_keys, version)
            point_ids.set_version(touched, version)
        else:
            point_ids.put(born, born_keys, versions[0])
            point_ids.set_version(touched, versions[1])
        alive = _grown(self.alive, capacity, self.n)
        alive[born] = True
        alive[died] = False
        spaces = []
        for index, data in enumerate(self.spaces):
            matrix = data.matrix
            sq_norms = data.sq_norms
            if capacity > len(matrix):
                matrix = self.store(index).allocate(index, capacity, matrix.shape[1], data.matrix, self.n)
                sq_norms = _grown(data.sq_norms, capacity, self.n)
            present = _grown(data.present, capacity, self.n)
            if index in rows:
                ids, values = rows[index]
                if data.normalise:
                    values = normalise(values)
                where = _rows_at(ids)
                matrix[where] = values
                sq_norms[where] = np.einsum("ij,ij->i", values, values)
                present[where] = True
            live = int(np.count_nonzero(present[:next_iid] & alive[:next_iid]))
            spaces.append(SpaceData(matrix, present, sq_norms, live, data.normalise))
        count = int(np.count_nonzero(alive[:next_iid]))
        return ReadView(next_iid, alive, count, tuple(spaces), point_ids, self.stores, version)


def _rows_at(iids: np.ndarray) -> Any:
    """Where ascending internal ids ``iids`` sit: a slice when they are one run (a block copy, no
    scatter: new points always are), else the ids themselves."""
    if len(iids) and iids[-1] - iids[0] + 1 == len(iids):
        return slice(int(iids[0]), int(iids[-1]) + 1)
    return iids


def _grown(array: np.ndarray, capacity: int, used: int) -> np.ndarray:
    out = np.zeros(capacity, dtype=array.dtype)
    out[:used] = array[:used]
    return out
