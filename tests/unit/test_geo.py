"""Geo conditions (radius, bounding box across and away from the antimeridian, polygons with holes,
points on edges and vertices) against qdrant-client's local mode: the evaluator value by value, the
geo payload index mask for mask, and whole queries, embedded and over HTTP; refusals of malformed
polygons and coordinates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.local.payload_filters import check_filter

import vecdb
from tests.harness import ServerProcess
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.models.filters import Filter


class _Point:
    """What a compiled predicate reads of a point."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.id = 0

    def has_vector(self, name: str) -> bool:
        return False


def _payloads(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    grid = [(float(a), float(b)) for a in range(-2, 3) for b in range(-2, 3)]  # (vertices and edges of the polygons)
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 9
        if kind < 5:
            value: Any = {"lat": float(rng.uniform(-80, 80)), "lon": float(rng.uniform(-180, 180))}
        elif kind == 5:
            lat, lon = grid[int(rng.integers(0, len(grid)))]
            value = {"lat": lat, "lon": lon}
        elif kind == 6:
            value = [{"lat": float(rng.uniform(-3, 3)), "lon": float(rng.uniform(-3, 3))} for _ in range(2)]
        elif kind == 7:
            value = {"lat": float(rng.uniform(-3, 3)), "lon": float(rng.uniform(178, 180)) * (1 if i % 2 else -1)}
        else:
            value = [None, "x", {"lat": True, "lon": 1}, {"lat": 1}, {"lat": 1, "lon": 2}][i % 5]
        out.append({"loc": value})
    return out


def _conditions() -> list[dict[str, Any]]:
    square = [(-2, -2), (-2, 2), (2, 2), (2, -2), (-2, -2)]
    hole = [(-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]

    def ring(points: list[tuple[float, float]]) -> dict[str, Any]:
        return {"points": [{"lat": a, "lon": b} for a, b in points]}

    return [
        {"geo_radius": {"center": {"lat": 0.5, "lon": 0.5}, "radius": 300_000.0}},
        {"geo_radius": {"center": {"lat": 40.0, "lon": -70.0}, "radius": 3_000_000.0}},
        {"geo_radius": {"center": {"lat": 1.0, "lon": 1.0}, "radius": 0.0}},
        {"geo_bounding_box": {"top_left": {"lat": 2.0, "lon": -2.0}, "bottom_right": {"lat": -2.0, "lon": 2.0}}},
        {"geo_bounding_box": {"top_left": {"lat": 3.0, "lon": 179.0}, "bottom_right": {"lat": -3.0, "lon": -179.0}}},
        {"geo_bounding_box": {"top_left": {"lat": 60.0, "lon": -100.0}, "bottom_right": {"lat": -10.0, "lon": 40.0}}},
        {"geo_polygon": {"exterior": ring(square)}},
        {"geo_polygon": {"exterior": ring(square), "interiors": [ring(hole)]}},
        {"geo_polygon": {"exterior": ring([(0, 0), (0, 60), (50, 30), (0, 0)])}},
    ]


def test_evaluator_and_index_match_local_mode() -> None:
    rng = np.random.default_rng(12)
    payloads = _payloads(rng, 1500)
    index = PayloadIndex({})
    index.add_field("loc", "geo", enumerate(payloads[:700]))  # built from stored points, then written to
    index.update_many(list(range(700, len(payloads))), payloads[700:])
    moved = list(range(0, len(payloads), 7))  # payloads replaced under the same point (stale entries)
    for iid in moved:
        payloads[iid] = {"loc": {"lat": 0.5, "lon": 0.5 + iid / 10_000}}
    index.update_many(moved, [payloads[i] for i in moved])
    for condition in _conditions():
        for shape in ({"must": [{"key": "loc", **condition}]}, {"must_not": [{"key": "loc", **condition}]}):
            reference = models.Filter.model_validate(shape)
            want = [check_filter(reference, p, 0, {}) for p in payloads]
            predicate = compile_filter(shape)
            assert predicate is not None
            got = [predicate(_Point(p)) for p in payloads]  # type: ignore[arg-type]
            assert got == want, condition
            mask = index.filter_mask(Filter.model_validate(shape), len(payloads))
            assert mask is not None and mask.tolist() == want, condition
        assert (
            0
            < sum(
                check_filter(
                    models.Filter(must=[models.FieldCondition.model_validate({"key": "loc", **condition})]), p, 0, {}
                )
                for p in payloads
            )
            or condition.get("geo_radius", {}).get("radius") == 0.0
        )


@pytest.fixture
def http_client(server: ServerProcess) -> Iterator[QdrantClient]:
    c = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False, timeout=30)
    yield c
    c.close()


@pytest.mark.parametrize("transport", ["embedded", "http"])
def test_geo_filtered_queries_match_local_mode(tmp_path: Path, transport: str, request: pytest.FixtureRequest) -> None:
    rng = np.random.default_rng(3)
    payloads = _payloads(rng, 400)
    points = [models.PointStruct(id=i, vector=rng.normal(size=3).tolist(), payload=p) for i, p in enumerate(payloads)]
    local = QdrantClient(":memory:")
    ours: Any = (
        vecdb.Client(path=tmp_path / "data") if transport == "embedded" else request.getfixturevalue("http_client")
    )
    for c in (local, ours):
        if c.collection_exists("geo"):
            c.delete_collection("geo")
        c.create_collection("geo", models.VectorParams(size=3, distance=models.Distance.COSINE))
        c.upsert("geo", points)
    q = rng.normal(size=3).tolist()
    for indexed in (False, True):
        if indexed:
            ours.create_payload_index("geo", "loc", models.PayloadSchemaType.GEO)
        for condition in _conditions():
            flt = models.Filter(must=[models.FieldCondition.model_validate({"key": "loc", **condition})])
            want = local.query_points("geo", query=q, query_filter=flt, limit=20).points
            got = ours.query_points("geo", query=q, query_filter=flt, limit=20).points
            assert [p.id for p in got] == [p.id for p in want], (indexed, condition)
            assert ours.count("geo", count_filter=flt).count == local.count("geo", count_filter=flt).count
    if transport == "embedded":
        ours.close()


def test_malformed_geo_is_refused_naming_it(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("c", {"size": 2, "distance": "Dot"})
    open_ring = [{"lat": 0, "lon": 0}, {"lat": 0, "lon": 1}, {"lat": 1, "lon": 1}, {"lat": 1, "lon": 0}]
    bad = [
        ({"geo_polygon": {"exterior": {"points": open_ring}}}, "closed line"),
        ({"geo_polygon": {"exterior": {"points": open_ring[:2] + open_ring[:1]}}}, "at least 4"),
        ({"geo_radius": {"center": {"lat": 91, "lon": 0}, "radius": 1}}, "lat"),
        ({"geo_bounding_box": {"top_left": {"lat": 1, "lon": 181}, "bottom_right": {"lat": 0, "lon": 0}}}, "lon"),
    ]
    for condition, fragment in bad:
        with pytest.raises(vecdb.errors.InvalidInput, match=fragment):
            c.count("c", count_filter={"must": [{"key": "loc", **condition}]})
    c.close()
