"""Adding and removing named vectors of an existing collection (``PUT``/``DELETE
/collections/{c}/vectors/{name}``, qdrant-client's ``create_vector_name``/``delete_vector_name``), against
qdrant-client's local mode: the config echoed, points without the new vector, writes and queries on it,
removal of a vector in the middle of its kind (the later ones keep their rows and answers), no-ops,
refusals; embedded, through vecdb's QdrantClient and over HTTP; then reopened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.helpers import sharded_client
from vecdb.errors import InvalidInput

MAX_SIM = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)


def _dense(size: int, distance: Any = models.Distance.DOT, multi: bool = False) -> Any:
    return models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=size, distance=distance, multivector_config=MAX_SIM if multi else None)
    )


def _vectors(c: Any, name: str) -> dict[str, Any]:
    """The echoed vectors config as JSON (vecdb.Client answers plain dicts, qdrant-client its models)."""
    vectors = c.get_collection(name).config.params.vectors
    return {k: v if isinstance(v, dict) else v.model_dump(mode="json", exclude_none=True) for k, v in vectors.items()}


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return round(value, 4) if isinstance(value, float) else value


def _answers(c: Any, name: str, rng_seed: int) -> list[Any]:
    rng = np.random.default_rng(rng_seed)
    out = []
    for using, query in (
        ("a", rng.normal(size=3).tolist()),
        ("c", rng.normal(size=2).tolist()),
        ("m", rng.normal(size=(2, 2)).tolist()),
        ("s", models.SparseVector(indices=[1, 4], values=[1.0, 0.5])),
    ):
        points = c.query_points(name, query=query, using=using, limit=5, with_vectors=[using]).points
        out.append([(p.id, round(p.score, 4), _plain(p.vector)) for p in points])
    return out


@pytest.mark.parametrize("transport", ["embedded", "qdrant_client", "http", "sharded"])
def test_add_and_remove_vectors_match_local_mode(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(31)
    local = QdrantClient(":memory:")
    if transport == "embedded":
        ours: Any = vecdb.Client(path=tmp_path / "data")
    elif transport == "qdrant_client":
        ours = vecdb.QdrantClient(path=str(tmp_path / "data"))
    elif transport == "sharded":
        ours = sharded_client(tmp_path / "cluster")
    else:
        ours = request.getfixturevalue("http_client")
    name = "vnames"
    points = [models.PointStruct(id=i, vector={"a": rng.normal(size=3).tolist()}) for i in range(30)]
    for c in (local, ours):
        if c.collection_exists(name):
            c.delete_collection(name)
        c.create_collection(name, {"a": models.VectorParams(size=3, distance=models.Distance.DOT)})
        c.upsert(name, points)
        # three new vectors of each kind's first position and later ones
        c.create_vector_name(name, "b", _dense(4))
        c.create_vector_name(name, "c", _dense(2, models.Distance.EUCLID))
        c.create_vector_name(name, "m", _dense(2, multi=True))
        c.create_vector_name(name, "s", models.SparseVectorNameConfig(sparse=models.SparseVectorConfig()))
        c.create_vector_name(name, "b", _dense(4))  # the same schema again: a no-op
    for i in range(0, 30, 2):  # half the points get the new vectors
        vector = {
            "b": rng.normal(size=4).tolist(),
            "c": rng.normal(size=2).tolist(),
            "m": rng.normal(size=(2, 2)).tolist(),
            "s": models.SparseVector(indices=[i % 4, 4], values=[1.0, float(i)]),
        }
        for c in (local, ours):
            c.update_vectors(name, [models.PointVectors(id=i, vector=vector)])
    assert _vectors(ours, name) == _vectors(local, name)
    assert _answers(ours, name, 1) == _answers(local, name, 1)
    has_c = models.Filter(must=[models.HasVectorCondition(has_vector="c")])
    assert ours.count(name, count_filter=has_c).count == local.count(name, count_filter=has_c).count == 15
    for c in (local, ours):  # the first added dense vector goes: "c" (after it) keeps its rows
        c.delete_vector_name(name, "b")
        c.delete_vector_name(name, "nothing")  # a vector that does not exist: a no-op
    info = _vectors(ours, name)
    assert set(info) == {"a", "c", "m"} and info == _vectors(local, name)
    assert _answers(ours, name, 2) == _answers(local, name, 2)
    for c in (local, ours):
        c.delete_vector_name(name, "s")
        c.delete_vector_name(name, "a")
    assert ours.get_collection(name).config.params.sparse_vectors in (None, {})
    rest = ours.query_points(name, query=[1.0, 0.5], using="c", limit=3).points
    assert [p.id for p in rest] == [p.id for p in local.query_points(name, query=[1.0, 0.5], using="c", limit=3).points]
    if transport != "http":
        ours.close()


def test_refusals_and_reopen(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("r", models.VectorParams(size=2, distance=models.Distance.DOT))
    c.upsert("r", [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(5)])
    with pytest.raises(InvalidInput, match="Cannot delete the unnamed vector"):
        c.delete_vector_name("r", "")
    c.create_vector_name("r", "extra", _dense(3))
    assert set(c.get_collection("r").config.params.vectors) == {"", "extra"}  # the unnamed one kept under ""
    with pytest.raises(InvalidInput, match="already exists with a different configuration"):
        c.create_vector_name("r", "extra", _dense(4))
    with pytest.raises(InvalidInput, match="already exists as a dense vector"):
        c.create_vector_name("r", "extra", models.SparseVectorNameConfig(sparse=models.SparseVectorConfig()))
    with pytest.raises(InvalidInput, match="cannot contain"):
        c.create_vector_name("r", "a/b", _dense(3))
    with pytest.raises(InvalidInput, match="exactly one of dense or sparse"):
        c.create_vector_name("r", "x", {})
    c.update_vectors("r", [models.PointVectors(id=1, vector={"extra": [0.0, 1.0, 0.0]})])
    c.close()
    again = vecdb.Client(path=tmp_path / "data")
    got = again.query_points("r", query=[0.0, 1.0, 0.0], using="extra", limit=3).points
    assert [p.id for p in got] == [1]
    assert [p.id for p in again.query_points("r", query=[0.0, 1.0], limit=2).points] == [4, 3]
    again.close()
