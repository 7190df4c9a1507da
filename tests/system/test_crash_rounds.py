"""Crash rounds: writers mutate a collection over HTTP, the server is SIGKILLed at a random moment,
restarted, and the store is checked against the writers' model, round after round.

Per round: every acknowledged write is present, each writer's unanswered request is wholly
applied or wholly absent, the count and exact search equal the model, graph search keeps
its recall, and the HNSW index is loaded from its checkpoint and caught up, never rebuilt
from scratch. The sparse rounds also write sparse vectors (upserts with and without them, sparse
updates and deletes): each stored sparse vector must be the model's, sparse (IDF) queries must equal
brute force over the model, and once an inverted index was checkpointed, every restart loads it.
The default run does a few rounds; ``-m slow`` runs the long one.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.harness import start_server
from tests.workload import (
    ThreadModel,
    Writer,
    check_search,
    check_sparse_search,
    collection_body,
    count,
    model_state,
    reconcile,
    scroll_all,
)

WRITERS = 4


def wait_indexed(http: httpx.Client, points: int, timeout: float = 60.0) -> dict:
    """Wait until the graph covers every point (green); returns the collection info."""
    deadline = time.monotonic() + timeout
    while True:
        info = http.get(str(http.base_url).rstrip("/")).json()["result"]
        if info["status"] == "green" and info["indexed_vectors_count"] == points:
            return info
        assert time.monotonic() < deadline, f"index did not catch up: {info}"
        time.sleep(0.1)


def run_rounds(
    tmp_path: Path, rounds: int, seed: int, sparse: bool = False, extra: tuple[str, ...] = ()
) -> dict[str, int]:
    path = tmp_path / "data"
    rng = np.random.default_rng(seed)
    models = [ThreadModel(t, WRITERS, seed, sparse=sparse) for t in range(WRITERS)]
    stats = {
        "rounds": 0,
        "acknowledged": 0,
        "unanswered_applied": 0,
        "unanswered_absent": 0,
        "points_verified": 0,
        "checkpoint_loads": 0,
        "sparse_hits_verified": 0,
        "sparse_checkpoint_loads": 0,
    }
    checkpointed = False  # once an index was saved, every restart must load one
    sparse_checkpointed = False
    srv = start_server(path, *extra, log_level="info")
    try:
        r = httpx.put(f"{srv.url}/collections/c", json=collection_body(sparse=sparse))
        assert r.status_code == 200, r.text
        for _ in range(rounds):
            url = f"{srv.url}/collections/c"
            writers = [Writer(m, url) for m in models]
            for w in writers:
                w.start()
            time.sleep(float(rng.uniform(0.3, 2.5)))  # a random moment of the load
            srv.kill()
            for w in writers:
                w.join(timeout=60)
                assert not w.is_alive() and w.error is None, w.error
            stats["acknowledged"] += sum(w.acked for w in writers)
            checkpointed |= "checkpointed" in srv.log.read_text()
            sparse_checkpointed |= "postings (covers internal ids" in srv.log.read_text()

            srv = start_server(path, *extra, log_level="info")
            with httpx.Client(base_url=f"{srv.url}/collections/c", timeout=60) as http:
                stored = scroll_all(http)
                applied = reconcile(stored, writers)
                unanswered = sum(w.in_flight is not None for w in writers)
                stats["unanswered_applied"] += applied
                stats["unanswered_absent"] += unanswered - applied
                state = model_state(models)
                assert count(http) == len(state) == len(stored)
                wait_indexed(http, len(state))
                assert check_search(http, state, rng) >= 0.9
                if sparse:
                    stats["sparse_hits_verified"] += check_sparse_search(http, state, rng)
                stats["points_verified"] += len(state)
            log = srv.log.read_text()
            assert "ignoring index checkpoint" not in log, log
            assert "built HNSW" not in log or not checkpointed, "a saved index was rebuilt instead of loaded"
            if checkpointed:
                assert "loaded graph of" in log, log
                stats["checkpoint_loads"] += 1
            if sparse:
                assert "ignoring sparse index checkpoint" not in log, log
                if sparse_checkpointed:
                    assert "loaded sparse checkpoint" in log, log
                    stats["sparse_checkpoint_loads"] += 1
            stats["rounds"] += 1
        assert checkpointed, "no round ran long enough to save an index"
        return stats
    finally:
        srv.stop()


def test_crash_rounds(tmp_path: Path) -> None:
    stats = run_rounds(tmp_path, rounds=3, seed=1)
    assert stats["rounds"] == 3 and stats["acknowledged"] > 0


def test_crash_rounds_sparse(tmp_path: Path) -> None:
    stats = run_rounds(tmp_path, rounds=3, seed=3, sparse=True)
    assert stats["rounds"] == 3 and stats["acknowledged"] > 0 and stats["sparse_hits_verified"] > 0


def test_crash_rounds_with_workers(tmp_path: Path) -> None:
    """``vecdb serve --workers 2``: the writers' requests reach both processes (a follower forwards
    them); SIGKILL of the supervisor takes its workers down with it, and nothing acknowledged is lost."""
    stats = run_rounds(tmp_path, rounds=3, seed=5, extra=("--workers", "2"))
    assert stats["rounds"] == 3 and stats["acknowledged"] > 0


@pytest.mark.slow
def test_crash_rounds_long_sparse(tmp_path: Path) -> None:
    stats = run_rounds(tmp_path, rounds=25, seed=4, sparse=True)
    assert stats["rounds"] == 25
    print("sparse crash rounds:", stats)


@pytest.mark.slow
def test_crash_rounds_long(tmp_path: Path) -> None:
    stats = run_rounds(tmp_path, rounds=25, seed=2)
    assert stats["rounds"] == 25
    print("crash rounds:", stats)
