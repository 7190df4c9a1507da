"""Grouped queries (``points/query/groups``, legacy ``points/search/groups``) against qdrant-client's
local mode, embedded and through the real qdrant-client over HTTP: integer and string groups, arrays
(a point in several groups), values that cannot be group ids (the point joins no group), filters,
thresholds, payload selectors, prefetch with fusion, ``with_lookup``, and groups so prolific that the
ranking must be deepened several times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.harness import ServerProcess
from tests.helpers import client_for
from vecdb.engine import groups as groups_module
from vecdb.engine.read import Reader
from vecdb.errors import InvalidInput


def _points(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        payload: dict[str, Any] = {
            "doc": int(rng.integers(0, 25)),
            "tags": [f"t{int(t)}" for t in rng.integers(0, 6, size=int(rng.integers(0, 3)))],
            "g": int(rng.integers(0, 3)),
            "text": f"chunk {i}",
        }
        if i % 17 == 0:
            payload["doc"] = 2.5 if i % 2 else True  # not a group id: the point joins no group
        if i % 19 == 0:
            del payload["doc"]
        if i % 23 == 0:
            payload["tags"] = ["t1", 7]  # a mixed array: no group either
        out.append({"id": i, "vector": rng.normal(size=4).tolist(), "payload": payload})
    return out


def _shape(result: Any) -> list[tuple[Any, list[tuple[int, float, Any]], Any]]:
    return [
        (
            g.id,
            [(int(h.id), round(h.score, 4), h.payload) for h in g.hits],
            None if g.lookup is None else (g.lookup.id, g.lookup.payload),
        )
        for g in result.groups
    ]


def _setup(c: Any, points: list[dict[str, Any]]) -> None:
    for name in ("chunks", "docs"):
        if c.collection_exists(name):
            c.delete_collection(name)
    c.create_collection(
        "chunks",
        {
            "": models.VectorParams(size=4, distance=models.Distance.COSINE),
            "b": models.VectorParams(size=4, distance=models.Distance.EUCLID),
        },
    )
    c.upsert(
        "chunks",
        [
            models.PointStruct(id=p["id"], vector={"": p["vector"], "b": p["vector"][::-1]}, payload=p["payload"])
            for p in points
        ],
    )
    c.delete("chunks", models.PointIdsList(points=list(range(3, len(points), 29))))
    c.create_collection("docs", models.VectorParams(size=2, distance=models.Distance.DOT))
    c.upsert(
        "docs",
        [models.PointStruct(id=d, vector=[1.0, float(d)], payload={"title": f"doc {d}"}) for d in range(0, 25, 2)],
    )


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
def test_query_groups_match_local_mode(tmp_path: Path, transport: str, request: pytest.FixtureRequest) -> None:
    rng = np.random.default_rng(5)
    points = _points(rng, 600)
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    for c in (local, ours):
        _setup(c, points)
    queries = [rng.normal(size=4).tolist() for _ in range(3)]
    doc_filter = models.Filter(must_not=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])
    cases: list[dict[str, Any]] = [
        {"group_by": "doc"},
        {"group_by": "doc", "group_size": 1, "limit": 50},
        {"group_by": "tags", "group_size": 4, "limit": 3, "query_filter": doc_filter},
        {"group_by": "g", "group_size": 120, "limit": 3},  # deep: 360 hits needed of ~580
        {"group_by": "doc", "using": "b", "score_threshold": 2.5, "limit": 30},
        {
            "group_by": "doc",
            "with_payload": ["text"],
            "with_lookup": models.WithLookup(collection="docs", with_payload=["title"]),
        },
        {"group_by": "doc", "with_payload": False, "with_lookup": "docs", "limit": 4},
        {
            "group_by": "doc",
            "prefetch": [models.Prefetch(query="Q", limit=5), models.Prefetch(query="Q", using="b", limit=5)],
            "query": models.FusionQuery(fusion=models.Fusion.RRF),
            "limit": 6,
        },
    ]
    compared = 0
    for case in cases:
        for q in queries:
            args = dict(case)
            if "prefetch" in args:
                args["prefetch"] = [p.model_copy(update={"query": q}) for p in args["prefetch"]]
            else:
                args["query"] = q
            want = _shape(local.query_points_groups("chunks", **args))
            got = _shape(ours.query_points_groups("chunks", **args))
            assert got == want, case
            compared += sum(len(h) for _, h, _ in want)
    assert compared > 1500
    if transport != "http":
        ours.close()


def test_search_groups_route_and_deepening(tmp_path: Path, server: ServerProcess) -> None:
    rng = np.random.default_rng(9)
    points = _points(rng, 300)
    c = vecdb.Client(path=tmp_path / "data")
    _setup(c, points)
    layered = vecdb.Client(path=tmp_path / "layered")  # group k's points all rank below group k-1's
    layered.create_collection("c", models.VectorParams(size=2, distance=models.Distance.DOT))
    layered.upsert(
        "c",
        [models.PointStruct(id=i, vector=[100.0 - i, 0.0], payload={"layer": i // 150}) for i in range(600)],
    )
    rounds: list[int] = []
    real = groups_module.grouped

    def counted(hits: Any, key: str, size: int) -> Any:
        rounds.append(len(hits))
        return real(hits, key, size)

    groups_module.grouped = counted  # type: ignore[assignment]
    try:
        got = layered.query_points_groups("c", "layer", query=[1.0, 0.0], group_size=2, limit=4, with_payload=False)
    finally:
        groups_module.grouped = real  # type: ignore[assignment]
    assert rounds == [64, 256, 600]  # the first layers fill the shallow rankings
    assert [(g.id, [h.id for h in g.hits]) for g in got.groups] == [
        (0, [0, 1]),
        (1, [150, 151]),
        (2, [300, 301]),
        (3, [450, 451]),
    ]
    layered.close()

    # chunks of a document scattered through the ranking: the groups found first are completed by a
    # ranking of their own points, not by ranking the whole collection
    chunks, local = vecdb.Client(path=tmp_path / "chunks"), QdrantClient(":memory:")
    spread = [
        models.PointStruct(id=i, vector=rng.normal(size=3).tolist(), payload={"doc": i % 400}) for i in range(2000)
    ]
    for target in (chunks, local):
        target.create_collection("c", models.VectorParams(size=3, distance=models.Distance.COSINE))
        target.upsert("c", spread)
    runs: list[tuple[int, bool]] = []
    real_query = Reader.query

    def recorded(self: Any, req: Any) -> Any:
        runs.append((req.limit, req.filter is not None))
        return real_query(self, req)

    Reader.query = recorded  # type: ignore[method-assign]
    q3 = rng.normal(size=3).tolist()
    try:
        got = chunks.query_points_groups("c", "doc", query=q3, limit=5, group_size=3)
    finally:
        Reader.query = real_query  # type: ignore[method-assign]
    want = local.query_points_groups("c", "doc", query=q3, limit=5, group_size=3)
    assert [(g.id, [h.id for h in g.hits]) for g in got.groups] == [(g.id, [h.id for h in g.hits]) for g in want.groups]
    assert runs[0] == (64, False) and all(filtered for _, filtered in runs[1:]) and len(runs) <= 3
    chunks.close()
    q = rng.normal(size=4).tolist()
    legacy = c.search_groups("chunks", ("b", q), "doc", limit=5, group_size=2)
    assert legacy.groups == c.query_points_groups("chunks", "doc", query=q, using="b", limit=5, group_size=2).groups
    with pytest.raises(InvalidInput, match="group_by"):
        c.query_points_groups("chunks", "doc[", query=q)
    c.close()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.put("/collections/sg", json={"vectors": {"size": 2, "distance": "Dot"}})
        http.put(
            "/collections/sg/points",
            json={"points": [{"id": i, "vector": [1, i], "payload": {"u": i % 3}} for i in range(9)]},
        )
        r = http.post(
            "/collections/sg/points/search/groups",
            json={"vector": [0, 1], "group_by": "u", "group_size": 2, "limit": 2},
        )
        assert r.status_code == 200, r.text
        assert [(g["id"], [h["id"] for h in g["hits"]]) for g in r.json()["result"]["groups"]] == [
            (2, [8, 5]),
            (1, [7, 4]),
        ]
        r = http.post("/collections/sg/points/search/groups", json={"vector": [0, 1], "group_by": "u"})
        assert r.status_code in (400, 422) and "group_size" in r.text
        r = http.post("/collections/sg/points/query/groups", json={"query": [0, 1], "group_by": "u", "group_size": 0})
        assert r.status_code in (400, 422) and "group_size" in r.text
