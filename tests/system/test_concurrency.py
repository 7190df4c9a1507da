"""Concurrency over HTTP: many threads create, delete, write and read one collection at once.

Nothing may corrupt the collection or answer 5xx, and a reader must see every batch whole:
never part of one ``points/batch`` or upsert and part of the state before it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.harness import ServerProcess, start_server
from tests.workload import DIM, vector_for


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "data")
    yield srv
    srv.stop()


CLIENTS: list[httpx.Client] = []


def http_client(url: str) -> httpx.Client:
    """A client for one thread, closed by ``run_threads``."""
    http = httpx.Client(base_url=url, timeout=60)
    CLIENTS.append(http)
    return http


def run_threads(targets: list[Callable[[], None]], seconds: float) -> list[str]:
    """Run each target in a loop for ``seconds``; returns the failures they reported."""
    stop = threading.Event()
    failures: list[str] = []

    def loop(target: Callable[[], None]) -> None:
        while not stop.is_set():
            try:
                target()
            except AssertionError as exc:
                failures.append(str(exc))
                stop.set()
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                stop.set()

    threads = [threading.Thread(target=loop, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    while CLIENTS:
        CLIENTS.pop().close()
    return failures


def test_create_delete_and_write_one_collection_from_many_threads(own_server: ServerProcess, tmp_path: Path) -> None:
    url = own_server.url
    lock = threading.Lock()
    next_batch = iter(range(10**9))
    seen: Counter[tuple[str, int]] = Counter()
    body = {"vectors": {"size": DIM, "distance": "Euclid"}}

    def worker(seed: int) -> Callable[[], None]:
        rng = np.random.default_rng(seed)
        http = http_client(url)

        def step() -> None:
            roll = rng.random()
            if roll < 0.1:
                r = http.put("/collections/x", json=body)
                ok = {200, 409}
                what = "create"
            elif roll < 0.18:
                r = http.delete("/collections/x")
                ok, what = {200}, "delete"
            elif roll < 0.7:
                with lock:
                    b = next(next_batch)
                pts = [
                    {"id": b * 20 + i, "vector": vector_for(b * 20 + i, b).tolist(), "payload": {"b": b}}
                    for i in range(20)
                ]
                r = http.put("/collections/x/points", params={"wait": "true"}, json={"points": pts})
                ok, what = {200, 404}, "upsert"
            elif roll < 0.85:
                r = http.post("/collections/x/points/query", json={"query": [0.1] * DIM, "limit": 5})
                ok, what = {200, 404}, "query"
            else:
                r = http.post("/collections/x/points/scroll", json={"limit": 100})
                ok, what = {200, 404}, "scroll"
            with lock:
                seen[(what, r.status_code)] += 1
            assert r.status_code in ok, f"{what}: {r.status_code} {r.text[:300]}"

        return step

    failures = run_threads([worker(s) for s in range(8)], seconds=4.0)
    assert not failures, failures[:3]
    assert seen[("create", 200)] > 1 and seen[("delete", 200)] > 1 and seen[("upsert", 200)] > 1, seen

    def check_whole(http: httpx.Client) -> int:
        """Every stored upsert is all there: 20 points, each with its batch's vector."""
        if http.get("/collections/x").status_code == 404:
            return 0
        r = http.post("/collections/x/points/scroll", json={"limit": 10000, "with_vector": True})
        assert r.status_code == 200, r.text
        batches: Counter[int] = Counter()
        for p in r.json()["result"]["points"]:
            b = p["payload"]["b"]
            assert p["id"] // 20 == b
            np.testing.assert_array_equal(np.float32(p["vector"]), vector_for(p["id"], b))
            batches[b] += 1
        assert all(n == 20 for n in batches.values()), batches
        count = http.post("/collections/x/points/count", json={}).json()["result"]["count"]
        assert count == sum(batches.values())
        return count

    with httpx.Client(base_url=url, timeout=60) as http:
        before = check_whole(http)
    # the directory reopens to the same state, and the name can be dropped and created again
    own_server.stop()
    srv = start_server(own_server.path)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            assert check_whole(http) == before
            assert http.delete("/collections/x").status_code == 200
            assert http.put("/collections/x", json=body).status_code == 200
            assert check_whole(http) == 0
        assert sorted(p.name for p in (own_server.path / "collections").iterdir()) == ["x"]
    finally:
        srv.stop()


N = 60  # points each batch rewrites


def batch_body(b: int) -> dict[str, Any]:
    """Batch ``b``: ids 0..29 re-upserted (new vector and payload), 30..59 payload set in place,
    and the odd/even half of ids 100..159 swapped in for the other; every touched point says ``b``."""
    upserts = [{"id": i, "vector": vector_for(i, b).tolist(), "payload": {"b": b}} for i in range(30)]
    born = [100 + i for i in range(60) if i % 2 == b % 2]
    dying = [100 + i for i in range(60) if i % 2 != b % 2]
    upserts += [{"id": i, "vector": vector_for(i, b).tolist(), "payload": {"b": b}} for i in born]
    return {
        "operations": [
            {"upsert": {"points": upserts}},
            {"set_payload": {"payload": {"b": b}, "points": list(range(30, 60))}},
            {"delete": {"points": dying}},
        ]
    }


def first_state() -> dict[str, Any]:
    pts = [{"id": i, "vector": vector_for(i, 0).tolist(), "payload": {"b": 0}} for i in range(60)]
    pts += [{"id": 100 + i, "vector": vector_for(100 + i, 0).tolist(), "payload": {"b": 0}} for i in range(0, 60, 2)]
    return {"points": pts}


def check_one_batch(points: list[dict[str, Any]], whole: bool = True) -> int:
    """All points carry one stamp, and (``whole``) exactly the 90 points of that batch's state."""
    stamps = {p["payload"]["b"] for p in points}
    assert len(stamps) <= 1, f"a reader saw parts of batches {sorted(stamps)}"
    if not points:
        return -1
    b = stamps.pop()
    if whole:
        want = set(range(60)) | {100 + i for i in range(60) if i % 2 == b % 2}
        assert {p["id"] for p in points} == want, f"batch {b}: ids {sorted({p['id'] for p in points} ^ want)[:8]}"
    for p in points:
        if "vector" in p and p["vector"] is not None and (p["id"] < 30 or p["id"] >= 100):
            np.testing.assert_array_equal(np.float32(p["vector"]), vector_for(p["id"], b))
    return b


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "payload-index"])
def test_readers_never_see_half_a_batch(own_server: ServerProcess, indexed: bool) -> None:
    url = own_server.url
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.put("/collections/h", json={"vectors": {"size": DIM, "distance": "Euclid"}}).status_code == 200
        if indexed:
            r = http.put(
                "/collections/h/index", params={"wait": "true"}, json={"field_name": "b", "field_schema": "integer"}
            )
            assert r.status_code == 200, r.text
        assert http.put("/collections/h/points", params={"wait": "true"}, json=first_state()).status_code == 200
    counter = iter(range(1, 10**9))
    rng = np.random.default_rng(5)
    query = rng.normal(size=DIM).tolist()

    def writer() -> Callable[[], None]:
        http = http_client(url)

        def step() -> None:
            r = http.post("/collections/h/points/batch", params={"wait": "true"}, json=batch_body(next(counter)))
            assert r.status_code == 200, r.text

        return step

    def reader(kind: int) -> Callable[[], None]:
        http = http_client(url)

        def post(path: str, body: dict[str, Any]) -> Any:
            r = http.post(f"/collections/h/points/{path}".rstrip("/"), json=body)
            assert r.status_code == 200, r.text
            return r.json()["result"]

        def step() -> None:
            if kind == 0:
                check_one_batch(post("scroll", {"limit": 1000, "with_vector": True})["points"])
            elif kind == 1:
                check_one_batch(
                    post("query", {"query": query, "limit": 100, "with_payload": True, "with_vector": True})["points"]
                )
            elif kind == 2:
                b = check_one_batch(post("", {"ids": list(range(200)), "with_vector": True}), whole=True)
                n = post("count", {"filter": {"must": [{"key": "b", "match": {"value": b}}]}, "exact": True})["count"]
                assert n in (0, 90), f"count of batch {b}: {n}"
            else:
                b = check_one_batch(post("scroll", {"limit": 1, "with_vector": False})["points"], whole=False)
                flt = {"must": [{"key": "b", "match": {"value": b}}]}
                hits = post("query", {"query": query, "limit": 100, "filter": flt, "with_payload": True})["points"]
                assert len(hits) in (0, 90), f"filtered query of batch {b}: {len(hits)} hits"
                check_one_batch(hits, whole=bool(hits))

        return step

    failures = run_threads([writer(), *[reader(k % 4) for k in range(6)]], seconds=4.0)
    assert not failures, failures[:3]
    assert next(counter) > 10  # the writer kept going
