"""Multi-stage queries (``prefetch`` trees under rrf / dbsf / formula / re-scoring) against local mode.

The same collection (two dense spaces, Cosine and Euclid, and a sparse one that some points lack)
goes into vecdb (embedded, over HTTP, and sharded over three simulated nodes) and
``QdrantClient(":memory:")``; fixed cases pin each feature, Hypothesis generates trees two deep with
filters at every level, offsets and thresholds. Ids and scores must agree (ties by id).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models
from vecdb_client import RemoteClient

import vecdb
from tests.helpers import sharded_client
from vecdb.errors import InvalidInput, VecdbError

N = 120
RNG = np.random.default_rng(11)
A = RNG.normal(size=(N, 8)).astype(np.float32)
B = RNG.normal(size=(N, 4)).astype(np.float32)
TERMS = [RNG.choice(30, size=RNG.integers(1, 6), replace=False) for _ in range(N)]
WEIGHTS = [RNG.uniform(0.1, 2.0, size=len(t)) for t in TERMS]
QA = [RNG.normal(size=8).astype(np.float32).tolist() for _ in range(4)]
QB = [RNG.normal(size=4).astype(np.float32).tolist() for _ in range(4)]
QS = [
    models.SparseVector(
        indices=[int(i) for i in RNG.choice(30, size=4, replace=False)], values=RNG.uniform(0.2, 1.5, 4).tolist()
    )
    for _ in range(4)
]


def _point(i: int) -> models.PointStruct:
    vector: dict[str, Any] = {"a": A[i].tolist(), "b": B[i].tolist()}
    if i % 5:  # every fifth point has no sparse vector
        vector["s"] = models.SparseVector(indices=TERMS[i].tolist(), values=WEIGHTS[i].tolist())
    payload = {
        "g": i % 3,
        "x": float(i % 17) / 4,
        "t": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "tag": ["p", "q"][i % 2],
    }
    return models.PointStruct(id=i, vector=vector, payload=payload)


def _load(c: Any, name: str) -> None:
    c.create_collection(
        name,
        vectors_config={
            "a": models.VectorParams(size=8, distance=models.Distance.COSINE),
            "b": models.VectorParams(size=4, distance=models.Distance.EUCLID),
        },
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    c.upsert(name, points=[_point(i) for i in range(N)])


def _match(key: str, value: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


FILTERS: list[Optional[models.Filter]] = [
    None,
    models.Filter(must=[_match("g", 1)]),
    models.Filter(should=[_match("g", 0), _match("g", 2)]),
    models.Filter(must_not=[models.FieldCondition(key="x", range=models.Range(gt=3))]),
    models.Filter(should=[_match("tag", "p")]),
]


@pytest.fixture(params=["local", "http", "sharded"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Iterator[tuple[Any, QdrantClient, str]]:
    """The collection in local mode and in vecdb: embedded, over HTTP, and sharded over three simulated
    nodes (``vecdb.cluster``: every tree merged across shards must still equal local mode)."""
    if request.param == "local":
        client: Any = vecdb.Client(path=tmp_path / "data")
    elif request.param == "http":
        client = RemoteClient(request.getfixturevalue("server").url)
    else:
        client = sharded_client(tmp_path / "cluster")
    reference = QdrantClient(":memory:")
    _load(reference, name)
    _load(client, name)
    yield client, reference, name
    client.close()


def _same(got: list[Any], want: list[Any], case: Any) -> None:
    """Same scores in order; the same ids per group of equal scores (the last group, cut by the limit,
    only as many)."""
    gs, ws = [p.score for p in got], [p.score for p in want]
    assert len(gs) == len(ws), (case, [(p.id, p.score) for p in got], [(p.id, p.score) for p in want])
    np.testing.assert_allclose(gs, ws, rtol=1e-4, atol=1e-5, err_msg=str(case))
    i = 0
    while i < len(ws):
        j = i
        while j < len(ws) and abs(ws[j] - ws[i]) <= 1e-5 + 1e-4 * abs(ws[i]):
            j += 1
        if j < len(ws):
            assert {p.id for p in got[i:j]} == {p.id for p in want[i:j]}, (case, i, j)
        i = j


def _both(loaded: tuple[Any, QdrantClient, str], **args: Any) -> None:
    client, reference, name = loaded
    want = reference.query_points(name, **args).points
    got = client.query_points(name, **args).points
    _same(got, want, args)


def _dense(q: int, limit: int = 20, **kw: Any) -> models.Prefetch:
    return models.Prefetch(query=QA[q], using="a", limit=limit, **kw)


def _euclid(q: int, limit: int = 20, **kw: Any) -> models.Prefetch:
    return models.Prefetch(query=QB[q], using="b", limit=limit, **kw)


def _sparse(q: int, limit: int = 20, **kw: Any) -> models.Prefetch:
    return models.Prefetch(query=QS[q], using="s", limit=limit, **kw)


RRF = models.FusionQuery(fusion=models.Fusion.RRF)
DBSF = models.FusionQuery(fusion=models.Fusion.DBSF)
FORMULAS = [
    models.FormulaQuery(
        formula=models.SumExpression(sum=["$score[0]", models.MultExpression(mult=[0.5, "$score[1]"])])
    ),
    models.FormulaQuery(
        formula=models.SumExpression(sum=["$score", models.MultExpression(mult=["x", _match("tag", "p")])]),
        defaults={"x": 0},
    ),
    models.FormulaQuery(
        formula=models.MultExpression(
            mult=[
                "$score",
                models.ExpDecayExpression(
                    exp_decay=models.DecayParamsExpression(
                        x=models.DatetimeKeyExpression(datetime_key="t"),
                        target=models.DatetimeExpression(datetime="2024-01-15T00:00:00Z"),
                        scale=5 * 86400,
                        midpoint=0.3,
                    )
                ),
            ]
        )
    ),
    models.FormulaQuery(
        formula=models.SumExpression(
            sum=[
                models.GaussDecayExpression(gauss_decay=models.DecayParamsExpression(x="x", target=2.0, scale=1.5)),
                models.LinDecayExpression(lin_decay=models.DecayParamsExpression(x="$score[1]", scale=3.0)),
                models.DivExpression(div=models.DivParams(left="$score[0]", right="g", by_zero_default=-1.0)),
            ]
        )
    ),
]


@pytest.mark.parametrize(
    "args",
    [
        dict(prefetch=[_dense(0), _sparse(0)], query=RRF, limit=10),
        dict(prefetch=[_dense(1), _euclid(1), _sparse(1)], query=DBSF, limit=12, offset=3),
        dict(
            prefetch=[_dense(2), _sparse(2)], query=models.RrfQuery(rrf=models.Rrf(k=7, weights=[2.0, 0.5])), limit=10
        ),
        dict(prefetch=[_dense(0), _euclid(0)], query=models.RrfQuery(rrf=models.Rrf(weights=[1.0, 0.0])), limit=10),
        dict(prefetch=[_dense(3), _sparse(3)], query=RRF, limit=10, score_threshold=0.3),
        dict(prefetch=_dense(0, limit=50), query=QB[0], using="b", limit=7, offset=2),
        dict(prefetch=[_dense(1, 40), _sparse(1, 40)], query=QS[2], using="s", limit=8),
        dict(prefetch=[_sparse(0, 40)], query=QA[1], using="a", limit=8, score_threshold=0.1),
        dict(prefetch=[_dense(0, 40)], query=QB[1], using="b", limit=8, score_threshold=3.0),
        dict(
            prefetch=[_dense(0, 40)],
            query=models.NearestQuery(nearest=QA[2], mmr=models.Mmr(diversity=0.6, candidates_limit=15)),
            using="a",
            limit=6,
        ),
        dict(prefetch=[_dense(0), _sparse(0)], query=RRF, limit=10, query_filter=FILTERS[1]),
        dict(
            prefetch=[_dense(0, filter=FILTERS[2]), _sparse(0, filter=FILTERS[3])],
            query=DBSF,
            query_filter=FILTERS[4],
            limit=10,
        ),
        dict(prefetch=[_dense(2, filter=FILTERS[2])], query=QA[3], using="a", query_filter=FILTERS[4], limit=10),
        dict(
            prefetch=[models.Prefetch(prefetch=[_dense(0, 30), _sparse(0, 30)], query=DBSF, limit=15), _euclid(2)],
            query=RRF,
            limit=10,
        ),
        dict(
            prefetch=[
                models.Prefetch(prefetch=[_dense(1, 30), _euclid(1, 30)], query=RRF, limit=25, filter=FILTERS[3])
            ],
            query=QS[1],
            using="s",
            limit=5,
        ),
        dict(prefetch=[models.Prefetch(filter=FILTERS[1], limit=30), _dense(0)], query=RRF, limit=10),
        dict(prefetch=[models.Prefetch(query=7, using="a", limit=15), _dense(1)], query=RRF, limit=10),
        dict(prefetch=[_dense(1, 30), _euclid(1, 30)], query=5, using="a", limit=10),
        *[dict(prefetch=[_dense(1, 25), _sparse(1, 25)], query=f, limit=10) for f in FORMULAS],
        dict(prefetch=[_dense(0), _sparse(0)], query=FORMULAS[0], limit=10, offset=2, score_threshold=0.5),
        dict(prefetch=[_dense(0)], query=RRF, limit=10),
        dict(prefetch=[_sparse(0, filter=models.Filter(must=[_match("g", 9)])), _dense(0)], query=DBSF, limit=10),
    ],
    ids=lambda a: "",
)
def test_multistage_equals_local_mode(loaded: tuple[Any, QdrantClient, str], args: dict[str, Any]) -> None:
    _both(loaded, **args)


@st.composite
def leaves(draw: st.DrawFn) -> models.Prefetch:
    kind = draw(st.sampled_from(["a", "b", "s", "s", "scroll"]))
    q, limit = draw(st.integers(0, 3)), draw(st.integers(1, 30))
    flt = draw(st.sampled_from(FILTERS))
    if kind == "scroll":
        return models.Prefetch(filter=flt, limit=limit)
    query = {"a": QA, "b": QB, "s": QS}[kind][q]
    return models.Prefetch(query=query, using=kind, limit=limit, filter=flt)


@st.composite
def merging(draw: st.DrawFn, children: int) -> tuple[Any, Optional[str]]:
    """A query over ``children`` prefetches and its ``using``."""
    kind = draw(st.sampled_from(["rrf", "dbsf", "rrf_k", "formula", "a", "b", "s"]))
    q = draw(st.integers(0, 3))
    if kind == "rrf":
        return RRF, None
    if kind == "dbsf":
        return DBSF, None
    if kind == "rrf_k":
        weights = draw(
            st.one_of(st.none(), st.lists(st.sampled_from([0.5, 1.0, 3.0]), min_size=children, max_size=children))
        )
        return models.RrfQuery(rrf=models.Rrf(k=draw(st.integers(1, 60)), weights=weights)), None
    if kind == "formula":
        return draw(st.sampled_from(FORMULAS)), None
    return {"a": QA, "b": QB, "s": QS}[kind][q], kind


@st.composite
def stages(draw: st.DrawFn) -> models.Prefetch:
    children = draw(st.lists(leaves(), min_size=1, max_size=3))
    query, using = draw(merging(len(children)))
    return models.Prefetch(
        prefetch=children,
        query=query,
        using=using,
        limit=draw(st.integers(1, 30)),
        filter=draw(st.sampled_from(FILTERS)),
    )


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    children = draw(st.lists(st.one_of(leaves(), stages()), min_size=1, max_size=3))
    query, using = draw(merging(len(children)))
    threshold = None
    if draw(st.booleans()) and not isinstance(query, list):
        threshold = draw(st.sampled_from([0.05, 0.2, 0.5]))
    return dict(
        prefetch=children,
        query=query,
        using=using,
        limit=draw(st.integers(1, 15)),
        offset=draw(st.integers(0, 4)),
        query_filter=draw(st.sampled_from(FILTERS)),
        score_threshold=threshold,
    )


def test_generated_trees_equal_local_mode(loaded: tuple[Any, QdrantClient, str]) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(trees())
    def check(args: dict[str, Any]) -> None:
        _both(loaded, **args)

    check()


def test_unknown_kinds_in_a_prefetch_are_refused_by_path(loaded: tuple[Any, QdrantClient, str]) -> None:
    client, _, name = loaded
    with pytest.raises(VecdbError, match="prefetch.1.query.relevance_feedback: this query kind is not supported yet"):
        client.query_points(
            name,
            prefetch=[{"query": [0.0] * 8, "using": "a"}, {"query": {"relevance_feedback": {"target": 1}}}],
            query={"fusion": "rrf"},
        )


def test_batch_answers_each_tree(loaded: tuple[Any, QdrantClient, str]) -> None:
    client, reference, name = loaded
    requests = [
        models.QueryRequest(prefetch=[_dense(0), _sparse(0)], query=RRF, limit=5),
        models.QueryRequest(query=QA[1], using="a", limit=5),
        models.QueryRequest(prefetch=[_dense(1), _euclid(1)], query=DBSF, limit=5, filter=FILTERS[1]),
    ]
    got = client.query_batch_points(name, requests)
    want = reference.query_batch_points(name, requests)
    for g, w in zip(got, want, strict=True):
        _same(g.points, w.points, requests)


def test_only_the_root_fetches_payloads_and_explain_shows_the_tree(loaded: tuple[Any, QdrantClient, str]) -> None:
    client, _, name = loaded
    args: dict[str, Any] = dict(
        prefetch=[models.Prefetch(prefetch=[_dense(0), _sparse(0)], query=DBSF, limit=10), _euclid(0)],
        query=RRF,
        limit=3,
    )
    points = client.query_points(name, with_payload=["g"], with_vectors=["b"], **args).points
    assert all(set(p.payload) == {"g"} and set(p.vector) == {"b"} for p in points)
    explain = client.query_points(name, explain=True, **args).explain
    if explain["plan"] == "sharded":  # the router's tree: each leaf holds its shards' own explains
        root = explain["stage"]
        assert root["kind"] == "fusion" and root["candidates"] == 3 and explain["shards"] == 3
        fused, euclid = root["prefetch"]
        assert [s["kind"] for s in fused["prefetch"]] == ["nearest", "sparse"]
        assert euclid["using"] == "b" and [s["plan"] for s in euclid["shards"]] == ["exact"] * 3
        assert 0 <= root["merge_ms"] <= root["time_ms"] <= explain["timings_ms"]["total"]
        return
    assert explain["plan"] == "multi-stage"
    root = explain["stage"]
    assert root["kind"] == "fusion" and root["candidates"] == 3
    fused, euclid = root["prefetch"]
    assert [s["kind"] for s in fused["prefetch"]] == ["nearest", "sparse"]
    assert euclid["using"] == "b" and euclid["search"]["plan"] == "exact" and euclid["time_ms"] >= 0
    # times nest: a stage's time covers its prefetches' (dense ones ran first, in the batch's group),
    # the fusion's own work is merge_ms, and the query's total covers the root
    for stage in (root, fused):
        assert 0 <= stage["merge_ms"] <= stage["time_ms"]
        assert stage["time_ms"] >= sum(child["time_ms"] for child in stage["prefetch"])
    assert explain["timings_ms"]["total"] >= root["time_ms"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(query=RRF), "cannot perform fusion without prefetches"),
        (dict(query=FORMULAS[0]), "cannot perform formula without prefetches"),
        (dict(prefetch=[_dense(0)]), "a query is needed to merge the prefetches"),
        (
            dict(prefetch=[models.Prefetch(prefetch=[_dense(0)], limit=3)], query=RRF),
            "prefetch.0.query: a query is needed",
        ),
        (dict(prefetch=[models.Prefetch(limit=3, score_threshold=0.5)], query=RRF), "prefetch.0.score_threshold"),
        (dict(prefetch=[_dense(0)], query=RRF, using="a"), "fusion queries cannot be combined"),
        (dict(prefetch=[_dense(0)], query=models.RrfQuery(rrf=models.Rrf(weights=[1.0, 2.0]))), "query.rrf.weights"),
        (dict(prefetch=[_dense(0)], query=models.FormulaQuery(formula="nope")), "no value for 'nope'"),
        (dict(prefetch=[_dense(0)], query=models.FormulaQuery(formula="tag")), "expected a number for 'tag'"),
        (dict(prefetch=[_dense(0)], query=models.FormulaQuery(formula="$score[x]")), "invalid score pattern"),
        (
            dict(
                prefetch=[_dense(0)],
                query=models.FormulaQuery(formula=models.DivExpression(div=models.DivParams(left=1, right="g"))),
            ),
            "query.formula.div",
        ),
    ],
)
def test_refusals_name_the_field(loaded: tuple[Any, QdrantClient, str], args: dict[str, Any], message: str) -> None:
    client, reference, name = loaded
    with pytest.raises(Exception):  # noqa: B017 - local mode refuses it too (ValueError or pydantic's)
        reference.query_points(name, **args)
    with pytest.raises(VecdbError, match=message) as info:
        client.query_points(name, **args)
    assert info.value.status == 400 or isinstance(info.value, InvalidInput)


WORDS = "apple banana cherry seat seats river stone cloud tree house".split()


def test_text_stages_in_a_tree_equal_local_mode(client: vecdb.Client | RemoteClient, name: str) -> None:
    """BM25 over a payload field as a prefetch (keyword + dense hybrid without sparse vectors) and as a
    re-scoring root; ``{"text": "..."}`` inside a prefetch is told apart from a document as at the root."""
    rng = np.random.default_rng(5)
    docs = [" ".join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(60)]
    schema = models.TextIndexParams(
        type=models.TextIndexType.TEXT,
        tokenizer=models.TokenizerType.WORD,
        scoring=models.TextScoringParams(type=models.TextScoringType.BM25),
    )
    reference = QdrantClient(":memory:")
    for c in (reference, client):
        c.create_collection(name, vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
        c.create_payload_index(name, "body", field_schema=schema)
        c.upsert(
            name,
            points=[models.PointStruct(id=i, vector=A[i].tolist(), payload={"body": d}) for i, d in enumerate(docs)],
        )
    scored = models.TextQueryInput(
        query="river cloud", scoring=models.Bm25Scoring(bm25=models.Bm25Params(k=1.5, b=0.5))
    )
    for text in (models.TextQuery(text="apple seat"), models.TextQuery(text=scored)):
        for args in (
            dict(
                prefetch=[models.Prefetch(query=text, using="body", limit=20), models.Prefetch(query=QA[0], limit=20)],
                query=RRF,
            ),
            dict(prefetch=[models.Prefetch(query=QA[1], limit=30)], query=text, using="body", limit=8),
        ):
            _same(client.query_points(name, **args).points, reference.query_points(name, **args).points, args)
