"""A data directory written by the code of commit a40971b opens and answers as it did then.

``tests/fixtures/store_v1`` (HNSW, IVF-PQ and a named Dot space, payload indexes, deletes, an alias)
and the answers recorded beside it were made by ``tests/fixtures/make_store_v1.py`` before issue 14
moved the engine's modules: this test fails if a restructuring changes the on-disk format, loses
the saved indexes (they must load, not be rebuilt) or changes any result.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import vecdb

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    target = tmp_path / "store_v1"
    shutil.copytree(FIXTURES / "store_v1", target)  # never open the committed copy in place
    return target


def test_store_written_before_the_restructuring_answers_identically(store: Path, caplog) -> None:
    recorded = json.loads((FIXTURES / "store_v1_answers.json").read_text())
    caplog.set_level(logging.INFO)
    with vecdb.Client(path=store) as client:
        names = sorted(recorded["answers"])
        assert sorted(c.name for c in client.get_collections().collections) == names
        assert [a.alias_name for a in client.get_aliases()] == ["mem"]
        for name in names:
            deadline = time.monotonic() + 60
            while client.get_collection(name).status != "green":
                assert time.monotonic() < deadline, f"{name} never became green"
                time.sleep(0.05)
        messages = [r.getMessage() for r in caplog.records]
        assert sum("loaded graph" in m for m in messages) == len(names), messages
        assert not [
            m
            for m in messages
            if "built HNSW" in m or "built IVF" in m or "rebuilt" in m or "ignoring index checkpoint" in m
        ]
        flt = {"must": [{"key": "group", "match": {"value": "a"}}, {"key": "n", "range": {"gte": 100}}]}
        for name in names:
            want = recorded["answers"][name]
            rows = []
            for q in recorded["queries"][name]:
                for kw in ({}, {"query_filter": flt}, {"search_params": {"exact": True}}):
                    res = client.query_points(name, query=q, limit=10, with_payload=True, **kw).points
                    rows.append([[p.id, p.score, p.payload] for p in res])
            for got_row, want_row in zip(rows, want["query"], strict=True):
                assert [(i, p) for i, _, p in got_row] == [(i, p) for i, _, p in want_row]
                np.testing.assert_allclose([s for _, s, _ in got_row], [s for _, s, _ in want_row], rtol=1e-6)
            assert client.count(name, count_filter=flt).count == want["count"]
            assert [[p.id, p.payload] for p in client.scroll(name, limit=20, scroll_filter=flt)[0]] == want["scroll"]
            got = [[p.id, p.payload, p.vector] for p in client.retrieve(name, [1, 2, 3], with_vectors=True)]
            assert [g[:2] for g in got] == [w[:2] for w in want["retrieve"]]
            for g, w in zip(got, want["retrieve"], strict=True):
                gv, wv = (g[2], w[2]) if isinstance(w[2], list) else (g[2][""], w[2][""])
                np.testing.assert_allclose(gv, wv, rtol=1e-6)
            info = client.get_collection(name).model_dump(mode="json")
            assert info["config"]["params"].pop("sharding_method") is None  # (a field added since, for clusters)
            assert info == want["info"]
