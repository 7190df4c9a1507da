"""Every registered index kind implements the one protocol, and saves and loads back what it holds.

The planner, the optimizer and the backup only ever talk to a kind through
:mod:`vecdb.index.base`; these tests hold each kind (flat, hnsw, ivf_pq) to it,
through the real checkpoint format of :mod:`vecdb.engine.checkpoints`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecdb.engine.checkpoints import checkpoint_files, load_checkpoint, manifest_key, write_checkpoint
from vecdb.engine.planner import AnnState
from vecdb.index.base import DenseIndex, Probe, kind_for_manifest, kind_of, kinds
from vecdb.index.distance import metric_of, normalise
from vecdb.index.flat import exact_search
from vecdb.models.collections import Distance

DIM = 16
N = 3000
PARAMS = {"m": 8, "ef_construct": 64, "nlist": 8, "pq_m": 8, "pq_bits": 8}
"""The collection's index parameters as the optimizer hands them over (each kind reads its own)."""


class Knobs:
    """A query's search parameters (the planner's SearchKnobs has these fields)."""

    hnsw_ef = 64
    ef_default = 64
    nprobe = 8
    oversampling = None
    rescore = True


def _rows(distance: Distance, n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, DIM)).astype(np.float32) * 4
    rows = (centers[rng.integers(0, 8, n)] + rng.normal(size=(n, DIM))).astype(np.float32)
    rows -= rows.mean(axis=0)  # centred: one-bit codes (hnsw_bq) tell points apart by their signs
    return normalise(rows) if metric_of(distance).normalised else rows


def _cases() -> list[tuple[str, Distance]]:
    return [(name, d) for name, kind in sorted(kinds().items()) for d in Distance if kind.supports(d)]


def test_builtin_kinds_are_registered_and_looked_up_by_name_and_manifest() -> None:
    assert {"flat", "hnsw", "ivf_pq"} <= set(kinds())
    for name, kind in kinds().items():
        assert kind_of(name) is kind and kind.kind == name
    assert kind_for_manifest({"format": 1, "m": 16}) is kind_of("hnsw")  # manifests from before kinds had names
    assert kind_for_manifest({"kind": "ivf_pq"}) is kind_of("ivf_pq")
    with pytest.raises(ValueError, match="unknown index kind"):
        kind_of("annoy")
    assert not kind_of("flat").ann and kind_of("hnsw").ann and kind_of("ivf_pq").ann
    assert not kind_of("hnsw").supports(Distance.MANHATTAN) and kind_of("flat").supports(Distance.MANHATTAN)


@pytest.mark.parametrize(("name", "distance"), _cases())
def test_kind_satisfies_the_protocol_and_round_trips(tmp_path: Path, name: str, distance: Distance) -> None:
    kind = kind_of(name)
    rows = _rows(distance)
    first, rest = np.arange(0, 2000), np.arange(2000, N)
    index = kind.build(distance, PARAMS, rows, first, population=np.arange(N), device="cpu")
    assert isinstance(index, DenseIndex) and type(index) is kind
    for attr, typ in (
        ("kind", str),
        ("ann", bool),
        ("quantized", bool),
        ("allows_by_position", bool),
        ("min_points", int),
        ("breadth_name", str),
        ("search_stage", str),
        ("file_suffix", str),
        ("SIDE_FILES", tuple),
    ):
        assert isinstance(getattr(kind, attr), typ), attr
    assert index.ntotal == len(first)
    np.testing.assert_array_equal(index.labels, first)

    grown = index.grown(rest, rows[rest])
    assert index.ntotal == len(first) and grown.ntotal == N  # the published index is left as it was
    np.testing.assert_array_equal(grown.labels, np.arange(N))
    with pytest.raises(ValueError, match="ascending"):
        grown.grown(np.array([5]), rows[5:6])
    assert not grown.outdated(PARAMS, N)
    assert grown.memory_bytes() > 0 and grown.describe()

    probe = grown.probe(10, Knobs(), 1.0)
    assert isinstance(probe, Probe) and 1 <= probe.breadth <= probe.max_breadth and probe.fetch >= 10
    queries = rows[[7, 2500, 2999]]
    raw, ids = grown.search(queries, probe.fetch, probe.breadth, None, "cpu")
    assert raw.shape == ids.shape == (3, probe.fetch)
    nearest = exact_search(rows, queries, 1, distance)[1][:, 0]
    if (
        name != "hnsw_bq"
    ):  # (16 sign bits leave thousands of equal codes here; tests/engine/test_binary_quantization.py)
        assert all(nearest[i] in ids[i] for i in range(3))  # the true nearest is among the candidates

    # an allow-list, in the index's own id space
    allowed_iids = np.zeros(N, dtype=bool)
    allowed_iids[::3] = True
    mask = allowed_iids[grown.labels] if grown.allows_by_position else allowed_iids
    _, ids = grown.search(queries, 10, probe.max_breadth, mask, "cpu")
    assert len(ids[ids >= 0]) and (ids[ids >= 0] % 3 == 0).all()

    # raw scores map to the exact ones (a kind storing the float32 rows ranks its hits by them)
    if not grown.quantized:
        raw, ids = grown.search(queries, 5, probe.max_breadth, None, "cpu")
        from_raw = metric_of(distance).from_raw
        got = raw if from_raw is None else from_raw(raw)
        want, want_ids = exact_search(rows, queries, 5, distance)
        np.testing.assert_array_equal(ids[:, 0], want_ids[:, 0])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # save and load, alone and as a checkpoint
    path = tmp_path / f"alone{kind.file_suffix}"
    grown.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(path.name + s for s in ("", *kind.SIDE_FILES))
    loaded = kind.load(path, grown.manifest())
    assert type(loaded) is kind and loaded.ntotal == grown.ntotal
    np.testing.assert_array_equal(loaded.labels, grown.labels)
    a, b = grown.search(queries, 10, probe.breadth, None, "cpu"), loaded.search(queries, 10, probe.breadth, None, "cpu")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    assert kind_for_manifest(grown.manifest()) is kind

    folder = tmp_path / "index"
    folder.mkdir()
    meta: dict[str, Any] = {}
    name_ = write_checkpoint(folder, 3, AnnState(grown, N), meta.__setitem__)["file"]
    manifest = meta[manifest_key(3)]
    assert manifest["file"] == name_ and name_.startswith("space3.") and name_.endswith(kind.file_suffix)
    assert manifest["covered"] == N and manifest["ntotal"] == N
    assert sorted(p.name for p in folder.iterdir()) == sorted(checkpoint_files(manifest))
    state = load_checkpoint(folder, manifest, N)
    assert state is not None and type(state.index) is kind and state.covered == N
    np.testing.assert_array_equal(state.index.search(queries, 10, probe.breadth, None, "cpu")[1], a[1])
    assert load_checkpoint(folder, {**manifest, "format": 99}, N) is None  # a format it does not know: rebuilt
    assert load_checkpoint(folder, manifest, N - 1) is None  # covers more than the collection holds


def test_manifests_keep_the_stored_shape() -> None:
    """The manifests in LMDB are those written before kinds were registered: HNSW's names no kind."""
    rows = _rows(Distance.EUCLID)
    labels = np.arange(N)
    hnsw = kind_of("hnsw").build(Distance.EUCLID, PARAMS, rows, labels)
    assert hnsw.manifest() == {"format": 1, "m": 8, "ef_construct": 64}
    ivf = kind_of("ivf_pq").build(Distance.EUCLID, PARAMS, rows, labels)
    assert ivf.manifest() == {"kind": "ivf_pq", "format": 1, "nlist": 8, "pq_m": 8}
    assert kind_of("hnsw").SIDE_FILES == (".labels.npy",) and kind_of("ivf_pq").SIDE_FILES == (".json",)
    assert checkpoint_files({"file": "space0.1.hnsw"}) == ["space0.1.hnsw", "space0.1.hnsw.labels.npy"]
    assert checkpoint_files({"kind": "ivf_pq", "file": "space0.1.ivfpq"}) == ["space0.1.ivfpq", "space0.1.ivfpq.json"]
    assert checkpoint_files({"kind": "later", "file": "space0.1.x"}) == ["space0.1.x"]
