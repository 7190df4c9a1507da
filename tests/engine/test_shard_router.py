"""The sharded collection's router (issue 18, ``vecdb/cluster/router.py``) over three in-process shards,
each its own data directory, against one collection holding the same points: writes by both upsert
forms and deletes by id and by filter, then retrieve, count, scroll pages and nearest queries (offsets,
filters, Euclid) must answer alike, ids and scores. Every other query kind: test_sharded_queries.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecdb.cluster.router import ShardRouter
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService
from vecdb.models.collections import CreateCollection, CreateFieldIndex
from vecdb.models.points import (
    CountRequest,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FilterSelector,
    PointIdsList,
    PointRequest,
    PointsBatch,
    PointsList,
    ScrollRequest,
    SetPayload,
    UpdateVectors,
)
from vecdb.models.query import QueryRequest

UUIDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(40)]


def _write(service: Any, rng: np.random.Generator, distance: str, **create: Any) -> None:
    body = {"vectors": {"size": 6, "distance": distance}, **create}
    service.create_collection("c", CreateCollection.model_validate(body))
    for field, kind in (("g", "integer"), ("tag", "keyword")):
        service.create_field_index("c", CreateFieldIndex(field_name=field, field_schema=kind))
    vectors = rng.normal(size=(240, 6)).astype(np.float32)
    ids: list[Any] = [*range(200), *UUIDS]
    points = [{"id": pid, "vector": vectors[j].tolist(), "payload": {"g": j % 5}} for j, pid in enumerate(ids)]
    service.upsert_points("c", PointsList.model_validate({"points": points[:120]}))
    batch = {"ids": ids[120:], "vectors": vectors[120:].tolist(), "payloads": [p["payload"] for p in points[120:]]}
    service.upsert_points("c", PointsBatch.model_validate({"batch": batch}))
    service.delete_points("c", PointIdsList(points=[3, 4, UUIDS[0]]))
    service.delete_points(
        "c", FilterSelector.model_validate({"filter": {"must": [{"key": "g", "match": {"value": 4}}]}})
    )
    # payload and vector writes, by ids and by filter
    g2 = {"must": [{"key": "g", "match": {"value": 2}}]}
    service.set_payload("c", SetPayload(payload={"tag": "x"}, points=[1, 2, 150, UUIDS[7]]))
    service.set_payload("c", SetPayload.model_validate({"payload": {"tag": "y"}, "filter": g2}))
    service.overwrite_payload("c", SetPayload(payload={"g": 9}, points=[10, 11]))
    service.delete_payload("c", DeletePayload(keys=["tag"], points=[2]))
    service.clear_payload("c", PointIdsList(points=[12]))
    moved = [{"id": 5, "vector": [1.0] * 6}, {"id": UUIDS[3], "vector": [-1.0] * 6}]
    service.update_vectors("c", UpdateVectors.model_validate({"points": moved}))
    service.delete_vectors("c", DeleteVectors(points=[6], vector=[""]))


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_router_answers_as_one_collection(tmp_path: Path, distance: str) -> None:
    shards = [LocalService(Database(tmp_path / f"shard{s}")) for s in range(3)]
    one = LocalService(Database(tmp_path / "one"))
    router = ShardRouter(shards)
    _write(router, np.random.default_rng(61), distance)
    _write(one, np.random.default_rng(61), distance)
    sizes = [s.count_points("c", CountRequest()).count for s in shards]
    assert all(size > 0 for size in sizes) and sum(sizes) == one.count_points("c", CountRequest()).count
    flt = {"must_not": [{"key": "g", "match": {"value": 1}}]}
    assert router.count_points("c", CountRequest.model_validate({"filter": flt})).count == (
        one.count_points("c", CountRequest.model_validate({"filter": flt})).count
    )
    for key in ("g", "tag"):  # counts summed over the shards, exact, in one collection's order
        req = FacetRequest(key=key, limit=3)
        assert router.facet("c", req).hits == one.facet("c", req).hits
    asked = PointRequest(ids=[UUIDS[5], 7, 3, 150, 7, UUIDS[0], 1, 2, 5, 6, 10, 12, UUIDS[3]], with_vector=True)
    assert [(r.id, r.payload, r.vector) for r in router.get_points("c", asked)] == [
        (r.id, r.payload, r.vector) for r in one.get_points("c", asked)
    ]
    for limit in (7, 50):  # every page, in scroll order, with the same next-page ids
        offset: Any = None
        while True:
            req = ScrollRequest.model_validate({"limit": limit, "offset": offset, "filter": flt})
            got, want = router.scroll_points("c", req), one.scroll_points("c", req)
            assert [p.id for p in got.points] == [p.id for p in want.points]
            assert got.next_page_offset == want.next_page_offset
            if want.next_page_offset is None:
                break
            offset = want.next_page_offset
    rng = np.random.default_rng(62)
    for q in rng.normal(size=(5, 6)).astype(np.float32):
        for body in ({"limit": 10}, {"limit": 5, "offset": 12, "filter": flt}, {"limit": 3, "offset": 0}):
            req = QueryRequest.model_validate({"query": q.tolist(), **body})
            got, want = router.query_points("c", req).points, one.query_points("c", req).points
            assert [p.id for p in got] == [p.id for p in want]
            # (the same products, summed in other BLAS blocks: equal to the last bits or so)
            assert [p.score for p in got] == pytest.approx([p.score for p in want], rel=1e-6, abs=1e-6)
    router.delete_collection("c")
    assert not any(s.collection_exists("c").exists for s in shards)
    for service in (*shards, one):
        service.db.close()
