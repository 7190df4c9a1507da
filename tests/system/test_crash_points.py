"""SIGKILL at chosen points of an index checkpoint and of a collection delete.

A child process opens a data directory with the embedded client, patches one step of the
checkpoint or the delete so that the process SIGKILLs itself right there, and runs that
step. The test then reopens the directory and checks that nothing acknowledged is lost,
that the index is loaded from a checkpoint (never rebuilt) and catches up, that no stray
file is left behind, and that a collection is either wholly there or wholly gone.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import vecdb
from tests.helpers import inspection, wait_green, wait_loaded
from tests.workload import DIM, vector_for

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import os, shutil, signal, sys
    import vecdb
    from tests.helpers import wait_green, wait_loaded
    from tests.workload import vector_for
    from vecdb.engine import optimizer
    from vecdb.engine.collection import Collection
    from vecdb.index import hnsw
    from vecdb.storage.catalog import Catalog

    stage, path, phase = sys.argv[1:4]

    def die(*_, **__):
        os.kill(os.getpid(), signal.SIGKILL)

    def points(ids, version):
        return [{"id": i, "vector": vector_for(i, version).tolist(), "payload": {"v": version}} for i in ids]

    if phase == "setup":
        client = vecdb.Client(path=path)
        client.create_collection("k", {"size": %(dim)d, "distance": "Euclid"}, hnsw_config={"m": 8, "ef_construct": 32},
                                 optimizers_config={"indexing_threshold": 1, "flush_interval_sec": 3600})
        client.upsert("k", points(range(3000), 1))
        wait_green(client, "k")
        client.close()  # saves the graph
        raise SystemExit(0)

    client = vecdb.Client(path=path)
    wait_loaded(client, "k", 30)
    if stage == "index file half written":
        def half_written(target, write):
            tmp = target.with_name(target.name + ".tmp")
            write(tmp)
            with open(tmp, "r+b") as f:
                f.truncate(os.path.getsize(tmp) // 2)
            die()
        hnsw.write_durably = half_written
    elif stage == "labels not renamed":
        real, calls = hnsw.write_durably, []
        def second_unrenamed(target, write):
            calls.append(target)
            if len(calls) == 2:
                write(target.with_name(target.name + ".tmp"))
                die()
            real(target, write)
        hnsw.write_durably = second_unrenamed
    elif stage == "manifest not committed":
        Collection.put_meta = die
    elif stage == "old files not removed":
        optimizer.remove_superseded = die
    elif stage == "delete before catalog commit":
        Catalog.remove_collection = die
    elif stage == "delete after catalog commit":
        real_close = Collection.close
        Collection.close = lambda self, checkpoint=True: die() if not checkpoint else real_close(self, checkpoint)
    elif stage == "delete during removal":
        def partly_removed(target, *a, **k):
            (Path(target) / "data.mdb").unlink()
            die()
        from pathlib import Path
        shutil.rmtree = partly_removed
    else:
        raise SystemExit("unknown stage " + stage)
    # one acknowledged write (a batch: 1000 new points and 100 deletes), then the step that dies
    client.batch_update_points("k", [{"upsert": {"points": points(range(3000, 4000), 2)}},
                                     {"delete": {"points": list(range(100))}}])
    wait_green(client, "k")
    if stage.startswith("delete"):
        client.delete_collection("k")
    else:
        client.close()  # the close's checkpoint (or the optimizer's own, once writes pause) dies
    print("survived", flush=True)
""") % {"dim": DIM}

CHECKPOINT_STAGES = ["index file half written", "labels not renamed", "manifest not committed", "old files not removed"]
DELETE_STAGES = ["delete before catalog commit", "delete after catalog commit", "delete during removal"]


def run_child(stage: str, path: Path, phase: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, stage, str(path), phase], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def crash_at(stage: str, path: Path) -> None:
    setup = run_child(stage, path, "setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    crash = run_child(stage, path, "crash")
    assert crash.returncode == -9, f"the kill point was not reached: {crash.returncode} {crash.stdout}{crash.stderr}"


def expected() -> dict[int, int]:
    """id -> version after the acknowledged writes: 3000 points, then 1000 more and 100 deleted."""
    return {**{i: 1 for i in range(100, 3000)}, **{i: 2 for i in range(3000, 4000)}}


def check_points(client: vecdb.Client) -> None:
    want = expected()
    got = {}
    offset = None
    while True:
        page, offset = client.scroll("k", limit=1000, offset=offset, with_vectors=True)
        got.update({p.id: p for p in page})
        if offset is None:
            break
    assert client.count("k").count == len(want) and set(got) == set(want)
    for pid, version in want.items():
        assert got[pid].payload == {"v": version}
        np.testing.assert_array_equal(np.float32(got[pid].vector), vector_for(pid, version))
    ids = np.array(sorted(want))
    base = np.stack([vector_for(int(i), want[int(i)]) for i in ids]).astype(np.float64)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.normal(size=DIM)
        top = ids[np.argsort(((base - q) ** 2).sum(axis=1))[:10]]
        exact = client.query_points("k", query=q.tolist(), limit=10, search_params={"exact": True})
        assert [p.id for p in exact.points] == top.tolist()
        graph = client.query_points("k", query=q.tolist(), limit=10)
        assert len(set(top.tolist()) & {p.id for p in graph.points}) >= 8


@pytest.mark.parametrize("stage", CHECKPOINT_STAGES)
def test_kill_during_checkpoint(stage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "data"
    crash_at(stage, path)
    caplog.set_level(logging.INFO, logger="vecdb")
    with vecdb.Client(path=path) as client:
        wait_loaded(client, "k", 30)
        check_points(client)
        wait_green(client, "k")
        assert client.get_collection("k").indexed_vectors_count == 3900
        log = caplog.text
        assert "loaded graph of" in log and "built HNSW" not in log and "ignoring index checkpoint" not in log, log
    # after a close, the index folder holds the saved graph's two files and nothing else
    with vecdb.Client(path=path) as client:
        name = inspection(client, "k").manifests[0]["file"]
        files = sorted(p.name for p in (path / "collections" / "k" / "index").iterdir())
        assert files == [name, name + ".labels.npy"]
        assert (
            wait_loaded(client, "k", 30).indexes[0].covered == 4000
        )  # the graph saved on close: nothing left to index
        assert client.get_collection("k").indexed_vectors_count == 3900
        check_points(client)


@pytest.mark.parametrize("stage", DELETE_STAGES)
def test_kill_during_collection_delete(stage: str, tmp_path: Path) -> None:
    path = tmp_path / "data"
    crash_at(stage, path)
    with vecdb.Client(path=path) as client:
        if stage == "delete before catalog commit":
            assert client.collection_exists("k")
            check_points(client)
            assert client.delete_collection("k")
        else:  # the catalog said it was gone: it is gone, files and all
            assert not client.collection_exists("k")
        assert not (path / "collections" / "k").exists()
        assert not (path / ".trash").exists() or not any((path / ".trash").iterdir())
        client.create_collection("k", {"size": DIM, "distance": "Euclid"})
        assert client.count("k").count == 0
