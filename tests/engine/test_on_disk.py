"""Spaces with ``on_disk`` vectors: rows in a memory-mapped file, the same answers as in memory."""

from __future__ import annotations

import numpy as np
import pytest

import vecdb
from tests.brute import reference_top
from tests.helpers import inspection
from vecdb.errors import Unsupported


def _data(n: int = 5000, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _fill(c, name: str, base: np.ndarray, **vector_params) -> None:
    c.create_collection(
        name,
        {"size": base.shape[1], "distance": "Euclid", **vector_params},
        optimizers_config={"indexing_threshold": 0},
    )
    for lo in range(0, len(base), 700):  # past the first 1024-row capacity several times
        c.upsert(name, {"ids": list(range(lo, min(lo + 700, len(base)))), "vectors": base[lo : lo + 700]})


def test_on_disk_rows_are_memory_mapped_and_answer_exactly(tmp_path):
    base = _data()
    queries = _data(5, seed=1)
    with vecdb.Client(path=tmp_path / "d") as c:
        _fill(c, "disk", base, on_disk=True)
        _fill(c, "ram", base)
        assert inspection(c, "disk").on_disk_rows == {0: True}  # a view of the file's mapping
        assert inspection(c, "ram").on_disk_rows == {0: False}
        assert (tmp_path / "d" / "collections" / "disk" / "vectors" / "space0.f32").stat().st_size >= 5000 * 16 * 4
        c.delete("disk", [3, 4])
        c.delete("ram", [3, 4])
        alive = np.ones(5000, dtype=bool)
        alive[[3, 4]] = False
        for q in queries:
            want = [i for i, _ in reference_top(base, list(range(5000)), q, "Euclid", 10, alive)]
            assert [p.id for p in c.query_points("disk", query=q, limit=10).points] == want
            assert [p.id for p in c.query_points("ram", query=q, limit=10).points] == want
        assert c.get_collection("disk").config.params.vectors["on_disk"] is True
    with vecdb.Client(path=tmp_path / "d") as c:  # the file is rebuilt from LMDB on open
        for q in queries:
            want = [i for i, _ in reference_top(base, list(range(5000)), q, "Euclid", 10, alive)]
            assert [p.id for p in c.query_points("disk", query=q, limit=10).points] == want
        got = c.retrieve("disk", [4999], with_vectors=True)[0].vector
        np.testing.assert_allclose(got, base[4999])


def test_ivf_pq_keeps_vectors_on_disk_unless_told_otherwise(tmp_path):
    with vecdb.Client(path=tmp_path / "d") as c:
        c.create_collection("a", {"size": 8, "distance": "Dot"}, index={"type": "ivf_pq"})
        c.create_collection("b", {"size": 8, "distance": "Dot", "on_disk": False}, index={"type": "ivf_pq"})
        c.create_collection("c", {"size": 8, "distance": "Dot"}, quantization_config={"product": {"compression": "x4"}})
        c.create_collection("h", {"size": 8, "distance": "Dot"})
        mapped = {name: inspection(c, name).on_disk_rows[0] for name in "abch"}  # rows in a file or in memory
        assert mapped == {"a": True, "b": False, "c": True, "h": False}


def test_moving_vectors_after_creation_is_refused(tmp_path):
    with vecdb.Client(path=tmp_path / "d") as c:
        c.create_collection("m", {"size": 8, "distance": "Dot"})
        with pytest.raises(Unsupported, match="on_disk"):
            c.update_collection("m", vectors_config={"": {"on_disk": True}})
