"""recommend (average_vector, best_score, sum_scores), discover, context and random sampling in the
query API, against qdrant-client's local mode: all four metrics, examples as stored points (left out
of the answer) and as vectors, filters, offsets and thresholds; embedded and through the real
qdrant-client over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.harness import ServerProcess
from tests.helpers import client_for
from vecdb.errors import InvalidInput, NotFound

DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]


def _queries(rng: np.random.Generator) -> list[Any]:
    def vec() -> list[float]:
        return rng.normal(size=5).tolist()

    pair = models.ContextPair
    return [
        models.RecommendQuery(recommend=models.RecommendInput(positive=[3, 17], negative=[40])),
        models.RecommendQuery(recommend=models.RecommendInput(positive=[vec(), 8])),
        models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[3, vec()], negative=[vec()], strategy=models.RecommendStrategy.BEST_SCORE
            )
        ),
        models.RecommendQuery(
            recommend=models.RecommendInput(negative=[11, 12], strategy=models.RecommendStrategy.BEST_SCORE)
        ),
        models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[5, vec()], negative=[9], strategy=models.RecommendStrategy.SUM_SCORES
            )
        ),
        models.DiscoverQuery(
            discover=models.DiscoverInput(
                target=21, context=[pair(positive=1, negative=2), pair(positive=vec(), negative=30)]
            )
        ),
        models.DiscoverQuery(discover=models.DiscoverInput(target=vec(), context=pair(positive=4, negative=vec()))),
        models.ContextQuery(context=[pair(positive=6, negative=7), pair(positive=vec(), negative=vec())]),
    ]


def _check(got: list[Any], want: list[Any], reference: dict[Any, float], context: bool) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-4, atol=1e-5)
    if context:  # (many points score exactly 0: any of them may fill the page; each must score what it says)
        for p in got:
            assert reference[p.id] == pytest.approx(p.score, rel=1e-4, abs=1e-5)
    else:
        assert [p.id for p in got] == [p.id for p in want]


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_example_queries_match_local_mode(
    tmp_path: Path, transport: str, distance: Any, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(4)
    points = [
        models.PointStruct(id=i, vector=rng.normal(size=5).tolist(), payload={"g": i % 3, "n": i}) for i in range(150)
    ]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = f"ex_{distance.value.lower()}"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, models.VectorParams(size=5, distance=distance))
        c.upsert(name, points)
        c.delete(name, models.PointIdsList(points=[13, 14]))
    flt = models.Filter(must_not=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])
    compared = 0
    for query in _queries(rng):
        context = isinstance(query, models.ContextQuery)
        reference = {p.id: p.score for p in local.query_points(name, query=query, limit=200).points}
        for args in ({"limit": 10}, {"limit": 7, "offset": 5, "query_filter": flt}):
            want = local.query_points(name, query=query, **args).points
            got = ours.query_points(name, query=query, **args).points
            _check(got, want, reference, context)
            compared += len(want)
    # a threshold keeps the scores above it (the example kinds score higher-is-better on every metric)
    best = models.RecommendQuery(
        recommend=models.RecommendInput(positive=[3], strategy=models.RecommendStrategy.BEST_SCORE)
    )
    ranked = local.query_points(name, query=best, limit=30).points
    cut = ranked[12].score
    got = ours.query_points(name, query=best, limit=30, score_threshold=cut).points
    assert [p.id for p in got] == [p.id for p in ranked[:12]]
    assert compared == 8 * (10 + 7)
    if transport != "http":
        ours.close()


def test_sample_and_refusals(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection(
        "c",
        {"a": models.VectorParams(size=2, distance=models.Distance.DOT)},
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    c.upsert("c", [models.PointStruct(id=i, vector={"a": [1.0, float(i)]}, payload={"g": i % 4}) for i in range(40)])
    flt = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=1))])
    drawn = [
        c.query_points("c", query=models.SampleQuery(sample=models.Sample.RANDOM), limit=5, query_filter=flt).points
        for _ in range(20)
    ]
    assert all(len(d) == 5 and len({p.id for p in d}) == 5 for d in drawn)
    assert all(p.id % 4 == 1 and p.score == 0.0 and p.payload == {"g": 1} for d in drawn for p in d)
    assert len({p.id for d in drawn for p in d}) == 10  # every match is drawn at some point (20 draws of 5 of 10)
    everything = c.query_points("c", query=models.SampleQuery(sample=models.Sample.RANDOM), limit=100).points
    assert sorted(p.id for p in everything) == list(range(40))

    recommend = models.RecommendQuery(recommend=models.RecommendInput(positive=[1]))
    with pytest.raises(NotFound, match="No point with id 999"):
        c.query_points("c", query=models.RecommendQuery(recommend=models.RecommendInput(positive=[999])), using="a")
    with pytest.raises(InvalidInput, match="dimension"):
        c.query_points(
            "c", query=models.RecommendQuery(recommend=models.RecommendInput(positive=[[1.0, 2.0, 3.0]])), using="a"
        )
    with pytest.raises(InvalidInput, match="positive"):
        c.query_points("c", query=models.RecommendQuery(recommend=models.RecommendInput(negative=[1])), using="a")
    with pytest.raises(InvalidInput, match="positive or negative"):
        c.query_points(
            "c", query=models.RecommendQuery(recommend=models.RecommendInput(strategy="best_score")), using="a"
        )
    with pytest.raises(InvalidInput, match=r"query\.recommend\.positive\[0\]: point 1 has no vector named 's'"):
        c.query_points("c", query=recommend, using="s")
    # over prefetched points: only those, the example itself left out
    over = c.query_points(
        "c", prefetch=[models.Prefetch(query=[1.0, 0.0], using="a", limit=5)], query=recommend, using="a"
    ).points
    near = {p.id for p in c.query_points("c", query=[1.0, 0.0], using="a", limit=5).points}
    assert over and {p.id for p in over} <= near - {1}
    got = c.query_points("c", query=recommend, using="a", limit=3).points
    assert 1 not in [p.id for p in got]  # an example point is left out of its own recommendations
    c.close()


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_distance_matrix_matches_local_mode(
    tmp_path: Path, transport: str, distance: Any, request: pytest.FixtureRequest
) -> None:
    """With ``sample`` above the points passing the filter every such point is drawn, so the matrix is
    determined and equals local mode's; a smaller sample is checked against a brute force over itself."""
    rng = np.random.default_rng(8)
    ids: list[Any] = [*range(0, 60, 2), *[f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]]
    points = [
        models.PointStruct(id=pid, vector=rng.normal(size=4).tolist(), payload={"g": j % 3})
        for j, pid in enumerate(ids)
    ]
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    name = f"mx_{distance.value.lower()}"
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, models.VectorParams(size=4, distance=distance))
        c.upsert(name, points)
    flt = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchAny(any=[0, 2]))])
    for limit in (1, 3):
        want = local.search_matrix_offsets(name, query_filter=flt, sample=100, limit=limit)
        got = ours.search_matrix_offsets(name, query_filter=flt, sample=100, limit=limit)
        assert got.ids == want.ids and got.offsets_row == want.offsets_row and got.offsets_col == want.offsets_col
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-5)
        pairs_want = local.search_matrix_pairs(name, query_filter=flt, sample=100, limit=limit).pairs
        pairs_got = ours.search_matrix_pairs(name, query_filter=flt, sample=100, limit=limit).pairs
        assert [(p.a, p.b) for p in pairs_got] == [(p.a, p.b) for p in pairs_want]
    small = ours.search_matrix_offsets(name, sample=8, limit=2)
    assert (
        len(small.ids) == 8
        and len(set(small.ids)) == 8
        and small.offsets_row == [r for r in range(8) for _ in range(2)]
    )
    by_id = {p.id: np.asarray(p.vector, dtype=np.float64) for p in points}
    full = {p.id: p.score for p in local.query_points(name, query=by_id[small.ids[0]].tolist(), limit=100).points}
    assert {small.ids[c] for r, c in zip(small.offsets_row, small.offsets_col, strict=True) if r == 0} <= set(full)
    higher = distance in (models.Distance.COSINE, models.Distance.DOT)
    among = sorted((full[i] for i in small.ids[1:]), reverse=higher)[:2]
    np.testing.assert_allclose(small.scores[:2], among, rtol=1e-4, atol=1e-5)
    if transport != "http":
        ours.close()


def test_legacy_recommend_and_discover_routes(server: ServerProcess) -> None:
    import httpx

    rng = np.random.default_rng(1)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.delete("/collections/legacy")
        http.put("/collections/legacy", json={"vectors": {"size": 3, "distance": "Cosine"}})
        http.put(
            "/collections/legacy/points",
            json={"points": [{"id": i, "vector": rng.normal(size=3).tolist()} for i in range(50)]},
        )

        def ids(r: httpx.Response) -> list[int]:
            assert r.status_code == 200, r.text
            return [p["id"] for p in r.json()["result"]]

        def query_ids(query: dict[str, Any], **extra: Any) -> list[int]:
            r = http.post("/collections/legacy/points/query", json={"query": query, **extra})
            assert r.status_code == 200, r.text
            return [p["id"] for p in r.json()["result"]["points"]]

        body = {"positive": [1, 2], "negative": [3], "strategy": "best_score", "limit": 5, "offset": 1}
        assert ids(http.post("/collections/legacy/points/recommend", json=body)) == query_ids(
            {"recommend": {"positive": [1, 2], "negative": [3], "strategy": "best_score"}}, limit=5, offset=1
        )
        batch = http.post(
            "/collections/legacy/points/recommend/batch", json={"searches": [body, {"positive": [4], "limit": 2}]}
        )
        assert [[p["id"] for p in r] for r in batch.json()["result"]] == [
            ids(http.post("/collections/legacy/points/recommend", json=body)),
            query_ids({"recommend": {"positive": [4]}}, limit=2),
        ]
        pair = {"positive": 5, "negative": 6}
        discover = {"target": 7, "context": [pair], "limit": 4}
        assert ids(http.post("/collections/legacy/points/discover", json=discover)) == query_ids(
            {"discover": {"target": 7, "context": [pair]}}, limit=4
        )
        context_only = {"context": [pair], "limit": 4}
        assert len(ids(http.post("/collections/legacy/points/discover", json=context_only))) == 4
        http.put("/collections/legacy/points/payload", json={"payload": {"g": 1}, "points": list(range(0, 50, 2))})
        grouped = http.post(
            "/collections/legacy/points/recommend/groups",
            json={"positive": [1, 2], "group_by": "g", "group_size": 3, "limit": 2, "strategy": "best_score"},
        )
        assert grouped.status_code == 200, grouped.text
        want = http.post(
            "/collections/legacy/points/query/groups",
            json={
                "query": {"recommend": {"positive": [1, 2], "strategy": "best_score"}},
                "group_by": "g",
                "group_size": 3,
                "limit": 2,
            },
        )
        assert grouped.json()["result"] == want.json()["result"] and len(grouped.json()["result"]["groups"]) == 1
        r = http.post("/collections/legacy/points/recommend", json={"positive": [1]})
        assert r.status_code in (400, 422) and "limit" in r.text
        matrix = http.post("/collections/legacy/points/search/matrix/pairs", json={"sample": 1})
        assert matrix.status_code in (400, 422) and "sample" in matrix.text
