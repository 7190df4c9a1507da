"""The embedded and the remote client against the same expectations (exact results by brute force)."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import sharded_client
from vecdb.errors import AlreadyExists, InvalidInput, NotFound, Unsupported, VecdbError
from vecdb.models import Distance, PointStruct, VectorParams

DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"]


def _fill(client, name: str, distance: str, n: int = 400, dim: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim)) * 3
    base = (centers[rng.integers(0, 8, n)] + rng.normal(size=(n, dim))).astype(np.float32)
    client.create_collection(name, vectors_config=VectorParams(size=dim, distance=Distance(distance)))
    ids = list(range(n))
    payloads = [{"i": i, "group": f"g{i % 5}", "even": i % 2 == 0} for i in ids]
    for lo in range(0, n, 128):
        client.upsert(
            name, {"ids": ids[lo : lo + 128], "vectors": base[lo : lo + 128], "payloads": payloads[lo : lo + 128]}
        )
    return base, ids, rng


@pytest.mark.parametrize("distance", DISTANCES)
def test_search_is_exact(client, name, distance):
    base, ids, rng = _fill(client, name, distance)
    for _ in range(5):
        q = rng.normal(size=base.shape[1]).astype(np.float32) * 3
        got = client.query_points(name, query=q, limit=10).points
        want = reference_top(base, ids, q, distance, 10)
        assert [p.id for p in got] == [i for i, _ in want]
        np.testing.assert_allclose([p.score for p in got], [s for _, s in want], rtol=1e-4, atol=1e-4)


def test_filtered_search_offset_and_threshold(client, name):
    base, ids, rng = _fill(client, name, "Cosine")
    q = rng.normal(size=base.shape[1]).astype(np.float32)
    allowed = np.array([i % 5 == 2 for i in ids])
    flt = {"must": [{"key": "group", "match": {"value": "g2"}}]}
    got = client.query_points(name, query=q, query_filter=flt, limit=7, offset=3, with_payload=True).points
    want = reference_top(base, ids, q, "Cosine", 10, allowed)[3:10]
    assert [p.id for p in got] == [i for i, _ in want]
    assert all(p.payload["group"] == "g2" for p in got)
    threshold = got[3].score
    above = client.query_points(name, query=q, query_filter=flt, limit=100, score_threshold=threshold).points
    assert all(p.score > threshold for p in above)
    assert len(above) == 3 + 3  # the 3 skipped by offset plus want[0..2]


def test_query_by_point_id_excludes_that_point(client, name):
    base, ids, _ = _fill(client, name, "Dot")
    got = client.query_points(name, query=17, limit=5).points
    want = [i for i, _ in reference_top(base, ids, base[17], "Dot", 6) if i != 17][:5]
    assert [p.id for p in got] == want


def test_points_count_exact_after_each_write(client, name):
    _fill(client, name, "Euclid", n=50)
    assert client.get_collection(name).points_count == 50
    client.delete(name, [1, 2, 3])
    assert client.get_collection(name).points_count == 47
    client.delete(name, {"must": [{"key": "group", "match": {"value": "g0"}}]})
    remaining = [i for i in range(50) if i not in (1, 2, 3) and i % 5 != 0]
    assert client.count(name).count == len(remaining)
    records, _ = client.scroll(name, limit=100)
    assert [r.id for r in records] == remaining


def test_overwrite_replaces_vector_and_payload(client, name):
    client.create_collection(name, vectors_config={"size": 2, "distance": "Euclid"})
    client.upsert(name, [PointStruct(id=5, vector=[0, 0], payload={"v": 1})])
    client.upsert(name, [PointStruct(id=5, vector=[10, 10], payload={"w": 2})])
    (rec,) = client.retrieve(name, [5], with_vectors=True)
    assert rec.payload == {"w": 2} and rec.vector == [10.0, 10.0]
    hit = client.query_points(name, query=[10, 10], limit=5).points
    assert [(p.id, p.score) for p in hit] == [(5, 0.0)]
    assert client.count(name).count == 1


def test_uuid_spellings_and_scroll_order(client, name):
    client.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    u = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26"
    canonical = u.lower()
    spellings = [u.replace("-", ""), "{" + u + "}", "urn:uuid:" + canonical]
    client.upsert(
        name,
        [
            PointStruct(id=spellings[0], vector=[1, 0]),
            PointStruct(id=3, vector=[0, 1]),
            PointStruct(id="00000000-0000-0000-0000-000000000001", vector=[1, 1]),
            PointStruct(id=10, vector=[1, 1]),
        ],
    )
    for s in spellings:
        assert [r.id for r in client.retrieve(name, [s])] == [canonical]
    records, nxt = client.scroll(name, limit=3)
    assert [r.id for r in records] == [3, 10, "00000000-0000-0000-0000-000000000001"]
    assert nxt == canonical
    records, nxt = client.scroll(name, limit=3, offset=nxt)
    assert [r.id for r in records] == [canonical] and nxt is None


def test_payload_operations(client, name):
    client.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    client.upsert(name, [PointStruct(id=i, vector=[1, i], payload={"a": i, "n": {"x": 1}}) for i in range(4)])
    client.set_payload(name, {"b": "new"}, points=[0, 1])
    client.set_payload(name, {"y": 2}, points=[0], key="n")
    client.overwrite_payload(name, {"only": True}, points=[2])
    client.delete_payload(name, ["a"], points={"must": [{"key": "a", "match": {"value": 3}}]})
    client.clear_payload(name, [1])
    got = {r.id: r.payload for r in client.retrieve(name, [0, 1, 2, 3])}
    assert got == {0: {"a": 0, "n": {"x": 1, "y": 2}, "b": "new"}, 1: {}, 2: {"only": True}, 3: {"n": {"x": 1}}}
    with pytest.raises(NotFound):
        client.set_payload(name, {"b": 1}, points=[99])


def test_named_vectors(client, name):
    client.create_collection(
        name, vectors_config={"": {"size": 2, "distance": "Dot"}, "img": {"size": 3, "distance": "Euclid"}}
    )
    client.upsert(
        name, [PointStruct(id=1, vector={"": [1, 0], "img": [0, 0, 0]}), PointStruct(id=2, vector={"": [0, 1]})]
    )
    info = client.get_collection(name)
    assert info.config.params.vectors == {"": {"size": 2, "distance": "Dot"}, "img": {"size": 3, "distance": "Euclid"}}
    assert [p.id for p in client.query_points(name, query=[0, 0, 1], using="img").points] == [1]
    assert [p.id for p in client.query_points(name, query=[0, 1], using="").points] == [2, 1]
    rec = {r.id: r.vector for r in client.retrieve(name, [1, 2], with_vectors=True)}
    assert rec == {1: {"": [1.0, 0.0], "img": [0.0, 0.0, 0.0]}, 2: [0.0, 1.0]}
    client.delete_vectors(name, ["img"], points=[1])
    assert client.query_points(name, query=[0, 0, 1], using="img").points == []
    client.update_vectors(name, [{"id": 2, "vector": {"img": [5, 5, 5]}}])
    assert [p.id for p in client.query_points(name, query=[5, 5, 5], using="img").points] == [2]
    with pytest.raises(InvalidInput, match="Not existing vector name"):
        client.query_points(name, query=[1, 2], using="nope")


def test_bad_input_writes_nothing(client, name):
    client.create_collection(name, vectors_config={"size": 3, "distance": "Cosine"})
    client.upsert(name, [PointStruct(id=1, vector=[1, 2, 3])])
    with pytest.raises(InvalidInput, match="dimension"):
        client.upsert(name, [PointStruct(id=2, vector=[1, 2, 3]), PointStruct(id=3, vector=[1, 2])])
    with pytest.raises(InvalidInput, match="finite"):
        client.upsert(name, [{"id": 4, "vector": [1.0, float("nan"), 0.0]}])
    with pytest.raises(InvalidInput):
        client.upsert(name, [{"id": "not-a-uuid", "vector": [1, 2, 3]}])
    assert client.count(name).count == 1
    with pytest.raises(AlreadyExists, match="already exists"):
        client.create_collection(name, vectors_config={"size": 3, "distance": "Cosine"})
    with pytest.raises(NotFound, match="doesn't exist"):
        client.count("missing_" + name)
    with pytest.raises(InvalidInput, match="name"):
        client.create_collection("../evil", vectors_config={"size": 3, "distance": "Cosine"})


def test_aliases_sharded(tmp_path, name):
    """The same alias rules on a cluster (kept in its shard map: they survive a restart)."""
    client = sharded_client(tmp_path / "cluster")
    test_aliases(client, name + "x")
    client.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    client.update_collection_aliases([{"create_alias": {"collection_name": name, "alias_name": "kept"}}])
    client.close()
    again = sharded_client(tmp_path / "cluster")
    assert [(a.alias_name, a.collection_name) for a in again.get_aliases()] == [("kept", name)]
    with pytest.raises(VecdbError, match="Alias `kept` already exists: a collection has that name|already exists"):
        again.create_collection("kept", vectors_config={"size": 2, "distance": "Dot"})
    again.close()


def test_aliases(client, name):
    client.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    client.upsert(name, [PointStruct(id=1, vector=[1, 1])])
    alias = name + "_a"
    client.update_collection_aliases([{"create_alias": {"collection_name": name, "alias_name": alias}}])
    assert client.count(alias).count == 1
    client.update_collection_aliases([{"rename_alias": {"old_alias_name": alias, "new_alias_name": alias + "2"}}])
    assert [(a.alias_name, a.collection_name) for a in client.get_collection_aliases(name)] == [(alias + "2", name)]
    assert client.collection_exists(alias + "2") and not client.collection_exists(alias)
    assert client.delete_collection(name) is True
    assert client.delete_collection(name) is False
    assert not client.collection_exists(alias + "2")


def test_batch_update_is_atomic(client, name):
    client.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    ops = [
        {"upsert": {"points": [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}]}},
        {"set_payload": {"payload": {"k": 1}, "points": [1]}},
        {"delete": {"points": [2]}},
    ]
    results = client.batch_update_points(name, ops)
    assert [r.status for r in results] == ["completed"] * 3
    assert [(r.id, r.payload) for r in client.retrieve(name, [1, 2])] == [(1, {"k": 1})]
    bad = [{"upsert": {"points": [{"id": 7, "vector": [1, 0]}]}}, {"set_payload": {"payload": {}, "points": [999]}}]
    with pytest.raises(NotFound):
        client.batch_update_points(name, bad)
    assert client.count(name).count == 1  # the first operation of the failed batch did not land


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "data"
    with vecdb.Client(path=path) as c:
        c.create_collection("a", vectors_config={"size": 4, "distance": "Cosine"})
        c.upsert("a", [PointStruct(id=i, vector=[1, i, 0, 1], payload={"i": i}) for i in range(20)])
        c.upsert("a", [PointStruct(id=3, vector=[0, 0, 1, 0], payload={"new": True})])
        c.delete("a", [4])
        before = c.query_points("a", query=[1, 5, 0, 1], limit=20, with_vectors=True)
    with vecdb.Client(path=path) as c:
        after = c.query_points("a", query=[1, 5, 0, 1], limit=20, with_vectors=True)
        assert after == before
        assert c.count("a").count == 19
        assert c.retrieve("a", [3])[0].payload == {"new": True}


def test_numpy_batch_fast_path_validates(client, name):
    client.create_collection(name, vectors_config={"size": 3, "distance": "Euclid"})
    vecs = np.arange(12, dtype=np.float64).reshape(4, 3)
    client.upsert(name, {"ids": [1, 2, 3, 4], "vectors": vecs, "payloads": [{"k": i} for i in range(4)]})
    assert client.retrieve(name, [3], with_vectors=True)[0].vector == [6.0, 7.0, 8.0]
    with pytest.raises(InvalidInput, match="dimension"):
        client.upsert(name, {"ids": [5], "vectors": np.zeros((1, 2))})
    with pytest.raises(InvalidInput, match="finite|NaN"):
        client.upsert(name, {"ids": [5], "vectors": np.array([[1.0, np.inf, 0.0]])})
    with pytest.raises(InvalidInput, match="expected 2 vectors"):
        client.upsert(name, {"ids": [5, 6], "vectors": np.zeros((3, 3))})
    assert client.count(name).count == 4


def test_point_list_columnar_path(client, name):
    """Lists of points with plain dense vectors go in as one matrix; results must not differ."""
    client.create_collection(name, vectors_config={"size": 3, "distance": "Euclid"})
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(6, 3)).astype(np.float32)
    client.upsert(
        name,
        [
            {"id": 1, "vector": vecs[0], "payload": {"n": np.int64(7), "x": np.float32(0.5)}},
            PointStruct(id=2, vector=vecs[1].tolist(), payload={"k": "a"}),
            {"id": 3, "vector": vecs[2].tolist()},
            {"id": 1, "vector": vecs[3], "payload": {"last": True}},  # a repeated id: the last one wins
        ],
    )
    got = {r.id: r for r in client.retrieve(name, [1, 2, 3], with_vectors=True)}
    assert got[1].payload == {"last": True} and got[2].payload == {"k": "a"} and got[3].payload == {}
    np.testing.assert_allclose(got[1].vector, vecs[3], rtol=1e-6)
    np.testing.assert_allclose(got[3].vector, vecs[2], rtol=1e-6)
    assert client.count(name).count == 3
    # Errors still name the point, as the per-point path does.
    with pytest.raises(InvalidInput, match=r"points(\.vector)?\[1\].*dimension"):
        client.upsert(name, [{"id": 8, "vector": vecs[4]}, {"id": 9, "vector": np.zeros(4)}])
    with pytest.raises(InvalidInput, match=r"points\[1\]"):
        client.upsert(name, [{"id": 8, "vector": vecs[4]}, {"id": 9, "vector": [0.0, np.nan, 1.0]}])
    with pytest.raises(InvalidInput, match=r"points(\.vector)?\[1\].*dimension"):
        client.upsert(
            name, [{"id": 8, "vector": vecs[4]}, {"id": 9, "vector": vecs[5][:2]}, {"id": 10, "vector": vecs[5][:2]}]
        )
    with pytest.raises(InvalidInput, match=r"points\.0\.vector"):
        client.upsert(name, [{"id": 8, "vector": ["a", "b", "c"]}])
    assert client.count(name).count == 3


def test_overwrites_within_one_batch_operation(client, name):
    """Several upserts of one id inside points/batch: each overwrite appends a fresh internal id."""
    client.create_collection(
        name, vectors_config={"": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}
    )
    ops = [
        {"upsert": {"points": [{"id": i, "vector": {"": [float(k), 1.0], "b": [1.0, float(k)]}} for i in range(5)]}}
        for k in range(3)
    ]
    client.batch_update_points(name, ops)
    assert client.count(name).count == 5
    rec = client.retrieve(name, [4], with_vectors=True)[0]
    assert rec.vector == {"": [2.0, 1.0], "b": [1.0, 2.0]}
    hits = client.query_points(name, query=[0.0, 1.0], using="b", limit=10).points
    assert sorted(p.id for p in hits) == [0, 1, 2, 3, 4] and {p.score for p in hits} == {2.0}


def test_euclid_exact_search_never_returns_a_replaced_point(client, name):
    """Regression: the Euclid rescoring margin used to pull masked-out rows back into the top-k."""
    client.create_collection(name, vectors_config={"size": 3, "distance": "Euclid"})
    client.upsert(name, [{"id": 0, "vector": [0.0, 0.0, 1.0]}])
    client.upsert(name, [{"id": 0, "vector": [0.0, 0.0, 5.0]}])
    hits = client.query_points(name, query=[0.0, 0.0, 1.0]).points
    assert [(p.id, round(p.score, 5)) for p in hits] == [(0, 4.0)]


def test_numpy_query_fast_path_matches_list_query(client, name):
    """An array query skips per-float validation; results and errors must be those of a list query."""
    base, ids, rng = _fill(client, name, "Cosine")
    q = rng.normal(size=base.shape[1]) * 3  # float64
    as_list = client.query_points(name, query=q.tolist(), limit=8, search_params={"hnsw_ef": 64}).points
    for query in (q, q.astype(np.float32)):
        got = client.query_points(name, query=query, limit=8, search_params={"hnsw_ef": 64}).points
        assert [(p.id, round(p.score, 5)) for p in got] == [(p.id, round(p.score, 5)) for p in as_list]
    ints = np.arange(base.shape[1])
    assert [p.id for p in client.query_points(name, query=ints, limit=3).points] == [
        p.id for p in client.query_points(name, query=ints.tolist(), limit=3).points
    ]
    bad = q.copy()
    bad[2] = np.nan
    with pytest.raises(InvalidInput, match="query.*(finite|NaN)"):
        client.query_points(name, query=bad)
    with pytest.raises(InvalidInput, match="dimension"):
        client.query_points(name, query=q[:4])
    with pytest.raises(InvalidInput, match="search_params"):
        client.query_points(name, query=q, search_params={"hnsw_ef": "many"})


def test_keyword_arguments_are_honoured_or_refused(client, name):
    """What qdrant-client takes and vecdb.Client would otherwise swallow: ``update_mode`` is honoured
    (upsert, upload_points, upload_collection), a misspelt keyword is a TypeError (not a filter silently
    dropped), a shard key is refused, and the options that change nothing in one process are accepted."""
    client.create_collection(name, {"size": 2, "distance": "Dot"})
    client.upsert(name, [{"id": 1, "vector": [1.0, 0.0], "payload": {"v": 1}}])
    client.upsert(name, [{"id": 1, "vector": [0.0, 1.0], "payload": {"v": 2}}], update_mode="insert_only")
    client.upload_points(name, [{"id": 2, "vector": [1.0, 1.0]}], update_mode="update_only")
    client.upload_collection(name, [[1.0, 1.0]], ids=[3], update_mode="update_only")
    assert [(p.id, p.payload) for p in client.scroll(name, limit=10)[0]] == [(1, {"v": 1})]
    with pytest.raises(TypeError, match="unexpected keyword argument 'filter'"):
        client.query_points(name, query=[1.0, 0.0], filter={"must": []})
    with pytest.raises(TypeError, match="unexpected keyword argument 'limt'"):
        client.scroll(name, limt=5)
    with pytest.raises(Unsupported, match="shard_key_selector"):
        client.upsert(name, [{"id": 4, "vector": [1.0, 0.0]}], shard_key_selector="tenant_a")
    got = client.query_points(name, query=[1.0, 0.0], timeout=5, consistency="majority", shard_key_selector=None)
    assert [p.id for p in got.points] == [1]
    client.create_payload_index(name, "v", field_type="integer")
    assert client.get_collection(name).payload_schema["v"].data_type == "integer"
