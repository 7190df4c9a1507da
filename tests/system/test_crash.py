"""Crash safety: SIGKILL the server while it writes, restart it, and check nothing acknowledged was lost.

Also the ownership lock of a data directory: a second server on the same path is
refused and names the holder; the lock of a killed process does not block a restart.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Optional

import httpx
import numpy as np
import pytest

import vecdb
from tests.harness import ServerProcess, start_server
from vecdb.errors import DataDirLocked

DIM = 16
NEW_PER_BATCH = 40
REWRITES_PER_BATCH = 10


def vector_for(pid: int, batch: int) -> list[float]:
    """A deterministic vector per (id, batch), so every version of a point is recognisable."""
    rng = np.random.default_rng(pid * 100_003 + batch)
    return rng.normal(size=DIM).astype(np.float32).tolist()


def batch_points(b: int) -> list[dict[str, Any]]:
    """Batch ``b``: 40 new ids plus rewrites of 10 ids written by earlier batches (new payload and vector)."""
    ids = list(range(b * NEW_PER_BATCH, (b + 1) * NEW_PER_BATCH))
    if b > 0:
        rng = np.random.default_rng(b)
        ids += [int(x) for x in rng.choice(b * NEW_PER_BATCH, size=REWRITES_PER_BATCH, replace=False)]
    return [
        {"id": pid, "vector": vector_for(pid, b), "payload": {"id": pid, "batch": b, "tags": [b, "x"]}} for pid in ids
    ]


class Writer(threading.Thread):
    """Upserts batch after batch until the server goes away; records which batches got a 200."""

    def __init__(self, url: str, collection: str, first_batch: int) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/collections/{collection}/points?wait=true"
        self.first_batch = first_batch
        self.acked: list[int] = []
        self.in_flight: Optional[int] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            b = self.first_batch
            while True:
                self.in_flight = b
                try:
                    r = http.put(self.url, json={"points": batch_points(b)})
                except httpx.HTTPError:
                    return  # the server died: batch b may or may not have been applied
                if r.status_code != 200 or r.json()["result"]["status"] != "completed":
                    self.error = AssertionError(f"batch {b}: {r.status_code} {r.text}")
                    return
                self.acked.append(b)
                self.in_flight = None
                b += 1


def expected_state(batches: list[int]) -> dict[int, int]:
    """id -> the batch that wrote its current version, after applying ``batches`` in order."""
    state: dict[int, int] = {}
    for b in batches:
        for p in batch_points(b):
            state[p["id"]] = b
    return state


def scroll_everything(url: str, collection: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = None
    while True:
        body: dict[str, Any] = {"limit": 256, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        r = httpx.post(f"{url}/collections/{collection}/points/scroll", json=body, timeout=30)
        assert r.status_code == 200, r.text
        res = r.json()["result"]
        out.extend(res["points"])
        offset = res["next_page_offset"]
        if offset is None:
            return out


def create_collection(url: str, name: str) -> None:
    r = httpx.put(f"{url}/collections/{name}", json={"vectors": {"size": DIM, "distance": "Euclid"}})
    assert r.status_code == 200, r.text


def write_until_killed(srv: ServerProcess, first_batch: int, min_acked: int) -> Writer:
    """Stream batches from a thread; SIGKILL the server once ``min_acked`` more were acknowledged."""
    writer = Writer(srv.url, "c", first_batch)
    writer.start()
    deadline = time.monotonic() + 10
    while len(writer.acked) < min_acked and writer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer.error is None and writer.is_alive(), writer.error
    assert len(writer.acked) >= min_acked, "writer too slow"
    srv.kill()  # SIGKILL while the writer is streaming
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert writer.error is None, writer.error
    assert writer.in_flight == writer.acked[-1] + 1  # mid-stream: one batch went unanswered
    return writer


def check_recovered(srv: ServerProcess, history: list[int], writer: Writer) -> list[int]:
    """Check the restarted store against the acknowledged writes; returns the batches it holds."""
    assert writer.in_flight is not None
    points = scroll_everything(srv.url, "c")
    ids = [p["id"] for p in points]
    assert len(ids) == len(set(ids)), "a point is duplicated"
    assert ids == sorted(ids)

    # the unanswered batch is all-or-nothing: its fresh ids tell whether it committed
    b = writer.in_flight
    fresh = set(range(b * NEW_PER_BATCH, (b + 1) * NEW_PER_BATCH))
    present = fresh & set(ids)
    assert present in (set(), fresh), f"in-flight batch {b} half applied: {len(present)} of {len(fresh)}"
    applied = [*history, *writer.acked, *([b] if present else [])]
    expected = expected_state(applied)

    count = httpx.post(f"{srv.url}/collections/c/points/count", json={"exact": True}).json()["result"]["count"]
    assert count == len(expected) == len(ids)
    assert sorted(expected) == ids
    assert httpx.get(f"{srv.url}/collections/c").json()["result"]["points_count"] == count
    for p in points:
        v = expected[p["id"]]
        assert p["payload"] == {"id": p["id"], "batch": v, "tags": [v, "x"]}, p["id"]
        np.testing.assert_array_equal(np.float32(p["vector"]), np.float32(vector_for(p["id"], v)))

    # search is exact over the recovered state
    order = sorted(expected)
    base = np.array([vector_for(pid, expected[pid]) for pid in order], dtype=np.float64)
    rng = np.random.default_rng(len(applied))
    for _ in range(3):
        q = rng.normal(size=DIM)
        dist = np.sqrt(((base - q) ** 2).sum(axis=1))
        top = np.argsort(dist, kind="stable")[:10]
        r = httpx.post(f"{srv.url}/collections/c/points/query", json={"query": q.tolist(), "limit": 10})
        assert r.status_code == 200, r.text
        hits = r.json()["result"]["points"]
        assert [h["id"] for h in hits] == [order[i] for i in top]
        np.testing.assert_allclose([h["score"] for h in hits], dist[top], atol=1e-4)
    return applied


def test_kill9_while_writing_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Two rounds of write / SIGKILL / restart / verify on the same data directory."""
    path = tmp_path / "data"
    history: list[int] = []
    next_batch = 0
    srv = start_server(path)
    try:
        create_collection(srv.url, "c")
        for _ in range(2):
            writer = write_until_killed(srv, next_batch, min_acked=15)
            srv = start_server(path)
            history = check_recovered(srv, history, writer)
            assert writer.in_flight is not None
            next_batch = writer.in_flight + 1
        # and the recovered store takes writes again
        before = httpx.post(f"{srv.url}/collections/c/points/count", json={}).json()["result"]["count"]
        r = httpx.put(
            f"{srv.url}/collections/c/points?wait=true",
            json={"points": [{"id": 10**9, "vector": [0.5] * DIM, "payload": {"after": True}}]},
        )
        assert r.status_code == 200, r.text
        assert httpx.post(f"{srv.url}/collections/c/points/count", json={}).json()["result"]["count"] == before + 1
    finally:
        srv.stop()


def _holder_pid_in(text: str, pid: int) -> bool:
    return f"pid {pid}" in text


def test_second_server_on_same_path_is_refused_and_stale_lock_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "data"
    first = start_server(path)
    second: Optional[ServerProcess] = None
    try:
        create_collection(first.url, "kept")
        r = httpx.put(
            f"{first.url}/collections/kept/points?wait=true",
            json={"points": [{"id": 1, "vector": [1.0] * DIM, "payload": {"k": 1}}]},
        )
        assert r.status_code == 200
        second = start_server(path, wait=False)
        rc = second.proc.wait(timeout=30)
        assert rc != 0
        log = second.log.read_text()
        assert _holder_pid_in(log, first.proc.pid), log
        assert str(path) in log or "in use" in log, log
        assert "Traceback" not in log, log
        # the refused process did not disturb the running one
        assert httpx.get(f"{first.url}/collections/kept").status_code == 200

        first.kill()  # the kernel drops the flock; the lock file stays behind with the dead pid in it
        assert (path / ".lock").exists()
        third = start_server(path)
        try:
            r = httpx.post(f"{third.url}/collections/kept/points", json={"ids": [1]})
            assert r.status_code == 200
            assert r.json()["result"][0]["payload"] == {"k": 1}
            assert _holder_pid_in((path / ".lock").read_text(), third.proc.pid)
        finally:
            third.stop()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_embedded_client_and_the_lock(tmp_path: Path) -> None:
    """flock is per open file description: a second open in the same process is refused too."""
    path = tmp_path / "data"
    first = vecdb.Client(path=path)
    try:
        with pytest.raises(DataDirLocked) as err:
            vecdb.Client(path=path)
        assert _holder_pid_in(str(err.value), os.getpid())
    finally:
        first.close()
    # released on close: a new client opens, and so does a server after it closes
    second = vecdb.Client(path=path)
    second.close()

    srv = start_server(path)
    try:
        with pytest.raises(DataDirLocked) as err:
            vecdb.Client(path=path)
        assert _holder_pid_in(str(err.value), srv.proc.pid)
    finally:
        srv.stop()
    vecdb.Client(path=path).close()
