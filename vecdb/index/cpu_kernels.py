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

Across the iterations of one K-Means run on those shapes, :class:`BoundedLloyd`
keeps Hamerly's bounds per row and puts only the rows whose centre may have
changed through the products (see :mod:`vecdb.index.kmeans`). Its products are
laid out ``[k, rows]`` so that the top-two pass runs along contiguous rows and
vectorises, in blocks small enough to stay in a core's cache.

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
_BOUNDED_BLOCK = 2048
"""Rows per product block of :class:`BoundedLloyd`: its ``[k, rows]`` products stay in a core's L2
cache between the product and the top-two pass (measured 1 thread, 64k x 128, k=256: product plus pass
38 ms at 2,048 rows, 41 ms at 16,384; the product alone 36 ms)."""


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


# --- Lloyd with Hamerly's bounds (the BLAS route's shapes) -------------------------------------------

_SLACK = 1e-9
"""Relative margin on every bound computed in float64 (distances, centre shifts, half-gaps): their own
rounding is ~1e-15, so bounds stay on the safe side by a wide margin and cost no pruning."""


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _sq_dist64(x, i, c, j):  # type: ignore[no-untyped-def]
    """Squared distance of row ``i`` of ``x`` to centre ``j`` in float64 (no cancellation: |x - c|^2)."""
    s = 0.0
    for col in range(x.shape[1]):
        diff = np.float64(x[i, col]) - np.float64(c[j, col])
        s += diff * diff
    return s


@numba.njit(cache=True, nogil=True)
def _gather(x, rows, lo, hi, out):  # type: ignore[no-untyped-def]
    """``out[:hi - lo] = x[rows[lo:hi]]`` without holding the interpreter."""
    d = x.shape[1]
    for r in range(hi - lo):
        i = rows[lo + r]
        for col in range(d):
            out[r, col] = x[i, col]


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz", "reassoc"})
def _top_two(prod_t, half_c_sq, best, top, second):  # type: ignore[no-untyped-def]
    """Per column ``r`` of ``prod_t`` (``c . x``, ``[k, b]``): the best and second-best
    ``x.c - |c|^2 / 2`` and the best's index (the first of ties).

    Laid out along the rows, the inner loop runs over contiguous rows without a branch and vectorises:
    five times faster than a scan along each row's ``k`` products (which cost as much as the product)."""
    k, b = prod_t.shape
    low = np.float32(-3.0e38)  # (finite: the loop is compiled assuming no infinities)
    for r in range(b):
        top[r] = low
        second[r] = low
        best[r] = 0
    for j in range(k):
        h = half_c_sq[j]
        for r in range(b):
            v = prod_t[j, r] - h
            t = top[r]
            up = v > t
            second[r] = max(second[r], min(t, v))
            best[r] = j if up else best[r]
            top[r] = v if up else t


@numba.njit(cache=True, nogil=True)
def _assign_rows(prod_t, half_c_sq, c_sq_max, x, x_sq, rows, lo, labels, upper, lower, sums, counts):  # type: ignore[no-untyped-def]
    """Rows ``rows[lo:lo + b]`` of ``x``, given their products with the centres (``prod_t``, ``[k, b]``):
    the nearest centre (arg-max of ``x.c - |c|^2 / 2``), Hamerly's bounds, and each row that changed
    centre moved from its old centre's sum and count to the new one's (a worker's partials). Returns
    how many moved.

    The bounds are made safe against the float32 product's rounding: ``|x|^2 - 2 x.c + |c|^2`` from
    float32 dot products of ``d`` terms is within ``(2 d + 16) 2^-24 (|x|^2 + |c|^2)`` of the exact
    value whatever the summation order, so ``upper`` (the chosen centre's distance) is raised and
    ``lower`` (the second-best distance: no other centre is nearer) lowered by that much."""
    b = prod_t.shape[1]
    d = x.shape[1]
    eps = (2.0 * d + 16.0) * 2.0**-24
    best = np.empty(b, dtype=np.int32)
    top = np.empty(b, dtype=np.float32)
    second = np.empty(b, dtype=np.float32)
    _top_two(prod_t, half_c_sq, best, top, second)
    moved = 0
    for r in range(b):
        i = rows[lo + r]
        x_sq_i = np.float64(x_sq[i])
        err = eps * (x_sq_i + c_sq_max)
        upper[i] = np.sqrt(max(x_sq_i - 2.0 * np.float64(top[r]) + err, 0.0)) * (1.0 + _SLACK)
        lower[i] = np.sqrt(max(x_sq_i - 2.0 * np.float64(second[r]) - err, 0.0)) * (1.0 - _SLACK)
        new = np.int64(best[r])
        old = labels[i]
        if old != new:
            moved += 1
            labels[i] = new
            counts[new] += 1
            for col in range(d):
                sums[new, col] += x[i, col]
            if old >= 0:
                counts[old] -= 1
                for col in range(d):
                    sums[old, col] -= x[i, col]
    return moved


@numba.njit(cache=True, nogil=True)
def _bounds_pass(x, c, labels, upper, lower, shift, shift_top, shift_arg, shift_second, half_gap, need, lo, hi):  # type: ignore[no-untyped-def]
    """Hamerly's test for rows ``lo .. hi`` after the centres moved by ``shift``: a row's centre is still
    the nearest when the distance to it (upper bound) is at most the distance to any other (lower bound)
    or half the gap from its centre to the nearest other centre. A row that fails with stale bounds gets
    its exact distance to its centre and is tested again; ``need`` marks the rows that fail both."""
    for i in range(lo, hi):
        a = labels[i]
        u = upper[i] + shift[a]
        low = lower[i] - (shift_second if a == shift_arg else shift_top)
        lower[i] = low
        m = max(half_gap[a], low)
        fail = u > m
        if fail:
            u = np.sqrt(_sq_dist64(x, i, c, a)) * (1.0 + _SLACK)
            fail = u > m
        upper[i] = u
        need[i] = fail


@numba.njit(cache=True, nogil=True)
def _label_sq_dist(x, c, labels, out, lo, hi):  # type: ignore[no-untyped-def]
    for i in range(lo, hi):
        out[i] = _sq_dist64(x, i, c, labels[i])


def _on_workers(fn: Any, n: int, workers: int) -> None:
    """``fn(lo, hi)`` over ``workers`` contiguous chunks of ``range(n)``, on the BLAS route's thread pool.

    Not numba's parallel loops: after one, numba's OpenMP threads spin waiting for more work and
    take the cores from the product workers that follow (2 cores: no gain from the second worker)."""
    chunk = -(-n // workers)
    spans = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    if len(spans) == 1:
        fn(*spans[0])
    else:
        list(_pool(len(spans)).map(lambda span: fn(*span), spans))


def bounded_route(k: int, d: int) -> bool:
    """Whether :class:`BoundedLloyd` serves these shapes (those :func:`lloyd_step` sends to BLAS)."""
    return k > _FEW_CENTRES and d >= _BLAS_MIN_DIM


class BoundedLloyd:
    """Lloyd's assignment steps over one data set with Hamerly's bounds (Hamerly, "Making k-means even
    faster", SDM 2010): the same labels as :func:`lloyd_step` but for exact ties, without the
    products of the rows whose centre provably stays the nearest.

    Kept per row across steps: its label, an upper bound on the distance to its centre and a lower
    bound on the distance to every other centre. When the centres move by ``shift``, the upper bound
    grows by its centre's shift and the lower bound shrinks by the largest shift of another centre. A
    row whose upper bound is at most its lower bound, or half its centre's gap to the nearest other
    centre, keeps its label without any product; the others (often a small share once Lloyd has
    roughly settled) are gathered into contiguous blocks for the BLAS product and the top-two pass,
    which also resets their bounds. Per-centre sums and counts are updated in float64 by the rows
    that changed centre only.
    """

    def __init__(self, x: np.ndarray, x_sq: np.ndarray) -> None:
        n = len(x)
        self.x = x
        self.x_sq = x_sq
        self.labels = np.full(n, -1, dtype=np.int64)
        self.upper = np.zeros(n, dtype=np.float64)
        self.lower = np.zeros(n, dtype=np.float64)
        self.centres: Any = None
        self.sums: Any = None
        self.counts: Any = None
        self.rows_computed = 0
        """Rows that went through the products, over all steps (plain Lloyd's: ``n`` per step)."""

    def assign(self, centroids: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
        """One assignment step to ``centroids``: (whether any label changed, per-centre sums, counts).

        The sums and counts are this object's running totals: read them, do not change them."""
        x = self.x
        n, d = x.shape
        c = np.array(centroids, dtype=np.float32, order="C", copy=True)
        k = len(c)
        nchunks = max(1, min(threads(), n))
        if self.centres is None:
            rows = np.arange(n, dtype=np.int64)
            self.sums = np.zeros((k, d), dtype=np.float64)
            self.counts = np.zeros(k, dtype=np.int64)
            gathered = False
        else:
            c64 = c.astype(np.float64)
            shift = np.sqrt(((c64 - self.centres.astype(np.float64)) ** 2).sum(axis=1)) * (1.0 + _SLACK)
            order = np.argsort(-shift, kind="stable")[:2]
            c_sq = (c64 * c64).sum(axis=1)
            with _one_blas_thread():  # (BLAS's own threads would spin on, taking a core from the workers)
                gram = c64 @ c64.T
            gap_sq = c_sq[:, None] + c_sq[None, :] - 2.0 * gram
            gap_sq -= (d + 16) * 2.0**-50 * (c_sq[:, None] + c_sq[None, :])  # float64 products' rounding, 4x over
            np.fill_diagonal(gap_sq, np.inf)
            half_gap = 0.5 * np.sqrt(np.maximum(gap_sq.min(axis=1), 0.0)) * (1.0 - _SLACK)
            need = np.empty(n, dtype=np.bool_)
            top, arg, second = shift[order[0]], order[0], shift[order[1]] if k > 1 else 0.0
            _on_workers(
                lambda lo, hi: _bounds_pass(
                    x, c, self.labels, self.upper, self.lower, shift, top, arg, second, half_gap, need, lo, hi
                ),
                n,
                nchunks,
            )
            rows = np.flatnonzero(need)
            gathered = True
        self.centres = c
        self.rows_computed += len(rows)
        moved = self._products(rows, gathered, c, nchunks) if len(rows) else 0
        return moved > 0, self.sums, self.counts

    def _products(self, rows: np.ndarray, gathered: bool, c: np.ndarray, workers: int) -> int:
        x, x_sq = self.x, self.x_sq
        m = len(rows)
        k, d = c.shape
        c_sq = np.einsum("ij,ij->i", c, c)
        half_c_sq = c_sq * np.float32(0.5)
        c_sq_max = float(c_sq.max())
        block = min(_BOUNDED_BLOCK, -(-m // workers))
        spans = [(lo, min(m, lo + block)) for lo in range(0, m, block)]
        workers = min(workers, len(spans))
        part_sums = np.zeros((workers, k, d), dtype=np.float64)
        part_counts = np.zeros((workers, k), dtype=np.int64)
        moved = [0] * workers

        def work(w: int) -> None:
            buf = np.empty((block, d), dtype=np.float32) if gathered else None
            prod_buf = np.empty(k * block, dtype=np.float32)  # (reused: a fresh 2 MiB array is a fresh mmap)
            for lo, hi in spans[w::workers]:
                if buf is None:
                    xb = x[lo:hi]
                else:
                    xb = buf[: hi - lo]
                    _gather(x, rows, lo, hi, xb)
                out = prod_buf[: k * (hi - lo)].reshape(k, hi - lo)  # (contiguous, as the kernel is compiled for)
                np.matmul(c, xb.T, out=out)
                moved[w] += _assign_rows(
                    out, half_c_sq, c_sq_max, x, x_sq, rows, lo,
                    self.labels, self.upper, self.lower, part_sums[w], part_counts[w],
                )  # fmt: skip

        with _one_blas_thread():
            if workers == 1:
                work(0)
            else:
                list(_pool(workers).map(work, range(workers)))
        _merge(part_sums, part_counts, self.sums, self.counts)
        return sum(moved)

    def distances(self) -> np.ndarray:
        """Squared distance of every row to its centre (float32, computed in float64 from the coordinates)."""
        n = len(self.x)
        out = np.empty(n, dtype=np.float64)
        _on_workers(
            lambda lo, hi: _label_sq_dist(self.x, self.centres, self.labels, out, lo, hi), n, max(1, min(threads(), n))
        )
        return out.astype(np.float32)


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


__all__ = ["BoundedLloyd", "bounded_route", "column_stats", "lloyd_step", "mean_variance", "threads"]
