"""Validation of write requests before any transaction: canonical ids, encoded payloads, float32 rows.

Everything a write can refuse is refused here, so the transaction that follows only applies.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import orjson

from vecdb.engine.settings import MultiSpace, SparseSpace, VectorSpace, space_by_name
from vecdb.engine.views import SparseRow, prepare_rows, split_point_vectors
from vecdb.errors import InvalidInput
from vecdb.ids import PointId
from vecdb.models.points import Batch, PointInsertOperations, PointsBatch

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


class PreparedPoints:
    """A validated upsert: canonical ids, encoded payloads, float32 rows per vector space and
    sparse and multivector rows per space of theirs (space -> (point positions, rows))."""

    def __init__(
        self,
        ids: list[PointId],
        payloads: list[bytes],
        rows: dict[int, tuple[list[int], np.ndarray]],
        sparse: Optional[dict[int, tuple[list[int], list[SparseRow]]]] = None,
        multi: Optional[dict[int, tuple[list[int], list[np.ndarray]]]] = None,
    ):
        self.ids = ids
        self.payloads = payloads
        self.rows = rows
        self.sparse = sparse or {}
        self.multi = multi or {}

    @staticmethod
    def from_request(
        op: PointInsertOperations,
        spaces: list[VectorSpace],
        sparse: list[SparseSpace] | None = None,
        multi: list[MultiSpace] | None = None,
    ) -> PreparedPoints:
        if isinstance(op, PointsBatch):
            return PreparedPoints._from_batch(op.batch, spaces, sparse or [], multi or [])
        ids = [p.id for p in op.points]
        payloads = [encode_payload(p.payload, f"points[{i}].payload") for i, p in enumerate(op.points)]
        split = split_point_vectors([p.vector for p in op.points], spaces, "points", sparse or [], multi or [])
        return PreparedPoints(
            ids, payloads, prepare_groups(split.dense, spaces, "points.vector"), split.sparse, split.multi
        )

    @staticmethod
    def _from_batch(
        batch: Batch, spaces: list[VectorSpace], sparse: list[SparseSpace], multi: list[MultiSpace]
    ) -> PreparedPoints:
        n = len(batch.ids)
        payloads_in = batch.payloads if batch.payloads is not None else [None] * n
        if len(payloads_in) != n:
            raise InvalidInput(f"batch.payloads: expected {n} payloads (one per id), got {len(payloads_in)}")
        payloads = [encode_payload(p, f"batch.payloads[{i}]") for i, p in enumerate(payloads_in)]
        if isinstance(batch.vectors, np.ndarray) and any(s.name == "" for s in spaces):  # the client's array fast path
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
            split = split_point_vectors(per_point, spaces, "batch.vectors", sparse, multi)
        else:
            if len(batch.vectors) != n:
                raise InvalidInput(f"batch.vectors: expected {n} vectors (one per id), got {len(batch.vectors)}")
            split = split_point_vectors(list(batch.vectors), spaces, "batch.vectors", sparse, multi)
        rows = prepare_groups(split.dense, spaces, "batch.vectors")
        return PreparedPoints(list(batch.ids), payloads, rows, split.sparse, split.multi)


def prepare_groups(
    grouped: dict[int, tuple[list[int], list[Any]]], spaces: list[VectorSpace], field: str
) -> dict[int, tuple[list[int], np.ndarray]]:
    out = {}
    for space in spaces:
        positions, raw = grouped[space.index]
        if positions:
            label = f"{field}.{space.name}" if space.name else field
            out[space.index] = (positions, prepare_rows(raw, space, label))
    return out
