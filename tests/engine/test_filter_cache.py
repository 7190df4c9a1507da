"""Filter masks are cached per read view (``engine/mask_cache.py``): a repeated filter must still see
every write, delete, payload change and payload-index change made since it was last computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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


def test_masks_are_copies_and_the_budget_holds() -> None:
    cache = MaskCache(budget=4000, entries=3)
    mask = np.zeros(1000, dtype=bool)
    cache.put("a", mask)
    mask[0] = True
    got = cache.get("a")
    assert got is not None and not got.any()  # stored as it was put
    got[1] = True
    again = cache.get("a")
    assert again is not None and not again.any()  # handed out as a copy
    for key in "bcd":
        cache.put(key, np.ones(1000, dtype=bool))
    assert cache.get("a") is None and cache.get("d") is not None  # the oldest went first
    cache.put("huge", np.ones(2000, dtype=bool))  # over a quarter of the budget: not kept
    assert cache.get("huge") is None
