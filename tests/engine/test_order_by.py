"""``order_by`` in scroll and in the query API, against qdrant-client's local mode: embedded and through
the real qdrant-client over HTTP. Integer, float (arrays: one row per value) and datetime fields, points
without the field or with values of other types, deletes and overwrites, filters, both directions,
``start_from`` (numbers, datetimes as strings and objects), page sizes up to past the end; then ties
(broken by insertion order), and every refusal Qdrant's server makes (no range index, ``offset``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

import vecdb
from tests.helpers import client_for
from vecdb.errors import InvalidInput

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _points(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    ns = rng.permutation(n * 10)[:n]  # distinct: the order is then the same whatever breaks ties
    out = []
    for i in range(n):
        payload: dict[str, Any] = {
            "n": int(ns[i]) - 5 * n,
            "f": [float(x) for x in rng.normal(size=int(rng.integers(0, 4)))],
        }
        payload["t"] = (EPOCH + timedelta(seconds=int(rng.integers(0, 10**7)), microseconds=i)).isoformat()
        payload["g"] = int(rng.integers(0, 5))
        if i % 23 == 0:
            payload["n"] = "not a number"
        if i % 29 == 0:
            del payload["t"]
        if i % 31 == 0:
            payload["n"] = True
        out.append(
            {
                "id": i if i % 3 else f"00000000-0000-4000-8000-{i:012d}",
                "vector": rng.random(3).tolist(),
                "payload": payload,
            }
        )
    return out


def _fill(c: Any, points: list[dict[str, Any]], rng: np.random.Generator, indexed: bool) -> None:
    c.create_collection("c", models.VectorParams(size=3, distance=models.Distance.DOT))
    if indexed:
        c.create_payload_index("c", "n", models.PayloadSchemaType.INTEGER)
        c.create_payload_index("c", "f", models.PayloadSchemaType.FLOAT)
        c.create_payload_index("c", "t", models.PayloadSchemaType.DATETIME)
        c.create_payload_index("c", "g", models.PayloadSchemaType.INTEGER)
    c.upsert("c", [models.PointStruct(**p) for p in points[: len(points) // 2]])
    c.upsert("c", [models.PointStruct(**p) for p in points[len(points) // 2 :]])


def _change(c: Any, points: list[dict[str, Any]]) -> None:
    gone = [p["id"] for p in points[5::17]]
    c.delete("c", models.PointIdsList(points=gone))
    again = [
        dict(
            p,
            payload={
                **p["payload"],
                "n": 10**6 - j,  # (distinct from every other value: no tie to break)
            },
        )
        for j, p in enumerate(points[7::13])
    ]
    c.upsert("c", [models.PointStruct(**p) for p in again])
    c.set_payload("c", {"f": [123.5, -7.25]}, points=[points[8]["id"]])


def _rows(points: Any) -> list[tuple[str, Any, Any]]:
    return [(str(p.id), p.order_value, None if p.payload is None else p.payload.get("g")) for p in points]


CASES: list[tuple[Any, Any]] = [
    ("n", None),
    (models.OrderBy(key="n", direction=models.Direction.DESC), None),
    (models.OrderBy(key="n", start_from=-100), None),
    (models.OrderBy(key="n", direction=models.Direction.DESC, start_from=37), None),
    (models.OrderBy(key="f"), None),
    (models.OrderBy(key="f", direction=models.Direction.DESC, start_from=0.5), None),
    (models.OrderBy(key="t", direction=models.Direction.DESC), None),
    (models.OrderBy(key="t", start_from="2024-03-01T00:00:00Z"), None),
    (models.OrderBy(key="t", start_from=datetime(2024, 2, 1, 12, tzinfo=timezone.utc)), None),
    ("n", models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=2))])),
    (
        models.OrderBy(key="t", direction=models.Direction.DESC),
        models.Filter(must_not=[models.FieldCondition(key="g", range=models.Range(gte=1))]),
    ),
    ("f", models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=0))])),
]


@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
def test_order_by_scroll_and_query_match_local_mode(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(7)
    points = _points(rng, 400)
    local = QdrantClient(":memory:")
    ours: Any = client_for(transport, tmp_path, request)
    if transport == "http" and ours.collection_exists("c"):
        ours.delete_collection("c")
    for c in (local, ours):
        _fill(c, points, rng, indexed=c is ours)
        _change(c, points)
    compared = 0
    for order_by, flt in CASES:
        for limit in (1, 9, 60, 1000):
            expected, _ = local.scroll("c", scroll_filter=flt, order_by=order_by, limit=limit)
            got, offset = ours.scroll("c", scroll_filter=flt, order_by=order_by, limit=limit)
            assert offset is None
            assert _rows(got) == _rows(expected), (order_by, flt, limit)
            compared += len(expected)
        for offset_, limit in ((0, 10), (5, 20), (390, 50)):
            query = models.OrderByQuery(order_by=order_by)
            want = local.query_points("c", query=query, query_filter=flt, limit=limit, offset=offset_).points
            have = ours.query_points("c", query=query, query_filter=flt, limit=limit, offset=offset_).points
            assert _rows(have) == _rows(want), (order_by, flt, offset_, limit)
            assert all(p.score == 0.0 for p in have)  # Qdrant's server; local mode says 1.0
    assert compared > 2000
    if transport != "http":
        ours.close()


def test_ties_follow_insertion_order_and_every_value_of_an_array_is_a_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    points = [
        {
            "id": i,
            "vector": [1.0, 0.0],
            "payload": {"g": int(rng.integers(0, 4)), "a": [int(rng.integers(0, 6)) for _ in range(3)]},
        }
        for i in range(200)
    ]
    ours, local = vecdb.Client(path=tmp_path / "data"), QdrantClient(":memory:")
    for c in (ours, local):
        c.create_collection("c", models.VectorParams(size=2, distance=models.Distance.DOT))
        c.upsert("c", [models.PointStruct(**p) for p in points])
    ours.create_payload_index("c", "g", "integer")
    ours.create_payload_index("c", "a", "integer")
    for key in ("g", "a"):
        for direction in (models.Direction.ASC, models.Direction.DESC):
            for start in (None, 2):
                order_by = models.OrderBy(key=key, direction=direction, start_from=start)
                for limit in (1, 17, 150, 700):
                    want, _ = local.scroll("c", order_by=order_by, limit=limit)
                    got, _ = ours.scroll("c", order_by=order_by, limit=limit)
                    assert [(p.id, p.order_value) for p in got] == [(p.id, p.order_value) for p in want]
    ours.close()


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("c", models.VectorParams(size=2, distance=models.Distance.DOT))
    c.upsert("c", [models.PointStruct(id=i, vector=[1.0, float(i)], payload={"n": i, "k": "x"}) for i in range(5)])
    c.create_payload_index("c", "k", "keyword")
    c.create_payload_index("c", "flat", {"type": "integer", "range": False, "lookup": True})
    for key in ("n", "k", "flat"):  # no index, an index without order, one created with range: false
        with pytest.raises(InvalidInput, match=f"No range index for `order_by` key: `{key}`"):
            c.scroll("c", order_by=key)
        with pytest.raises(InvalidInput, match="No range index"):
            c.query_points("c", query=models.OrderByQuery(order_by=key))
    c.create_payload_index("c", "n", "integer")
    with pytest.raises(InvalidInput, match="Cannot use an `offset` when using `order_by`"):
        c.scroll("c", order_by="n", offset=2)
    with pytest.raises(InvalidInput, match="order_by.start_from"):
        c.scroll("c", order_by={"key": "n", "start_from": "yesterday"})
    with pytest.raises(InvalidInput, match="direction"):
        c.scroll("c", order_by={"key": "n", "direction": "up"})
    # over prefetched points: those points, in the order's order; as a prefetch: its first points
    near = c.query_points("c", query=[1.0, 0.0], limit=3).points
    ordered = c.query_points(
        "c", prefetch=[models.Prefetch(query=[1.0, 0.0], limit=3)], query=models.OrderByQuery(order_by="n")
    ).points
    assert [p.id for p in ordered] == [p.id for p in sorted(near, key=lambda p: (p.payload["n"], p.id))]
    fused = c.query_points(
        "c",
        prefetch=[models.Prefetch(query=models.OrderByQuery(order_by={"key": "n", "direction": "desc"}), limit=2)],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
    ).points
    assert [p.id for p in fused] == [4, 3]
    got, _ = c.scroll("c", order_by={"key": "n", "direction": "desc"}, limit=2)
    assert [(p.id, p.order_value) for p in got] == [(4, 4), (3, 3)]
    c.close()


def test_http_refusals_are_400s_naming_the_key(http_client: QdrantClient) -> None:
    name = "ob_refusals"
    if http_client.collection_exists(name):
        http_client.delete_collection(name)
    http_client.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
    http_client.upsert(name, [models.PointStruct(id=1, vector=[1.0, 0.0], payload={"n": 1})])
    with pytest.raises(UnexpectedResponse) as info:
        http_client.scroll(name, order_by="n")
    assert info.value.status_code == 400 and "No range index for `order_by` key: `n`" in info.value.content.decode()
    http_client.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER)
    with pytest.raises(UnexpectedResponse) as info:
        http_client.scroll(name, order_by="n", offset=1)
    assert info.value.status_code == 400 and "offset" in info.value.content.decode()
    got, _ = http_client.scroll(name, order_by="n")
    assert [(p.id, p.order_value) for p in got] == [(1, 1)]
