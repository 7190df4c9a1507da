"""The sparse search's fast path (scratch-array sums, group-maxima pick, common terms looked up
rather than added) against its plain path (postings sorted by id, every sum exact), on one inverted
index of Zipf-skewed random data: many queries, with deletes and filters, must give the same top k."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vecdb.engine import sparse_search
from vecdb.engine.top_k import best
from vecdb.index.sparse import InvertedIndex


def _index(n: int, terms: int, seed: int) -> tuple[InvertedIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, terms + 1) ** 0.9
    alive = np.ones(n, dtype=bool)
    index = InvertedIndex.empty()
    for lo in range(0, n, 700):  # several segments, as a stream of writes leaves them
        hi = min(lo + 700, n)
        rows = [np.flatnonzero(rng.random(terms) < freq).astype(np.uint32) for _ in range(lo, hi)]
        values = [rng.integers(1, 40, size=len(r)).astype(np.float32) / 16 for r in rows]
        index = index.added(hi, np.arange(lo, hi), rows, values, alive, 1)
    return index, rng.random(n) < 0.1  # (and ~10% of the points dead)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_ranks_as_the_plain_path(seed: int) -> None:
    n, terms = 5000, 300
    index, dead = _index(n, terms, seed)
    rng = np.random.default_rng(100 + seed)
    for with_dead in (False, True):
        alive = ~dead if with_dead else np.ones(n, dtype=bool)
        view = SimpleNamespace(n=n, alive=alive, seq=2 if with_dead else 1)
        for trial in range(150):
            size = int(rng.integers(1, 7))
            # common and rare terms mixed, as text queries mix "the" and "tokenizer"
            q_terms = np.unique(np.concatenate([rng.integers(0, 8, size=1), rng.integers(0, terms, size=size)]))
            ranges = index.ranges(q_terms.astype(np.uint32), n)
            q = rng.uniform(0.1, 3.0, size=len(q_terms))
            q[q_terms < 8] *= 0.05  # common terms weigh little (their IDF is small)
            mask = None if trial % 3 else rng.random(n) < 0.3
            k = int(rng.choice([1, 5, 10, 40]))
            fast = sparse_search._dense_top(view, index, ranges, q, k, mask)  # type: ignore[arg-type]
            ids, scores = sparse_search._scored(view, ranges, q, mask)  # type: ignore[arg-type]
            plain = best(ids, scores, k) if len(ids) else []
            assert [i for _, i in fast] == [i for _, i in plain], (seed, trial, with_dead)
            np.testing.assert_allclose([s for s, _ in fast], [s for s, _ in plain], rtol=1e-5)
