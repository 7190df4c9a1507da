"""Facet counts against qdrant-client's local mode, embedded and through the real qdrant-client over
HTTP: keyword (arrays, repeated values within a point), integer and bool indexes, filters, deletes,
overwrites and payload edits, limits below and above the number of values; ties ordered by value.
Then what the server does differently from local mode (only the index's type is counted) and the
refusal of a field without a match index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

import vecdb
from vecdb.api.middleware import is_read_only_request
from vecdb.errors import InvalidInput

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"]


def _points(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        payload: dict[str, Any] = {
            "tags": [WORDS[int(j)] for j in rng.integers(0, len(WORDS), size=int(rng.integers(0, 4)))],
            "user": f"u{int(rng.zipf(1.5)) % 40}",
            "n": int(rng.integers(-3, 9)),
            "ok": bool(rng.integers(0, 2)),
            "g": int(rng.integers(0, 3)),
        }
        if i % 11 == 0:
            del payload["user"]
        out.append({"id": i, "vector": rng.random(2).tolist(), "payload": payload})
    return out


def _hits(response: Any) -> list[tuple[Any, int]]:
    return [(h.value, h.count) for h in response.hits]


@pytest.mark.parametrize("transport", ["embedded", "http"])
def test_facet_counts_match_local_mode(tmp_path: Path, transport: str, request: pytest.FixtureRequest) -> None:
    rng = np.random.default_rng(11)
    points = _points(rng, 500)
    local = QdrantClient(":memory:")
    if transport == "embedded":
        ours: Any = vecdb.Client(path=tmp_path / "data")
    else:
        ours = request.getfixturevalue("http_client")
        if ours.collection_exists("facets"):
            ours.delete_collection("facets")
    for c in (local, ours):
        c.create_collection("facets", models.VectorParams(size=2, distance=models.Distance.DOT))
        c.upsert("facets", [models.PointStruct(**p) for p in points])
        c.delete("facets", models.PointIdsList(points=list(range(0, 500, 9))))
        c.upsert(
            "facets", [models.PointStruct(**dict(p, payload={**p["payload"], "user": "u1"})) for p in points[1::13]]
        )
        c.set_payload("facets", {"tags": ["eta", "eta", "alpha"]}, points=[i for i in range(2, 500, 17) if i % 9])
    ours.create_payload_index("facets", "tags", models.PayloadSchemaType.KEYWORD)
    ours.create_payload_index("facets", "user", models.PayloadSchemaType.KEYWORD)
    ours.create_payload_index("facets", "n", models.PayloadSchemaType.INTEGER)
    ours.create_payload_index("facets", "ok", models.PayloadSchemaType.BOOL)
    filters: list[Any] = [
        None,
        models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=1))]),
        models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["beta", "eta"]))]),
        models.Filter(must_not=[models.FieldCondition(key="n", range=models.Range(gte=2))]),
        models.Filter(must=[models.FieldCondition(key="user", match=models.MatchValue(value="nobody"))]),
    ]
    compared = 0
    for key in ("tags", "user", "n", "ok"):
        for flt in filters:
            for limit in (1, 3, 10, 100):
                want = _hits(local.facet("facets", key, facet_filter=flt, limit=limit))
                got = _hits(ours.facet("facets", key, facet_filter=flt, limit=limit, exact=limit % 2 == 0))
                assert got == want, (key, flt, limit)
                assert all(type(v) is type(w) for (v, _), (w, _) in zip(got, want, strict=True))
                compared += len(want)
    assert compared > 300
    if transport == "embedded":
        ours.close()


def test_only_the_index_type_is_counted_and_unindexed_fields_are_refused(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("c", models.VectorParams(size=2, distance=models.Distance.DOT))
    mixed = ["a", 1, True, "a", ["b", 1], None, {"x": 1}, "b"]
    c.upsert(
        "c", [models.PointStruct(id=i, vector=[1.0, 0.0], payload={"k": v, "f": 0.5}) for i, v in enumerate(mixed)]
    )
    for key in ("k", "f"):
        with pytest.raises(InvalidInput, match=f"No appropriate index for faceting: `{key}`"):
            c.facet("c", key)
    c.create_payload_index("c", "f", "float")  # a float index answers no match: still refused
    with pytest.raises(InvalidInput, match="No appropriate index for faceting: `f`"):
        c.facet("c", "f")
    c.create_payload_index("c", "k", "keyword")
    # Qdrant's server reads one payload index, so only strings count (local mode would also count 1 and True)
    assert _hits(c.facet("c", "k")) == [("a", 2), ("b", 2)]
    c.create_payload_index("c", "k", {"type": "integer", "lookup": False, "range": True})
    with pytest.raises(InvalidInput, match="No appropriate index"):
        c.facet("c", "k")
    c.create_payload_index("c", "k", "integer")
    assert _hits(c.facet("c", "k")) == [(1, 2)]
    c.close()


def test_http_facet_route(http_client: QdrantClient) -> None:
    assert is_read_only_request("POST", "/collections/c/facet")
    name = "facet_route"
    if http_client.collection_exists(name):
        http_client.delete_collection(name)
    http_client.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
    http_client.upsert(
        name, [models.PointStruct(id=i, vector=[1.0, 0.0], payload={"u": f"u{i % 3}"}) for i in range(10)]
    )
    with pytest.raises(UnexpectedResponse) as info:
        http_client.facet(name, "u")
    assert info.value.status_code == 400 and "No appropriate index for faceting: `u`" in info.value.content.decode()
    http_client.create_payload_index(name, "u", models.PayloadSchemaType.KEYWORD)
    assert _hits(http_client.facet(name, "u", limit=2)) == [("u0", 4), ("u1", 3)]
    with pytest.raises(UnexpectedResponse) as info:
        http_client.facet(name, "u", limit=0)
    assert info.value.status_code in (400, 422) and "limit" in info.value.content.decode()
