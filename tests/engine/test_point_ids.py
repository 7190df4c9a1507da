"""Hits answered from memory (no payload, no vector asked for) carry the same ids and versions as
the records in LMDB: after inserts, overwrites, payload-only writes, deletes and a reopen, for
integer and UUID ids, and for collections written before versions were kept in the ``ids`` table."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import vecdb
from tests.helpers import collection
from vecdb.engine.id_columns import PointIds
from vecdb.engine.views import prepare_query
from vecdb.errors import InvalidInput
from vecdb.ids import id_to_key
from vecdb.models.collections import Distance
from vecdb.storage.points import decode_iid

DIM = 8


def _hits(client, query, **kw):
    return client.query_points("c", query=query, limit=50, **kw).points


def _assert_memory_matches_records(client, query):
    """The same search with and without payload: ids, versions and scores agree hit for hit (scores
    to float32 precision: the optimizer may publish its graph between the two searches)."""
    lean = _hits(client, query, with_payload=False)
    full = _hits(client, query, with_payload=True)
    assert [(p.id, p.version) for p in lean] == [(p.id, p.version) for p in full]
    assert [p.score for p in lean] == pytest.approx([p.score for p in full], rel=1e-5)
    return lean


@pytest.mark.parametrize("exact", [False, True])
def test_ids_and_versions_from_memory_match_the_records(tmp_path, exact):
    rng = np.random.default_rng(3)
    ids = list(range(20)) + [str(uuid.UUID(int=int(x))) for x in rng.integers(1, 2**62, size=20)]
    vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    query = rng.standard_normal(DIM).astype(np.float32)
    params = {"exact": True} if exact else None
    with vecdb.Client(path=tmp_path) as client:
        client.create_collection(
            "c", vectors_config={"size": DIM, "distance": "Euclid"}, optimizers_config={"indexing_threshold": 1}
        )
        client.upsert(
            "c",
            points=[
                {"id": i, "vector": v.tolist(), "payload": {"n": n}}
                for n, (i, v) in enumerate(zip(ids, vectors, strict=True))
            ],
        )
        client.upsert(
            "c",
            points=[
                {"id": ids[3], "vector": vectors[3].tolist()},  # overwrite: new iid
                {"id": ids[25], "vector": vectors[25].tolist()},
            ],
        )
        client.set_payload("c", payload={"touched": True}, points=[ids[5], ids[30]])  # same iid, new version
        client.delete("c", points_selector=[ids[7], ids[35]])
        before = [(p.id, p.version) for p in _assert_memory_matches_records(client, query)]
        got = {p.id: p.version for p in _hits(client, query, with_payload=False, search_params=params)}
        assert set(got) == set(ids) - {ids[7], ids[35]}
        assert got[ids[3]] == got[ids[25]] == 2 and got[ids[5]] == got[ids[30]] == 3
        assert got[ids[0]] == got[ids[39]] == 1
    with vecdb.Client(path=tmp_path) as client:  # reopen: read back from the ids table
        assert [(p.id, p.version) for p in _assert_memory_matches_records(client, query)] == before


def test_collection_written_before_versions_were_kept_in_the_ids_table(tmp_path):
    """Such a store has the internal id alone as each ``ids`` value; opening it reads versions from the records."""
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((10, DIM)).astype(np.float32)
    with vecdb.Client(path=tmp_path) as client:
        client.create_collection("c", vectors_config={"size": DIM, "distance": "Dot"})
        client.upsert("c", points=[{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
        client.set_payload("c", payload={"x": 1}, points=[4])
        coll = collection(client, "c")  # acts on LMDB itself: the test writes the earlier format

        def old_layout(txn):  # rewrite half the values as the earlier format had them
            for key, value in list(txn.cursor(db=coll.tables.ids)):
                if decode_iid(value) % 2 == 0:
                    txn.put(key, value[:8], db=coll.tables.ids)

        coll.env.write(old_layout)
        with coll.env.read() as txn:
            assert len(txn.get(id_to_key(4), db=coll.tables.ids)) == 8
    with vecdb.Client(path=tmp_path) as client:
        hits = _assert_memory_matches_records(client, vectors[0])
        assert {p.id: p.version for p in hits} == {i: (2 if i == 4 else 1) for i in range(10)}
        coll = collection(client, "c")
        with coll.env.read() as txn:  # the first open rewrote them in the current layout
            assert {len(v) for _, v in txn.cursor(db=coll.tables.ids)} == {16}
        client.upsert("c", points=[{"id": 4, "vector": vectors[4].tolist()}])
    with vecdb.Client(path=tmp_path) as client:
        hits = _assert_memory_matches_records(client, vectors[0])
        assert {p.id: p.version for p in hits}[4] == 3


def test_point_ids_grow_and_decode_both_kinds():
    ids = PointIds.empty(2)
    ids.put(np.array([0, 1]), [id_to_key(7), id_to_key(2**64 - 1)], 5)
    grown = ids.grown(4, 2)
    grown.put(np.array([2, 3]), [id_to_key("6f2c1a64-1f0e-4a8e-9a31-7a1d3e4f5a6b"), id_to_key(9)], np.array([6, 7]))
    grown.set_version([0], 8)
    assert grown.ids_of([3, 2, 1, 0]) == [9, "6f2c1a64-1f0e-4a8e-9a31-7a1d3e4f5a6b", 2**64 - 1, 7]
    assert grown.versions_of([0, 1, 2, 3]) == [8, 5, 6, 7]
    assert ids.ids_of([0, 1]) == [7, 2**64 - 1] and ids.versions_of([0]) == [5]  # the old arrays kept theirs


class _Space:
    def __init__(self, distance):
        self.size, self.distance = 4, distance


@pytest.mark.parametrize("distance", [Distance.COSINE, Distance.EUCLID])
def test_prepare_query(distance):
    space = _Space(distance)
    q = np.array([3.0, 0.0, 4.0, 0.0], dtype=np.float32)
    out = prepare_query(q, space, "query")
    expected = q / 5 if distance is Distance.COSINE else q
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(prepare_query(np.zeros(4, np.float32), space, "query"), np.zeros(4))
    huge = np.array([3e38, 0, 3e38, 0], dtype=np.float32)  # finite, but its squared norm overflows
    expected = np.array([0.5**0.5, 0, 0.5**0.5, 0]) if distance is Distance.COSINE else huge
    np.testing.assert_allclose(prepare_query(huge, space, "query"), expected, rtol=1e-6)
    for bad in (np.array([1, np.nan, 0, 0], np.float32), np.array([np.inf, 0, 0, 0], np.float32)):
        with pytest.raises(InvalidInput, match="query: vector contains NaN or infinite"):
            prepare_query(bad, space, "query")
    with pytest.raises(InvalidInput, match="expected dim: 4, got 3"):
        prepare_query(np.zeros(3, np.float32), space, "query")
