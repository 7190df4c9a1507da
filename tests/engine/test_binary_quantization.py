"""Binary quantization: ``quantization_config.binary`` builds an HNSW graph over one-bit codes whose
candidates are re-ranked from the float32 rows; recall floors against a brute force on centred
high-dimensional data (what binary quantization is for), exact scores for what is returned,
``oversampling``, ``rescore: false`` and ``ignore``, filters, memory per vector against the float32
graph's, persistence across a reopen, switching by PATCH, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import clustered, fill_quantized, inspection, wait_green
from vecdb.errors import InvalidInput, Unsupported

BINARY = {"binary": {"always_ram": True}}


def _data(n: int, dim: int, seed: int) -> np.ndarray:
    """Clustered and centred: each dimension's values around zero, as the embeddings binary codes suit."""
    data = clustered(n, dim=dim, seed=seed)
    return (data - data.mean(axis=0)).astype(np.float32)


def _fill(client, name: str, base: np.ndarray, distance: str, quantization=BINARY) -> None:
    fill_quantized(client, name, base, distance, quantization)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_binary_quantized_hnsw_recalls_and_scores_exactly(client, name, distance):
    data = _data(3030, 128, seed=7)
    base, queries = data[:3000], data[3000:]
    ids = list(range(3000))
    _fill(client, name, base, distance)
    wait_green(client, name)
    assert client.get_collection(name).config.index == {"type": "hnsw_bq"}
    hits = 0
    for q in queries:
        res = client.query_points(name, query=q, limit=10, explain=True, search_params={"hnsw_ef": 128})
        assert res.explain["plan"] == "hnsw_bq" and res.explain["candidates_rescored"] >= 10
        want = reference_top(base, ids, q, distance, 10)
        hits += len({p.id for p in res.points} & {i for i, _ in want})
        exact = dict(reference_top(base, ids, q, distance, 3000))
        for p in res.points:  # re-ranked from the float32 rows: the exact score of each point returned
            assert p.score == pytest.approx(exact[p.id], rel=1e-4, abs=1e-4)
    assert hits / (10 * len(queries)) >= 0.9
    q = queries[0]
    ignored = client.query_points(
        name, query=q, limit=10, explain=True, search_params={"quantization": {"ignore": True}}
    )
    assert ignored.explain["plan"] == "exact"
    assert [p.id for p in ignored.points] == [i for i, _ in reference_top(base, ids, q, distance, 10)]
    wide = client.query_points(
        name, query=q, limit=10, explain=True, search_params={"hnsw_ef": 16, "quantization": {"oversampling": 8}}
    )
    assert wide.explain["candidates_rescored"] >= 80  # oversampling x limit candidates re-ranked
    raw = client.query_points(name, query=q, limit=10, search_params={"quantization": {"rescore": False}})
    assert len(raw.points) == 10
    scores = [p.score for p in raw.points]  # the codes' estimate, best first
    assert scores == sorted(scores, reverse=distance != "Euclid")
    if distance != "Euclid":
        assert all(-1.0 <= s <= 1.0 for s in scores)
    flt = {"must": [{"has_id": list(range(0, 3000, 3))}]}
    filtered = client.query_points(name, query=q, limit=10, query_filter=flt, search_params={"hnsw_ef": 128})
    want = [i for i, _ in reference_top(base, ids, q, distance, 10, allowed=np.arange(3000) % 3 == 0)]
    assert all(p.id % 3 == 0 for p in filtered.points)
    assert len({p.id for p in filtered.points} & set(want)) >= 8


def test_memory_reopen_and_switching(tmp_path: Path):
    data = _data(3000, 256, seed=3)
    path = tmp_path / "data"
    client = vecdb.Client(path=path)
    _fill(client, "bq", data, "Cosine")
    _fill(client, "f32", data, "Cosine", quantization=None)
    wait_green(client, "bq")
    wait_green(client, "f32")
    bq_bytes = inspection(client, "bq").indexes[0].index.memory_bytes()
    f32_bytes = inspection(client, "f32").indexes[0].index.memory_bytes()
    per_vector = bq_bytes / 3000
    assert per_vector < 0.25 * f32_bytes / 3000  # 32 bytes of codes instead of 1,024 (links are the same)
    before = [p.id for p in client.query_points("bq", query=data[7], limit=5).points]
    client.close()
    client = vecdb.Client(path=path)  # reopened: the checkpointed binary graph is loaded, not rebuilt
    wait_green(client, "bq")
    res = client.query_points("bq", query=data[7], limit=5, explain=True)
    assert res.explain["plan"] == "hnsw_bq" and [p.id for p in res.points] == before
    assert before[0] == 7
    client.update_collection("bq", quantization_config="Disabled")
    wait_green(client, "bq")
    assert client.query_points("bq", query=data[7], limit=5, explain=True).explain["plan"] == "hnsw"
    client.update_collection("bq", quantization_config={"binary": {}})
    wait_green(client, "bq")
    assert client.get_collection("bq").config.index == {"type": "hnsw_bq"}
    assert client.query_points("bq", query=data[7], limit=5, explain=True).explain["plan"] == "hnsw_bq"
    client.close()


def test_binary_settings_are_checked(client, name):
    for config, error, fragment in [
        ({"binary": {"encoding": "two_bits"}}, Unsupported, "quantization_config.binary.encoding"),
        ({"binary": {"query_encoding": "scalar8bits"}}, Unsupported, "quantization_config.binary.query_encoding"),
        ({"binary": {"bogus": 1}}, InvalidInput, "quantization_config.binary.bogus"),
        ({"binary": {"always_ram": "yes"}}, InvalidInput, "always_ram"),
        ({"binary": {}, "product": {"compression": "x16"}}, InvalidInput, "one quantization"),
    ]:
        with pytest.raises(error, match=fragment):
            client.create_collection(name, {"size": 4, "distance": "Dot"}, quantization_config=config)
    with pytest.raises(Unsupported, match="binary quantization per vector space"):
        client.create_collection(name, {"v": {"size": 4, "distance": "Dot", "quantization_config": BINARY}})
    with pytest.raises(InvalidInput, match="one quantization"):
        client.create_collection(
            name, {"size": 4, "distance": "Dot"}, quantization_config=BINARY, index={"type": "flat"}
        )
    client.create_collection(
        name, {"size": 4, "distance": "Manhattan"}, quantization_config={"binary": {"encoding": "one_bit"}}
    )
    client.upsert(name, [{"id": i, "vector": [float(i), 1.0, 0.0, -1.0]} for i in range(20)])
    got = client.query_points(name, query=[3.0, 1.0, 0.0, -1.0], limit=1, explain=True)
    assert got.points[0].id == 3 and got.explain["plan"] == "exact"  # no binary graph for Manhattan: exact
