"""Soak: 8 writer and 16 reader clients over HTTP (loopback) against one server for a while.

Zero failed requests; the final state equals the writers' model; latency percentiles are
recorded; the server's memory stays within a stated bound after warm-up. The data is
kept bounded (writers only overwrite once they hold ``CAP`` points each), so memory
growth past warm-up would be a leak, not data. The default run is short; ``-m slow``
runs three minutes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.harness import ServerProcess, start_server
from tests.workload import DIM, ThreadModel, Writer, collection_body, count, model_state, reconcile, scroll_all

WRITERS = 8
READERS = 16
CAP = 1500
GROWTH_BOUND_MIB = 48
"""Resident memory may grow this much past warm-up (allocator slack, the in-memory arrays that
grow with each write's new internal ids until a vacuum, LMDB pages touched)."""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Reader(threading.Thread):
    """Queries, filtered queries, scrolls, counts and retrieves in a loop; records latency and failures."""

    def __init__(self, url: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.rng = np.random.default_rng(seed)
        self.latencies: dict[str, list[float]] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                kind, method, path, body = self._next()
                t0 = time.perf_counter()
                try:
                    r = http.request(method, path, json=body)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{kind}: {exc!r}")
                    continue
                self.latencies.setdefault(kind, []).append(time.perf_counter() - t0)
                if r.status_code != 200:
                    self.failures.append(f"{kind}: {r.status_code} {r.text[:200]}")

    def _next(self) -> tuple[str, str, str, Any]:
        q = self.rng.normal(size=DIM).tolist()
        roll = self.rng.random()
        if roll < 0.4:
            return "query", "POST", "/points/query", {"query": q, "limit": 10}
        if roll < 0.6:
            flt = {"must": [{"key": "g", "match": {"value": int(self.rng.integers(0, 5))}}]}
            return (
                "query_filtered",
                "POST",
                "/points/query",
                {"query": q, "limit": 10, "filter": flt, "with_payload": True},
            )
        if roll < 0.75:
            return "scroll", "POST", "/points/scroll", {"limit": 50, "with_payload": True}
        if roll < 0.9:
            return "count", "POST", "/points/count", {"filter": {"must": [{"key": "t", "match": {"value": 3}}]}}
        ids = [int(x) for x in self.rng.integers(0, 20_000, size=10)]
        return "retrieve", "POST", "/points", {"ids": ids, "with_payload": True}


def soak(tmp_path: Path, seconds: float) -> dict[str, Any]:
    srv: ServerProcess = start_server(tmp_path / "data")
    try:
        url = f"{srv.url}/collections/c"
        r = httpx.put(url, json=collection_body(vacuum_min_vector_number=1000))
        assert r.status_code == 200, r.text
        models = [ThreadModel(t, WRITERS, seed=7, cap=CAP) for t in range(WRITERS)]
        writers = [Writer(m, url) for m in models]
        stop = threading.Event()
        readers = [Reader(url, seed, stop) for seed in range(READERS)]
        for t in [*writers, *readers]:
            t.start()
        rss: list[tuple[float, float]] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            rss.append((time.monotonic() - t0, rss_mib(srv.proc.pid)))
            time.sleep(min(1.0, seconds / 20))
        stop.set()
        for w in writers:
            w.stop.set()
        for t in [*writers, *readers]:
            t.join(timeout=120)
            assert not t.is_alive()

        failures = [f for rd in readers for f in rd.failures] + [w.error for w in writers if w.error]
        assert not failures, failures[:5]
        with httpx.Client(base_url=url, timeout=60) as http:
            stored = scroll_all(http)
            assert reconcile(stored, writers) == 0  # every request was answered: nothing is in doubt
            assert count(http) == len(model_state(models))

        warm = [m for t, m in rss if t >= seconds * 0.3]
        growth = max(warm) - warm[0]
        latencies: dict[str, list[float]] = {"write": [x for w in writers for x in w.latencies]}
        for rd in readers:
            for kind, xs in rd.latencies.items():
                latencies.setdefault(kind, []).extend(xs)
        requests = sum(len(xs) for xs in latencies.values())
        report = {
            "seconds": seconds,
            "requests": requests,
            "failed": 0,
            "points": len(stored),
            "rss_mib_after_warmup": round(warm[0], 1),
            "rss_growth_mib": round(growth, 1),
            "ms": {
                k: {
                    "p50": round(1e3 * float(np.percentile(xs, 50)), 2),
                    "p99": round(1e3 * float(np.percentile(xs, 99)), 2),
                    "n": len(xs),
                }
                for k, xs in latencies.items()
            },
        }
        assert growth <= GROWTH_BOUND_MIB, report
        assert "Traceback" not in srv.log.read_text()
        return report
    finally:
        srv.stop()


def test_soak_short(tmp_path: Path) -> None:
    report = soak(tmp_path, seconds=8)
    assert report["requests"] > 200, report


@pytest.mark.slow
def test_soak(tmp_path: Path) -> None:
    report = soak(tmp_path, seconds=180)
    print("soak:", report)
