"""The read-only face a stored point shows to filter predicates.

One view object is re-bound to each point of a scan instead of allocating a new
one per point, and the payload is decoded only if a condition asks for it, so a
``has_id`` filter never pays for JSON decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import lmdb
import orjson

from vecdb.engine.settings import MultiSpace, SparseSpace, VectorSpace, space_index
from vecdb.ids import PointId
from vecdb.storage.points import PointsTables, StoredPoint


class StoredPointView:
    __slots__ = ("_point", "_payload", "_has_vector")

    def __init__(self, has_vector: Callable[[int, str], bool]) -> None:
        self._has_vector = has_vector
        self._point: Optional[StoredPoint] = None
        self._payload: Optional[dict[str, Any]] = None

    def bind(self, point: StoredPoint) -> StoredPointView:
        self._point = point
        self._payload = None
        return self

    @property
    def id(self) -> PointId:
        assert self._point is not None
        return self._point.id

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            assert self._point is not None
            self._payload = orjson.loads(self._point.payload_json)
        return self._payload

    def has_vector(self, name: str) -> bool:
        assert self._point is not None
        return self._has_vector(self._point.iid, name)


def stored_has_vector(
    tables: PointsTables,
    txn: lmdb.Transaction,
    spaces: list[VectorSpace],
    iid: int,
    name: str,
    sparse: Sequence[SparseSpace] = (),
    multi: Sequence[MultiSpace] = (),
) -> bool:
    """Whether a stored point has a (dense, sparse or multi) vector named ``name``, as of ``txn``."""
    index = space_index(spaces, name)
    if index is not None:
        return tables.get_vector(txn, iid, index) is not None
    multi_space = next((s for s in multi if s.name == name), None)
    if multi_space is not None:
        return tables.has_multi(txn, iid, multi_space.index)
    sparse_space = next((s for s in sparse if s.name == name), None)
    return sparse_space is not None and tables.has_sparse(txn, iid, sparse_space.index)
