"""Sparse vectors end to end, embedded and over HTTP (the ``client`` fixture), against local mode.

qdrant-client's local mode (``QdrantClient(":memory:")``) is the reference: the same generated
collection (sparse vectors with repeated and missing terms across points, empty vectors, points
without the vector), the same writes (overwrites, sparse updates and deletes, point deletes) and the
same queries (IDF on and off, filters, limit/offset, score_threshold) must give the same ids and
scores. Weights are multiples of 1/4, so products are exact in float32 and the scores agree to
rounding; ties are compared as sets (local mode orders equal scores by descending internal index,
vecdb by ascending internal id).
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient
from qdrant_client.http import models as qm

import vecdb
from tests.helpers import collection
from vecdb.errors import InvalidInput, Unsupported

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TERMS = 12


def _config(idf: bool) -> dict[str, Any]:
    return {
        "vectors_config": {"d": qm.VectorParams(size=2, distance=qm.Distance.DOT)},
        "sparse_vectors_config": {
            "sp": qm.SparseVectorParams(modifier=qm.Modifier.IDF if idf else None),
            "other": qm.SparseVectorParams(index=qm.SparseIndexParams(on_disk=False, full_scan_threshold=100)),
        },
    }


sparse_vectors = st.dictionaries(st.integers(0, TERMS - 1), st.integers(-8, 8).map(lambda x: x / 4), max_size=5).map(
    lambda d: qm.SparseVector(indices=list(d)[::-1], values=list(d.values())[::-1])
)
"""0-5 distinct terms in any order, including empty vectors and zero weights."""


@st.composite
def point_structs(draw: Any, ids: Any) -> qm.PointStruct:
    vector: dict[str, Any] = {"d": [1.0, 0.0]}
    if draw(st.integers(0, 4)):
        vector["sp"] = draw(sparse_vectors)
    if draw(st.booleans()):
        vector["other"] = draw(sparse_vectors)
    return qm.PointStruct(id=draw(ids), vector=vector, payload={"g": draw(st.integers(0, 2))})


ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(point_structs(st.integers(0, 15)), min_size=1, max_size=6)),
        st.tuples(st.just("delete"), st.lists(st.integers(0, 15), min_size=1, max_size=3)),
        st.tuples(st.just("update"), st.integers(0, 15), sparse_vectors),
        st.tuples(st.just("delete_vector"), st.lists(st.integers(0, 15), min_size=1, max_size=3)),
        st.tuples(
            st.just("query"), sparse_vectors, st.sampled_from([None, 0, 1]), st.integers(1, 6), st.integers(0, 2)
        ),
    ),
    min_size=1,
    max_size=12,
)


def _apply(c: Any, name: str, op: tuple[Any, ...], existing: set[int]) -> None:
    kind = op[0]
    if kind == "upsert":
        c.upsert(name, points=op[1])
        existing.update(p.id for p in op[1])
    elif kind == "delete":
        c.delete(name, points_selector=op[1])
        existing.difference_update(op[1])
    elif kind == "update" and op[1] in existing:
        c.update_vectors(name, points=[qm.PointVectors(id=op[1], vector={"sp": op[2]})])
    elif kind == "delete_vector":
        ids = [i for i in op[1] if i in existing]
        if ids:
            c.delete_vectors(name, vectors=["sp"], points=ids)


def _query(c: Any, name: str, q: qm.SparseVector, group: Any, limit: int, offset: int, **kw: Any) -> list:
    flt = None if group is None else qm.Filter(must=[qm.FieldCondition(key="g", match=qm.MatchValue(value=group))])
    res = c.query_points(name, query=q, using="sp", query_filter=flt, limit=limit, offset=offset, **kw).points
    return [(p.id, p.score) for p in res]


def _same(got: list, want: list, full: list | None = None) -> None:
    """Equal scores position by position; equal ids wherever the score is not tied with another hit
    (of ``full``, the whole ranking, when given: a tie may straddle the limit)."""
    assert len(got) == len(want), (got, want)
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), (got, want)
    scores = [s for _, s in want]
    if full is not None:
        scores = scores + [s for i, s in full if (i, s) not in want]
    for j, ((gi, _), (wi, s)) in enumerate(zip(got, want, strict=True)):
        tied = any(math.isclose(s, t, rel_tol=1e-5, abs_tol=1e-6) for k, t in enumerate(scores) if k != j)
        if not tied:
            assert gi == wi, (got, want)


def _same_all(got: list, want: list) -> None:
    """Every hit (a limit above the collection size): the same (id, score) pairs, in a valid order."""
    assert sorted(i for i, _ in got) == sorted(i for i, _ in want), (got, want)
    by_id = dict(want)
    for i, s in got:
        assert math.isclose(s, by_id[i], rel_tol=1e-5, abs_tol=1e-6), (got, want)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


@pytest.mark.parametrize("idf", [False, True])
def test_many_postings_with_deletes_and_filters_match_local_mode(client: Any, idf: bool) -> None:
    """Collections large enough for the search's two strategies: common terms (many postings: summed
    into a collection-sized array, best picked through block maxima) and rare ones (postings sorted),
    after deletes and overwrites (dead postings left in the index) and under filters."""
    name = "sp_many_" + uuid.uuid4().hex[:8]
    ref = QdrantClient(":memory:")
    rng = np.random.default_rng(7)
    n, terms = 1500, 40
    freq = 1.0 / np.arange(1, terms + 1)  # term j in about 1/(j+1) of the points: a Zipf-like skew

    def vector() -> qm.SparseVector:
        idx = [int(t) for t in np.flatnonzero(rng.random(terms) < freq)]
        return qm.SparseVector(indices=idx, values=[float(v) for v in rng.integers(1, 9, size=len(idx)) / 4])

    points = [qm.PointStruct(id=i, vector={"sp": vector()}, payload={"g": i % 5}) for i in range(n)]
    for c in (client, ref):
        c.create_collection(name, **_config(idf))
        for lo in range(0, n, 500):
            c.upsert(name, points=points[lo : lo + 500])
        c.delete(name, points_selector=list(range(0, n, 7)))
        c.upsert(
            name, points=[qm.PointStruct(id=i, vector={"sp": points[i + 1].vector["sp"]}) for i in range(3, n - 1, 11)]
        )
    try:
        queries = [[0, 1], [0, 5, 30], [2], [39], [1, 2, 3, 4, 5, 6], [38, 39, 0]]
        for terms_q in queries:
            q = qm.SparseVector(indices=terms_q, values=[1.0 + 0.25 * j for j in range(len(terms_q))])
            for group in (None, 2):
                for limit, offset in ((10, 0), (5, 3)):
                    want = _query(ref, name, q, group, limit, offset)
                    _same(_query(client, name, q, group, limit, offset), want, full=_query(ref, name, q, group, n, 0))
    finally:
        client.delete_collection(name)


@pytest.mark.parametrize("idf", [False, True])
@SETTINGS
@given(script=ops)
def test_sparse_differential(client: Any, idf: bool, script: list) -> None:
    name = "sp_" + uuid.uuid4().hex[:10]
    ref = QdrantClient(":memory:")
    for c in (client, ref):
        c.create_collection(name, **_config(idf))
    mine: set[int] = set()
    theirs: set[int] = set()
    try:
        for op in script:
            if op[0] != "query":
                _apply(client, name, op, mine)
                _apply(ref, name, op, theirs)
                continue
            _, q, group, limit, offset = op
            want = _query(ref, name, q, group, 100, 0)
            _same(_query(client, name, q, group, limit, offset), _query(ref, name, q, group, limit, offset), full=want)
            _same_all(_query(client, name, q, group, 100, 0), want)
            if want:
                t = want[len(want) // 2][1]
                _same(
                    _query(client, name, q, group, 100, 0, score_threshold=t),
                    _query(ref, name, q, group, 100, 0, score_threshold=t),
                )
        got = {r.id: r.vector for r in client.scroll(name, limit=100, with_vectors=True)[0]}
        exp = {r.id: r.vector for r in ref.scroll(name, limit=100, with_vectors=True)[0]}
        assert set(got) == set(exp)
        for pid, vec in exp.items():
            for key in ("sp", "other"):
                assert (key in got[pid]) == (key in vec), (pid, got[pid], vec)
                if key in vec:
                    assert list(got[pid][key].indices) == list(vec[key].indices)
                    assert list(got[pid][key].values) == list(vec[key].values)
        for key in ("sp", "other"):
            flt = qm.Filter(must=[qm.HasVectorCondition(has_vector=key)])
            assert client.count(name, count_filter=flt).count == ref.count(name, count_filter=flt).count
    finally:
        client.delete_collection(name)


def test_config_echo_and_update(client: Any, name: str) -> None:
    ref = QdrantClient(":memory:")
    for c in (client, ref):
        c.create_collection(name, **_config(True))
    assert _plain(client.get_collection(name).config.params.sparse_vectors) == _plain(
        ref.get_collection(name).config.params.sparse_vectors
    )
    for c in (client, ref):
        c.update_collection(name, sparse_vectors_config={"sp": qm.SparseVectorParams(modifier=qm.Modifier.NONE)})
    assert _plain(client.get_collection(name).config.params.sparse_vectors) == _plain(
        ref.get_collection(name).config.params.sparse_vectors
    )
    with pytest.raises(Exception, match="Not existing vector name"):
        client.update_collection(name, sparse_vectors_config={"nope": qm.SparseVectorParams()})


@pytest.mark.parametrize(
    "params, field",
    [
        (qm.SparseVectorParams(index=qm.SparseIndexParams(on_disk=True)), "sparse_vectors.sp.index.on_disk"),
        (qm.SparseVectorParams(index=qm.SparseIndexParams(datatype=qm.Datatype.UINT8)), "index.datatype"),
    ],
)
def test_refused_options_name_the_field(client: Any, name: str, params: Any, field: str) -> None:
    with pytest.raises(Exception, match=field.replace(".", r"\.")):
        client.create_collection(name, sparse_vectors_config={"sp": params})


@pytest.mark.parametrize(
    "vector, message",
    [
        ({"indices": [1, 2], "values": [1.0]}, "same length"),
        ({"indices": [1, 1], "values": [1.0, 2.0]}, "unique"),
        ({"indices": [-1], "values": [1.0]}, "between 0 and"),
    ],
)
def test_invalid_sparse_vectors_are_refused(client: Any, name: str, vector: dict, message: str) -> None:
    client.create_collection(name, sparse_vectors_config={"sp": qm.SparseVectorParams()})
    point = {"id": 1, "vector": {"sp": vector}}
    with pytest.raises(Exception, match=message):
        client.upsert(name, points=[point])
    with pytest.raises(Exception, match=message):
        client.query_points(name, query=qm.SparseVector.model_construct(**vector), using="sp")
    assert client.count(name).count == 0


def test_dense_vector_for_a_sparse_name_is_refused(client: Any, name: str) -> None:
    client.create_collection(
        name,
        vectors_config={"d": qm.VectorParams(size=2, distance="Dot")},
        sparse_vectors_config={"sp": qm.SparseVectorParams()},
    )
    with pytest.raises(Exception, match="sparse and regular"):
        client.upsert(name, points=[qm.PointStruct(id=1, vector={"sp": [1.0, 2.0]})])
    with pytest.raises(Exception, match="sparse and regular"):
        client.upsert(name, points=[qm.PointStruct(id=1, vector={"d": qm.SparseVector(indices=[1], values=[1])})])


def test_batch_form_and_query_batch(client: Any, name: str) -> None:
    client.create_collection(name, sparse_vectors_config={"sp": qm.SparseVectorParams()})
    client.upsert(
        name,
        points={  # (the batch form; the embedded client takes it as a dict)
            "ids": [1, 2, 3],
            "vectors": {
                "sp": [
                    {"indices": [5, 1], "values": [1, 2]},
                    {"indices": [1], "values": [3]},
                    {"indices": [], "values": []},
                ]
            },
        },
    )
    (rec,) = client.retrieve(name, [1], with_vectors=True)
    assert list(rec.vector["sp"].indices) == [1, 5] and list(rec.vector["sp"].values) == [2.0, 1.0]
    a, b = client.query_batch_points(
        name,
        [
            qm.QueryRequest(query=qm.SparseVector(indices=[1], values=[1.0]), using="sp"),
            qm.QueryRequest(query=qm.NearestQuery(nearest=qm.SparseVector(indices=[5], values=[2.0])), using="sp"),
        ],
    )
    assert [(p.id, p.score) for p in a.points] == [(2, 3.0), (1, 2.0)]
    assert [(p.id, p.score) for p in b.points] == [(1, 2.0)]


def _plain(value: Any) -> Any:
    """A config as JSON (models of either client, or dicts), without unset (None) fields."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def _build(path: Path, n: int) -> list:
    rng = np.random.default_rng(5)
    c = vecdb.Client(path=path)
    c.create_collection("big", sparse_vectors_config={"sp": qm.SparseVectorParams(modifier=qm.Modifier.IDF)})
    for lo in range(0, n, 500):
        points = []
        for i in range(lo, lo + 500):
            terms = sorted(set(rng.integers(0, 300, size=8).tolist()))
            points.append(
                qm.PointStruct(id=i, vector={"sp": qm.SparseVector(indices=terms, values=[1.0] * len(terms))})
            )
        c.upsert("big", points=points)
    c.delete("big", points_selector=list(range(0, n, 7)))
    c.update_vectors("big", points=[qm.PointVectors(id=1, vector={"sp": qm.SparseVector(indices=[3], values=[9.0])})])
    answers = _answers(c)
    c.close()
    return answers


def _answers(c: Any) -> list:
    out = []
    for t in range(0, 300, 37):
        q = qm.SparseVector(indices=[t, t + 1, 3], values=[1.0, 0.5, 0.25])
        out.append([(p.id, p.score) for p in c.query_points("big", query=q, using="sp", limit=20).points])
    return out


def test_reopen_loads_the_checkpoint_and_answers_the_same(tmp_path: Path) -> None:
    before = _build(tmp_path, 3000)
    c = vecdb.Client(path=tmp_path)
    coll = c._service.db.get("big")  # noqa: SLF001  (what the open did, read from its state)
    assert _answers(c) == before
    loaded = coll.state.sparse_loaded[0]
    assert loaded["checkpoint"] >= 3000 and loaded["replayed"] == 0, loaded  # loaded, not rebuilt
    c.close()


def test_a_snapshot_carries_the_sparse_checkpoint(tmp_path: Path) -> None:
    """A restored collection loads the inverted index the snapshot holds; it does not rebuild it."""
    before = _build(tmp_path, 3000)
    c = vecdb.Client(path=tmp_path)
    snap = c.create_snapshot("big")
    assert snap is not None
    c.recover_snapshot("big", snap.name)
    coll = collection(c, "big")
    assert _answers(c) == before
    loaded = coll.state.sparse_loaded[0]
    assert loaded["checkpoint"] >= 3000 and loaded["replayed"] == 0, loaded
    c.close()


def test_validation_errors_are_typed() -> None:
    from vecdb.engine.views import prepare_sparse
    from vecdb.models.points import SparseVector

    with pytest.raises(InvalidInput, match="points.vector.sp: .*same length"):
        prepare_sparse(SparseVector(indices=[1], values=[]), "points.vector.sp")
    with pytest.raises(InvalidInput, match="finite"):
        prepare_sparse(SparseVector.model_construct(indices=[1], values=[float("nan")]), "q")
    assert Unsupported  # (imported for the refusals above, raised through the clients)


def test_checkpoint_publishes_one_compacted_segment(tmp_path: Path) -> None:
    """Once writes pause, the optimizer's checkpoint also replaces the published index by its compacted
    form (one segment, no postings of deleted or overwritten points); answers stay the same."""
    rng = np.random.default_rng(11)
    c = vecdb.Client(path=tmp_path / "db")
    ref = QdrantClient(":memory:")
    config = {"sparse_vectors_config": {"sp": qm.SparseVectorParams(modifier=qm.Modifier.IDF)}}
    for cl in (c, ref):
        cl.create_collection("c", **config)
    for lo in range(0, 600, 100):
        points = []
        for i in range(lo, lo + 100):
            terms = sorted(set(rng.integers(0, 60, size=6).tolist()))
            values = (rng.integers(1, 8, size=len(terms)) / 4).tolist()
            points.append(qm.PointStruct(id=i, vector={"sp": qm.SparseVector(indices=terms, values=values)}))
        for cl in (c, ref):
            cl.upsert("c", points=points)
    again = [
        qm.PointStruct(id=i, vector={"sp": qm.SparseVector(indices=[1, 2], values=[0.5, 0.75])})
        for i in range(0, 600, 9)
    ]
    for cl in (c, ref):
        cl.delete("c", points_selector=list(range(5, 600, 13)))
        cl.upsert("c", points=again)
    coll = collection(c, "c")
    before = coll.state.sparse[0]
    assert len(before.segments) > 1
    queries = [qm.SparseVector(indices=t, values=[1.0] * len(t)) for t in ([1], [1, 2, 3], [7, 40], [59])]

    def answers(cl: Any) -> list:
        return [[(p.id, p.score) for p in cl.query_points("c", query=q, using="sp", limit=15).points] for q in queries]

    want = answers(ref)
    for got, exp in zip(answers(c), want, strict=True):
        _same(got, exp)
    coll.optimizer.flush()
    after = coll.state.sparse[0]
    assert len(after.segments) == 1
    live_postings = sum(len(r.vector["sp"].indices) for r in c.scroll("c", limit=1000, with_vectors=True)[0])
    assert after.postings == live_postings < before.postings
    for got, exp in zip(answers(c), want, strict=True):
        _same(got, exp)
    c.close()
