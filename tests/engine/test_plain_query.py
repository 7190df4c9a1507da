"""The plain-query shortcut (vecdb/engine/plain_query.py) answers exactly as the general path.

Each case runs the same requests twice on the same collection: through the shortcut, and with
the shortcut switched off (``is_plain`` patched to refuse everything), and compares ids,
versions, scores and payloads hit for hit: every distance, named vectors, filters (indexed and
not, selective and broad), offsets, thresholds, exact params, tombstones and fresh rows the index
does not hold yet. A counter checks that the shortcut did answer the cases it is meant for (and
not the others), so the test cannot pass by never using it.
"""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.helpers import FORCE_INDEX, clustered, collection, wait_green
from vecdb.engine import plain_query, read
from vecdb.errors import InvalidInput

DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"]


@pytest.fixture
def db(tmp_path):
    c = vecdb.Client(path=tmp_path / "data")
    yield c
    c.close()


def _requests(client, name, queries, using=None):
    """Plain shapes: with and without payloads, hnsw_ef, exact, list and array queries, limits,
    offsets, thresholds and filters (indexed field, unindexed field, selective and broad)."""
    out = []
    for j, q in enumerate(queries):
        out.append(dict(query=q, limit=10, using=using))
        out.append(dict(query=q.tolist(), limit=3, with_payload=False, using=using))
        out.append(dict(query=q.astype(np.float64), limit=25, search_params={"hnsw_ef": 16 + j}, using=using))
        out.append(dict(query=q, limit=1, with_payload=True, search_params={"hnsw_ef": 200}, using=using))
        out.append(dict(query=q, limit=7, offset=3 + j, using=using))
        out.append(dict(query=q, limit=6, search_params={"exact": True}, using=using))
        for flt in (
            {"must": [{"key": "i", "range": {"lt": 12 + j}}]},  # under 1%: exact scan
            {"must": [{"key": "i", "range": {"lt": 200 + j}}]},  # selective: the graph, widened
            {"must": [{"key": "i", "range": {"gte": 100}}]},  # broad: graph with an allow-list
            {"must_not": [{"key": "t", "match": {"value": "p7"}}]},  # unindexed field
        ):
            out.append(dict(query=q, limit=9, query_filter=flt, using=using))
        flt = {"must": [{"key": "i", "range": {"gte": 300}}]}
        out.append(dict(query=q, limit=10, offset=1, query_filter=flt, using=using))
    return out


def _threshold_requests(client, name, queries, using=None):
    """Thresholds just past real scores (the boundary is strict, as Qdrant's)."""
    out = []
    for q in queries:
        scores = [p.score for p in client.query_points(name, query=q, limit=8, using=using).points]
        for t in (scores[0], scores[3], scores[-1]):
            out.append(dict(query=q, limit=8, score_threshold=t, using=using))
    return out


def _both(monkeypatch, client, name, calls):
    """Answers through the shortcut, then through the general path; and how many the shortcut answered."""
    answered = 0
    real = plain_query.answer

    def counting(reader, req):
        nonlocal answered
        found = real(reader, req)
        answered += found is not None
        return found

    monkeypatch.setattr(read, "answer_plain", counting)
    fast = [client.query_points(name, **kw).points for kw in calls]
    monkeypatch.setattr(read, "is_plain", lambda req: False)
    slow = [client.query_points(name, **kw).points for kw in calls]
    monkeypatch.undo()
    for got, want in zip(fast, slow, strict=True):
        assert [(p.id, p.version, p.payload, p.vector) for p in got] == [
            (p.id, p.version, p.payload, p.vector) for p in want
        ]
        np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-6, atol=1e-6)
    return answered


@pytest.mark.parametrize("quantization", [None, {"scalar": {"type": "int8"}}], ids=["float32", "int8"])
@pytest.mark.parametrize("distance", DISTANCES)
def test_shortcut_matches_general_path(db, monkeypatch, distance, quantization):
    base = clustered(1500, 16, seed=3)
    # (a 10 KB full-scan threshold sends filtered queries to the graph with an allow-list, widened
    # when it starves; under 1% allowed they still scan exactly)
    db.create_collection(
        "c",
        {"size": 16, "distance": distance},
        optimizers_config=FORCE_INDEX,
        hnsw_config={"full_scan_threshold": 10},
        quantization_config=quantization,
    )
    for lo in range(0, len(base), 500):
        ids = list(range(lo, lo + 500))
        db.upsert("c", {"ids": ids, "vectors": base[lo : lo + 500], "payloads": [{"i": i, "t": f"p{i}"} for i in ids]})
    wait_green(db, "c")
    db.create_payload_index("c", "i", "integer")
    queries = clustered(6, 16, seed=4)
    calls = _requests(db, "c", queries) + _threshold_requests(db, "c", queries)
    if quantization is not None:  # re-ranked (the default), by the codes alone, widened, or ignored
        for quant in ({"rescore": False}, {"oversampling": 3.0}, {"ignore": True}):
            calls += [dict(query=q, limit=7, search_params={"quantization": quant}) for q in queries[:3]]
    assert _both(monkeypatch, db, "c", calls) == len(calls)

    # tombstones: deleted points the graph still holds are masked, never returned
    db.delete("c", list(range(0, 1500, 3)))
    db.set_payload("c", {"extra": True}, points=[1, 2, 4])  # new versions, same rows
    assert _both(monkeypatch, db, "c", calls) == len(calls)
    hits = db.query_points("c", query=queries[0], limit=50).points
    assert all(p.id % 3 for p in hits)


def test_fresh_rows_and_requests_left_to_the_general_path(db, monkeypatch):
    base = clustered(1200, 12, seed=5)
    db.create_collection("c", {"size": 12, "distance": "Cosine"}, optimizers_config=FORCE_INDEX)
    db.upsert("c", {"ids": list(range(1000)), "vectors": base[:1000], "payloads": [{"i": i} for i in range(1000)]})
    wait_green(db, "c")
    queries = clustered(4, 12, seed=6)
    calls = _requests(db, "c", queries)
    assert _both(monkeypatch, db, "c", calls) == len(calls)
    collection(db, "c").optimizer.stop()  # the next rows stay fresh: outside the graph
    more = list(range(1000, 1200))
    db.upsert("c", {"ids": more, "vectors": base[1000:], "payloads": [{"i": i, "t": "p7"} for i in more]})
    assert _both(monkeypatch, db, "c", calls) == len(calls)  # the planner merges the fresh rows' exact scan
    q = queries[0]
    others = [  # not plain: the general path answers
        dict(query=q, limit=5, with_vectors=True),
        dict(query=q, limit=5, with_payload=["i"]),
        dict(query=q, limit=5, with_payload={"exclude": ["i"]}),
        dict(query=17, limit=5),
        dict(query={"nearest": q.tolist(), "mmr": {"diversity": 0.5}}, limit=5),
    ]
    assert _both(monkeypatch, db, "c", others) == 0
    # the general path's refusals, word for word
    with pytest.raises(InvalidInput, match="dimension"):
        db.query_points("c", query=q[:5])
    bad = q.copy()
    bad[1] = np.nan
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        db.query_points("c", query=bad)
    with pytest.raises(InvalidInput, match="Not existing vector name"):
        db.query_points("c", query=q, using="nope")


def test_named_vectors_and_fresh_rows(db, monkeypatch):
    a, b = clustered(900, 8, seed=7), clustered(900, 20, seed=8)
    db.create_collection(
        "c",
        {"small": {"size": 8, "distance": "Euclid"}, "wide": {"size": 20, "distance": "Dot"}},
        optimizers_config=FORCE_INDEX,
    )
    ids = list(range(900))
    payloads = [{"i": i, "t": f"p{i % 10}"} for i in ids]
    db.upsert("c", {"ids": ids, "vectors": {"small": a, "wide": b}, "payloads": payloads})
    wait_green(db, "c")
    calls = _requests(db, "c", clustered(3, 8, seed=9), using="small")
    calls += _requests(db, "c", clustered(3, 20, seed=10), using="wide")
    assert _both(monkeypatch, db, "c", calls) == len(calls)
