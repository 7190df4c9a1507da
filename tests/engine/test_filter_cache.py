"""Filter masks are cached per read view (``engine/mask_cache.py``): a repeated filter must still see
every write, delete, payload change and payload-index change made since it was last computed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecdb
from vecdb.engine.mask_cache import MaskCache

FLT = {"must": [{"key": "user", "match": {"value": "ann"}}]}
TEXT = {"must": [{"key": "note", "match": {"text": "seat"}}]}


def _ids(c: Any, flt: dict[str, Any]) -> list[int]:
    return sorted(p.id for p in c.query_points("c", query=[1.0, 0.0], query_filter=flt, limit=100).points)


def test_a_repeated_filter_sees_every_change(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "db")
    c.create_collection("c", {"size": 2, "distance": "Dot"})
    c.upsert(
        "c", [{"id": i, "vector": [1.0, float(i)], "payload": {"user": "ann" if i % 2 else "bob"}} for i in range(10)]
    )
    for _ in range(2):  # indexed or not, computed or cached
        assert _ids(c, FLT) == [1, 3, 5, 7, 9]
        assert _ids(c, FLT) == [1, 3, 5, 7, 9]
        c.upsert("c", [{"id": 20, "vector": [1.0, 0.0], "payload": {"user": "ann"}}])
        assert _ids(c, FLT) == [1, 3, 5, 7, 9, 20]
        c.delete("c", [3])
        assert _ids(c, FLT) == [1, 5, 7, 9, 20]
        c.set_payload("c", {"user": "bob"}, [5])
        assert _ids(c, FLT) == [1, 7, 9, 20]
        c.overwrite_payload("c", {"user": "ann"}, [2])
        assert _ids(c, FLT) == [1, 2, 7, 9, 20]
        c.upsert(
            "c",
            [{"id": i, "vector": [1.0, float(i)], "payload": {"user": "ann" if i % 2 else "bob"}} for i in range(10)],
        )
        c.delete("c", [20])
        c.create_payload_index("c", "user", "keyword")


def test_a_text_index_changes_what_a_cached_text_filter_matches(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "db")
    c.create_collection("c", {"size": 2, "distance": "Dot"})
    c.upsert("c", [{"id": 1, "vector": [1.0, 0.0], "payload": {"note": "two seats by the window"}}])
    assert _ids(c, TEXT) == []  # Qdrant's default tokenizer does not stem
    assert _ids(c, TEXT) == []
    c.create_payload_index(
        "c", "note", {"type": "text", "tokenizer": "word", "stemmer": {"type": "snowball", "language": "english"}}
    )
    assert _ids(c, TEXT) == [1]
    c.delete_payload_index("c", "note")
    assert _ids(c, TEXT) == []


def test_masks_are_kept_read_only_and_the_budget_holds() -> None:
    cache = MaskCache(budget=4000, entries=3)
    mask = np.zeros(1000, dtype=bool)
    kept = cache.put("a", mask)
    mask[0] = True
    got = cache.get("a")
    assert got is not None and not got.any()  # stored as it was put (a copy)
    assert got is kept and cache.get("a") is got  # then handed out as it is: one object per filter
    with pytest.raises(ValueError):
        got[1] = True  # read-only: a caller that changes a mask copies it first
    for key in "bcd":
        cache.put(key, np.ones(1000, dtype=bool))
    assert cache.get("a") is None and cache.get("d") is not None  # the oldest went first
    cache.put("huge", np.ones(2000, dtype=bool))  # over a quarter of the budget: not kept
    assert cache.get("huge") is None


def test_allow_lists_derived_from_kept_masks_follow_writes(tmp_path: Path) -> None:
    """On an indexed collection, a repeated filter reuses the allow-list (and search bitmap) derived
    from its kept mask (``engine/planner.py``'s ``FilteredRows``): the answers must equal an exact
    scan's every time, through deletes and upserts, at a selectivity that searches the graph and at
    one that scans exactly."""
    rng = np.random.default_rng(11)
    n, dim = 3000, 8
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    c = vecdb.Client(path=tmp_path / "db")
    c.create_collection(
        "c",
        {"size": dim, "distance": "Cosine"},
        optimizers_config={"indexing_threshold": 1},
        hnsw_config={"full_scan_threshold": 10},  # (KB: half the points is over it, 30 points under it)
    )
    c.create_payload_index("c", "r", "integer")
    c.upsert("c", {"ids": list(range(n)), "vectors": vectors, "payloads": [{"r": i % 100} for i in range(n)]})
    deadline = time.monotonic() + 60
    while c.get_collection("c").status != "green" and time.monotonic() < deadline:
        time.sleep(0.05)
    queries = rng.normal(size=(5, dim)).astype(np.float32)
    for flt, plan in (
        ({"must": [{"key": "r", "range": {"lt": 50}}]}, "hnsw"),
        ({"must": [{"key": "r", "match": {"value": 7}}]}, "exact"),
    ):

        def check(flt: dict[str, Any] = flt) -> list[int]:
            first: list[int] = []
            for q in queries:
                for _ in range(3):  # computed, then kept
                    got = c.query_points("c", query=q, query_filter=flt, limit=10, search_params={"hnsw_ef": 3000})
                    exact = c.query_points("c", query=q, query_filter=flt, limit=10, search_params={"exact": True})
                    assert [p.id for p in got.points] == [p.id for p in exact.points]
                first = first or [p.id for p in got.points]
            return first

        explain = c.query_points("c", query=queries[0], query_filter=flt, limit=10, explain=True).explain
        assert explain is not None and explain["plan"] == plan
        top = check()
        c.delete("c", top[:3])
        assert not set(top[:3]) & set(check())
        c.upsert("c", [{"id": n + 1, "vector": queries[0], "payload": {"r": 7}}])
        assert check()[0] == n + 1
        c.delete("c", [n + 1])
    nothing = {"must": [{"key": "r", "range": {"gt": 1000}}]}  # kept, and allows no point at all
    for _ in range(3):
        assert c.query_points("c", query=queries[0], query_filter=nothing, limit=10).points == []
    c.close()
