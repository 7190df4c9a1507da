"""Multivectors (``multivector_config: max_sim``) against qdrant-client's local mode: exact MaxSim as a
root query and as a re-score stage under a dense prefetch, queries by stored point, filters (including
``has_vector``), offsets and thresholds, vectors returned, updates and deletions of vectors; all four
metrics, embedded, through vecdb's QdrantClient and through the real qdrant-client over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

import vecdb
from tests.helpers import sharded_client
from vecdb.errors import InvalidInput, Unsupported

DISTANCES = [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]
MAX_SIM = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)


def _client(transport: str, path: Path, request: pytest.FixtureRequest) -> Any:
    if transport == "embedded":
        return vecdb.Client(path=path)
    if transport == "qdrant_client":
        return vecdb.QdrantClient(path=str(path))
    if transport == "sharded":
        return sharded_client(path)
    return request.getfixturevalue("http_client")


def _matrix(rng: np.random.Generator, size: int) -> list[list[float]]:
    return rng.normal(size=(int(rng.integers(1, 7)), size)).round(4).tolist()


def _same(got: list[Any], want: list[Any]) -> None:
    assert [p.id for p in got] == [p.id for p in want]
    np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("transport", ["embedded", "qdrant_client", "http", "sharded"])
@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_maxsim_matches_local_mode(
    tmp_path: Path, transport: str, distance: Any, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(11)
    points = []
    for i in range(160):
        vector: dict[str, Any] = {"d": rng.normal(size=4).tolist()}
        if i % 9:  # every ninth point holds no multivector
            vector["colbert"] = _matrix(rng, 6)
        points.append(models.PointStruct(id=i, vector=vector, payload={"g": i % 3, "n": i}))
    local = QdrantClient(":memory:")
    ours = _client(transport, tmp_path / "data", request)
    name = f"mv_{distance.value.lower()}"
    config = {
        "d": models.VectorParams(size=4, distance=distance),
        "colbert": models.VectorParams(size=6, distance=distance, multivector_config=MAX_SIM),
    }
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, config)
        c.upsert(name, points)
        c.delete(name, models.PointIdsList(points=[13, 14]))
        c.update_vectors(name, [models.PointVectors(id=20, vector={"colbert": [[1.0, 0, 0, 0, 0, 2.0]]})])
        c.update_vectors(name, [models.PointVectors(id=27, vector={"colbert": _matrix(np.random.default_rng(3), 6)})])
    flt = models.Filter(must_not=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])
    compared = 0
    for _ in range(4):
        q = rng.normal(size=(int(rng.integers(1, 5)), 6)).tolist()
        for args in ({"limit": 10}, {"limit": 7, "offset": 3, "query_filter": flt}):
            want = local.query_points(name, query=q, using="colbert", **args).points
            got = ours.query_points(name, query=q, using="colbert", **args).points
            _same(got, want)
            compared += len(want)
        # late interaction as a re-score stage under a dense prefetch
        prefetch = models.Prefetch(query=rng.normal(size=4).tolist(), using="d", limit=40)
        want = local.query_points(name, prefetch=prefetch, query=q, using="colbert", limit=8, query_filter=flt).points
        got = ours.query_points(name, prefetch=prefetch, query=q, using="colbert", limit=8, query_filter=flt).points
        _same(got, want)
        compared += len(want)
        # a threshold keeps the better scores (above; below for Euclid and Manhattan)
        ranked = local.query_points(name, query=q, using="colbert", limit=20).points
        cut = (ranked[8].score + ranked[9].score) / 2  # (float64 sums may differ from local mode's in the last bits)
        got = ours.query_points(name, query=q, using="colbert", limit=20, score_threshold=cut).points
        assert [p.id for p in got] == [p.id for p in ranked[:9]]
    # a stored point as the query (left out of its own answer); vectors returned as stored
    want = local.query_points(name, query=5, using="colbert", limit=6, with_vectors=True).points
    got = ours.query_points(name, query=5, using="colbert", limit=6, with_vectors=True).points
    _same(got, want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.vector["colbert"], w.vector["colbert"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g.vector["d"], w.vector["d"], rtol=1e-5, atol=1e-6)
    has = models.Filter(must=[models.HasVectorCondition(has_vector="colbert")])
    assert ours.count(name, count_filter=has).count == local.count(name, count_filter=has).count == 158 - 18 + 1
    got_ids = {p.id for p in ours.scroll(name, scroll_filter=has, limit=200)[0]}
    assert got_ids == {p.id for p in local.scroll(name, scroll_filter=has, limit=200)[0]}
    # deleting the multivectors of some points takes them out of MaxSim answers, the rest stays
    for c in (local, ours):
        c.delete_vectors(
            name, ["colbert"], models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=1))])
        )
    q = rng.normal(size=(3, 6)).tolist()
    want = local.query_points(name, query=q, using="colbert", limit=15).points
    got = ours.query_points(name, query=q, using="colbert", limit=15).points
    _same(got, want)
    assert all(p.id % 3 != 1 for p in got)
    assert compared == 4 * (10 + 7 + 8)
    if transport != "http":
        ours.close()


def test_default_multivector_reopen_and_explain(tmp_path: Path) -> None:
    """A collection whose one (unnamed) vector is a multivector: upserts in both shapes, queries with no
    ``using``, the same answers after the collection is closed and opened again, ``explain`` costs."""
    rng = np.random.default_rng(5)
    matrices = [_matrix(rng, 3) for _ in range(60)]
    local = QdrantClient(":memory:")
    ours = vecdb.Client(path=tmp_path / "data")
    for c in (local, ours):
        c.create_collection(
            "m", models.VectorParams(size=3, distance=models.Distance.COSINE, multivector_config=MAX_SIM)
        )
        c.upsert("m", models.Batch(ids=list(range(30)), vectors=matrices[:30]))
        c.upsert("m", [models.PointStruct(id=i, vector=matrices[i]) for i in range(30, 60)])
    q = rng.normal(size=(2, 3)).tolist()
    want = local.query_points("m", query=q, limit=10, with_vectors=True).points
    got = ours.query_points("m", query=q, limit=10, with_vectors=True).points
    _same(got, want)
    assert all(isinstance(p.vector, list) and isinstance(p.vector[0], list) for p in got)
    info = ours.get_collection("m")
    assert info.points_count == 60
    ours.close()
    again = vecdb.Client(path=tmp_path / "data")
    _same(again.query_points("m", query=q, limit=10).points, want)
    explained = again.query_points("m", query=q, limit=10, explain=True).explain
    rows = sum(len(m) for m in matrices)
    assert explained["plan"] == "exact_maxsim" and explained["points_scored"] == 60
    assert explained["stored_rows"] == rows and explained["query_rows"] == 2
    assert explained["row_comparisons"] == rows * 2
    flt = models.Filter(must=[models.HasIdCondition(has_id=[1, 2, 3])])
    explained = again.query_points("m", query=q, limit=10, query_filter=flt, explain=True).explain
    assert explained["points_scored"] == 3  # a selective filter fetches its points' rows alone
    again.close()


def test_multivector_refusals(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection(
        "r",
        {
            "d": models.VectorParams(size=2, distance=models.Distance.DOT),
            "m": models.VectorParams(size=2, distance=models.Distance.DOT, multivector_config=MAX_SIM),
        },
    )
    c.upsert("r", [models.PointStruct(id=1, vector={"d": [1.0, 0.0], "m": [[1.0, 0.0], [0.0, 1.0]]})])
    bad_points = [
        ({"m": []}, "Multivector must not be empty"),
        ({"m": [[1.0, 0.0], [1.0]]}, r"points\[0\]\.vector\.m\[1\]: Vector dimension error: expected dim: 2, got 1"),
        ({"m": [[1.0, 0.0], []]}, "must be non-empty"),
        ({"m": [1.0, 0.0]}, "Conversion between multi and regular vectors failed"),
        ({"d": [[1.0, 0.0]]}, "Conversion between multi and regular vectors failed"),
        ({"m": [[1.0, float("nan")]]}, r"points\.0\.vector\.m\.0\.1: Input should be a finite number"),
    ]
    for vector, message in bad_points:
        with pytest.raises(InvalidInput, match=message):
            c.upsert("r", [{"id": 2, "vector": vector}])
    assert c.count("r").count == 1  # nothing half-written
    with pytest.raises(InvalidInput, match="expected a list of vectors, got a single vector"):
        c.query_points("r", query=[1.0, 0.0], using="m")
    with pytest.raises(InvalidInput, match="multivector query needs a multivector space"):
        c.query_points("r", query=[[1.0, 0.0]], using="d")
    with pytest.raises(InvalidInput, match="dimension"):
        c.query_points("r", query=[[1.0, 0.0, 3.0]], using="m")
    as_array = c.query_points("r", query=np.array([[1.0, 0.5]]), using="m").points  # (numpy: validated whole)
    assert [(p.id, p.score) for p in as_array] == [
        (p.id, p.score) for p in c.query_points("r", query=[[1.0, 0.5]], using="m").points
    ]
    with pytest.raises(InvalidInput, match="NaN"):
        c.query_points("r", query=np.array([[np.nan, 0.5]]), using="m")
    with pytest.raises(InvalidInput, match="multivector query needs a multivector space"):
        c.query_points("r", query=np.array([[1.0, 0.5]]), using="d")
    with pytest.raises(Unsupported, match="mmr"):
        c.query_points("r", query=models.NearestQuery(nearest=[[1.0, 0.0]], mmr=models.Mmr()), using="m")
    for config, message in (
        ({"comparator": "min_sim"}, "comparator: expected max_sim"),
        ({"comparator": "max_sim", "k": 3}, r"multivector_config\.k: not a multivector setting"),
    ):
        with pytest.raises(InvalidInput, match=message):
            c.create_collection("bad", {"m": {"size": 2, "distance": "Dot", "multivector_config": config}})
    c.close()


def test_http_errors_name_the_field(http_client: QdrantClient) -> None:
    name = "mv_errors"
    if http_client.collection_exists(name):
        http_client.delete_collection(name)
    http_client.create_collection(name, {"m": models.VectorParams(size=2, distance="Dot", multivector_config=MAX_SIM)})
    with pytest.raises(UnexpectedResponse) as err:
        http_client.upsert(name, [models.PointStruct(id=1, vector={"m": [[1.0, 0.0], [2.0]]})])
    assert err.value.status_code == 400 and b"points[0].vector.m[1]" in err.value.content
    with pytest.raises(UnexpectedResponse) as err:
        http_client.query_points(name, query=[1.0, 2.0], using="m")
    assert err.value.status_code == 400 and b"single vector" in err.value.content


def test_snapshot_and_jsonl_round_trip(tmp_path: Path) -> None:
    """Multivectors travel in snapshots (restored, then queried) and in ``vecdb export`` JSONL files that
    ``vecdb import`` reads back into a collection with the same vectors config."""
    from typer.testing import CliRunner

    from vecdb.cli.main import app

    rng = np.random.default_rng(9)
    config = {
        "d": models.VectorParams(size=3, distance=models.Distance.DOT),
        "m": models.VectorParams(size=3, distance=models.Distance.DOT, multivector_config=MAX_SIM),
    }
    points = [
        models.PointStruct(id=i, vector={"d": rng.normal(size=3).tolist(), "m": _matrix(rng, 3)}, payload={"i": i})
        for i in range(40)
    ]
    c = vecdb.Client(path=tmp_path / "db")
    c.create_collection("src", config)
    c.upsert("src", points)
    q = rng.normal(size=(2, 3)).tolist()
    want = [(p.id, p.score) for p in c.query_points("src", query=q, using="m", limit=10).points]
    snap = c.create_snapshot("src")
    assert snap is not None
    c.upsert("src", [models.PointStruct(id=99, vector={"d": [9.0, 9, 9], "m": [[9.0, 9, 9]]})])  # after the snapshot
    c.recover_snapshot("src", snap.name)
    assert [(p.id, p.score) for p in c.query_points("src", query=q, using="m", limit=10).points] == want
    c.create_collection("copy", config)
    c.close()
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    for args in (
        ["export", "-c", "src", "-o", str(out), "--no-progress", "--path", str(tmp_path / "db")],
        ["import", str(out), "-c", "copy", "--no-progress", "--path", str(tmp_path / "db")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    c = vecdb.Client(path=tmp_path / "db")
    assert [(p.id, p.score) for p in c.query_points("copy", query=q, using="m", limit=10).points] == want
    back = {r.id: r.vector["m"] for r in c.retrieve("copy", list(range(40)), with_vectors=True)}
    assert all(np.allclose(back[p.id], p.vector["m"], atol=1e-6) for p in points)  # type: ignore[index]
    c.close()
