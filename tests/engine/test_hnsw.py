"""HNSW index, background optimizer, planner and checkpoints, against brute force on seeded data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import DIM, clustered, fill, inspection, wait_green, wait_loaded
from vecdb.index.hnsw import HnswIndex
from vecdb.models.collections import Distance


def base_and_queries(n: int, nq: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries from the same clusters as the base (as real queries are), held out of it."""
    data = clustered(n + nq)
    return data[:n], data[n:]


def recall(
    client, name: str, base: np.ndarray, queries: np.ndarray, distance: str, allowed=None, query_filter=None, **kw
) -> float:
    hits = total = 0
    for q in queries:
        want = {i for i, _ in reference_top(base, list(range(len(base))), q, distance, 10, allowed)}
        got = [p.id for p in client.query_points(name, query=q, limit=10, query_filter=query_filter, **kw).points]
        assert allowed is None or all(allowed[i] for i in got)
        hits += len(want & set(got))
        total += len(want)
    return hits / total


@pytest.fixture
def local(tmp_path):
    client = vecdb.Client(path=tmp_path / "db")
    yield client
    client.close()


# --- the index alone ------------------------------------------------------------------------


def test_index_grows_by_clone_and_round_trips(tmp_path):
    base = clustered(3000)
    first = HnswIndex.build(Distance.EUCLID, {"m": 16, "ef_construct": 64}, base, np.arange(0, 2000, 2))
    grown = first.grown(np.arange(2000, 3000), base[2000:])
    assert first.ntotal == 1000 and grown.ntotal == 2000  # the published index is untouched
    _, ids = grown.search(base[2500:2501], 1, 32)
    assert ids[0, 0] == 2500
    mask = np.zeros(3000, dtype=bool)
    mask[::3] = True
    _, ids = grown.search(base[:20], 10, 64, grown.positions_of(mask))
    assert (ids[ids >= 0] % 3 == 0).all()
    with pytest.raises(ValueError, match="ascending"):
        grown.grown(np.array([5]), base[5:6])
    grown.save(tmp_path / "g.hnsw")
    loaded = HnswIndex.load(tmp_path / "g.hnsw", grown.manifest())
    np.testing.assert_array_equal(loaded.labels, grown.labels)
    assert (loaded.search(base[:5], 5, 64)[1] == grown.search(base[:5], 5, 64)[1]).all()
    assert loaded.memory_bytes() > 2000 * DIM * 4


# --- through the collection -----------------------------------------------------------------


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_recall_floor_and_info(local, distance):
    base, queries = base_and_queries(6000, 40)
    fill(local, "c", base, distance)
    wait_green(local, "c")
    info = local.get_collection("c")
    assert info.indexed_vectors_count == 6000 and info.points_count == 6000
    assert recall(local, "c", base, queries, distance) >= 0.95
    plan = local.query_points("c", query=queries[0], explain=True).explain
    assert plan["plan"] == "hnsw" and plan["indexed_vectors"] == 6000 and plan["ef"] == 256
    exact = local.query_points("c", query=queries[0], search_params={"exact": True}, explain=True)
    assert exact.explain["plan"] == "exact" and exact.explain["reason"] == "params.exact"
    want = reference_top(base, list(range(6000)), queries[0], distance, 10)
    assert [p.id for p in exact.points] == [i for i, _ in want]


def test_manhattan_stays_exact(local):
    base = clustered(500)
    fill(local, "m", base, "Manhattan")
    wait_green(local, "m")
    assert local.get_collection("m").indexed_vectors_count == 0
    res = local.query_points("m", query=base[3], explain=True)
    assert res.explain["plan"] == "exact" and res.points[0].id == 3


def test_small_collection_is_not_indexed_by_default(local):
    local.create_collection("s", {"size": DIM, "distance": "Cosine"})
    local.upsert("s", {"ids": list(range(100)), "vectors": clustered(100)})
    wait_green(local, "s")
    assert local.get_collection("s").indexed_vectors_count == 0
    assert local.query_points("s", query=clustered(1)[0], explain=True).explain["reason"] == "no index yet"


def test_fresh_points_are_found_at_once_and_tombstones_never(local):
    base = clustered(5000)
    fill(local, "f", base)
    wait_green(local, "f")
    extra = clustered(50, seed=7) * 3
    for i, v in enumerate(extra):  # each upsert is visible when it returns, before any indexing
        local.upsert("f", [{"id": 10_000 + i, "vector": v}])
        assert local.query_points("f", query=v, limit=1).points[0].id == 10_000 + i
    dead = set(range(0, 5000, 2))
    local.delete("f", sorted(dead))
    for q in clustered(30, seed=3):
        got = {p.id for p in local.query_points("f", query=q, limit=20).points}
        assert not got & dead
    # An overwrite moves the point: its old vector must not find it any more.
    local.upsert("f", [{"id": 1, "vector": extra[0] * -1}])
    assert 1 not in {p.id for p in local.query_points("f", query=base[1], limit=5).points}
    wait_green(local, "f")
    info = local.get_collection("f")
    assert info.points_count == 2550 and info.indexed_vectors_count == 2550
    assert inspection(local, "f").indexes[0].index.ntotal <= 2551  # rebuilt: half were tombstones


@pytest.mark.parametrize("indexed", [True, False])
def test_filtered_recall_at_every_selectivity(local, indexed):
    n = 8000
    base, queries = base_and_queries(n, 25)
    r = np.random.default_rng(5).integers(0, 100_000, n)
    fill(local, "p", base, payloads=[{"r": int(x)} for x in r], hnsw_config={"full_scan_threshold": 100})
    if indexed:
        local.create_payload_index("p", "r", field_schema="integer")
        assert local.get_collection("p").payload_schema["r"].points == n
    wait_green(local, "p")
    for selectivity in (0.001, 0.01, 0.1, 0.5):
        limit = int(100_000 * selectivity)
        flt = {"must": [{"key": "r", "range": {"lt": limit}}]}
        allowed = r < limit
        assert recall(local, "p", base, queries, "Cosine", allowed, flt) >= 0.95, selectivity
        plan = local.query_points("p", query=queries[0], query_filter=flt, explain=True).explain
        assert plan["candidates"] == int(allowed.sum())
        assert plan["plan"] == ("exact" if selectivity <= 0.1 else "hnsw")  # 100 KB = 1066 rows of 96 B
    assert local.count("p", {"must": [{"key": "r", "range": {"lt": 50_000}}]}).count == int((r < 50_000).sum())


def test_graph_search_widens_under_a_tight_allow_list(local):
    """With the smallest full_scan_threshold (10 KB = 106 rows here) 3% of the points go to the graph:
    the planner must raise ef, widen or fall back, and never lose hits."""
    n = 6000
    base, queries = base_and_queries(n, 15)
    tag = np.random.default_rng(1).integers(0, 100, n)
    fill(local, "w", base, payloads=[{"t": int(x)} for x in tag], hnsw_config={"full_scan_threshold": 10})
    local.create_payload_index("w", "t", field_schema="integer")
    wait_green(local, "w")
    flt = {"must": [{"key": "t", "match": {"any": [1, 2, 3]}}]}
    allowed = np.isin(tag, [1, 2, 3])
    assert recall(local, "w", base, queries, "Cosine", allowed, flt) >= 0.95
    plan = local.query_points("w", query=queries[0], query_filter=flt, explain=True).explain
    assert plan["plan"] == "hnsw" and plan["ef"] > 256


def test_hnsw_config_patch_rebuilds(local):
    base = clustered(3000)
    fill(local, "h", base, hnsw_config={"m": 8, "ef_construct": 32})
    wait_green(local, "h")
    assert inspection(local, "h").indexes[0].index.m == 8
    local.update_collection("h", hnsw_config={"m": 12})
    wait_green(local, "h")
    rebuilt = inspection(local, "h").indexes[0].index
    assert rebuilt.m == 12 and rebuilt.ntotal == 3000
    assert local.get_collection("h").config.hnsw_config.m == 12
    assert recall(local, "h", base, clustered(3020)[3000:], "Cosine", search_params={"hnsw_ef": 64}) >= 0.95


def test_reopen_loads_the_checkpoint_instead_of_rebuilding(tmp_path):
    base = clustered(5000)
    with vecdb.Client(path=tmp_path / "db") as client:
        fill(client, "r", base)
        wait_green(client, "r")
    with vecdb.Client(path=tmp_path / "db") as client:
        assert wait_loaded(client, "r", 30).indexes[0].index.ntotal == 5000  # loaded from its file, not built again
        plan = client.query_points("r", query=base[7], explain=True)
        assert plan.explain["plan"] == "hnsw" and plan.explain["fresh_scanned"] == 0
        assert plan.points[0].id == 7
        assert client.get_collection("r").status == "green"
        # The loaded matrix is used without a copy: the first writes must still land correctly.
        client.upsert("r", [{"id": 9000, "vector": base[3] * -1}, {"id": 7, "vector": base[8]}])
        client.delete("r", [8])
        assert client.query_points("r", query=base[3] * -1, limit=1).points[0].id == 9000
        assert client.query_points("r", query=base[8], limit=1).points[0].id == 7
        assert 8 not in {p.id for p in client.query_points("r", query=base[8], limit=10).points}
        assert client.count("r").count == 5000


CRASH_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import vecdb
    sys.path.insert(0, {root!r})
    from tests.helpers import clustered, collection, fill, inspection, wait_green
    base = clustered(6000)
    client = vecdb.Client(path={path!r})
    fill(client, "k", base[:4000])
    wait_green(client, "k")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and 0 not in inspection(client, "k").manifests:  # until it checkpointed
        time.sleep(0.05)
    collection(client, "k").optimizer.stop()  # nothing is indexed or saved after this point
    client.delete("k", list(range(0, 100)))
    client.upsert("k", {{"ids": list(range(4000, 6000)), "vectors": base[4000:]}})
    print("ready", flush=True)
    time.sleep(60)
""")


def test_checkpoint_and_replay_after_kill9(tmp_path):
    """Killed after a checkpoint and more writes: reopen loads the graph, indexes only what came later."""
    path = str(tmp_path / "db")
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT.format(root=root, path=path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ready", line + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    base = clustered(6000)
    with vecdb.Client(path=path) as client:
        manifest = inspection(client, "k").manifests[0]
        assert manifest["ntotal"] == 4000 and manifest["covered"] == 4000
        assert client.count("k").count == 5900
        first = wait_loaded(client, "k", 30).indexes[0]
        assert first.index.ntotal >= 4000 and first.covered >= 4000  # loaded, then only caught up
        for i in (150, 4500, 5999):
            assert client.query_points("k", query=base[i], limit=1).points[0].id == i
        assert 5 not in {p.id for p in client.query_points("k", query=base[5], limit=10).points}
        wait_green(client, "k")
        assert client.get_collection("k").indexed_vectors_count == 5900
        queries = clustered(6020)[6000:]
        hits = 0
        for q in queries:
            want = {i + 100 for i, _ in reference_top(base[100:], list(range(5900)), q, "Cosine", 10)}
            hits += len(want & {p.id for p in client.query_points("k", query=q, limit=10).points})
        assert hits / 200 >= 0.95


def test_explain_over_rest(client, name):
    client.create_collection(name, {"size": 4, "distance": "Dot"})
    client.upsert(name, [{"id": 1, "vector": [1, 0, 0, 0]}, {"id": 2, "vector": [0, 1, 0, 0]}])
    res = client.query_points(name, query=[1, 0, 0, 0], explain=True)
    assert res.points[0].id == 1
    assert res.explain["plan"] == "exact" and res.explain["candidates"] == 2
    assert "filter" in res.explain["timings_ms"]
    assert client.query_points(name, query=[1, 0, 0, 0]).explain is None


def test_batch_queries_match_single_queries(local):
    """Grouped batch search (one BLAS product / one faiss call per group) answers as one query at a time."""
    base, queries = base_and_queries(4000, 12)
    fill(local, "b", base, payloads=[{"g": i % 4} for i in range(4000)])
    wait_green(local, "b")
    local.upsert("b", {"ids": [9000, 9001], "vectors": queries[:2]})  # fresh points merge in
    flt = {"must": [{"key": "g", "match": {"value": 1}}]}
    requests = []
    for i, q in enumerate(queries):
        r = {"query": q.tolist(), "limit": 5 + i % 3}
        if i % 3 == 1:
            r["filter"] = flt
        if i % 4 == 2:
            r["params"] = {"exact": True}
        requests.append(r)
    requests.append({"query": 17, "limit": 4})  # by id: its own group
    batch = local.query_batch_points("b", requests)
    assert len(batch) == len(requests)
    for r, got in zip(requests, batch, strict=True):
        single = local.query_points(
            "b", query=r["query"], limit=r["limit"], query_filter=r.get("filter"), search_params=r.get("params")
        )
        assert [p.id for p in got.points] == [p.id for p in single.points]
        np.testing.assert_allclose([p.score for p in got.points], [p.score for p in single.points], rtol=1e-5)
    assert [p.id for p in batch[0].points][0] == 9000


def test_search_after_write_under_concurrent_ingest(local):
    """While a writer thread upserts and the optimizer indexes, every acknowledged point is findable."""
    import threading

    base = clustered(9000)
    fill(local, "v", base[:3000])
    wait_green(local, "v")
    acked: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for lo in range(3000, 9000, 500):
                local.upsert("v", {"ids": list(range(lo, lo + 500)), "vectors": base[lo : lo + 500]})
                acked.append(lo + 500)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    rng = np.random.default_rng(11)
    checked = 0
    while thread.is_alive() or checked < 20:
        high = acked[-1] if acked else 3000
        i = int(rng.integers(0, high))
        assert local.query_points("v", query=base[i], limit=1).points[0].id == i
        checked += 1
    thread.join()
    assert not errors and checked >= 20
    wait_green(local, "v")
    assert local.get_collection("v").indexed_vectors_count == 9000


def test_planner_scans_exactly_below_one_percent():
    """However large the collection (so past full_scan_threshold), a filter keeping under 1% is scanned."""
    from vecdb.engine.planner import SearchKnobs, _exact_reason
    from vecdb.engine.settings import VectorSpace

    space = VectorSpace(index=0, name="", size=128, distance=Distance.COSINE)
    knobs = SearchKnobs(full_scan_threshold_kb=10_000)
    ann = object()
    big = 50_000 * 128 * 4  # 25 MB of candidates: above the threshold
    assert _exact_reason(ann, knobs, True, big, space, 50_000, 10_000_000).startswith("filter keeps under 1%")
    assert _exact_reason(ann, knobs, True, big, space, 50_000, 1_000_000) == ""  # 5%: the graph
    assert _exact_reason(ann, knobs, False, big, space, 50_000, 10_000_000) == ""  # no filter: the graph
