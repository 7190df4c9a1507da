"""K-Means (Lloyd's algorithm) for IVF coarse centroids and PQ codebooks, on NumPy or CuPy.

Why our own: the IVF-PQ index must train on the GPU as well as the CPU, and
give the same codebooks (within float tolerance) on both, from one seed. The
algorithm is therefore written once against an array module ``xp`` (NumPy or
CuPy, see :mod:`vecdb.index.device`). Random choices (initial centres, the
k-means++ trials) are drawn on the host from one NumPy generator, so both
devices start from the same centres.

Cost is in the assignment step, an ``n x k`` distance matrix per iteration.
On the CPU it runs in compiled loops (:mod:`vecdb.index.cpu_kernels`): one
fused pass per point for small problems, BLAS products with a fused arg-min
and accumulation for large ones. Elsewhere (and on the CPU when asked, which
is how the tests check the GPU's logic without a GPU) it is computed as
``|x|^2 - 2 x.c + |c|^2`` through the array module's matrix products, in
row blocks that bound the temporary matrix.

On the CPU's BLAS shapes (more than 8 centres, 16 dimensions or more) most of
those products are skipped, because after the first few iterations most points
keep their centre and it can be proven without computing their distances
(Hamerly's bounds, :class:`~vecdb.index.cpu_kernels.BoundedLloyd`). Each point
keeps an upper bound on the distance to its centre and a lower bound on the
distance to every other centre; when the centres move, the first grows by its
centre's shift and the second shrinks by the largest shift of another centre.
A point whose upper bound is at most its lower bound, or at most half the gap
from its centre to the nearest other centre, keeps its label; a point that
fails gets its exact distance to its centre (``d`` operations) and is tested
again; only the rest (at codebook scale, 100k x 128 and k=256: about 10-20% of
the points once Lloyd has roughly settled) are gathered into blocks for the
products and the arg-min, which reset their bounds. Sums and counts are
updated by the points that changed centre only. The bounds are widened by the
float32 products' worst-case rounding error, so the labels are those of plain
Lloyd's (what the full products give) but for rows within rounding of a tie;
the returned distances and inertia are computed from each point's coordinates
and its centre. This state lives for one run of :func:`_lloyd`; the array-module
route (the GPU's) computes every step in full.

Conventions follow scikit-learn's Lloyd so that results compare: ``tol`` is
relative to the data's mean per-feature variance and is checked against the
summed squared movement of the centres; an iteration that changes no label
stops the loop; the returned labels and inertia belong to the returned
centres; an empty cluster is re-seeded at the point farthest from its centre.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Optional, Union

import numpy as np

from vecdb.errors import InvalidInput
from vecdb.index.device import Device, array_module, module_of, resolve_device, to_numpy

log = logging.getLogger(__name__)

Init = Literal["k-means++", "random"]
_WARM_MIN_POINTS = 65536
"""Inputs of at least this many rows start Lloyd on a sample (see :func:`_warm_sample_size`)."""
_WARM_PER_CENTROID = 256
"""The warm-start sample holds ``max(256 k, n / 32)`` rows, and is used only when under a quarter of the data."""
_BLOCK_ELEMENTS = 1 << 24
"""Array-module route: one block's distance matrix holds at most this many floats (64 MiB)."""
_PRUNE = True
"""CPU compiled route, BLAS shapes: skip the products of rows whose centre provably stays (Hamerly's
bounds, :class:`~vecdb.index.cpu_kernels.BoundedLloyd`). False computes every row every step (the tests
compare the two)."""


@dataclass(frozen=True)
class KMeansResult:
    """What :func:`kmeans` found. Arrays live where the work ran: NumPy for ``cpu``, CuPy for ``cuda``."""

    centroids: Any  # float32 [k, d]
    labels: Any  # int64 [n]: index of each point's nearest centroid
    inertia: float  # sum of squared distances of the points to their centroids
    n_iter: int  # Lloyd iterations over all the points
    device: Device
    warm_iter: int = 0  # iterations on the warm-start sample before those (0: none was drawn)
    distance_rows: int = 0  # rows whose distances to all k centres were computed, all steps (plain Lloyd: n a step)


def kmeans(
    x: Any,
    k: int,
    *,
    niter: int = 25,
    tol: float = 1e-4,
    init: Union[Init, Any] = "k-means++",
    seed: int = 0,
    device: str = "auto",
    compiled: Optional[bool] = None,
    warm_start: bool = True,
) -> KMeansResult:
    """Cluster the rows of ``x`` (NumPy or CuPy, ``[n, d]``) into ``k`` groups.

    ``niter``: most Lloyd iterations; ``tol``: stop when the centres moved (sum
    of squared shifts) by at most ``tol`` times the mean per-feature variance
    (0 runs every iteration unless no label changes); ``init``: ``"k-means++"``
    (greedy, ``2 + log k`` trials per centre, as scikit-learn), ``"random"``
    (``k`` distinct rows) or an array of ``k`` starting centres; ``seed``: the
    same seed gives the same result on the same device. ``device``: ``cpu``,
    ``cuda`` or ``auto`` (the GPU when CuPy sees one). ``compiled``: on the
    CPU, use the compiled kernels (default) or the array-module code the GPU
    runs, on NumPy. ``warm_start``: inputs of 65,536 rows or more first run
    Lloyd on a seeded sample of ``max(256 k, n / 32)`` rows (when that is under
    a quarter of them), then on every row; ``niter`` bounds each phase, and the
    convergence test is always made on all the rows.
    """
    _check_args(x, k, niter, tol, init)
    dev = resolve_device(device)
    xp = array_module(dev)
    if dev == "cpu":
        data = np.ascontiguousarray(to_numpy(x), dtype=np.float32)
    else:
        data = xp.ascontiguousarray(xp.asarray(x, dtype=xp.float32))
    n, d = data.shape
    if not bool(xp.isfinite(data).all()):
        raise InvalidInput("x: contains NaN or infinite values")
    step = _compiled_step if dev == "cpu" and (compiled is None or compiled) else _ArrayStep(xp)
    sq = _squared_norms(xp, data)
    rng = np.random.default_rng(seed)
    if not isinstance(init, str):
        centroids = _given_centres(xp, init, k, d)
    elif init == "random":
        centroids = data[xp.asarray(np.sort(rng.choice(n, size=k, replace=False)))].copy()
    else:
        centroids = _kmeans_plus_plus(xp, data, sq, k, rng)
    tol_abs = float(tol) * _mean_variance(xp, data)

    warm_iter = 0
    rows_computed = 0
    m = _warm_sample_size(n, k) if warm_start else 0
    if m:
        # Most of Lloyd's moves happen far from the optimum, where a sample steers as well as every
        # point does: converge on the sample, then finish (and check convergence) on all the data.
        rows = xp.asarray(np.sort(rng.choice(n, size=m, replace=False)))
        sample = xp.ascontiguousarray(data[rows])
        warm = _steps(xp, step, sample, sq[rows], k)
        centroids, _, _, warm_iter = _lloyd(xp, warm, centroids, niter, tol_abs)
        rows_computed += warm.rows_computed
    steps = _steps(xp, step, data, sq, k)
    centroids, labels, dist, n_iter = _lloyd(xp, steps, centroids, niter, tol_abs)
    rows_computed += steps.rows_computed
    inertia = float(dist.astype(xp.float64).sum())
    log.debug("kmeans: n=%d d=%d k=%d on %s, %d+%d iterations, inertia %.6g", n, d, k, dev, warm_iter, n_iter, inertia)
    return KMeansResult(centroids, labels, inertia, n_iter, dev, warm_iter, rows_computed)


def _lloyd(xp: ModuleType, steps: Any, centroids: Any, niter: int, tol_abs: float) -> tuple[Any, Any, Any, int]:
    """Lloyd iterations from ``centroids``: (centres, their labels, squared distances, iterations).

    ``steps`` (:class:`_FullSteps` or :class:`~vecdb.index.cpu_kernels.BoundedLloyd`) assigns the
    rows ``x`` to given centres and remembers the result: ``assign`` returns whether any label changed
    and the per-centre sums and counts, ``labels`` and ``distances()`` are the last step's."""
    n_iter = 0
    for n_iter in range(1, niter + 1):
        changed, sums, counts = steps.assign(centroids)
        new_centroids, reseeded = _means(xp, steps, sums, counts)
        if not reseeded and not changed:
            # Nothing moved: the centres used for this step are the means of these labels already.
            return centroids, steps.labels, steps.distances(), n_iter
        shift = float(((new_centroids - centroids) ** 2).sum())
        centroids = new_centroids
        if shift <= tol_abs:
            break
    steps.assign(centroids)  # the labels and distances of the centres returned
    return centroids, steps.labels, steps.distances(), n_iter


def _steps(xp: ModuleType, step: Any, data: Any, sq: Any, k: int) -> Any:
    """The assignment state for one Lloyd run: bounded on the CPU's BLAS shapes, else every step in full."""
    if step is _compiled_step and _PRUNE:
        from vecdb.index import cpu_kernels

        if cpu_kernels.bounded_route(k, data.shape[1]):
            return cpu_kernels.BoundedLloyd(data, sq)
    return _FullSteps(step, data, sq)


class _FullSteps:
    """Every assignment step from scratch (array-module code, or the compiled kernels' cheap routes)."""

    def __init__(self, step: Any, x: Any, x_sq: Any) -> None:
        self.step = step
        self.x = x
        self.x_sq = x_sq
        self.labels: Any = None
        self.dist: Any = None
        self.rows_computed = 0

    def assign(self, centroids: Any) -> tuple[bool, Any, Any]:
        labels, self.dist, sums, counts = self.step(self.x, self.x_sq, centroids)
        changed = self.labels is None or not bool((labels == self.labels).all())
        self.labels = labels
        self.rows_computed += len(labels)
        return changed, sums, counts

    def distances(self) -> Any:
        return self.dist


def _warm_sample_size(n: int, k: int) -> int:
    """Rows of the warm-start sample, or 0 when the data is too small for one to pay."""
    if n < _WARM_MIN_POINTS:
        return 0
    m = max(_WARM_PER_CENTROID * k, n // 32)
    return m if m * 4 <= n else 0


def _squared_norms(xp: ModuleType, data: Any) -> Any:
    return np.einsum("ij,ij->i", data, data) if xp is np else (data * data).sum(axis=1)


def _mean_variance(xp: ModuleType, data: Any) -> float:
    if xp is np:
        from vecdb.index import cpu_kernels

        return cpu_kernels.mean_variance(data)
    return float(xp.var(data, axis=0, dtype=xp.float64).mean())


def assign_nearest(x: Any, centroids: Any) -> tuple[Any, Any]:
    """Nearest centroid of each row and its squared distance, on the rows' own array module."""
    xp = module_of(x)
    if xp is np:
        data = np.ascontiguousarray(x, dtype=np.float32)
        labels, dist, _, _ = _compiled_step(data, (data * data).sum(axis=1), centroids)
        return labels, dist
    labels, dist, _, _ = _ArrayStep(xp)(x, (x * x).sum(axis=1), centroids)
    return labels, dist


# --- the steps ---------------------------------------------------------------------------------


def _compiled_step(data: np.ndarray, sq: np.ndarray, centroids: np.ndarray) -> tuple[Any, Any, Any, Any]:
    from vecdb.index import cpu_kernels  # numba compiles on first use, not at import

    return cpu_kernels.lloyd_step(data, sq, centroids)


class _ArrayStep:
    """Assignment and cluster sums through the array module's matrix products (NumPy or CuPy)."""

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def __call__(self, data: Any, sq: Any, centroids: Any) -> tuple[Any, Any, Any, Any]:
        xp = self.xp
        n, k = len(data), len(centroids)
        c_sq = (centroids * centroids).sum(axis=1)
        labels = xp.empty(n, dtype=xp.int64)
        dist = xp.empty(n, dtype=xp.float32)
        block = max(1, _BLOCK_ELEMENTS // max(k, 1))
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            prod = data[lo:hi] @ centroids.T
            prod *= -2.0
            prod += c_sq[None, :]
            best = prod.argmin(axis=1)
            labels[lo:hi] = best
            dist[lo:hi] = xp.take_along_axis(prod, best[:, None], axis=1)[:, 0] + sq[lo:hi]
        dist = xp.maximum(dist, 0)
        return labels, dist, _cluster_sums(xp, data, labels, k), xp.bincount(labels, minlength=k)


def _means(xp: ModuleType, steps: Any, sums: Any, counts: Any) -> tuple[Any, int]:
    """Means of the clusters, and how many were empty (each takes a point far from its centre)."""
    counts = counts.copy()
    empty = xp.flatnonzero(counts == 0)
    n_empty = int(empty.size)
    if n_empty:
        far = xp.argsort(-steps.distances())[:n_empty]  # farthest first
        sums = sums.copy()
        sums[empty] = steps.x[far].astype(xp.float64)
        counts[empty] = 1
        log.debug("kmeans: %d empty clusters re-seeded", n_empty)
    return (sums / counts[:, None]).astype(xp.float32), n_empty


def _cluster_sums(xp: ModuleType, data: Any, labels: Any, k: int) -> Any:
    """Per-cluster sums of rows, accumulated in float64."""
    d = data.shape[1]
    if xp is np:
        if d <= 8:  # a few weighted bincounts beat a sort
            return np.stack([np.bincount(labels, weights=data[:, j], minlength=k) for j in range(d)], axis=1)
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        sums = np.zeros((k, d), dtype=np.float64)
        sums[sorted_labels[starts]] = np.add.reduceat(data[order].astype(np.float64), starts, axis=0)
        return sums
    sums = xp.zeros((k, d), dtype=xp.float64)
    import cupyx  # only reached with CuPy

    cupyx.scatter_add(sums, labels, data.astype(xp.float64))
    return sums


def _kmeans_plus_plus(xp: ModuleType, data: Any, sq: Any, k: int, rng: np.random.Generator) -> Any:
    """Greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's variant with 2 + log k trials)."""
    n, d = data.shape
    trials = 2 + int(math.log(k))
    centers = xp.empty((k, d), dtype=xp.float32)
    first = int(rng.integers(n))
    centers[0] = data[first]
    closest = xp.maximum(sq - 2 * (data @ data[first]) + sq[first], 0)
    potential = float(closest.astype(xp.float64).sum())
    for c in range(1, k):
        if potential <= 0:  # every point sits on a centre already: fill with distinct random rows
            centers[c] = data[int(rng.integers(n))]
            continue
        draws = xp.asarray(rng.random(trials) * potential)
        cumulative = xp.cumsum(closest.astype(xp.float64))
        candidates = xp.minimum(xp.searchsorted(cumulative, draws), n - 1)
        cand_rows = data[candidates]
        dist = xp.maximum(sq[None, :] - 2 * (cand_rows @ data.T) + sq[candidates][:, None], 0)
        merged = xp.minimum(closest[None, :], dist)
        potentials = merged.astype(xp.float64).sum(axis=1)
        best = int(potentials.argmin())
        centers[c] = cand_rows[best]
        closest = merged[best]
        potential = float(potentials[best])
    return centers


# --- input checks ------------------------------------------------------------------------------


def _given_centres(xp: ModuleType, init: Any, k: int, d: int) -> Any:
    centres = xp.asarray(to_numpy(init) if xp is np else init, dtype=xp.float32)
    if centres.shape != (k, d):
        raise InvalidInput(f"init: expected {k} starting centres of dimension {d}, got shape {tuple(centres.shape)}")
    if not bool(xp.isfinite(centres).all()):
        raise InvalidInput("init: starting centres contain NaN or infinite values")
    return centres.copy()


def _check_args(x: Any, k: int, niter: int, tol: float, init: str) -> None:
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise InvalidInput(f"x: expected a non-empty 2-D array [n, d], got shape {tuple(shape)}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k: expected a positive integer, got {k!r}")
    if k > shape[0]:
        raise InvalidInput(f"k: {k} clusters need at least {k} points, got {shape[0]}")
    if not isinstance(niter, (int, np.integer)) or niter < 1:
        raise InvalidInput(f"niter: expected a positive integer, got {niter!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0 and math.isfinite(tol)):
        raise InvalidInput(f"tol: expected a finite number >= 0, got {tol!r}")
    if isinstance(init, str) and init not in ("k-means++", "random"):
        raise InvalidInput(f"init: expected 'k-means++' or 'random', got {init!r}")


__all__ = ["KMeansResult", "assign_nearest", "kmeans"]
