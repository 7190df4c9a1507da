"""Compiled CPU loops (numba) for K-Means and nearest-centroid assignment.

Why compiled: a Lloyd iteration in NumPy is several passes over the data
(distances, arg-min, one weighted sum per feature), each allocating an
``n``-long temporary. For few dimensions or few centres that is bound by
those passes, not by arithmetic; one fused pass per point (distances,
arg-min, add the point to its cluster's sum) does the same work in a
fraction of the memory traffic. Product-quantizer codebooks (8 or so
dimensions, 256 centres) take a variant laid out along the centres. For many dimensions and centres the
distances are a matrix product, which BLAS does best; the arg-min is
NumPy's (vectorised) and the accumulation one compiled pass per block.

Every kernel splits the rows into one contiguous chunk per thread, each with
its own partial sums, merged at the end: the result does not depend on
thread timing, only on the thread count (float64 sums, so barely on that).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

_FEW_CENTRES = 8
"""Up to this many centres, one plain loop per point and centre is fastest (measured: 1M x 2, k=3)."""
_BLAS_MIN_DIM = 16
"""From this dimension on, distances go through BLAS products; below, through the per-point kernel
laid out along the centres (measured at k=256: d=8 30 ms vs 43 ms by BLAS; d=16 36 ms vs 32 ms)."""
_PAD = 16
"""Rows of padding after each thread's partial sums and counts: with few centres the threads' partials
would share cache lines, and every increment would bounce the line between cores (1M x 2, k=3: a step
took 45 ms on 2 threads against 20 ms on one)."""
_BLOCK_ELEMENTS = 1 << 22
"""Rows per BLAS block: the block's distance matrix holds at most this many floats (16 MiB)."""


def threads() -> int:
    return int(numba.get_num_threads())


@numba.njit(cache=True, nogil=True)
def _merge(part_sums, part_counts, sums, counts):  # type: ignore[no-untyped-def]
    """Add the per-thread partial sums and counts into the totals, in thread order (deterministic)."""
    k, d = sums.shape  # (partials may carry padding rows past k)
    for t in range(part_sums.shape[0]):
        for j in range(k):
            counts[j] += part_counts[t, j]
            for col in range(d):
                sums[j, col] += part_sums[t, j, col]


@numba.njit(parallel=True, cache=True, nogil=True)
def _direct(x, c, labels, dist, sums, counts, nchunks):  # type: ignore[no-untyped-def]
    n, d = x.shape
    k = c.shape[0]
    part_sums = np.zeros((nchunks, k + _PAD, d), dtype=np.float64)  # (padded: see _PAD)
    part_counts = np.zeros((nchunks, k + _PAD), dtype=np.int64)
    chunk = (n + nchunks - 1) // nchunks
    for t in numba.prange(nchunks):
        lo = t * chunk
        hi = min(n, lo + chunk)
        for i in range(lo, hi):
            best = 0
            best_d = np.inf
            for j in range(k):
                s = np.float32(0.0)
                for col in range(d):
                    diff = x[i, col] - c[j, col]
                    s += diff * diff
                if s < best_d:
                    best_d = s
                    best = j
            labels[i] = best
            dist[i] = best_d
            part_counts[t, best] += 1
            for col in range(d):
                part_sums[t, best, col] += x[i, col]
    _merge(part_sums, part_counts, sums, counts)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _direct_wide(x, c_t, half_c_sq, labels, dist, sums, counts, nchunks):  # type: ignore[no-untyped-def]
    """Few dimensions, many centres: per point, all ``k`` distances at once along the centre axis.

    ``c_t`` is the centres transposed (``[d, k]``), so the inner loop runs over
    contiguous centres and vectorises; ``|x|^2`` is added after the arg-min.
    """
    n, d = x.shape
    k = c_t.shape[1]
    part_sums = np.zeros((nchunks, k + _PAD, d), dtype=np.float64)  # (padded: see _PAD)
    part_counts = np.zeros((nchunks, k + _PAD), dtype=np.int64)
    chunk = (n + nchunks - 1) // nchunks
    for t in numba.prange(nchunks):
        buf = np.empty(k, dtype=np.float32)
        for i in range(t * chunk, min(n, (t + 1) * chunk)):
            for j in range(k):
                buf[j] = half_c_sq[j]
            sq = np.float32(0.0)
            for col in range(d):
                v = x[i, col]
                sq += v * v
                for j in range(k):
                    buf[j] -= v * c_t[col, j]
            low = buf[0]
            for j in range(1, k):
                low = min(low, buf[j])
            best = 0
            for j in range(k):
                if buf[j] == low:
                    best = j
                    break
            labels[i] = best
            dist[i] = max(sq + np.float32(2.0) * low, np.float32(0.0))
            part_counts[t, best] += 1
            for col in range(d):
                part_sums[t, best, col] += x[i, col]
    _merge(part_sums, part_counts, sums, counts)


@numba.njit(cache=True, nogil=True)
def _assign_block(prod, half_c_sq, x, x_sq, lo, labels, dist, sums, counts):  # type: ignore[no-untyped-def]
    """For rows ``lo .. lo + len(prod)`` of ``x``, given their products with the centres ``prod``
    (``x . c``): the nearest centre (arg-max of ``x . c - |c|^2 / 2``), the squared distance to it, and
    the row added to that centre's sum and count (a worker's partials). One pass over ``prod``, where
    NumPy took four (subtract, arg-max, gather, clip)."""
    b, k = prod.shape
    d = x.shape[1]
    for r in range(b):
        best = 0
        top = prod[r, 0] - half_c_sq[0]
        for j in range(1, k):
            v = prod[r, j] - half_c_sq[j]
            if v > top:
                top = v
                best = j
        i = lo + r
        labels[i] = best
        dist[i] = max(x_sq[i] - np.float32(2.0) * top, np.float32(0.0))
        counts[best] += 1
        for col in range(d):
            sums[best, col] += x[i, col]


@numba.njit(cache=True, nogil=True)
def column_stats(x):  # type: ignore[no-untyped-def]
    """Per-column sums and the total sum of squares, in float64, in one pass."""
    n, d = x.shape
    sums = np.zeros(d, dtype=np.float64)
    total_sq = 0.0
    for i in range(n):
        for col in range(d):
            v = np.float64(x[i, col])
            sums[col] += v
            total_sq += v * v
    return sums, total_sq


def mean_variance(x: np.ndarray) -> float:
    """Mean over features of each feature's variance (what scikit-learn scales ``tol`` by)."""
    n, d = x.shape
    sums, total_sq = column_stats(x)
    mean = sums / n
    return max(float(total_sq / n - float(mean @ mean)) / d, 0.0)


def lloyd_step(
    x: np.ndarray, x_sq: np.ndarray, centroids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centre of every row, its squared distance, and per-centre sums (float64) and counts.

    ``x``: C-contiguous float32 ``[n, d]``; ``x_sq``: its squared row norms
    (used on the BLAS route only); ``centroids``: float32 ``[k, d]``.
    """
    n, d = x.shape
    k = len(centroids)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float32)
    sums = np.zeros((k, d), dtype=np.float64)
    counts = np.zeros(k, dtype=np.int64)
    nchunks = max(1, min(threads(), n))
    half_c_sq = np.einsum("ij,ij->i", c, c) * np.float32(0.5)
    if k <= _FEW_CENTRES:
        _direct(x, c, labels, dist, sums, counts, nchunks)
        return labels, dist, sums, counts
    if d < _BLAS_MIN_DIM:
        _direct_wide(x, np.ascontiguousarray(c.T), half_c_sq, labels, dist, sums, counts, nchunks)
        return labels, dist, sums, counts
    # argmin |x - c|^2 = argmax (x.c - |c|^2 / 2): per block of rows one BLAS product, then one
    # compiled pass. Each worker thread takes whole blocks with BLAS held to one thread: BLAS's own
    # threads and numba's, taking turns on every block, kept each other's cores busy spinning (on 2
    # cores one step took 128 ms this way against 48 ms for its products alone).
    workers = nchunks
    block = min(max(1024, _BLOCK_ELEMENTS // k), -(-n // workers))
    spans = [(lo, min(n, lo + block)) for lo in range(0, n, block)]
    part_sums = np.zeros((workers, k, d), dtype=np.float64)
    part_counts = np.zeros((workers, k), dtype=np.int64)
    c_t = np.ascontiguousarray(c.T)

    def work(w: int) -> None:
        for lo, hi in spans[w::workers]:
            _assign_block(x[lo:hi] @ c_t, half_c_sq, x, x_sq, lo, labels, dist, part_sums[w], part_counts[w])

    with _one_blas_thread():
        if workers == 1:
            work(0)
        else:
            list(_pool(workers).map(work, range(workers)))
    _merge(part_sums, part_counts, sums, counts)
    return labels, dist, sums, counts


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads for the BLAS route (made on first use)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="vecdb-kmeans")


def _one_blas_thread() -> Any:
    """BLAS held to one thread for the block."""
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's controller: it scans the loaded libraries, so it is made once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


__all__ = ["column_stats", "lloyd_step", "mean_variance", "threads"]
