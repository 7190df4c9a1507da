"""``engine/top_k.best``: the k best by score, ties by lower id, against a full sort, including the
cases numpy's partition is slow on (thousands of equal scores)."""

from __future__ import annotations

import numpy as np
import pytest

from vecdb.engine.top_k import best


def _sorted(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[float, int]]:
    pairs = sorted(zip(scores.tolist(), ids.tolist(), strict=True), key=lambda p: (-p[0], p[1]))
    return pairs[:k]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_a_full_sort(dtype: type) -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(0, 400))
        ids = rng.permutation(10_000)[:n].astype(np.int64)
        scores = rng.integers(0, int(rng.integers(1, 30)), size=n).astype(dtype) / 4  # many ties
        k = int(rng.integers(1, 50))
        assert best(ids, scores, k) == _sorted(ids, scores, k), trial


def test_thousands_of_ties_keep_the_lowest_ids() -> None:
    ids = np.arange(20_000, dtype=np.int64)[::-1].copy()
    scores = np.full(20_000, 1.5, dtype=np.float32)
    scores[[7, 11]] = [3.0, 2.0]
    got = best(ids, scores, 5)
    assert got == [(3.0, int(ids[7])), (2.0, int(ids[11])), (1.5, 0), (1.5, 1), (1.5, 2)]
