"""Vectors in memory: validation of user input and the copy-on-publish snapshot that searches read.

Searches never take a lock. A writer builds a new :class:`Snapshot` after its
LMDB transaction commits and publishes it with one attribute assignment; a
search keeps using whichever snapshot it started with. Rows are only ever
appended (internal ids are never reused), so a new snapshot can share the
matrix of the old one: the old one simply does not look past its ``n``.
Only the small ``alive``/``present`` masks are copied per write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdb.config import DEFAULT_VECTOR, VectorSpace
from vecdb.errors import InvalidInput, Unsupported
from vecdb.models.collections import Distance
from vecdb.models.points import SparseVector

_MIN_CAPACITY = 1024


def prepare_rows(rows: Any, space: VectorSpace, field: str) -> np.ndarray:
    """Turn user vectors for one space into a validated float32 matrix ``[m, size]``.

    Cosine vectors are normalised here, once, at write time (as Qdrant does), so
    cosine search is a plain dot product.
    """
    if isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.dtype.kind in "fiu":
        if rows.shape[1] != space.size:  # an array is validated whole: no per-row Python loop
            raise InvalidInput(
                f"{field}[0]: Vector dimension error: expected dim: {space.size}, got {rows.shape[1]}"
            )
        matrix = rows.astype(np.float32, copy=False)
    else:
        for i, row in enumerate(rows):
            if isinstance(row, SparseVector):
                raise Unsupported(f"{field}[{i}]: sparse vectors are not supported yet")
            if len(row) and isinstance(row[0], (list, tuple)):
                raise Unsupported(f"{field}[{i}]: multivectors are not supported yet")
            if len(row) != space.size:
                raise InvalidInput(
                    f"{field}[{i}]: Vector dimension error: expected dim: {space.size}, got {len(row)}"
                )
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), space.size)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidInput(f"{field}[{bad}]: vector contains NaN or infinite components")
    if space.distance is Distance.COSINE:
        matrix = normalise(matrix)
    return np.ascontiguousarray(matrix)


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def split_point_vectors(
    vectors: Sequence[Any], spaces: list[VectorSpace], field: str
) -> dict[int, tuple[list[int], list[Any]]]:
    """Group each point's vector struct by space: space index -> (point positions, raw rows)."""
    by_name = {s.name: s for s in spaces}
    grouped: dict[int, tuple[list[int], list[Any]]] = {s.index: ([], []) for s in spaces}
    for pos, vec in enumerate(vectors):
        named = vec if isinstance(vec, dict) else {DEFAULT_VECTOR: vec}
        for name, row in named.items():
            space = by_name.get(name)
            if space is None:
                raise InvalidInput(f"{field}[{pos}]: Not existing vector name error: {name}")
            grouped[space.index][0].append(pos)
            grouped[space.index][1].append(row)
    return grouped


@dataclass(frozen=True, slots=True)
class SpaceData:
    """Rows of one vector space, indexed by internal id."""

    matrix: np.ndarray  # float32 [capacity, size]
    present: np.ndarray  # bool [capacity]: the row holds a vector of this space
    sq_norms: np.ndarray  # float32 [capacity]: squared norms, for Euclid scoring
    live: int = 0  # rows that are alive and hold a vector of this space


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of which internal ids are live and what their vectors are."""

    n: int
    alive: np.ndarray  # bool [capacity]
    count: int
    spaces: tuple[SpaceData, ...]

    def live(self, space: int, lo: int = 0) -> np.ndarray:
        """Bool mask over internal ids ``lo .. n-1``: alive and holding a vector of ``space``."""
        return self.alive[lo : self.n] & self.spaces[space].present[lo : self.n]  # type: ignore[no-any-return]

    @staticmethod
    def empty(spaces: list[VectorSpace]) -> Snapshot:
        return Snapshot(
            n=0,
            alive=np.zeros(_MIN_CAPACITY, dtype=bool),
            count=0,
            spaces=tuple(
                SpaceData(
                    np.zeros((_MIN_CAPACITY, s.size), dtype=np.float32),
                    np.zeros(_MIN_CAPACITY, dtype=bool),
                    np.zeros(_MIN_CAPACITY, dtype=np.float32),
                )
                for s in spaces
            ),
        )

    @staticmethod
    def loaded(
        spaces: list[VectorSpace], next_iid: int, born: np.ndarray, rows: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> Snapshot:
        """The snapshot of a collection read from storage.

        When every internal id below ``next_iid`` is live with a vector of every
        space (no tombstones), the matrices are sized exactly rather than
        copied into larger zeroed ones; the first write that needs room grows them.
        """
        full = len(born) == next_iid and next_iid >= _MIN_CAPACITY and all(
            s.index in rows and len(rows[s.index][0]) == next_iid for s in spaces
        )
        if not full:
            return Snapshot.empty(spaces).apply(next_iid, born, np.zeros(0, dtype=np.int64), rows)
        datas = []
        for s in spaces:
            # One copy into memory numpy allocates itself: it asks the kernel for huge pages, and a
            # matrix left in the bytes object LMDB's values were joined into scans ~25% slower.
            matrix = np.array(rows[s.index][1], dtype=np.float32, copy=True)
            datas.append(SpaceData(matrix, np.ones(next_iid, dtype=bool), np.einsum("ij,ij->i", matrix, matrix),
                                   next_iid))
        return Snapshot(next_iid, np.ones(next_iid, dtype=bool), next_iid, tuple(datas))

    def apply(
        self,
        next_iid: int,
        born: np.ndarray,
        died: np.ndarray,
        rows: dict[int, tuple[np.ndarray, np.ndarray]],
    ) -> Snapshot:
        """Return the snapshot after one committed write.

        ``born``: new internal ids; ``died``: ids that were deleted or replaced
        (may include ids born in the same write); ``rows``: space -> (ids, rows).
        """
        capacity = len(self.alive)
        if next_iid > capacity:
            capacity = max(next_iid, 2 * capacity)
        alive = _grown(self.alive, capacity, self.n)
        alive[born] = True
        alive[died] = False
        spaces = []
        for index, data in enumerate(self.spaces):
            matrix = data.matrix
            sq_norms = data.sq_norms
            if capacity > len(matrix):
                matrix = np.zeros((capacity, matrix.shape[1]), dtype=np.float32)
                matrix[: self.n] = data.matrix[: self.n]
                sq_norms = _grown(data.sq_norms, capacity, self.n)
            present = _grown(data.present, capacity, self.n)
            if index in rows:
                ids, values = rows[index]
                where: Any = ids
                if len(ids) and ids[-1] - ids[0] + 1 == len(ids) and (len(ids) == 1 or ids[1] > ids[0]):
                    where = slice(int(ids[0]), int(ids[-1]) + 1)  # a run of new ids: copy, no scatter
                matrix[where] = values
                sq_norms[where] = np.einsum("ij,ij->i", values, values)
                present[where] = True
            live = int(np.count_nonzero(present[:next_iid] & alive[:next_iid]))
            spaces.append(SpaceData(matrix, present, sq_norms, live))
        count = int(np.count_nonzero(alive[:next_iid]))
        return Snapshot(next_iid, alive, count, tuple(spaces))


def _grown(array: np.ndarray, capacity: int, used: int) -> np.ndarray:
    out = np.zeros(capacity, dtype=array.dtype)
    out[:used] = array[:used]
    return out
