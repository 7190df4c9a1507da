"""A filtered scroll served from the filter's mask (payload index answers it) pages exactly as the
walk of the ids in order does (the same collection without the payload index), and as qdrant-client's
local mode does: integer and UUID ids mixed, deletes, overwrites, offsets inside and outside the
matches, and limits that end exactly at the last match."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from vecdb.engine import read


def _points(rng: np.random.Generator) -> list[dict[str, Any]]:
    ids: list[Any] = [int(i) for i in rng.choice(10_000, size=300, replace=False)]
    ids += [str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | 7)) for _ in range(60)]
    return [
        {"id": pid, "vector": rng.random(4).tolist(), "payload": {"user": int(rng.integers(0, 12)), "n": j}}
        for j, pid in enumerate(ids)
    ]


def _pages(c: Any, flt: Any, limit: int, offset: Any = None) -> list[tuple[list[Any], Optional[Any]]]:
    """Every page from ``offset`` on: (ids with their ``n`` payload, next offset)."""
    out = []
    for _ in range(100):
        points, offset = c.scroll("c", scroll_filter=flt, limit=limit, offset=offset, with_payload=True)
        out.append(([(str(p.id), p.payload["n"]) for p in points], None if offset is None else str(offset)))
        if offset is None:
            return out
    raise AssertionError("no last page")


@pytest.mark.parametrize("seed", [0, 1])
def test_scroll_by_mask_pages_as_the_id_walk_and_local_mode(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = _points(rng)
    indexed, plain = vecdb.Client(path=tmp_path / "indexed"), vecdb.Client(path=tmp_path / "plain")
    local = QdrantClient(":memory:")
    for c in (indexed, plain, local):
        c.create_collection("c", models.VectorParams(size=4, distance=models.Distance.COSINE))
        c.upsert("c", [models.PointStruct(**p) for p in points])
    indexed.create_payload_index("c", "user", "integer")
    gone = [points[j]["id"] for j in rng.choice(len(points), size=40, replace=False)]
    again = [dict(points[j], payload={"user": 3, "n": 1000 + j}) for j in range(0, len(points), 17)]
    for c in (indexed, plain, local):
        c.delete("c", models.PointIdsList(points=gone))
        c.upsert("c", [models.PointStruct(**p) for p in again])
    filters = [
        {"must": [{"key": "user", "match": {"value": 3}}]},
        {"must": [{"key": "user", "match": {"any": [1, 5, 7]}}]},
        {"must": [{"key": "user", "range": {"gte": 10}}]},
        {"must_not": [{"key": "user", "range": {"lt": 11}}]},
    ]
    offsets: list[Any] = [None, 0, int(points[5]["id"]), points[-3]["id"], 99_999]
    served = 0
    real = read.Reader._scroll_by_mask

    def counted(self: Any, *args: Any) -> Any:
        nonlocal served
        page = real(self, *args)
        served += page is not None
        return page

    read.Reader._scroll_by_mask = counted  # type: ignore[method-assign]
    try:
        for flt in filters:
            qflt = models.Filter.model_validate(flt)
            for limit in (1, 7, 50, 400):
                for offset in offsets:
                    expected = _pages(local, qflt, limit, offset)
                    assert _pages(plain, flt, limit, offset) == expected, (flt, limit, offset)
                    assert _pages(indexed, flt, limit, offset) == expected, (flt, limit, offset)
    finally:
        read.Reader._scroll_by_mask = real  # type: ignore[method-assign]
    assert served > 0  # (the indexed client's pages did come from the mask)
