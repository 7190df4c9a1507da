"""Scalar (int8) quantization: ``quantization_config.scalar`` builds an HNSW graph over int8 codes whose
candidates are re-ranked from the float32 rows; recall floors against a brute force, exact scores for
what is returned, ``rescore: false`` and ``ignore``, memory per vector below the float32 graph's,
persistence across a reopen, and switching it off by PATCH."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import clustered, fill_quantized, inspection, wait_green
from vecdb.errors import InvalidInput, Unsupported

SCALAR = {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}


def _fill(client, name: str, base: np.ndarray, distance: str, quantization=SCALAR) -> None:
    fill_quantized(client, name, base, distance, quantization)


@pytest.mark.parametrize("distance", ["Cosine", "Euclid", "Dot"])
def test_scalar_quantized_hnsw_recalls_and_scores_exactly(client, name, distance):
    data = clustered(4030, dim=32, seed=5)
    base, queries = data[:4000], data[4000:]
    _fill(client, name, base, distance)
    wait_green(client, name)
    assert client.get_collection(name).config.index == {"type": "hnsw_sq", "quantile": 0.99}
    hits = 0
    for q in queries:
        res = client.query_points(name, query=q, limit=10, explain=True)
        assert res.explain["plan"] == "hnsw_sq" and res.explain["candidates_rescored"] >= 10
        want = reference_top(base, list(range(4000)), q, distance, 10)
        hits += len({p.id for p in res.points} & {i for i, _ in want})
        exact = dict(reference_top(base, list(range(4000)), q, distance, 4000))
        for p in res.points:  # re-ranked from the float32 rows: the exact score of each point returned
            assert p.score == pytest.approx(exact[p.id], rel=1e-4, abs=1e-4)
    assert hits / (10 * len(queries)) >= 0.95
    q = queries[0]
    ignored = client.query_points(
        name, query=q, limit=10, explain=True, search_params={"quantization": {"ignore": True}}
    )
    assert ignored.explain["plan"] == "exact"
    assert [p.id for p in ignored.points] == [i for i, _ in reference_top(base, list(range(4000)), q, distance, 10)]
    raw = client.query_points(name, query=q, limit=10, search_params={"quantization": {"rescore": False}})
    assert len(raw.points) == 10  # ranked by the codes' approximate scores


def test_memory_reopen_and_switching_off(tmp_path: Path):
    data = clustered(3000, dim=64, seed=2)
    path = tmp_path / "data"
    client = vecdb.Client(path=path)
    _fill(client, "sq", data, "Cosine")
    _fill(client, "f32", data, "Cosine", quantization=None)
    wait_green(client, "sq")
    wait_green(client, "f32")
    sq_bytes = inspection(client, "sq").indexes[0].index.memory_bytes()
    f32_bytes = inspection(client, "f32").indexes[0].index.memory_bytes()
    assert sq_bytes < 0.55 * f32_bytes  # one byte a dimension instead of four (links are the same)
    before = [p.id for p in client.query_points("sq", query=data[7], limit=5).points]
    client.close()
    client = vecdb.Client(path=path)  # reopened: the checkpointed int8 graph is loaded, not rebuilt
    wait_green(client, "sq")
    res = client.query_points("sq", query=data[7], limit=5, explain=True)
    assert res.explain["plan"] == "hnsw_sq" and [p.id for p in res.points] == before
    client.update_collection("sq", quantization_config="Disabled")
    wait_green(client, "sq")
    assert client.get_collection("sq").config.index == {"type": "hnsw"}
    assert client.query_points("sq", query=data[7], limit=5, explain=True).explain["plan"] == "hnsw"
    client.update_collection("sq", quantization_config={"scalar": {"type": "int8"}})
    wait_green(client, "sq")
    assert client.query_points("sq", query=data[7], limit=5, explain=True).explain["plan"] == "hnsw_sq"
    client.close()


def test_scalar_settings_are_checked(client, name):
    for config, error, fragment in [
        ({"scalar": {"type": "int4"}}, InvalidInput, "quantization_config.scalar.type"),
        ({"scalar": {"type": "int8", "quantile": 0.2}}, InvalidInput, "quantile"),
        ({"scalar": {"type": "int8", "bogus": 1}}, InvalidInput, "quantization_config.scalar.bogus"),
        ({"scalar": {"type": "int8"}, "binary": {}}, InvalidInput, "give one quantization, not scalar and binary"),
    ]:
        with pytest.raises(error, match=fragment):
            client.create_collection(name, {"size": 4, "distance": "Dot"}, quantization_config=config)
    with pytest.raises(Unsupported, match="per vector space"):
        client.create_collection(name, {"v": {"size": 4, "distance": "Dot", "quantization_config": SCALAR}})
    with pytest.raises(InvalidInput, match="one quantization"):
        client.create_collection(
            name, {"size": 4, "distance": "Dot"}, quantization_config=SCALAR, index={"type": "ivf_pq"}
        )
