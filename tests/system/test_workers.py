"""``vecdb serve --workers 2``: reads on any worker see every acknowledged write, a killed worker comes
back by itself without losing anything acknowledged, and the data directory stays locked to others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import vecdb
from tests.harness import start_server
from vecdb.errors import DataDirLocked

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker pids from /proc")


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker left out)."""
    out = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                out.append(int(pid))
    return sorted(out)


def wait_for_workers(supervisor: int, count: int, timeout: float = 30, gone: int = -1) -> list[int]:
    """The worker pids once there are ``count`` of them, ``gone`` (a killed one) not among them."""
    deadline = time.monotonic() + timeout
    while True:
        pids = worker_pids(supervisor)
        if len(pids) == count and gone not in pids:
            return pids
        assert time.monotonic() < deadline, f"{len(pids)} workers, expected {count}"
        time.sleep(0.1)


def fresh_read(url: str, path: str, body: dict) -> dict:
    """A request on a new connection: the kernel hands it to any worker."""
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()["result"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("primary_serves", [False, True])
def test_every_read_sees_every_acknowledged_write_on_any_worker(tmp_path: Path, primary_serves: bool) -> None:
    """Two readers and the writer (default), or the writer serving clients beside one reader."""
    rng = np.random.default_rng(0)
    mode = "--primary-serves" if primary_serves else "--no-primary-serves"
    with start_server(tmp_path / "data", "--workers", "2", mode, log_level="info") as srv:
        wait_for_workers(srv.proc.pid, 2 if primary_serves else 3)
        url = srv.url
        with httpx.Client(base_url=f"{url}/collections/c", timeout=30) as http:
            assert (
                httpx.put(f"{srv.url}/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code
                == 200
            )
            assert (
                http.put("/index", json={"field_name": "g", "field_schema": "keyword"}).status_code == 200
            )  # a payload index: followers keep it current too
            alive: dict[int, str] = {}
            for step in range(150):
                pid = int(rng.integers(0, 40))
                kind = step % 3
                if kind < 2 or pid not in alive:
                    g = "ab"[int(rng.integers(0, 2))]
                    vec = rng.normal(size=4).tolist()
                    r = http.put(
                        "/points",
                        params={"wait": "true"},
                        json={"points": [{"id": pid, "vector": vec, "payload": {"g": g}}]},
                    )
                    alive[pid] = g
                else:
                    r = http.post("/points/delete", params={"wait": "true"}, json={"points": [pid]})
                    del alive[pid]
                assert r.status_code == 200, r.text
                got = fresh_read(url, "/collections/c/points", {"ids": [pid], "with_payload": True})
                assert [(p["id"], p["payload"]["g"]) for p in got] == ([(pid, alive[pid])] if pid in alive else [])
                count_a = fresh_read(
                    url,
                    "/collections/c/points/count",
                    {"exact": True, "filter": {"must": [{"key": "g", "match": {"value": "a"}}]}},
                )["count"]
                assert count_a == sum(g == "a" for g in alive.values()), f"step {step}"
                hits = fresh_read(url, "/collections/c/points/query", {"query": [1, 0, 0, 0], "limit": 100})["points"]
                assert sorted(p["id"] for p in hits) == sorted(alive)
    assert "following collection c" in srv.log.read_text(), "no read reached the follower"


def test_a_killed_worker_is_started_again_and_loses_nothing(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", "--workers", "2", log_level="info") as srv:
        pids = wait_for_workers(srv.proc.pid, 3)  # the writer and two readers
        with httpx.Client(base_url=f"{srv.url}/collections/c", timeout=30) as http:
            assert (
                httpx.put(f"{srv.url}/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code
                == 200
            )
            acked = 0
            for victim in pids[:2]:  # the primary (started first), then a follower
                for i in range(20):
                    r = http.put(
                        "/points",
                        params={"wait": "true"},
                        json={"points": [{"id": acked, "vector": [1, 0, 0, float(i)]}]},
                    )
                    assert r.status_code == 200, r.text
                    acked += 1
                os.kill(victim, signal.SIGKILL)
                wait_for_workers(srv.proc.pid, 3, gone=victim)
                deadline = time.monotonic() + 30
                while True:  # the restarted worker opens the store again before it answers
                    try:
                        r = httpx.post(f"{srv.url}/collections/c/points/count", json={"exact": True}, timeout=5)
                        info = httpx.get(f"{srv.url}/collections/c", timeout=5)  # (answered by the primary)
                        if r.status_code == info.status_code == 200 and r.json()["result"]["count"] == acked:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "the killed worker's group did not come back whole"
                    time.sleep(0.1)
            for _ in range(10):
                assert fresh_read(srv.url, "/collections/c/points/count", {"exact": True})["count"] == acked
    assert "exited (code -9): starting it again" in srv.log.read_text()


def test_the_data_directory_stays_locked_to_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with start_server(path, "--workers", "2") as srv:
        wait_for_workers(srv.proc.pid, 3)
        other = subprocess.run(
            [sys.executable, "-m", "vecdb", "serve", "--path", str(path), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode != 0 and "in use by another process" in other.stderr
        with pytest.raises(DataDirLocked):
            vecdb.Client(path=path)
    with vecdb.Client(path=path) as c:  # stopped: the lock is free again
        assert c.get_collections().collections == []


def test_readiness_on_every_worker_once_the_saved_graph_is_loaded(tmp_path: Path) -> None:
    """/readyz answers on whichever worker a connection reaches; each is ready once it searches the
    saved graph (a follower loads it while it opens)."""
    path = tmp_path / "data"
    rng = np.random.default_rng(2)
    with vecdb.Client(path=path) as c:
        c.create_collection("c", {"size": 8, "distance": "Dot"}, optimizers_config={"indexing_threshold": 1})
        c.upsert("c", {"ids": list(range(2000)), "vectors": rng.normal(size=(2000, 8)).astype(np.float32)})
        from tests.helpers import wait_green

        wait_green(c, "c")
    with start_server(path, "--workers", "2") as srv:
        wait_for_workers(srv.proc.pid, 3)
        deadline = time.monotonic() + 30
        while httpx.get(f"{srv.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "a worker never got ready"
            time.sleep(0.1)
        for _ in range(20):  # fresh connections: both readers
            assert httpx.get(f"{srv.url}/readyz").status_code == 200


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    """Followers answer the queries, the primary answers /metrics: the count it reports is the sum
    over every worker (prometheus-client's multi-process files), and it survives a worker's restart."""
    route = 'route="/collections/{collection_name}/points/query",status="200"'

    def counted(url: str) -> float:
        text = httpx.get(f"{url}/metrics").text
        lines = [ln for ln in text.splitlines() if ln.startswith("vecdb_http_requests_total{") and route in ln]
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)

    with start_server(tmp_path / "data", "--workers", "2") as srv:
        pids = wait_for_workers(srv.proc.pid, 3)
        assert (
            httpx.put(f"{srv.url}/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
        )
        body = {"query": [1.0, 0.0, 0.0, 0.0], "limit": 3}
        for _ in range(30):  # fresh connections: spread over both readers
            fresh_read(srv.url, "/collections/c/points/query", body)
        assert counted(srv.url) == 30
        text = httpx.get(f"{srv.url}/metrics").text
        assert "vecdb_collection_points" in text and "vecdb_http_request_duration_seconds_bucket" in text
        os.kill(pids[-1], signal.SIGKILL)  # a reader dies; its counts stay in the sum
        wait_for_workers(srv.proc.pid, 3, gone=pids[-1])
        for _ in range(10):
            fresh_read(srv.url, "/collections/c/points/query", body)
        assert counted(srv.url) == 40


def test_searches_while_the_followers_tail_is_large_are_answered_by_the_primary(tmp_path: Path) -> None:
    """With ``--follower-tail-kb 0`` a follower passes every search of an indexed collection with rows
    past its saved graph to the primary: each answer still holds the point written just before it."""
    rng = np.random.default_rng(5)
    with start_server(tmp_path / "data", "--workers", "2", "--follower-tail-kb", "0") as srv:
        wait_for_workers(srv.proc.pid, 3)
        create = {"vectors": {"size": 8, "distance": "Euclid"}, "optimizers_config": {"indexing_threshold": 1}}
        assert httpx.put(f"{srv.url}/collections/c", json=create).status_code == 200
        with httpx.Client(base_url=f"{srv.url}/collections/c", timeout=30) as http:
            base = rng.normal(size=(500, 8)).tolist()
            points = [{"id": i, "vector": v} for i, v in enumerate(base)]
            assert http.put("/points", params={"wait": "true"}, json={"points": points}).status_code == 200
            for step in range(30):
                vec = (rng.normal(size=8) * 10).tolist()
                pid = 1000 + step
                r = http.put("/points", params={"wait": "true"}, json={"points": [{"id": pid, "vector": vec}]})
                assert r.status_code == 200
                for path in ("/points/query", "/points/search"):
                    body = {"query": vec, "limit": 1} if path.endswith("query") else {"vector": vec, "limit": 1}
                    found = fresh_read(srv.url, f"/collections/c{path}", body)
                    hits = found["points"] if path.endswith("query") else found
                    assert hits[0]["id"] == pid


def test_by_default_one_reader_per_core_plus_the_writer(tmp_path: Path) -> None:
    """``vecdb serve`` without ``--workers`` starts one reader per core (its affinity mask) beside the
    writer; on one core, a single process."""
    cores = len(os.sched_getaffinity(0))
    with start_server(tmp_path / "data", workers=None) as srv:
        if cores > 1:
            wait_for_workers(srv.proc.pid, cores + 1)
        else:
            assert worker_pids(srv.proc.pid) == []
        assert (
            httpx.put(f"{srv.url}/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
        )
        body = {"points": [{"id": 1, "vector": [1.0, 0.0]}]}
        assert httpx.put(f"{srv.url}/collections/c/points?wait=true", json=body).status_code == 200
        assert fresh_read(srv.url, "/collections/c/points/query", {"query": [1.0, 0.0]})["points"][0]["id"] == 1
