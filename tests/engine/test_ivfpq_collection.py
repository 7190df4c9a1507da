"""IVF-PQ collections end to end: choosing the index, background training, planner, persistence, errors."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import FORCE_INDEX, clustered, inspection, wait_green
from vecdb.errors import InvalidInput, Unsupported
from vecdb.index import device as device_mod
from vecdb.index.ivfpq import IvfPqIndex

IVF = {"type": "ivf_pq", "nlist": 16, "pq_m": 8}


def _fill(
    client,
    name: str,
    base: np.ndarray,
    distance: str = "Euclid",
    index=IVF,
    payloads=None,
    lo_id: int = 0,
    create: bool = True,
) -> None:
    if create:
        client.create_collection(
            name, {"size": base.shape[1], "distance": distance}, optimizers_config=FORCE_INDEX, index=index
        )
    for lo in range(0, len(base), 1000):
        hi = min(lo + 1000, len(base))
        client.upsert(
            name,
            {
                "ids": list(range(lo_id + lo, lo_id + hi)),
                "vectors": base[lo:hi],
                "payloads": None if payloads is None else payloads[lo:hi],
            },
        )


def _recall(client, name, base, queries, distance, allowed=None, query_filter=None, **kw) -> float:
    hits = 0
    for q in queries:
        got = client.query_points(name, query=q, limit=10, query_filter=query_filter, with_payload=False, **kw).points
        want = reference_top(base, list(range(len(base))), q, distance, 10, allowed)
        hits += len({p.id for p in got} & {i for i, _ in want})
    return hits / (10 * len(queries))


@pytest.mark.parametrize("distance", ["Euclid", "Cosine", "Dot"])
def test_ivf_pq_collection_trains_in_background_and_recalls(client, name, distance):
    data = clustered(4040)
    base, queries = data[:4000], data[4000:]
    _fill(client, name, base, distance)
    wait_green(client, name)
    info = client.get_collection(name)
    assert info.indexed_vectors_count == 4000
    assert info.config.index == IVF | {"pq_bits": 8, "device": "auto"}
    res = client.query_points(name, query=queries[0], limit=10, explain=True)
    assert res.explain["plan"] == "ivf_pq"
    assert res.explain["nprobe"] == 16  # default: max(16, nlist / 16), at most nlist
    assert res.explain["candidates_rescored"] >= 10
    assert _recall(client, name, base, queries, distance) >= 0.95
    # fewer lists scanned on request; nprobe is echoed
    narrow = client.query_points(name, query=queries[0], limit=10, search_params={"nprobe": 4}, explain=True)
    assert narrow.explain["nprobe"] == 4
    # ignore the codes: an exact scan
    exact = client.query_points(
        name, query=queries[0], limit=10, explain=True, search_params={"quantization": {"ignore": True}}
    )
    assert exact.explain["plan"] == "exact"
    want = reference_top(base, list(range(4000)), queries[0], distance, 10)
    assert [p.id for p in exact.points] == [i for i, _ in want]


def test_rescore_off_ranks_by_codes_and_fresh_points_are_found(client, name):
    data = clustered(3010, seed=3)
    base, queries = data[:3000], data[3000:]
    _fill(client, name, base)
    wait_green(client, name)
    rough = client.query_points(
        name, query=queries[0], limit=10, explain=True, search_params={"quantization": {"rescore": False}}
    )
    assert rough.explain["candidates_rescored"] == 0 and len(rough.points) == 10
    # a point written just now is found before the optimizer encodes it
    target = queries[1] + 1e-3
    client.upsert(name, [{"id": 99_999, "vector": target.tolist()}])
    got = client.query_points(name, query=queries[1], limit=1).points
    assert got[0].id == 99_999


def test_filters_and_tombstones(client, name):
    data = clustered(4020, seed=4)
    base, queries = data[:4000], data[4000:]
    payloads = [{"r": i % 100} for i in range(4000)]
    _fill(client, name, base, payloads=payloads)
    client.create_payload_index(name, "r", "integer")
    wait_green(client, name)
    ids = list(range(4000))
    for cut in (1, 50):  # 1%: exact plan; 50%: the lists with an allow-list
        flt = {"must": [{"key": "r", "range": {"lt": cut}}]}
        allowed = np.array([i % 100 < cut for i in ids])
        assert _recall(client, name, base, queries, "Euclid", allowed, flt) >= 0.95
        for q in queries[:5]:
            got = client.query_points(name, query=q, limit=10, query_filter=flt).points
            assert all(allowed[p.id] for p in got)
    gone = [p.id for p in client.query_points(name, query=queries[0], limit=10).points]
    client.delete(name, gone)
    again = client.query_points(name, query=queries[0], limit=10).points
    assert not set(gone) & {p.id for p in again}


def test_index_survives_reopen_without_retraining(tmp_path):
    data = clustered(3020, seed=5)
    base, queries = data[:3000], data[3000:]
    with vecdb.Client(path=tmp_path / "d") as c:
        _fill(c, "v", base)
        wait_green(c, "v")
        before = [[p.id for p in c.query_points("v", query=q, limit=10).points] for q in queries]
        centroids = inspection(c, "v").indexes[0].index.centroids.copy()
    with vecdb.Client(path=tmp_path / "d") as c:
        manifest = inspection(c, "v").manifests[0]
        assert manifest["kind"] == "ivf_pq" and manifest["file"].endswith(".ivfpq")
        wait_green(c, "v")
        index = inspection(c, "v").indexes[0].index
        assert isinstance(index, IvfPqIndex)
        np.testing.assert_array_equal(index.centroids, centroids)  # loaded, not retrained
        after = [[p.id for p in c.query_points("v", query=q, limit=10).points] for q in queries]
        assert after == before


def test_growth_triggers_retraining(tmp_path):
    data = clustered(9000, seed=6)
    with vecdb.Client(path=tmp_path / "d") as c:
        _fill(c, "g", data[:1500], index={"type": "ivf_pq", "pq_m": 8})
        wait_green(c, "g")
        first = inspection(c, "g").indexes[0].index
        assert first.stats["trained_on"] == 1500
        _fill(c, "g", data[1500:], lo_id=1500, create=False)
        wait_green(c, "g")
        later = inspection(c, "g").indexes[0].index
        assert later.stats["trained_on"] >= 4 * 1500
        assert later.nlist > first.nlist  # the default nlist follows the size
        assert c.get_collection("g").indexed_vectors_count == 9000


def test_flat_collections_never_index(client, name):
    base = clustered(2000, seed=7)
    _fill(client, name, base, index={"type": "flat"})
    wait_green(client, name)
    info = client.get_collection(name)
    assert info.indexed_vectors_count == 0 and info.config.index == {"type": "flat"}
    res = client.query_points(name, query=base[0], limit=3, explain=True)
    assert res.explain["plan"] == "exact" and "flat" in res.explain["reason"]


def test_product_quantization_shorthand(client, name):
    client.create_collection(
        name, {"size": 32, "distance": "Cosine"}, quantization_config={"product": {"compression": "x16"}}
    )
    assert client.get_collection(name).config.index == {
        "type": "ivf_pq",
        "compression": 16,
        "pq_bits": 8,
        "device": "auto",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"index": {"type": "ivf_pq", "pq_m": 5}}, "index.pq_m"),
        ({"index": {"type": "ivf_pq", "pq_bits": 4}}, "index.pq_bits"),
        ({"index": {"type": "annoy"}}, "index.type"),
        ({"index": {"type": "ivf_pq", "nlist": 0}}, "index.nlist"),
        ({"quantization_config": {"product": {"compression": "x3"}}}, "compression"),
        ({"index": {"type": "ivf_pq"}, "quantization_config": {"product": {"compression": "x16"}}}, "index"),
    ],
)
def test_bad_index_settings_name_the_field(client, name, kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        client.create_collection(name, {"size": 32, "distance": "Euclid"}, **kwargs)
    assert not client.collection_exists(name)


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(device_mod, "_cupy", lambda: None)
    with vecdb.Client(path=tmp_path / "d") as c:
        with pytest.raises(Unsupported, match="index.device"):
            c.create_collection("x", {"size": 32, "distance": "Euclid"}, index={"type": "ivf_pq", "device": "cuda"})


def test_drift_triggers_retraining(tmp_path):
    """Vectors far from every trained centroid make the codes coarse: the optimizer retrains."""
    near = clustered(1500, seed=8)
    far = clustered(1500, seed=9) + 25.0
    with vecdb.Client(path=tmp_path / "d") as c:
        _fill(c, "drift", near, index={"type": "ivf_pq", "pq_m": 8})
        wait_green(c, "drift")
        assert inspection(c, "drift").indexes[0].index.stats["trained_on"] == 1500
        _fill(c, "drift", far, lo_id=1500, create=False)
        wait_green(c, "drift")
        index = inspection(c, "drift").indexes[0].index
        assert index.stats["trained_on"] == 3000  # 2x growth alone would not retrain (4x does)
        assert index.drift() < 1.5
        q = far[7] + 0.01
        assert c.query_points("drift", query=q, limit=1).points[0].id == 1507
