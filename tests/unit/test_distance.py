"""The distance table agrees with a brute-force numpy computation of Qdrant's four metrics.

Brute force here means the textbook formulas in float64 (Cosine on normalised
vectors, Dot, the L2 and L1 distances), independent of the table's kernels.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from vecdb.index.distance import METRICS, Kernel, higher_is_better, metric_of, normalise
from vecdb.index.flat import exact_search
from vecdb.models.collections import Distance

DIM = 24


def brute(distance: Distance, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Qdrant's score of every row, from the definitions (float64)."""
    r, q = rows.astype(np.float64), query.astype(np.float64)
    if distance is Distance.COSINE:
        return (r @ q) / (np.linalg.norm(r, axis=1) * np.linalg.norm(q))
    if distance is Distance.DOT:
        return r @ q
    if distance is Distance.EUCLID:
        return np.sqrt(((r - q) ** 2).sum(axis=1))
    return np.abs(r - q).sum(axis=1)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(500, DIM)).astype(np.float32), rng.normal(size=(8, DIM)).astype(np.float32)


def prepared(distance: Distance, x: np.ndarray) -> np.ndarray:
    """As the write path stores rows and the read path prepares queries."""
    return normalise(x) if metric_of(distance).normalised else x


def test_the_table_covers_every_distance() -> None:
    assert set(METRICS) == set(Distance)
    assert [d for d in Distance if metric_of(d).normalised] == [Distance.COSINE]
    assert {d for d in Distance if higher_is_better(d)} == {Distance.COSINE, Distance.DOT}
    assert {d for d in Distance if metric_of(d).indexable} == {Distance.COSINE, Distance.DOT, Distance.EUCLID}
    assert metric_of(Distance.EUCLID).kernel is Kernel.L2 and metric_of(Distance.MANHATTAN).kernel is Kernel.L1


@pytest.mark.parametrize("distance", list(Distance))
def test_scores_and_ranking_match_brute_force(distance: Distance) -> None:
    rows, queries = data()
    metric = metric_of(distance)
    stored = prepared(distance, rows)
    for query in queries:
        want = brute(distance, rows, query)
        got = metric.scores(stored, prepared(distance, query[None, :])[0])
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        best_first = np.argsort(-want if metric.higher_is_better else want, kind="stable")
        np.testing.assert_array_equal(np.argsort(-got if metric.higher_is_better else got)[:5], best_first[:5])


@pytest.mark.parametrize("distance", list(Distance))
def test_exact_search_returns_the_brute_force_top_k(distance: Distance) -> None:
    rows, queries = data(1)
    stored, qs = prepared(distance, rows), prepared(distance, queries)
    allowed = np.ones(len(rows), dtype=bool)
    allowed[::4] = False
    for mask in (None, allowed):
        scores, ids = exact_search(stored, qs, 10, distance, mask)
        for qi, query in enumerate(queries):
            want = brute(distance, rows, query)
            if mask is not None:
                want = np.where(mask, want, -np.inf if higher_is_better(distance) else np.inf)
            order = np.argsort(-want if higher_is_better(distance) else want, kind="stable")[:10]
            np.testing.assert_array_equal(ids[qi], order)
            np.testing.assert_allclose(scores[qi], want[order], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("distance", list(Distance))
def test_a_single_query_ranks_as_the_batch_does(distance: Distance) -> None:
    """One query takes a 1-d route through exact_search; it must give the batch route's ids, ties
    broken to the lower id, with and without a mask, gathered or scanned, and pad with -1 when fewer
    rows are allowed than asked for. Rows are scaled unit vectors: every product is exact whatever
    the BLAS kernel, so ties are real ties (with rounded products, a product of one query and of
    six may differ in the last bit, and near-ties then order differently: that was so before the
    1-d route too)."""
    rng = np.random.default_rng(7)
    rows = np.zeros((300, 6), dtype=np.float32)
    rows[np.arange(300), rng.integers(0, 6, 300)] = rng.integers(1, 3, 300) * rng.choice([-1, 1], 300)
    queries = prepared(distance, rng.integers(-2, 3, size=(6, 6)).astype(np.float32))
    stored = prepared(distance, rows)
    few = np.zeros(len(rows), dtype=bool)
    few[[3, 41, 42, 299]] = True  # gathered (under a third of the rows), fewer than k
    most = np.ones(len(rows), dtype=bool)
    most[::5] = False  # scanned with the mask
    for mask in (None, few, most):
        batch_scores, batch_ids = exact_search(stored, queries, 12, distance, mask)
        for qi in range(len(queries)):
            scores, ids = exact_search(stored, queries[qi : qi + 1], 12, distance, mask)
            np.testing.assert_array_equal(ids[0], batch_ids[qi])
            np.testing.assert_allclose(scores[0], batch_scores[qi], rtol=1e-5, atol=1e-5)
    scores, ids = exact_search(stored, queries[:1], 12, distance, few)
    assert ids[0, 4:].tolist() == [-1] * 8 and np.isnan(scores[0, 4:]).all()


@pytest.mark.parametrize("distance", list(Distance))
def test_similarity_is_qdrants_higher_is_closer_and_matches_reported_scores(distance: Distance) -> None:
    rows, queries = data(2)
    metric = metric_of(distance)
    stored = prepared(distance, rows)
    query = prepared(distance, queries[:1])[0]
    sim = metric.similarity(stored, query)
    assert sim.dtype == np.float64
    score = brute(distance, rows, queries[0])
    # Qdrant's core compares squared L2 distances and negated distances; similarities as they are
    want = {Distance.EUCLID: -(score**2), Distance.MANHATTAN: -score}.get(distance, score)
    np.testing.assert_allclose(sim, want, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(metric.similarity_of_scores(metric.scores(stored, query)), sim, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("distance", [d for d in Distance if metric_of(d).indexable])
def test_faiss_metric_and_raw_score_conversion(distance: Distance) -> None:
    """faiss, asked with the table's metric, ranks as brute force does; ``from_raw`` makes its raw scores Qdrant's."""
    rows, queries = data(3)
    metric = metric_of(distance)
    assert metric.faiss_metric is not None
    stored, qs = prepared(distance, rows), prepared(distance, queries)
    index = faiss.IndexFlat(DIM, metric.faiss_metric)
    index.add(stored)
    raw, ids = index.search(qs, 5)
    for qi, query in enumerate(queries):
        want = brute(distance, rows, query)
        order = np.argsort(-want if metric.higher_is_better else want, kind="stable")[:5]
        np.testing.assert_array_equal(ids[qi], order)
        got = raw[qi] if metric.from_raw is None else metric.from_raw(raw[qi])
        np.testing.assert_allclose(got, want[order], rtol=1e-4, atol=1e-4)
    assert metric_of(Distance.MANHATTAN).faiss_metric is None


def test_normalise_keeps_zero_rows_and_survives_overflow() -> None:
    x = np.array([[3, 4], [0, 0], [3e30, 4e30]], dtype=np.float32)
    out = normalise(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array([[0.6, 0.8], [0.0, 0.0], [0.6, 0.8]]), rtol=1e-6)
