"""An open builds the payload indexes in the background: searches without a filter go on at once,
while filters and writes' index updates wait for the build, and every answer after it is exact.

The build is held on an event once it holds its snapshot (``PayloadIndex.add_fields`` wrapped), so
what waits and what does not is checked without racing the clock, and writes land after the
snapshot: their index updates must wait for the build, or they would be lost.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import vecdb
from tests.helpers import clustered
from vecdb.filtering.payload_index import PayloadIndex

N = 3000


def _fill(path):
    base = clustered(N, 8, seed=11)
    with vecdb.Client(path=path) as c:
        c.create_collection("c", {"size": 8, "distance": "Dot"})
        c.create_payload_index("c", "g", "integer")
        payloads = [{"g": i % 10} for i in range(N)]
        c.upsert("c", {"ids": list(range(N)), "vectors": base, "payloads": payloads})
    return base


@pytest.fixture
def held(monkeypatch):
    """The open's payload-index build waits for ``release`` once its read transaction is open (set
    ``release`` to let it run): writes meanwhile commit after the snapshot it indexes."""
    release = threading.Event()
    started = threading.Event()
    real = PayloadIndex.add_fields

    def add_fields(self, specs, chunks, opening=False):
        if opening:
            started.set()
            assert release.wait(30)
        return real(self, specs, chunks, opening)

    monkeypatch.setattr(PayloadIndex, "add_fields", add_fields)
    return started, release


def _in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # (reported by the caller)
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_filters_and_index_updates_wait_for_the_build_searches_do_not(tmp_path, held):
    started, release = held
    base = _fill(tmp_path / "d")
    c = vecdb.Client(path=tmp_path / "d")
    try:
        assert started.wait(10)
        # no filter: answered while the build is held
        hits = c.query_points("c", query=base[5], limit=3, with_payload=True).points
        assert len(hits) == 3 and all("g" in p.payload for p in hits)
        assert c.retrieve("c", [7])[0].payload == {"g": 7}

        flt = {"must": [{"key": "g", "match": {"value": 3}}]}
        counted, count_out = _in_thread(lambda: c.count("c", count_filter=flt, exact=True).count)
        # 3 and 13 leave g=3, 4 and 14 join it, a new point joins it
        write = _in_thread(lambda: c.set_payload("c", {"g": 99}, points=[3, 13]))
        join = _in_thread(lambda: c.set_payload("c", {"g": 3}, points=[4, 14]))
        new = _in_thread(lambda: c.upsert("c", [{"id": N + 1, "vector": base[0].tolist(), "payload": {"g": 3}}]))
        time.sleep(0.3)
        assert counted.is_alive() and write[0].is_alive() and join[0].is_alive() and new[0].is_alive()
        release.set()
        for thread, out in (
            (counted, count_out),
            (write[0], write[1]),
            (join[0], join[1]),
            (new[0], new[1]),
        ):
            thread.join(30)
            assert "error" not in out, out.get("error")
        assert N // 10 - 2 <= count_out["value"] <= N // 10 + 3  # after the build; any of the writes before it
        want = {i for i in range(N) if i % 10 == 3} - {3, 13} | {4, 14, N + 1}
        got = c.scroll("c", scroll_filter=flt, limit=10_000)[0]
        assert {p.id for p in got} == want
        assert c.count("c", count_filter=flt, exact=True).count == len(want)
        near = c.query_points("c", query=base[4], query_filter=flt, limit=len(want) + 5).points
        assert {p.id for p in near} == want
    finally:
        release.set()
        c.close()


def test_close_during_the_build_stops_it_and_the_next_open_rebuilds(tmp_path, held):
    started, release = held
    _fill(tmp_path / "d")
    c = vecdb.Client(path=tmp_path / "d")
    assert started.wait(10)
    closing = _in_thread(c.close)
    time.sleep(0.1)
    release.set()  # the build starts, sees the close, stops between chunks
    closing[0].join(30)
    assert not closing[0].is_alive() and "error" not in closing[1]
    with vecdb.Client(path=tmp_path / "d") as again:
        flt = {"must": [{"key": "g", "range": {"lt": 2}}]}
        assert again.count("c", count_filter=flt, exact=True).count == N // 5
        got = again.scroll("c", scroll_filter=flt, limit=10)[0]
        assert [p.id for p in got] == [i for i in range(N) if i % 10 < 2][:10]


def test_readiness_waits_for_the_payload_indexes(tmp_path, held):
    started, release = held
    _fill(tmp_path / "d")
    c = vecdb.Client(path=tmp_path / "d")
    try:
        assert started.wait(10)
        coll = c.service.db.get("c")
        assert not coll.inspect().index_loaded
        release.set()
        deadline = time.monotonic() + 10
        while not coll.inspect().index_loaded:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert np.isfinite(c.query_points("c", query=np.ones(8, np.float32), limit=1).points[0].score)
    finally:
        release.set()
        c.close()
