"""recommend (average_vector, best_score, sum_scores), discover and context over sparse vectors (plain and
with ``modifier: idf``) and over multivectors (all four metrics), against qdrant-client's local mode:
examples as stored points (left out of the answer) and as vectors, filters, offsets and thresholds;
embedded and through the real qdrant-client over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.helpers import client_for
from vecdb.errors import InvalidInput

DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]
MAX_SIM = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)


def _queries(vec: Any) -> list[Any]:
    pair = models.ContextPair
    strategy = models.RecommendStrategy
    return [
        models.RecommendQuery(recommend=models.RecommendInput(positive=[3, 17], negative=[40])),
        models.RecommendQuery(recommend=models.RecommendInput(positive=[vec(), 8])),
        models.RecommendQuery(
            recommend=models.RecommendInput(positive=[3, vec()], negative=[vec()], strategy=strategy.BEST_SCORE)
        ),
        models.RecommendQuery(recommend=models.RecommendInput(negative=[11, 12], strategy=strategy.BEST_SCORE)),
        models.RecommendQuery(
            recommend=models.RecommendInput(positive=[5, vec()], negative=[9], strategy=strategy.SUM_SCORES)
        ),
        models.DiscoverQuery(
            discover=models.DiscoverInput(
                target=21, context=[pair(positive=1, negative=2), pair(positive=vec(), negative=30)]
            )
        ),
        models.DiscoverQuery(discover=models.DiscoverInput(target=vec(), context=pair(positive=4, negative=vec()))),
        models.ContextQuery(context=[pair(positive=6, negative=7), pair(positive=vec(), negative=vec())]),
    ]


def _compare(local: QdrantClient, ours: Any, name: str, using: str, vec: Any, larger_is_better: bool) -> int:
    flt = models.Filter(must_not=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])
    compared = 0
    for query in _queries(vec):
        reference = {p.id: p.score for p in local.query_points(name, query=query, using=using, limit=200).points}
        for args in ({"limit": 10}, {"limit": 7, "offset": 5, "query_filter": flt}):
            want = local.query_points(name, query=query, using=using, **args).points
            got = ours.query_points(name, query=query, using=using, **args).points
            assert len(got) == len(want), query
            np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-4, atol=1e-4)
            for p in got:  # (ties may order differently; each point must score what local mode says)
                assert reference[p.id] == pytest.approx(p.score, rel=1e-4, abs=1e-4)
            compared += len(want)
        assert 3 not in {p.id for p in ours.query_points(name, query=query, using=using, limit=200).points} or (
            not isinstance(query, models.RecommendQuery) or 3 not in (query.recommend.positive or [])
        )
    # examples are left out of their own answers only: every one of them is still there afterwards
    examples = models.Filter(must=[models.HasIdCondition(has_id=[1, 2, 3, 5, 6, 7, 8, 9, 11, 12, 17, 21, 30, 40])])
    assert ours.count(name, count_filter=examples).count == 14
    return compared


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
@pytest.mark.parametrize("idf", [False, True], ids=["plain", "idf"])
def test_sparse_example_queries_match_local_mode(
    tmp_path: Path, transport: str, idf: bool, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(21)

    def sparse() -> models.SparseVector:
        terms = rng.choice(40, size=int(rng.integers(1, 8)), replace=False)
        return models.SparseVector(indices=terms.tolist(), values=rng.uniform(0.1, 2.0, len(terms)).round(3).tolist())

    points = [models.PointStruct(id=i, vector={"s": sparse()}, payload={"g": i % 3}) for i in range(120)]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = f"exs_{idf}"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        modifier = models.Modifier.IDF if idf else None
        # (IDF is computed per shard, as Qdrant's server computes it: one shard, twice replicated, for equal scores)
        extra = {"shard_number": 1, "replication_factor": 2} if transport == "sharded" and idf else {}
        c.create_collection(
            name,
            {},
            sparse_vectors_config={"s": models.SparseVectorParams(modifier=modifier)},
            **(extra if c is ours else {}),
        )
        c.upsert(name, points)
        c.delete(name, models.PointIdsList(points=[13, 14]))
    assert _compare(local, ours, name, "s", sparse, True) > 100
    if transport != "http":
        ours.close()


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_multivector_example_queries_match_local_mode(
    tmp_path: Path, transport: str, distance: Any, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(22)

    def matrix() -> list[list[float]]:
        return rng.normal(size=(int(rng.integers(1, 4)), 3)).round(3).tolist()

    points = [models.PointStruct(id=i, vector={"m": matrix()}, payload={"g": i % 3}) for i in range(100)]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = f"exm_{distance.value.lower()}"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, {"m": models.VectorParams(size=3, distance=distance, multivector_config=MAX_SIM)})
        c.upsert(name, points)
        c.delete(name, models.PointIdsList(points=[13, 14]))
    assert _compare(local, ours, name, "m", matrix, True) > 100
    if transport != "http":
        ours.close()


def test_example_kinds_are_checked(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection(
        "k",
        {
            "d": models.VectorParams(size=2, distance="Dot"),
            "m": models.VectorParams(size=2, distance="Dot", multivector_config=MAX_SIM),
        },
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    c.upsert(
        "k",
        [
            models.PointStruct(
                id=1, vector={"d": [1.0, 0.0], "m": [[1.0, 0.0]], "s": models.SparseVector(indices=[1], values=[1.0])}
            )
        ],
    )
    rec = models.RecommendQuery
    with pytest.raises(InvalidInput, match=r"query\.recommend\.positive\[0\]: .*Conversion between sparse and regular"):
        c.query_points("k", query=rec(recommend=models.RecommendInput(positive=[[1.0, 0.0]])), using="s")
    with pytest.raises(InvalidInput, match=r"query\.recommend\.positive\[0\]: .*Conversion between multi and regular"):
        c.query_points("k", query=rec(recommend=models.RecommendInput(positive=[[[1.0, 0.0]]])), using="d")
    with pytest.raises(InvalidInput, match=r"query\.recommend\.positive\[0\]\[0\]: Vector dimension error"):
        c.query_points("k", query=rec(recommend=models.RecommendInput(positive=[[[1.0, 0.0, 2.0]]])), using="m")
    got = c.query_points("k", query=rec(recommend=models.RecommendInput(positive=[[[1.0, 0.0]]])), using="m").points
    assert [p.id for p in got] == [1]
    c.close()


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
@pytest.mark.parametrize("kind", ["sparse", "multi-cosine", "multi-euclid"])
def test_distance_matrix_over_sparse_and_multivectors(
    tmp_path: Path, transport: str, kind: str, request: pytest.FixtureRequest
) -> None:
    """With ``sample`` above the points passing the filter every such point is drawn, so the matrix is
    determined and equals local mode's (a sparse row lists only the points sharing a term with it)."""
    rng = np.random.default_rng(23)
    if kind == "sparse":
        config: dict[str, Any] = {"sparse_vectors_config": {"v": models.SparseVectorParams()}}

        def vector() -> Any:
            terms = rng.choice(30, size=int(rng.integers(1, 5)), replace=False)
            return models.SparseVector(indices=terms.tolist(), values=rng.uniform(0.1, 2, len(terms)).tolist())
    else:
        distance = models.Distance.COSINE if kind == "multi-cosine" else models.Distance.EUCLID
        config = {"vectors_config": {"v": models.VectorParams(size=3, distance=distance, multivector_config=MAX_SIM)}}

        def vector() -> Any:
            return rng.normal(size=(int(rng.integers(1, 4)), 3)).tolist()

    points = [models.PointStruct(id=i, vector={"v": vector()}, payload={"g": i % 3}) for i in range(40)]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = f"mxk_{kind.replace('-', '_')}"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, **({"vectors_config": {}} | config))
        c.upsert(name, points)
    flt = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchAny(any=[0, 2]))])
    for limit in (1, 3):
        want = local.search_matrix_offsets(name, query_filter=flt, sample=100, limit=limit, using="v")
        got = ours.search_matrix_offsets(name, query_filter=flt, sample=100, limit=limit, using="v")
        assert got.ids == want.ids
        got_rows = {(r, c): s for r, c, s in zip(got.offsets_row, got.offsets_col, got.scores, strict=True)}
        want_rows = {(r, c): s for r, c, s in zip(want.offsets_row, want.offsets_col, want.scores, strict=True)}
        assert got_rows.keys() == want_rows.keys()
        for key, score in want_rows.items():
            assert got_rows[key] == pytest.approx(score, rel=1e-4, abs=1e-4)
    if transport != "http":
        ours.close()


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
def test_order_by_sample_and_examples_as_stages(tmp_path: Path, transport: str, request: pytest.FixtureRequest) -> None:
    """order_by, sample, recommend, discover and context as prefetch stages and over prefetched points,
    against local mode (which runs such a query restricted to the prefetched points)."""
    rng = np.random.default_rng(24)
    points = [
        models.PointStruct(
            id=i, vector=rng.normal(size=4).tolist(), payload={"g": i % 3, "n": int(rng.integers(0, 1000))}
        )
        for i in range(120)
    ]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = "stages_kinds"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, models.VectorParams(size=4, distance=models.Distance.COSINE))
        c.upsert(name, points)
    ours.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER)  # (local mode needs none for order_by)

    def vec() -> list[float]:
        return rng.normal(size=4).tolist()

    rec = models.RecommendQuery(recommend=models.RecommendInput(positive=[3, 7], negative=[9], strategy="best_score"))
    newest = models.OrderByQuery(order_by=models.OrderBy(key="n", direction=models.Direction.DESC))
    discover = models.DiscoverQuery(
        discover=models.DiscoverInput(target=vec(), context=[models.ContextPair(positive=1, negative=2)])
    )
    context = models.ContextQuery(context=[models.ContextPair(positive=4, negative=5)])
    flt = models.Filter(must_not=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])
    cases: list[tuple[dict[str, Any], Any]] = [
        # (arguments, compare scores too: order_by scores 0 in vecdb, as Qdrant's server; local mode says 1;
        # None: many points tie at 0 (context), so only the scores and each point's own score are compared)
        (
            {
                "prefetch": [models.Prefetch(query=rec, limit=20), models.Prefetch(query=vec(), limit=20)],
                "query": models.FusionQuery(fusion=models.Fusion.RRF),
            },
            True,
        ),
        ({"prefetch": [models.Prefetch(query=vec(), limit=30)], "query": rec}, True),
        ({"prefetch": [models.Prefetch(query=vec(), limit=30)], "query": discover, "query_filter": flt}, True),
        ({"prefetch": [models.Prefetch(query=vec(), limit=30)], "query": context}, None),
        ({"prefetch": [models.Prefetch(query=vec(), limit=30)], "query": newest}, False),
        ({"prefetch": [models.Prefetch(query=newest, limit=15)], "query": vec()}, True),
        (
            {
                "prefetch": [
                    models.Prefetch(query=newest, limit=25, filter=flt),
                    models.Prefetch(query=discover, limit=25),
                ],
                "query": models.FusionQuery(fusion=models.Fusion.RRF),
            },
            True,
        ),
    ]
    for args, scores in cases:
        want = local.query_points(name, limit=10, **args).points
        got = ours.query_points(name, limit=10, **args).points
        if scores is None:
            every = {p.id: p.score for p in local.query_points(name, limit=200, **args).points}
            assert [every[p.id] for p in got] == pytest.approx([p.score for p in want], abs=1e-5)
            continue
        assert [p.id for p in got] == [p.id for p in want], args
        if scores:
            np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-4, atol=1e-4)
    # a random sample as a prefetch: every point drawn, so the nearest among them is the nearest overall
    sample = models.SampleQuery(sample=models.Sample.RANDOM)
    q = vec()
    got = ours.query_points(
        name, prefetch=models.Prefetch(query=sample, limit=500, filter=flt), query=q, limit=5
    ).points
    want = local.query_points(name, query=q, query_filter=flt, limit=5).points
    assert [p.id for p in got] == [p.id for p in want]
    few = ours.query_points(name, prefetch=models.Prefetch(query=sample, limit=7), query=q, limit=10).points
    assert len(few) == 7  # re-scoring seven drawn points
    if transport != "http":
        ours.close()
