"""The routing rules of sharded collections (issue 18, ``vecdb/cluster/sharding.py``): placement is the
same in every process and spelling of an id, spreads points evenly, and the merge of shards' answers
equals a single collection's answer, ids and scores (exact plans), at every offset, with filters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb.cluster.sharding import merge_ranked, shard_of, split_by_shard
from vecdb.errors import InvalidInput

PINNED = [2, 0, 2, 2, 3, 0, 2, 1, 2, 0, 1, 2]  # shard_of(0..11, 4): a change here moves stored points


def test_placement_is_pinned_and_the_same_in_every_process() -> None:
    assert [shard_of(i, 4) for i in range(12)] == PINNED
    code = "from vecdb.cluster.sharding import shard_of; print([shard_of(i, 4) for i in range(12)])"
    for seed in ("0", "12345"):  # (Python's own hash() would differ between these)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        )
        assert out.stdout.strip() == str(PINNED)
    spellings = [
        "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
        "5C56C79369F34FBF87E6C4BF54C28C26",
        "urn:uuid:5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
    ]
    assert len({shard_of(s, 7) for s in spellings}) == 1
    assert shard_of(99, 1) == 0
    with pytest.raises(InvalidInput, match="shard_number"):
        shard_of(1, 0)


def test_placement_spreads_evenly() -> None:
    counts = np.bincount([shard_of(i, 8) for i in range(80_000)], minlength=8)
    assert counts.min() > 0.96 * 10_000 and counts.max() < 1.04 * 10_000
    groups = split_by_shard([3, 9, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", 3], 3)
    assert sorted(p for g in groups for p in g) == [0, 1, 2, 3] and all(g == sorted(g) for g in groups)


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_merged_shard_answers_equal_one_collection(tmp_path: Path, distance: str) -> None:
    rng = np.random.default_rng(51)
    n, shards = 600, 3
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    points = [{"id": i, "vector": vectors[i].tolist(), "payload": {"g": i % 4}} for i in range(n)]
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("one", {"size": 8, "distance": distance})
    c.upsert("one", points)
    for s, positions in enumerate(split_by_shard([p["id"] for p in points], shards)):
        c.create_collection(f"shard{s}", {"size": 8, "distance": distance})
        c.upsert(f"shard{s}", [points[j] for j in positions])
    flt = {"must_not": [{"key": "g", "match": {"value": 1}}]}
    for q in rng.normal(size=(6, 8)).astype(np.float32):
        for offset, limit, query_filter in ((0, 10, None), (7, 5, flt), (20, 10, None)):
            want = c.query_points("one", query=q, limit=limit, offset=offset, query_filter=query_filter).points
            answers = [
                c.query_points(f"shard{s}", query=q, limit=offset + limit, query_filter=query_filter).points
                for s in range(shards)
            ]
            got = merge_ranked(answers, offset, limit, lambda p: p.score, higher_is_better=distance == "Cosine")
            assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in want]
    c.close()
