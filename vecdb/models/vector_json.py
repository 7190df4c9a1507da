"""Upsert bodies decoded with their vectors straight into numpy, never as Python floats.

A batch of 1,000 x 384 vectors is 384,000 JSON numbers (7.6 MB as qdrant-client writes them).
orjson makes a Python float of each and numpy then copies them into an array: about 60 ms on the
2-core machine, most of the cost of an upsert. simdjson (``pysimdjson``) parses the document without
making objects, and exports an array of numbers as one buffer of doubles (``as_buffer``): about
20 ms for the same batch. The doubles are the same ones (both parse decimal text with correct
rounding); the float32 the collection keeps is the same cast of them.

Only the common shapes take this path: ``{"batch": {"ids", "vectors": [[...]], "payloads"}}`` and
``{"points": [{"id", "vector": [...], "payload"}, ...]}`` with one unnamed dense vector per point.
Anything else (named or sparse vectors, booleans or strings among the numbers, ragged rows, repeated
keys, a document simdjson refuses) returns None, and the body takes orjson and the model's own
validation, so what is accepted and every error message stay exactly as they were.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import orjson

try:  # a compiled dependency: without a wheel for the platform, upserts take the orjson path
    import simdjson
except ImportError:  # pragma: no cover - the wheel exists for the platforms vecdb supports
    simdjson = None  # type: ignore[assignment]

_POINT_FIELDS = frozenset({"id", "vector", "payload"})
_FAILURES = (ValueError, TypeError, KeyError, RuntimeError, IndexError)


def upsert_columns(body: bytes) -> Optional[tuple[dict[str, Any], dict[str, Any], bool]]:
    """``(columns, extra, from_points)`` of an upsert body in a common shape: ``columns`` holds ``ids``,
    ``vectors`` (a float32 matrix) and ``payloads``; ``extra`` the body's other fields (``update_filter``,
    ...); ``from_points``: the body was a points list. None for any other body."""
    if simdjson is None:
        return None
    try:
        doc = simdjson.Parser().parse(body)
        if not isinstance(doc, simdjson.Object):
            return None
        keys = _unique_keys(doc)
        if keys is None:
            return None
        extra = {k: _plain(doc[k]) for k in keys if k not in ("batch", "points")}
        from_points = "points" in keys
        if from_points:
            columns = _points(doc["points"])
        elif "batch" in keys:
            columns = _batch(doc["batch"])
        else:
            return None
        if columns is None or not _only_rows(body, from_points, columns, extra):
            return None
        return columns, extra, from_points
    except _FAILURES:
        return None
    return None


def _only_rows(body: bytes, from_points: bool, columns: dict[str, Any], extra: dict[str, Any]) -> bool:
    """Whether the vectors held numbers only, no nested arrays (``as_buffer`` flattens ``[[0.1], 0.2]``
    to ``[0.1, 0.2]``, which the model refuses): the body's ``[`` bytes are exactly those of the vector
    arrays and of everything else, as orjson writes everything else back (``[`` inside strings included)."""
    vector_arrays = 1 + len(columns["vectors"])  # the points list or the list of vectors, then one per vector
    if from_points:  # ids and payloads sat in the point objects: their lists here are not in the body
        others = orjson.dumps([columns["ids"], columns["payloads"], extra]).count(b"[") - 3
    else:
        others = orjson.dumps([{k: v for k, v in columns.items() if k != "vectors"}, extra]).count(b"[") - 1
    return body.count(b"[") == vector_arrays + others


def _batch(batch: Any) -> Optional[dict[str, Any]]:
    if not isinstance(batch, simdjson.Object):
        return None
    keys = _unique_keys(batch)
    if keys is None or "vectors" not in keys:
        return None
    vectors = batch["vectors"]
    if not isinstance(vectors, simdjson.Array) or not len(vectors):
        return None
    lengths = {len(row) if isinstance(row, simdjson.Array) else -1 for row in vectors}
    if len(lengths) != 1 or min(lengths) < 1:
        return None  # ragged, or not rows of numbers
    matrix = _doubles(vectors).reshape(len(vectors), lengths.pop())
    columns = {k: _plain(batch[k]) for k in keys if k != "vectors"}
    columns["vectors"] = _float32(matrix)
    return columns


def _points(points: Any) -> Optional[dict[str, Any]]:
    if not isinstance(points, simdjson.Array) or not len(points):
        return None
    ids, rows, payloads = [], [], []
    for point in points:
        if not isinstance(point, simdjson.Object):
            return None
        keys = _unique_keys(point)
        if keys is None or not {"id", "vector"} <= set(keys) <= _POINT_FIELDS:
            return None
        vector = point["vector"]
        if not isinstance(vector, simdjson.Array) or not len(vector):
            return None
        ids.append(_plain(point["id"]))
        rows.append(_doubles(vector))
        payloads.append(_plain(point["payload"]) if "payload" in keys else None)
    if len({len(row) for row in rows}) != 1:
        return None
    return {"ids": ids, "vectors": _float32(np.stack(rows)), "payloads": payloads}


def _float32(matrix: np.ndarray) -> np.ndarray:
    """The float32 cast; numbers past float32's range become infinities, which the collection refuses
    (as it does on the orjson path), without a numpy warning here."""
    with np.errstate(over="ignore"):
        return matrix.astype(np.float32)


def _doubles(array: Any) -> np.ndarray:
    """An array of JSON numbers (rows of them, flattened) as float64; TypeError for anything else
    (booleans, strings, null, deeper nesting)."""
    return np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)


def _unique_keys(obj: Any) -> Optional[list[str]]:
    """An object's keys, or None when one repeats (orjson keeps the last; this path leaves it to orjson)."""
    keys = list(obj.keys())
    return keys if len(set(keys)) == len(keys) else None


def _plain(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


__all__ = ["upsert_columns"]
