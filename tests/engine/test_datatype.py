"""Vector ``datatype``: ``float16`` stores every value rounded to half precision (after Cosine's
normalisation), as Qdrant stores it, so retrieved vectors and scores are those of the rounded values;
``uint8`` takes whole numbers 0..255, stored and returned as given (Cosine too: compared by angle, as
Qdrant's byte metrics do). Values outside a datatype's range are refused naming the field. Embedded
(dense and multivector, through a reopen) and through the real qdrant-client over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.brute import reference_top
from tests.harness import ServerProcess
from vecdb.errors import InvalidInput, Unsupported


def _rounded(rows: np.ndarray, cosine: bool) -> np.ndarray:
    if cosine:
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32).astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_float16_rounds_what_is_stored(tmp_path: Path, distance: str) -> None:
    rng = np.random.default_rng(41)
    base = (rng.normal(size=(300, 12)) * 3).astype(np.float32)
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("h", {"size": 12, "distance": distance, "datatype": "float16"})
    c.upsert("h", {"ids": list(range(200)), "vectors": base[:200]})
    c.upsert("h", [{"id": i, "vector": base[i].tolist()} for i in range(200, 300)])
    stored = _rounded(base, distance == "Cosine")
    got = {r.id: r.vector for r in c.retrieve("h", list(range(300)), with_vectors=True)}
    np.testing.assert_array_equal(np.asarray([got[i] for i in range(300)], dtype=np.float32), stored)
    assert c.get_collection("h").config.params.vectors["datatype"] == "float16"
    for q in rng.normal(size=(5, 12)).astype(np.float32):
        if distance == "Cosine":  # (the stored rows, rounded after normalising, against the unit query: Qdrant's dot)
            scores = stored.astype(np.float64) @ (q / np.linalg.norm(q))
            want = [(int(i), float(scores[i])) for i in np.argsort(-scores)[:10]]
        else:
            want = reference_top(stored, list(range(300)), q, distance, 10)
        hits = c.query_points("h", query=q, limit=10).points
        assert [p.id for p in hits] == [i for i, _ in want]
        np.testing.assert_allclose([p.score for p in hits], [s for _, s in want], rtol=1e-5, atol=1e-5)
    c.close()
    again = vecdb.Client(path=tmp_path / "data")
    back = again.retrieve("h", [7], with_vectors=True)[0].vector
    np.testing.assert_array_equal(np.asarray(back, dtype=np.float32), stored[7])
    again.close()


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
def test_uint8_stores_whole_numbers_as_given(tmp_path: Path, distance: str) -> None:
    rng = np.random.default_rng(43)
    base = rng.integers(0, 256, size=(300, 10)).astype(np.float32)
    c = vecdb.Client(path=tmp_path / "data")
    c.create_collection("b", {"size": 10, "distance": distance, "datatype": "uint8"})
    c.upsert("b", {"ids": list(range(200)), "vectors": base[:200]})
    c.upsert("b", [{"id": i, "vector": [int(v) for v in base[i]]} for i in range(200, 300)])
    got = {r.id: r.vector for r in c.retrieve("b", list(range(300)), with_vectors=True)}
    np.testing.assert_array_equal(np.asarray([got[i] for i in range(300)], dtype=np.float32), base)
    for q in rng.integers(0, 256, size=(4, 10)).astype(np.float32):
        want = reference_top(base, list(range(300)), q, distance, 10)
        hits = c.query_points("b", query=q, limit=10).points
        assert [p.id for p in hits] == [i for i, _ in want]
        np.testing.assert_allclose([p.score for p in hits], [s for _, s in want], rtol=1e-4, atol=1e-3)
    by_id = c.query_points("b", query=7, limit=5).points  # the stored row, compared as search compares rows
    want = [i for i, _ in reference_top(base, list(range(300)), base[7], distance, 6) if i != 7][:5]
    assert [p.id for p in by_id] == want
    for bad in ([1.5] + [0.0] * 9, [256.0] + [0.0] * 9, [-1.0] * 10):
        with pytest.raises(InvalidInput, match=r"points\.vector\[0\]: uint8 vectors take whole numbers from 0 to 255"):
            c.upsert("b", [{"id": 999, "vector": bad}])
    assert c.count("b").count == 300
    c.close()
    again = vecdb.Client(path=tmp_path / "data")  # reopened: rows read back raw, compared as before
    hits = again.query_points("b", query=base[3], limit=3).points
    assert [p.id for p in hits] == [i for i, _ in reference_top(base, list(range(300)), base[3], distance, 3)]
    again.close()


def test_refusals_and_multivectors(tmp_path: Path) -> None:
    c = vecdb.Client(path=tmp_path / "data")
    with pytest.raises(Unsupported, match=r"vectors\.mv\.datatype: uint8 multivectors"):
        c.create_collection(
            "u",
            {
                "mv": {
                    "size": 2,
                    "distance": "Dot",
                    "datatype": "uint8",
                    "multivector_config": {"comparator": "max_sim"},
                }
            },
        )
    with pytest.raises(InvalidInput, match=r"datatype: expected one of float32, float16, uint8"):
        c.create_collection("u", {"size": 2, "distance": "Dot", "datatype": "int4"})
    c.create_collection(
        "m",
        {
            "d": {"size": 2, "distance": "Dot", "datatype": "float16"},
            "mv": {
                "size": 2,
                "distance": "Dot",
                "datatype": "float16",
                "multivector_config": {"comparator": "max_sim"},
            },
        },
    )
    with pytest.raises(InvalidInput, match=r"points\.vector\.d\[0\]: a component exceeds the float16 range"):
        c.upsert("m", [{"id": 1, "vector": {"d": [70000.0, 1.0]}}])
    c.upsert("m", [{"id": 1, "vector": {"d": [0.1, 1.0], "mv": [[0.1, 1.0], [1.0 / 3, 2.0]]}}])
    got = c.retrieve("m", [1], with_vectors=True)[0].vector
    assert got["d"] == pytest.approx([float(np.float16(0.1)), 1.0], abs=0)
    assert got["mv"][1][0] == float(np.float16(1.0 / 3))
    # a query is not rounded: the score is the float32 query against the stored half-precision values
    score = c.query_points("m", query=[[1.0 / 3, 0.0]], using="mv", limit=1).points[0].score
    assert score == pytest.approx(max(0.1 * float(np.float16(0.1)), float(np.float16(1.0 / 3)) / 3), rel=1e-6)
    c.create_vector_name("m", "late", {"dense": {"size": 2, "distance": "Dot", "datatype": "float16"}})
    c.update_vectors("m", [{"id": 1, "vector": {"late": [0.1, 0.2]}}])
    assert c.retrieve("m", [1], with_vectors=["late"])[0].vector["late"][0] == float(np.float16(0.1))
    c.close()


def test_float16_over_http(server: ServerProcess, name: str) -> None:
    c: Any = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False)
    c.create_collection(
        name, models.VectorParams(size=3, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16)
    )
    c.upsert(name, [models.PointStruct(id=1, vector=[0.1, 0.2, 0.3])])
    assert c.get_collection(name).config.params.vectors.datatype == models.Datatype.FLOAT16
    back = c.retrieve(name, [1], with_vectors=True)[0].vector
    assert back == [float(np.float16(v)) for v in (0.1, 0.2, 0.3)]
    c.create_collection(
        name + "u", models.VectorParams(size=3, distance=models.Distance.COSINE, datatype=models.Datatype.UINT8)
    )
    c.upsert(name + "u", [models.PointStruct(id=1, vector=[1, 2, 250]), models.PointStruct(id=2, vector=[9, 0, 1])])
    assert c.retrieve(name + "u", [1], with_vectors=True)[0].vector == [1.0, 2.0, 250.0]  # as given, not unit length
    hit = c.query_points(name + "u", query=[9.0, 0.0, 1.0], limit=1).points[0]
    assert hit.id == 2 and hit.score == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(Exception, match="whole numbers from 0 to 255"):
        c.upsert(name + "u", [models.PointStruct(id=3, vector=[1.5, 2, 3])])
    c.delete_collection(name)
    c.delete_collection(name + "u")
    c.close()
