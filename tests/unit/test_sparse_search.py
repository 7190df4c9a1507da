"""The sparse search's compiled top k (scratch sums, heap pick, common terms looked up rather than
added) against the plain path (postings sorted by id, every sum exact), on one inverted index of
Zipf-skewed random data: many queries, with deletes, filters, IDF and negative weights, must give the
same top k."""

from __future__ import annotations

import math
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


def _plain_top(
    view: SimpleNamespace, index: InvertedIndex, q_terms: np.ndarray, q: np.ndarray, k: int, mask: object, idf: bool
) -> list[tuple[float, int]]:
    """Every posting summed exactly (float64, by id), IDF as Qdrant's local mode computes it."""
    ranges = index.ranges(q_terms, view.n)
    weights = q.astype(np.float64)
    if idf:
        docs = int(np.count_nonzero(view.alive[: view.n] & index.present[: view.n]))
        df = np.zeros(len(q_terms), dtype=np.int64)
        for j, ids, _, _ in ranges:
            df[j] += int(np.count_nonzero(view.alive[ids]))
        weights = weights * np.log((docs - df + 0.5) / (df + 0.5) + 1.0)
    ids, scores = sparse_search._scored(view, ranges, weights, mask)  # type: ignore[arg-type]
    return best(ids, scores, k) if len(ids) else []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_top_ranks_as_the_plain_path(seed: int) -> None:
    n, terms = 5000, 300
    index, dead = _index(n, terms, seed)
    compacted = index.compacted(np.ones(n, dtype=bool), n)
    rng = np.random.default_rng(100 + seed)
    for with_dead in (False, True):
        alive = ~dead if with_dead else np.ones(n, dtype=bool)
        for trial in range(150):
            # an older view (fewer ids) now and then: the newest segment is cut at its n
            view = SimpleNamespace(n=n if trial % 5 else n - 350, alive=alive)
            size = int(rng.integers(1, 7))
            # common and rare terms mixed, as text queries mix "the" and "tokenizer"
            q_terms = np.unique(np.concatenate([rng.integers(0, 8, size=1), rng.integers(0, terms, size=size)]))
            q_terms = q_terms.astype(np.uint32)
            q = rng.uniform(0.1, 3.0, size=len(q_terms)).astype(np.float32)
            q[q_terms < 8] *= 0.05  # common terms weigh little (their IDF is small)
            if trial % 7 == 6:
                q[0] = -q[0]  # a negative weight: no pruning, hits by shared terms alone
            mask = None if trial % 3 else rng.random(n) < 0.3
            k = int(rng.choice([1, 5, 10, 40]))
            idf = trial % 2 == 1
            docs = int(np.count_nonzero(alive[: view.n] & index.present[: view.n]))
            plain = _plain_top(view, index, q_terms, q, k + 20, mask, idf)
            for searched in (index, compacted):
                ids, scores = searched.top(q_terms, q, view.n, k, alive, with_dead, mask, docs if idf else None)
                _assert_ranks_as(ids.tolist(), scores.tolist(), plain, k, (seed, trial, with_dead))


def _assert_ranks_as(
    ids: list[int], scores: list[float], plain: list[tuple[float, int]], k: int, where: object
) -> None:
    """The same scores, and the same ids but where the plain path's score ties with another of its
    ranking: sums added in another order may round to the other side of a float32 step, which only
    reorders points whose exact scores agree to about 1e-7."""
    assert len(ids) == min(k, len(plain)), where
    np.testing.assert_allclose(scores, [s for s, _ in plain[:k]], rtol=1e-6, err_msg=str(where))
    for pos, (score, iid) in enumerate(plain[:k]):
        if ids[pos] != iid:
            tied = [j for s, j in plain if math.isclose(s, score, rel_tol=1e-6)]
            assert len(tied) > 1 and ids[pos] in tied, (where, pos, ids, plain[:k])


def test_ties_rank_by_lower_id_and_zero_sums_are_hits() -> None:
    """Equal documents tie by the thousand (duplicates); a point whose shared terms sum to 0 is still a
    hit, and one sharing no term is not."""
    n = 3000
    rows = [np.array([1, 2], np.uint32)] * (n - 2) + [np.array([3], np.uint32), np.array([4], np.uint32)]
    values = [np.array([1.0, 0.5], np.float32)] * (n - 2) + [np.array([0.0], np.float32)] * 2
    index = InvertedIndex.empty().added(n, np.arange(n), rows, values, np.ones(n, dtype=bool), 1)
    alive = np.ones(n, dtype=bool)
    ids, scores = index.top(np.array([1, 2], np.uint32), np.ones(2, np.float32), n, 5, alive, False, None, None)
    assert ids.tolist() == [0, 1, 2, 3, 4] and scores.tolist() == [1.5] * 5
    ids, scores = index.top(np.array([3, 9], np.uint32), np.ones(2, np.float32), n, 5, alive, False, None, None)
    assert ids.tolist() == [n - 2] and scores.tolist() == [0.0]
