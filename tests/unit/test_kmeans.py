"""vecdb's K-Means against a plain-NumPy reference, on both CPU routes (compiled kernels and array-module code)."""

from __future__ import annotations

import numpy as np
import pytest

from vecdb.errors import InvalidInput, Unsupported
from vecdb.index import device as device_mod
from vecdb.index import kmeans as kmeans_mod
from vecdb.index.kmeans import assign_nearest, kmeans


def _blobs(n: int, d: int, centers: int, seed: int = 0, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d)).astype(np.float32) * 4
    which = rng.integers(centers, size=n)
    return (c[which] + rng.normal(size=(n, d)).astype(np.float32) * spread).astype(np.float32), c


def _reference_assign(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((x[:, None, :].astype(np.float64) - c[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1), d2.min(axis=1)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_result_is_a_lloyd_fixed_point_with_consistent_labels_and_inertia(compiled, init):
    x, _ = _blobs(3000, 8, 6)
    res = kmeans(x, 6, niter=100, tol=0.0, init=init, seed=3, device="cpu", compiled=compiled)
    assert res.centroids.shape == (6, 8) and res.centroids.dtype == np.float32
    assert res.labels.shape == (3000,) and res.labels.dtype == np.int64
    labels, d2 = _reference_assign(x, res.centroids)
    np.testing.assert_array_equal(res.labels, labels)
    assert res.inertia == pytest.approx(float(d2.sum()), rel=1e-4)
    # converged: every centre is the mean of its points
    for j in range(6):
        np.testing.assert_allclose(res.centroids[j], x[labels == j].mean(axis=0), atol=1e-4)
    assert res.n_iter < 100


def test_finds_well_separated_clusters():
    x, centers = _blobs(5000, 16, 10, seed=1, spread=0.1)
    res = kmeans(x, 10, seed=0, device="cpu")
    # every true centre has a found centroid next to it
    gaps = np.sqrt(((centers[:, None, :] - res.centroids[None]) ** 2).sum(axis=2)).min(axis=1)
    assert gaps.max() < 0.1


def test_compiled_and_array_paths_agree():
    x, _ = _blobs(4000, 32, 16, seed=2)
    a = kmeans(x, 16, niter=20, seed=5, device="cpu", compiled=True)
    b = kmeans(x, 16, niter=20, seed=5, device="cpu", compiled=False)
    np.testing.assert_allclose(a.centroids, b.centroids, atol=1e-3)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-4)


def test_same_seed_same_result_and_other_seed_other_start():
    x, _ = _blobs(2000, 4, 30, seed=3, spread=1.0)
    a = kmeans(x, 30, niter=3, seed=11, device="cpu")
    b = kmeans(x, 30, niter=3, seed=11, device="cpu")
    c = kmeans(x, 30, niter=3, seed=12, device="cpu")
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert not np.array_equal(a.centroids, c.centroids)


def test_kmeans_plus_plus_beats_random_init_on_average():
    x, _ = _blobs(3000, 8, 40, seed=4, spread=0.2)
    pp = np.mean([kmeans(x, 40, niter=1, init="k-means++", seed=s, device="cpu").inertia for s in range(4)])
    rnd = np.mean([kmeans(x, 40, niter=1, init="random", seed=s, device="cpu").inertia for s in range(4)])
    assert pp < rnd


def test_tolerance_stops_early_and_zero_tolerance_runs_to_label_stability():
    x, _ = _blobs(4000, 8, 50, seed=5, spread=1.5)
    loose = kmeans(x, 50, niter=200, tol=1e-1, init="random", seed=0, device="cpu")
    tight = kmeans(x, 50, niter=200, tol=0.0, init="random", seed=0, device="cpu")
    assert loose.n_iter < tight.n_iter
    assert tight.inertia <= loose.inertia * (1 + 1e-6)


def test_empty_clusters_are_reseeded():
    # Four exact points repeated: random starts often pick the same point twice, and the tie leaves a
    # cluster empty. Re-seeding it at the farthest point must still find all four groups.
    base = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    x = np.repeat(base, 50, axis=0)
    for compiled in (True, False):
        for seed in range(10):
            res = kmeans(x, 4, niter=50, init="random", seed=seed, device="cpu", compiled=compiled)
            assert len(np.unique(res.labels)) == 4, seed
            assert res.inertia == pytest.approx(0.0, abs=1e-6)


def test_k_equal_n_and_duplicate_points():
    x = np.ones((6, 3), dtype=np.float32)
    res = kmeans(x, 6, seed=0, device="cpu")
    assert res.inertia == pytest.approx(0.0, abs=1e-6)
    assert res.centroids.shape == (6, 3)


def test_assign_nearest_matches_reference():
    x, _ = _blobs(1000, 12, 7, seed=6)
    c = x[:7].copy()
    labels, d2 = assign_nearest(x, c)
    ref_l, ref_d = _reference_assign(x, c)
    np.testing.assert_array_equal(labels, ref_l)
    np.testing.assert_allclose(d2, ref_d, rtol=1e-4, atol=1e-3)


def test_blas_route_step_matches_reference_across_workers_and_blocks():
    """The BLAS route's step (row blocks shared by worker threads, one compiled pass each) gives every
    row its nearest centre and the exact per-centre sums and counts, over many blocks per worker."""
    from vecdb.index import cpu_kernels

    x, _ = _blobs(30000, 24, 40, seed=8, spread=1.0)
    c = x[:300].copy()  # k = 300 > _FEW_CENTRES, d = 24 >= _BLAS_MIN_DIM: blocks of ~14k rows
    labels, dist, sums, counts = cpu_kernels.lloyd_step(x, (x * x).sum(axis=1), c)
    d2 = np.stack([((x.astype(np.float64) - row) ** 2).sum(axis=1) for row in c.astype(np.float64)], axis=1)
    best = d2.argmin(axis=1)
    exact = d2[np.arange(len(x)), best]
    near_tie = np.sort(d2, axis=1)[:, 1] - exact < 1e-3 * (1 + exact)  # float32 products may pick the other
    assert np.all((labels == best) | near_tie)
    np.testing.assert_allclose(dist, d2[np.arange(len(x)), labels], rtol=1e-3, atol=1e-2)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=len(c)))
    ref_sums = np.zeros((len(c), x.shape[1]))
    np.add.at(ref_sums, labels, x.astype(np.float64))
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"x": np.zeros((0, 3), np.float32), "k": 1}, "x"),
        ({"x": np.zeros(5, np.float32), "k": 1}, "x"),
        ({"x": np.zeros((5, 3), np.float32), "k": 0}, "k"),
        ({"x": np.zeros((5, 3), np.float32), "k": 6}, "k"),
        ({"x": np.zeros((5, 3), np.float32), "k": 2, "niter": 0}, "niter"),
        ({"x": np.zeros((5, 3), np.float32), "k": 2, "tol": -1.0}, "tol"),
        ({"x": np.zeros((5, 3), np.float32), "k": 2, "init": "kmeans||"}, "init"),
        ({"x": np.full((5, 3), np.nan, np.float32), "k": 2}, "x"),
        ({"x": np.zeros((5, 3), np.float32), "k": 2, "device": "tpu"}, "device"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, field):
    x = kwargs.pop("x")
    k = kwargs.pop("k")
    with pytest.raises(InvalidInput, match=f"^{field}:"):
        kmeans(x, k, **kwargs)


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(device_mod, "_cupy", lambda: None)
    with pytest.raises(Unsupported, match="cuda.*CuPy"):
        kmeans(np.zeros((5, 3), np.float32), 2, device="cuda")
    assert kmeans(np.eye(5, 3, dtype=np.float32), 2, device="auto").device == "cpu"


@pytest.mark.skipif(not device_mod.gpu_available(), reason="needs CuPy and an NVIDIA GPU")
def test_gpu_matches_cpu_within_float_tolerance():
    import cupy

    x, _ = _blobs(20000, 32, 64, seed=7)
    cpu = kmeans(x, 64, niter=10, seed=9, device="cpu", compiled=False)
    gpu = kmeans(cupy.asarray(x), 64, niter=10, seed=9, device="cuda")
    assert isinstance(gpu.centroids, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.centroids), cpu.centroids, atol=1e-3)
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-3)


def test_given_starting_centres_are_used_and_checked():
    x, centers = _blobs(2000, 5, 4, seed=8, spread=0.1)
    res = kmeans(x, 4, init=centers, niter=1, tol=0.0, device="cpu")
    # one Lloyd step from the true centres: each centroid is the mean of the points nearest that centre
    labels, _ = _reference_assign(x, centers)
    for j in range(4):
        np.testing.assert_allclose(res.centroids[j], x[labels == j].mean(axis=0), atol=1e-4)
    with pytest.raises(InvalidInput, match="^init:"):
        kmeans(x, 4, init=centers[:3])


@pytest.mark.parametrize(("d", "k"), [(2, 3), (8, 256), (3, 40), (64, 100)])
def test_compiled_routes_match_reference(d, k):
    """Each route (few centres, few dimensions, BLAS products) must give exact assignments and sums."""
    x, _ = _blobs(3000, d, 10, seed=9)
    c = x[np.random.default_rng(0).choice(3000, k, replace=False)]
    from vecdb.index import cpu_kernels

    labels, dist, sums, counts = cpu_kernels.lloyd_step(x, (x * x).sum(axis=1), c)
    ref_l, ref_d = _reference_assign(x, c)
    assert (labels == ref_l).mean() > 0.999  # float32 ties may differ in the last bit
    np.testing.assert_allclose(dist, ref_d, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=k))
    want = np.zeros((k, d))
    np.add.at(want, labels, x.astype(np.float64))
    np.testing.assert_allclose(sums, want, rtol=1e-9, atol=1e-6)


def test_warm_start_on_a_sample_ends_at_a_full_data_fixed_point():
    x, _ = _blobs(80_000, 4, 20, seed=10, spread=0.8)
    warm = kmeans(x, 20, niter=100, tol=0.0, seed=1, device="cpu")
    cold = kmeans(x, 20, niter=100, tol=0.0, seed=1, device="cpu", warm_start=False)
    assert warm.warm_iter > 0 and cold.warm_iter == 0
    labels, d2 = _reference_assign(x, warm.centroids)
    np.testing.assert_array_equal(warm.labels, labels)
    for j in range(20):
        np.testing.assert_allclose(warm.centroids[j], x[labels == j].mean(axis=0), atol=1e-4)
    assert warm.inertia <= cold.inertia * 1.001


# --- Hamerly's bounds (the CPU's BLAS shapes skip rows whose centre provably stays) ---------------


def _uniform(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, d)).astype(np.float32)


def _near_ties(x: np.ndarray, c: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows whose labelled centre is within float32 rounding of the nearest one (either is a right answer)."""
    d2 = np.stack([((x.astype(np.float64) - row) ** 2).sum(axis=1) for row in c.astype(np.float64)], axis=1)
    best = d2.min(axis=1)
    return d2[np.arange(len(x)), labels] - best <= 1e-5 * (1 + best)


@pytest.mark.parametrize(
    ("data", "k", "kwargs"),
    [
        ("clustered", 64, {}),
        ("clustered-128", 20, {"init": "random"}),
        ("uniform-16", 200, {"init": "random"}),
        ("uniform-128", 300, {"init": "random", "niter": 15}),
        ("clustered", 64, {"tol": 1e-2, "init": "random"}),  # stops on the centres' shift
        ("large", 16, {"init": "random"}),  # 70k rows: Lloyd on a warm-start sample first
    ],
)
def test_pruned_steps_match_full_products(monkeypatch, data, k, kwargs):
    """Pruned Lloyd (Hamerly's bounds) follows plain Lloyd's: same iterations, labels, centres, inertia."""
    x = {
        "clustered": lambda: _blobs(6000, 32, 40, seed=11, spread=1.5)[0],
        "clustered-128": lambda: _blobs(3000, 128, 25, seed=12, spread=2.0)[0],
        "uniform-16": lambda: _uniform(5000, 16, seed=13),
        "uniform-128": lambda: _uniform(3000, 128, seed=14),
        "large": lambda: _blobs(70_000, 16, 16, seed=15, spread=2.0)[0],
    }[data]()
    args = {"niter": 40, "tol": 0.0, "seed": 1, "device": "cpu", **kwargs}
    pruned = kmeans(x, k, **args)
    monkeypatch.setattr(kmeans_mod, "_PRUNE", False)
    full = kmeans(x, k, **args)
    assert (pruned.n_iter, pruned.warm_iter) == (full.n_iter, full.warm_iter)
    assert pruned.distance_rows < full.distance_rows  # rows were skipped
    np.testing.assert_allclose(pruned.centroids, full.centroids, atol=1e-4)
    assert np.all((pruned.labels == full.labels) | _near_ties(x, full.centroids, pruned.labels))
    assert pruned.inertia == pytest.approx(full.inertia, rel=1e-5)
    if kwargs.get("tol"):
        assert pruned.n_iter < args["niter"]


def test_bounded_steps_match_full_steps_under_any_centre_moves():
    """Step by step, under centre moves Lloyd would not make (big jumps, a centre landing on another,
    no move at all): every row gets its nearest centre (but for float ties), sums and counts exact."""
    from vecdb.index import cpu_kernels

    x, _ = _blobs(4000, 24, 12, seed=16, spread=1.0)
    sq = (x * x).sum(axis=1)
    rng = np.random.default_rng(17)
    c = x[rng.choice(len(x), 40, replace=False)].copy()
    steps = cpu_kernels.BoundedLloyd(x, sq)
    prev = steps.labels.copy()
    for t in range(12):
        changed, sums, counts = steps.assign(c)
        want_labels, _, want_sums, want_counts = cpu_kernels.lloyd_step(x, sq, c)
        assert np.all((steps.labels == want_labels) | _near_ties(x, c, steps.labels)), t
        np.testing.assert_array_equal(counts, np.bincount(steps.labels, minlength=len(c)))
        np.testing.assert_allclose(sums, want_sums, rtol=1e-9, atol=1e-6)  # (labels agree, so sums do)
        exact = ((x.astype(np.float64) - c[steps.labels].astype(np.float64)) ** 2).sum(axis=1)
        np.testing.assert_allclose(steps.distances(), exact, rtol=1e-6)
        assert changed == (t == 0 or not np.array_equal(steps.labels, prev))
        prev = steps.labels.copy()
        c = c.copy()
        if t % 4 == 1:
            c += rng.normal(size=c.shape).astype(np.float32) * 0.05  # small moves: most rows skipped
        elif t % 4 == 2:
            c[rng.integers(len(c))] = c[rng.integers(len(c))]  # a centre on top of another
        elif t % 4 == 3:
            c[: len(c) // 2] = x[rng.choice(len(x), len(c) // 2, replace=False)]  # half the centres jump
    assert steps.rows_computed < 12 * len(x)


def test_pruned_route_reseeds_empty_clusters():
    # 16 exact points in 32-d, repeated: random starts pick one point twice, leaving a cluster empty.
    base = np.random.default_rng(18).normal(size=(16, 32)).astype(np.float32) * 10
    x = np.repeat(base, 40, axis=0)
    for seed in range(6):
        res = kmeans(x, 16, niter=50, init="random", seed=seed, device="cpu")
        assert len(np.unique(res.labels)) == 16, seed
        assert res.inertia == pytest.approx(0.0, abs=1e-3)


def test_inertia_no_worse_than_scikit_learn_from_the_same_start():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    x, _ = _blobs(5000, 32, 50, seed=19, spread=2.0)
    init = x[np.random.default_rng(20).choice(len(x), 50, replace=False)]
    ours = kmeans(x, 50, niter=60, tol=0.0, init=init, device="cpu")
    theirs = sklearn_cluster.KMeans(50, init=init, n_init=1, max_iter=60, tol=0.0, algorithm="lloyd").fit(x)
    _, d2 = _reference_assign(x, theirs.cluster_centers_.astype(np.float32))
    assert ours.inertia <= float(d2.sum()) * (1 + 1e-5)
