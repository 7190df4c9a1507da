"""Upserts whose vectors are one float matrix: validated whole, never float by float.

A bulk load is nearly always ``n`` points with one unnamed dense vector each (and a payload). pydantic
would validate it one float at a time (a 1,000 x 384 batch: 384,000 Python calls); numpy turns the
rows into one float32 matrix in one pass, and the collection checks its shape and finiteness in a few
vectorised calls. The embedded client (numpy arrays, lists) and the REST server (parsed JSON) both
build their batches here; whatever does not fit (named or sparse vectors, ragged rows, strings,
booleans) returns None and takes the model's own validation, so errors still name the field.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb.models.points import PointsBatch, PointStruct

_POINT_FIELDS = frozenset({"id", "vector", "payload"})


def dense_matrix(rows: Any) -> Optional[np.ndarray]:
    """``rows`` (lists of numbers, or arrays) as one 2-d numeric array, or None when they are not that
    (ragged, strings, None, booleans: numpy would silently take those as 0 and 1, the model refuses them)."""
    if isinstance(rows, np.ndarray):
        matrix = rows
    elif isinstance(rows, list) and rows:
        if isinstance(rows[0], np.ndarray):
            try:
                matrix = np.stack(rows)
            except ValueError:
                return None
        else:
            try:
                matrix = np.asarray(rows)
            except ValueError:  # ragged rows
                return None
            if matrix.ndim == 2 and matrix.dtype.kind in "fiu" and _has_bools(rows, matrix):
                return None
    else:
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "fiu":
        return None
    return matrix


def _has_bools(rows: list[Any], matrix: np.ndarray) -> bool:
    """Whether a list row held a bool: only rows with an exact 0 or 1 can have, and embeddings rarely
    hold one, so few rows are looked at in Python."""
    suspects = np.flatnonzero(((matrix == 0) | (matrix == 1)).any(axis=1))
    return any(type(x) is bool for i in suspects.tolist() if isinstance(rows[i], list) for x in rows[i])


def as_columns(points: list[Any]) -> Optional[dict[str, Any]]:
    """Points that each hold one unnamed dense vector, as ``{ids, vectors: matrix, payloads}``; None for
    anything else (named vectors, sparse, odd types), which then takes the per-point path."""
    if not points:
        return None
    ids, rows, payloads = [], [], []
    for p in points:
        if isinstance(p, PointStruct):
            ids.append(p.id)
            rows.append(p.vector)
            payloads.append(p.payload)
        elif isinstance(p, dict) and "id" in p and "vector" in p and p.keys() <= _POINT_FIELDS:
            ids.append(p["id"])
            rows.append(p["vector"])
            payloads.append(p.get("payload"))
        else:
            return None
        if not isinstance(rows[-1], (np.ndarray, list)):
            return None
    matrix = dense_matrix(rows)
    if matrix is None:
        return None
    return {"ids": ids, "vectors": matrix, "payloads": payloads}


def batch_with_matrix(points: dict[str, Any], extra: dict[str, Any]) -> PointsBatch:
    """A :class:`PointsBatch` of ``points`` (``ids``, ``vectors`` a matrix, ``payloads``) and ``extra``
    (``update_filter``, ...): all validated but the matrix, and payloads that are plain dicts (they go to
    orjson as they are). Raises pydantic's ValidationError for the rest, as ``model_validate`` would."""
    vectors: np.ndarray = points["vectors"]
    payloads = points.get("payloads")
    plain_payloads = isinstance(payloads, list) and all(p is None or isinstance(p, dict) for p in payloads)
    head = {**points, "vectors": []}
    if plain_payloads:
        head["payloads"] = None
    req = PointsBatch.model_validate({"batch": head, **extra})
    req.batch.vectors = vectors  # type: ignore[assignment]
    if plain_payloads:
        req.batch.payloads = payloads
    return req


__all__ = ["as_columns", "batch_with_matrix", "dense_matrix"]
