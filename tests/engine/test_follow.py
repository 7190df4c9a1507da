"""A follower process's view of a collection equals the primary's after every kind of write.

The primary runs in a child process (two processes must not open one LMDB environment in one
process), writes, and sends back what it reads; this process follows it and must read the same
thing: every point with its payload, vector and version, query results, filtered counts.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecdb.client.base import ClientBase
from vecdb.engine.database import Database
from vecdb.engine.follow import Worker
from vecdb.engine.service import LocalService

DIM = 8


class _Over(ClientBase):
    """The embedded client's methods over a database opened as one of ``vecdb serve --workers``."""

    def __init__(self, db: Database) -> None:
        self._service = LocalService(db)


def _state(c: ClientBase, name: str, queries: np.ndarray) -> dict[str, Any]:
    """Everything a reader can see of a collection, in plain data."""
    if not c.collection_exists(name):
        return {"exists": False}
    points, _ = c.scroll(name, limit=100_000, with_payload=True, with_vectors=True)
    hits = [[(p.id, round(p.score, 4)) for p in c.query_points(name, query=q, limit=5).points] for q in queries]
    filtered = [
        [
            p.id
            for p in c.query_points(
                name, query=q, limit=5, query_filter={"must": [{"key": "g", "match": {"value": "a"}}]}
            ).points
        ]
        for q in queries
    ]
    count = c.count(name, count_filter={"must": [{"key": "g", "match": {"value": "b"}}]}).count
    return {
        "exists": True,
        "points": [(p.id, p.payload, np.round(np.asarray(p.vector), 5).tolist()) for p in points],
        "versions": sorted((p.id, p.version) for p in c.query_points(name, query=queries[0], limit=1000).points),
        "hits": hits,
        "filtered": filtered,
        "count_b": count,
    }


def _primary(root: str, conn: Any, keep: int) -> None:
    """The child: open as worker 0, run each operation it is sent, answer with the state it reads."""
    import vecdb.storage.points as points

    points.CHANGES_KEPT = keep
    try:
        c = _Over(Database(root, worker=Worker(0, 2)))
    except Exception:
        conn.send({"error": traceback.format_exc()})
        return
    with c:
        conn.send("ready")
        while True:
            op = conn.recv()
            if op is None:
                break
            kind, args, queries = op
            try:
                _apply(c, kind, args)
                conn.send(_state(c, "c", queries))
            except Exception:  # the test fails with the primary's traceback
                conn.send({"error": traceback.format_exc()})
    conn.close()


def _apply(c: ClientBase, kind: str, args: Any) -> None:
    if kind == "setup":
        c.create_collection("c", {"size": DIM, "distance": "Cosine"}, optimizers_config={"indexing_threshold": 0})
    elif kind == "upsert":
        c.upsert("c", args)
    elif kind == "delete":
        c.delete("c", args)
    elif kind == "set_payload":
        c.set_payload("c", args["payload"], points=args["points"])
    elif kind == "overwrite_payload":
        c.overwrite_payload("c", args["payload"], points=args["points"])
    elif kind == "update_vectors":
        c.update_vectors("c", args)
    elif kind == "index":
        c.create_payload_index("c", "g", "keyword")
    elif kind == "drop":
        c.delete_collection("c")


def _run(tmp_path: Path, ops: list[tuple[str, Any]], keep: int = 10_000) -> None:
    root = str(tmp_path / "data")
    Database(root).close()  # the data directory exists before either worker opens it
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_primary, args=(root, theirs, keep), daemon=True)
    child.start()
    try:
        assert _answer(ours) == "ready"
        queries = np.random.default_rng(7).normal(size=(3, DIM)).astype(np.float32)
        with _Over(Database(root, worker=Worker(1, 2))) as follower:
            for step, (kind, args) in enumerate(ops):
                ours.send((kind, args, queries))
                want = _answer(ours)
                got = _state(follower, "c", queries)
                assert got == want, f"step {step} ({kind}): the follower reads something else"
        ours.send(None)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()


def _answer(conn: Any) -> Any:
    assert conn.poll(60), "the primary process did not answer"
    got = conn.recv()
    if isinstance(got, dict) and "error" in got:
        pytest.fail("the primary failed:\n" + got["error"])
    return got


def _points(rng: np.random.Generator, ids: list[int]) -> dict[str, Any]:
    return {
        "ids": ids,
        "vectors": rng.normal(size=(len(ids), DIM)).astype(np.float32),
        "payloads": [{"g": "ab"[i % 2], "i": i} for i in ids],
    }


def _workload(rng: np.random.Generator) -> list[tuple[str, Any]]:
    return [
        ("setup", None),
        ("upsert", _points(rng, list(range(50)))),
        ("upsert", _points(rng, list(range(40, 90)))),  # overwrites: new internal ids, old ones die
        ("delete", [1, 2, 3, 85]),
        ("set_payload", {"payload": {"g": "a", "new": True}, "points": [4, 5, 6]}),
        ("overwrite_payload", {"payload": {"only": 1}, "points": [7]}),
        ("update_vectors", [{"id": 8, "vector": [1.0] * DIM}]),
        ("index", None),  # settings change: the follower reopens
        ("upsert", _points(rng, list(range(90, 130)))),
        ("set_payload", {"payload": {"g": "b"}, "points": [9, 100]}),
        ("delete", [100, 101]),
        ("drop", None),
        ("setup", None),  # re-created under the same name: a new LMDB file
        ("upsert", _points(rng, list(range(10)))),
    ]


def test_a_follower_reads_what_the_primary_wrote_after_every_kind_of_write(tmp_path):
    _run(tmp_path, _workload(np.random.default_rng(0)))


def test_a_follower_too_far_behind_reads_the_collection_whole(tmp_path):
    """Two change records kept: catching up over three writes reopens the collection instead."""
    rng = np.random.default_rng(1)
    ops = _workload(rng)[:4]
    burst = [("upsert", _points(rng, [200 + i])) for i in range(3)]
    _run(tmp_path, ops + burst, keep=2)


@pytest.mark.parametrize("kind", ["create", "delete", "aliases"])
def test_a_follower_refuses_to_write(tmp_path, kind):
    root = tmp_path / "data"
    Database(root).close()
    db = Database(root, worker=Worker(1, 2))
    try:
        with pytest.raises(RuntimeError, match="never writes"):
            if kind == "create":
                _Over(db).create_collection("x", {"size": 4, "distance": "Dot"})
            elif kind == "delete":
                db.catalog.remove_collection("x")
            else:
                db.catalog.replace_aliases({"a": "x"})
    finally:
        db.close()


def test_a_primary_searches_its_saved_graph_through_the_file_and_still_grows_it(tmp_path):
    """Under --workers the primary swaps each saved graph for the checkpoint file's pages (shared with
    the followers), and copies it before the next growth: the answers stay those of brute force."""
    from tests.brute import reference_top
    from tests.helpers import wait_green

    rng = np.random.default_rng(3)
    base = rng.normal(size=(3000, DIM)).astype(np.float32)
    queries = rng.normal(size=(5, DIM)).astype(np.float32)
    db = Database(tmp_path / "data", worker=Worker(0, 2))
    with _Over(db) as c:
        c.create_collection("c", {"size": DIM, "distance": "Euclid"}, optimizers_config={"indexing_threshold": 1})
        coll = db.get("c")
        assert (tmp_path / "data" / "collections" / "c" / "vectors" / "space0.f32").exists()  # rows: one shared file
        for lo, hi in ((0, 2000), (2000, 3000)):
            c.upsert("c", {"ids": list(range(lo, hi)), "vectors": base[lo:hi]})
            wait_green(c, "c")
            coll.optimizer.flush()
            assert coll.ann[0].index.mapped, "the saved graph is searched through its file"
            alive = np.ones(hi, dtype=bool)
            for q in queries:
                want = [i for i, _ in reference_top(base[:hi], list(range(hi)), q, "Euclid", 10, alive)]
                got = [p.id for p in c.query_points("c", query=q, limit=10, search_params={"hnsw_ef": 500}).points]
                assert got == want


def test_a_primary_opens_its_saved_graph_through_the_file(tmp_path):
    from tests.helpers import wait_green

    base = np.random.default_rng(4).normal(size=(2000, DIM)).astype(np.float32)
    with _Over(Database(tmp_path / "data")) as c:  # written by a process alone
        c.create_collection("c", {"size": DIM, "distance": "Euclid"}, optimizers_config={"indexing_threshold": 1})
        c.upsert("c", {"ids": list(range(2000)), "vectors": base})
        wait_green(c, "c")
    db = Database(tmp_path / "data", worker=Worker(0, 2))
    with _Over(db) as c:
        wait_green(c, "c")
        assert db.get("c").ann[0].index.mapped
        assert c.query_points("c", query=base[7], limit=1, search_params={"hnsw_ef": 200}).points[0].id == 7


def test_a_single_process_open_drops_the_rows_file_workers_shared(tmp_path):
    """Rows of an in-memory space sit in a file only while workers share them; alone again, the open
    removes it (its rows are rebuilt from LMDB either way)."""
    rows_file = tmp_path / "data" / "collections" / "c" / "vectors" / "space0.f32"
    with _Over(Database(tmp_path / "data", worker=Worker(0, 2))) as c:
        c.create_collection("c", {"size": DIM, "distance": "Dot"})
        c.upsert("c", {"ids": [1, 2], "vectors": np.ones((2, DIM), np.float32)})
    assert rows_file.exists()
    with _Over(Database(tmp_path / "data")) as c:
        assert not rows_file.exists()
        assert [r.id for r in c.retrieve("c", [1, 2], with_vectors=True)] == [1, 2]
