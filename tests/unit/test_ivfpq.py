"""Product quantizer and IVF-PQ index: codes, both search paths (faiss and array module), recall, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from vecdb.errors import Corruption, InvalidInput
from vecdb.index.device import gpu_available
from vecdb.index.ivfpq import IvfPqIndex, IvfPqShape
from vecdb.index.pq import ProductQuantizer
from vecdb.models.collections import Distance


def _clustered(n: int, d: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d)).astype(np.float32)
    which = rng.integers(clusters, size=n)
    return (centers[which] + rng.normal(size=(n, d)).astype(np.float32) * 0.4).astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _truth(base: np.ndarray, queries: np.ndarray, distance: Distance, k: int, allowed=None) -> np.ndarray:
    if distance is Distance.EUCLID:
        score = ((queries[:, None, :] - base[None]) ** 2).sum(axis=2)
    else:
        score = -(queries @ base.T)
    if allowed is not None:
        score = np.where(allowed[None, :], score, np.inf)
    return np.argsort(score, axis=1, kind="stable")[:, :k]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def data():
    base = _clustered(6000, 32, seed=1)
    queries = _clustered(40, 32, seed=2)
    return base, queries


def test_pq_codes_reconstruct_better_than_the_mean():
    x = _clustered(4000, 16, seed=3)
    pq = ProductQuantizer.train(x, 4, 8, seed=0, device="cpu")
    assert pq.codebooks.shape == (4, 256, 4)
    codes = pq.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (4000, 4)
    err = ((pq.decode(codes) - x) ** 2).sum(axis=1).mean()
    baseline = ((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert err < 0.1 * baseline
    # each code is the nearest codebook entry of its sub-vector, by faiss (CPU) and by the array code (GPU's)
    sub = x[:, 4:8]
    nearest = ((sub[:, None, :] - pq.codebooks[1][None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (codes[:, 1] == nearest).mean() > 0.999
    assert (pq.encode_arrays(x) == codes).mean() > 0.999


@pytest.mark.parametrize("distance", [Distance.EUCLID, Distance.COSINE, Distance.DOT])
def test_recall_with_rescoring_and_both_paths_agree(data, distance):
    base, queries = data
    if distance is Distance.COSINE:
        base, queries = _normalise(base), _normalise(queries)
    index = IvfPqIndex.train(base, distance, IvfPqShape(nlist=32, pq_m=8), seed=0, device="cpu")
    index = index.grown(np.arange(len(base)), base)
    assert index.ntotal == len(base)
    k = 10
    scores, ids = index.search(queries, 100, nprobe=16)
    # exact re-ranking of the 100 candidates from the float32 vectors
    truth = _truth(base, queries, distance, k)
    reranked = []
    for q, cand in zip(queries, ids, strict=True):
        cand = cand[cand >= 0]
        exact = ((base[cand] - q) ** 2).sum(axis=1) if distance is Distance.EUCLID else -(base[cand] @ q)
        reranked.append(cand[np.argsort(exact, kind="stable")[:k]])
    assert _recall(np.array(reranked), truth) >= 0.95
    assert _recall(ids[:, :k], truth) >= 0.5  # codes alone, no re-ranking
    # the array-module path (what CuPy runs) scans the same codes: same scores
    s2, i2 = index.search_arrays(queries, 100, nprobe=16)
    np.testing.assert_allclose(np.sort(s2, axis=1), np.sort(scores, axis=1), rtol=1e-3, atol=1e-3)
    assert _recall(i2[:, :k], ids[:, :k]) >= 0.97


def test_allow_list_is_respected_on_both_paths(data):
    base, queries = data
    index = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=16, pq_m=8), seed=0, device="cpu")
    index = index.grown(np.arange(len(base)), base)
    allowed = np.zeros(len(base), dtype=bool)
    allowed[::7] = True
    for _, ids in (index.search(queries, 20, 16, allowed), index.search_arrays(queries, 20, 16, allowed)):
        found = ids[ids >= 0]
        assert len(found) == 20 * len(queries)
        assert allowed[found].all()


def test_growth_keeps_the_published_index_unchanged(data):
    base, queries = data
    empty = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=16, pq_m=4), seed=0, device="cpu")
    first = empty.grown(np.arange(3000), base[:3000])
    second = first.grown(np.arange(3000, 6000), base[3000:])
    assert (empty.ntotal, first.ntotal, second.ntotal) == (0, 3000, 6000)
    assert empty.faiss_index.ntotal == 0 and first.faiss_index.ntotal == 3000
    _, ids = first.search(queries, 10, 16)
    assert ids.max() < 3000
    _, ids2 = second.search(queries, 10, 16)
    assert ids2.max() >= 3000


def test_labels_are_internal_ids(data):
    base, queries = data
    labels = np.arange(len(base)) * 3 + 11
    index = IvfPqIndex.train(base, Distance.DOT, IvfPqShape(nlist=8, pq_m=8), seed=0, device="cpu")
    index = index.grown(labels, base)
    _, ids = index.search(queries, 5, 8)
    assert set(ids.ravel().tolist()) <= set(labels.tolist())


def test_save_load_round_trip(tmp_path, data):
    base, queries = data
    index = IvfPqIndex.train(base, Distance.COSINE, IvfPqShape(nlist=16, pq_m=8), seed=0, device="cpu")
    index = index.grown(np.arange(len(base)), _normalise(base))
    path = tmp_path / "space0.ivfpq"
    index.save(path)
    loaded = IvfPqIndex.load(path)
    q = _normalise(queries)
    a, b = index.search(q, 10, 4), loaded.search(q, 10, 4)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])
    path.write_bytes(b"garbage")
    with pytest.raises(Corruption):
        IvfPqIndex.load(path)


def test_training_is_seeded(data):
    base, _ = data
    a = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=8, pq_m=4), seed=5, device="cpu")
    b = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=8, pq_m=4), seed=5, device="cpu")
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.pq.codebooks, b.pq.codebooks)


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        (IvfPqShape(nlist=8, pq_m=5), "pq_m"),
        (IvfPqShape(nlist=8, pq_m=4, pq_bits=4), "pq_bits"),
        (IvfPqShape(nlist=0, pq_m=4), "nlist"),
        (IvfPqShape(nlist=100_000, pq_m=4), "nlist"),
    ],
)
def test_bad_shapes_name_the_field(data, shape, field):
    base, _ = data
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        IvfPqIndex.train(base, Distance.EUCLID, shape, device="cpu")


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and an NVIDIA GPU")
def test_gpu_training_encoding_and_search_match_the_cpu(data):
    import cupy

    base, queries = data
    gpu = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=16, pq_m=8), seed=0, device="cuda")
    cpu = IvfPqIndex.train(base, Distance.EUCLID, IvfPqShape(nlist=16, pq_m=8), seed=0, device="cpu")
    np.testing.assert_allclose(gpu.centroids, cpu.centroids, atol=1e-2)
    gpu = gpu.grown(np.arange(len(base)), base)
    codes_gpu = cupy.asnumpy(gpu.pq.to(cupy).encode(cupy.asarray(base[:500])))
    assert (codes_gpu == gpu.pq.encode(base[:500])).mean() > 0.99
    s_cpu, i_cpu = gpu.search(queries, 20, 8)
    s_gpu, i_gpu = gpu.search(queries, 20, 8, device="cuda")
    np.testing.assert_allclose(np.sort(s_gpu, axis=1), np.sort(s_cpu, axis=1), rtol=1e-3, atol=1e-3)
    assert _recall(i_gpu[:, :10], i_cpu[:, :10]) >= 0.97
