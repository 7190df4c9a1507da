"""Compiled loops (numba) for the exact top-k of a sparse query over an inverted index.

Why compiled: a query of a few terms touches a few thousand postings. NumPy answers that in a
dozen small calls (search the terms, slice, weight, scatter-add, zero the dead, rank), each with a
fixed cost of about a microsecond, and ranking means passes over an array the collection's size.
Compiled passes over the posting lists, with scratch that only the touched points are reset in, do
the same work in a fraction of the time, and free the interpreter (``nogil``) for other threads.

Pruning (MaxScore's idea, exact): with every weight positive, a point's score is the sum of what
each query term adds, and each term adds at most ``query weight x its largest stored weight`` (its
*lift*). Terms are added in the order of their lift, most first (the rare ones); once the terms
left could not lift a point holding none of the added ones to the ``k``-th best sum so far (a lower
bound of the ``k``-th best score), they are no longer added: only the points whose sums they could
lift that far are looked up in their posting lists (a binary search each when few, else the list read
through with those points flagged), and the bound rises with what the look-ups add. The answer equals
adding every posting.

Two ways to keep the sums: while few postings are added, the points touched are listed, and ranking
reads the list; once many are (common words), listing costs more than it saves, and ranking reads
strided group maxima instead (:data:`GROUPS_OF`, :data:`DENSE_FROM`).

Scores are summed in float64 and ranked as float32 (what a search returns), ties by lower internal
id. Sums added in another order may round to the other side of a float32 step, which reorders only
points whose exact scores agree to about 1e-7.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.typed import List

# Array types of the helpers' signatures (C-contiguous). Each helper is compiled for the one set of
# argument types it gets: left to infer them, numba compiles a variant per literal argument at the
# search's call sites (three of _kth, four of _clear).
_IDS = "int64[::1]"
_WEIGHTS = "float32[::1]"
_SUMS = "float64[::1]"
_FLAGS = "uint8[::1]"
_BOOLS = "boolean[::1]"

SEARCH_COST = 64
"""A binary search of a long posting list (cache misses) costs about as much as reading this many of its
postings in order: candidates fewer than ``length / SEARCH_COST`` are searched for, more are flagged
and the list read through."""
GROUPS_OF = 64
"""Points per group of the group maxima that a query with many postings ranks by. Groups are strided
(group ``c`` holds points ``c, c + width, c + 2 width, ...``): their maxima are an element-wise max
of ``GROUPS_OF`` contiguous rows, which vectorises."""
DENSE_FROM = 12
"""A query that adds ``n / DENSE_FROM`` postings or more stops listing the points it touches (about
2.5 ns a posting) and ranks by group maxima instead, which cost a pass over the sums and clearing them
whole (about 0.4 ns a point). Measured on 50k short documents, 1,000 queries: 6, 12 and 24 gave 80, 74
and 73 us unfiltered, 41, 43 and 49 us with a 10% filter."""


@numba.njit(cache=True, nogil=True)
def _push(items, item):  # type: ignore[no-untyped-def]
    items.append(item)


def typed_list(arrays: list[np.ndarray]) -> List:
    """A numba typed list of ``arrays`` (one dtype), as the kernel takes a segment table."""
    contiguous = [np.ascontiguousarray(a) for a in arrays]
    out = List.empty_list(numba.typeof(contiguous[0]))
    for a in contiguous:
        _push(out, a)
    return out


@numba.njit(["int64(uint32[::1], int64, int64, uint32)", f"int64({_IDS}, int64, int64, int64)"], cache=True, nogil=True)
def _search(a, lo, hi, v):  # type: ignore[no-untyped-def]
    """First position in ``a[lo:hi]`` (ascending) whose value is >= ``v``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(
    f"int64({_IDS}, {_WEIGHTS}, int64, int64, float64, boolean, {_BOOLS}, boolean, {_BOOLS}, {_SUMS}, boolean, "
    f"{_FLAGS}, {_IDS}, int64)",
    cache=True,
    nogil=True,
)
def _add(iids, weights, a, b, w, keep_alive, alive, use_mask, mask, x, listing, seen, touched, count):  # type: ignore[no-untyped-def]
    """Add ``w x weights[a:b]`` to the sums of ``iids[a:b]`` that are kept; ``listing``: also list the
    points touched first in ``touched`` (flagged in ``seen``). Returns the touched count."""
    for p in range(a, b):
        i = iids[p]
        if keep_alive and not alive[i]:
            continue
        if use_mask and not mask[i]:
            continue
        if listing and not seen[i]:
            seen[i] = 1
            touched[count] = i
            count += 1
        x[i] += weights[p] * w
    return count


@numba.njit(f"{_SUMS}({_SUMS}, int64)", cache=True, nogil=True)
def _group_maxima(x, n):  # type: ignore[no-untyped-def]
    """The maximum of each strided group of ``x[:n]`` (see :data:`GROUPS_OF`)."""
    width = (n + GROUPS_OF - 1) // GROUPS_OF
    tops = np.zeros(width, dtype=np.float64)
    for g in range(GROUPS_OF):
        row = g * width
        for c in range(min(width, n - row)):
            v = x[row + c]
            tops[c] = v if v > tops[c] else tops[c]
    return tops


@numba.njit(f"int64({_SUMS}, {_SUMS}, int64, float64, {_IDS})", cache=True, nogil=True)
def _from_groups(x, tops, n, low, out):  # type: ignore[no-untyped-def]
    """Write the points whose sum is ``>= low`` and ``> 0`` to ``out`` (from the groups whose maximum
    reaches it); returns how many."""
    width = len(tops)
    m = 0
    for c in range(width):
        if tops[c] >= low and tops[c] > 0:
            for i in range(c, n, width):
                if x[i] >= low and x[i] > 0:
                    out[m] = i
                    m += 1
    return m


@numba.njit(
    f"void({_IDS}, {_WEIGHTS}, int64, int64, float64, {_IDS}, int64, {_SUMS}, {_FLAGS}, boolean)",
    cache=True,
    nogil=True,
)
def _look_up(iids, weights, a, b, w, cand, ncand, x, seen, listed):  # type: ignore[no-untyped-def]
    """Add ``w x`` the weight each of ``cand[:ncand]`` holds in ``iids[a:b]`` (sorted) to its sum.
    ``seen`` flags the candidates while the list is read through (``listed``: their flag is 1 before
    and after, else 0)."""
    if b == a or ncand == 0:
        return
    if ncand * SEARCH_COST < b - a:
        for c in range(ncand):
            i = cand[c]
            p = _search(iids, a, b, i)
            if p < b and iids[p] == i:
                x[i] += weights[p] * w
        return
    for c in range(ncand):
        seen[cand[c]] = 2
    for p in range(a, b):
        i = iids[p]
        if seen[i] == 2:
            x[i] += weights[p] * w
    for c in range(ncand):
        seen[cand[c]] = 1 if listed else 0


@numba.njit(f"int64({_SUMS}, {_IDS}, int64, float64, {_IDS})", cache=True, nogil=True)
def _at_least(x, ids, count, low, out):  # type: ignore[no-untyped-def]
    """Write those of ``ids[:count]`` whose sum is ``>= low`` to ``out`` (which may be ``ids``); returns
    how many. (Loops live in small functions like this one: inlined in the search's body, LLVM compiled
    this one about ten times slower.)"""
    m = 0
    for t in range(count):
        i = ids[t]
        if x[i] >= low:
            out[m] = i
            m += 1
    return m


@numba.njit(f"{_IDS}({_SUMS})", cache=True, nogil=True)
def _by_lift(lift):  # type: ignore[no-untyped-def]
    """Positions of ``lift`` from the largest down (an insertion sort: a query has a few terms, and
    numba's argsort costs seconds to compile)."""
    order = np.empty(len(lift), dtype=np.int64)
    for j in range(len(lift)):
        t = j
        while t > 0 and lift[order[t - 1]] < lift[j]:
            order[t] = order[t - 1]
            t -= 1
        order[t] = j
    return order


@numba.njit(f"void({_SUMS}, int64)", cache=True, nogil=True)
def _zero(x, n):  # type: ignore[no-untyped-def]
    for i in range(n):
        x[i] = 0.0


@numba.njit(f"void({_IDS}, int64, {_SUMS}, {_FLAGS}, boolean)", cache=True, nogil=True)
def _clear(ids, count, x, seen, sums):  # type: ignore[no-untyped-def]
    """Zero the touched flags of ``ids[:count]`` (``sums``: and their sums)."""
    for t in range(count):
        i = ids[t]
        seen[i] = 0
        if sums:
            x[i] = 0.0


@numba.njit(f"float64({_SUMS}, {_IDS}, int64, int64, boolean)", cache=True, nogil=True)
def _kth(x, touched, count, k, direct):  # type: ignore[no-untyped-def]
    """The ``k``-th largest of ``x[touched[:count]]`` (``direct``: of ``x[:count]``); 0.0 when there
    are fewer than ``k``."""
    if count < k:
        return 0.0
    heap = np.empty(k, dtype=np.float64)  # a min-heap of the k largest so far
    for t in range(k):
        v = x[t] if direct else x[touched[t]]
        c = t
        while c > 0:
            parent = (c - 1) >> 1
            if heap[parent] <= v:
                break
            heap[c] = heap[parent]
            c = parent
        heap[c] = v
    for t in range(k, count):
        v = x[t] if direct else x[touched[t]]
        if v <= heap[0]:
            continue
        c = 0
        while True:
            child = 2 * c + 1
            if child >= k:
                break
            if child + 1 < k and heap[child + 1] < heap[child]:
                child += 1
            if heap[child] >= v:
                break
            heap[c] = heap[child]
            c = child
        heap[c] = v
    return heap[0]


@numba.njit("boolean(float32, int64, float32, int64)", cache=True, nogil=True)
def _worse(sa, ia, sb, ib):  # type: ignore[no-untyped-def]
    """Whether hit ``(sa, ia)`` ranks below ``(sb, ib)``: a lower score, or the same and a higher id."""
    return sa < sb or (sa == sb and ia > ib)


@numba.njit(f"void(float32[::1], {_IDS}, int64, float32, int64)", cache=True, nogil=True)
def _sift_down(hs, hi, size, s, i):  # type: ignore[no-untyped-def]
    """Put hit ``(s, i)`` at the root of the heap ``hs[:size]``/``hi[:size]`` (the worst hit on top) and
    move it down to its place."""
    c = 0
    while True:
        child = 2 * c + 1
        if child >= size:
            break
        if child + 1 < size and _worse(hs[child + 1], hi[child + 1], hs[child], hi[child]):
            child += 1
        if not _worse(hs[child], hi[child], s, i):
            break
        hs[c] = hs[child]
        hi[c] = hi[child]
        c = child
    hs[c] = s
    hi[c] = i


@numba.njit(f"Tuple(({_IDS}, {_WEIGHTS}))({_SUMS}, {_IDS}, int64, int64)", cache=True, nogil=True)
def _best(x, cand, count, k):  # type: ignore[no-untyped-def]
    """The ``k`` best of ``cand[:count]`` by float32 sum, best first, ties by lower id."""
    m = min(k, count)
    hs = np.empty(m, dtype=np.float32)  # a heap whose root is the worst kept hit
    hi = np.empty(m, dtype=np.int64)
    size = 0
    for t in range(count):
        i = cand[t]
        s = np.float32(x[i])
        if size < m:
            c = size
            size += 1
            while c > 0:
                parent = (c - 1) >> 1
                if not _worse(s, i, hs[parent], hi[parent]):
                    break
                hs[c] = hs[parent]
                hi[c] = hi[parent]
                c = parent
            hs[c] = s
            hi[c] = i
            continue
        if _worse(hs[0], hi[0], s, i):  # better than the worst kept: it takes the root's place
            _sift_down(hs, hi, m, s, i)
    # pop the worst first into the back: best first
    out_s = np.empty(m, dtype=np.float32)
    out_i = np.empty(m, dtype=np.int64)
    for pos in range(m - 1, -1, -1):
        out_s[pos] = hs[0]
        out_i[pos] = hi[0]
        size -= 1
        _sift_down(hs, hi, size, hs[size], hi[size])
    return out_i, out_s


@numba.njit(cache=True, nogil=True)
def top_k(  # type: ignore[no-untyped-def]
    seg_lo,
    seg_hi,
    terms_l,
    offsets_l,
    iids_l,
    weights_l,
    top_l,
    q_terms,
    q_values,
    idf,
    docs,
    count_alive,
    alive,
    n,
    use_mask,
    mask,
    k,
    positive,
    x,
    seen,
    touched,
):
    """The ``k`` best (internal ids, float32 scores) of a sparse query, best first, ties by lower id.

    Segments (``seg_lo``/``seg_hi`` and the typed lists of their CSR arrays and per-term largest
    weights, oldest first) hold the postings; only ids ``< n`` count. ``q_terms`` ascending and unique
    (uint32), ``q_values`` their weights. ``idf``: weigh each term by Qdrant's IDF over ``docs`` live
    holders, its document frequency counting only ``alive`` postings when ``count_alive`` (some holder
    is dead). ``alive`` (bool by id) always restricts the hits when ``count_alive``; ``mask`` (bool by
    id) when ``use_mask``. A hit is a point sharing a term with the query, whatever its sum.
    ``positive``: every stored weight is > 0 (pruning needs it, with positive query weights).
    ``x`` (float64) and ``seen`` (uint8) are scratch of at least ``n`` zeros, left zero; ``touched``
    (int64) scratch of at least ``n``.
    """
    nq = len(q_terms)
    nseg = len(terms_l)
    starts = np.zeros((nseg, nq), dtype=np.int64)
    ends = np.zeros((nseg, nq), dtype=np.int64)
    df = np.zeros(nq, dtype=np.int64)
    lift = np.zeros(nq, dtype=np.float64)
    length = np.zeros(nq, dtype=np.int64)
    total = 0
    for s in range(nseg):
        if seg_lo[s] >= n:
            break
        terms, offsets, iids = terms_l[s], offsets_l[s], iids_l[s]
        for j in range(nq):
            at = _search(terms, 0, len(terms), q_terms[j])
            if at == len(terms) or terms[at] != q_terms[j]:
                continue
            a, b = offsets[at], offsets[at + 1]
            if seg_hi[s] > n:  # the newest segment of a view older than the index
                b = _search(iids, a, b, n)
            starts[s, j], ends[s, j] = a, b
            length[j] += b - a
            total += b - a
            if count_alive:
                for p in range(a, b):
                    if alive[iids[p]]:
                        df[j] += 1
            else:
                df[j] += b - a
            if b > a:
                lift[j] = max(lift[j], top_l[s][at])
    if k <= 0 or total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    qw = np.empty(nq, dtype=np.float64)
    prune = positive
    for j in range(nq):
        qw[j] = q_values[j]
        if idf:
            qw[j] *= math.log((docs - df[j] + 0.5) / (df[j] + 0.5) + 1.0)
        lift[j] *= qw[j]
        if qw[j] <= 0:
            prune = False

    # The terms by what they lift, most first; each is added to the sums in turn until the ones left
    # could not lift a point that holds none of the added terms into the best k: those are then only
    # looked up, for the points whose sums they could lift that far. Sums are listed by the points
    # touched while few, ranked by group maxima once many (positive weights only).
    order = _by_lift(lift)
    count = 0
    dense = False
    cand = touched
    ncand = -1  # -1: every point with a sum is a candidate
    added_lift = 0.0
    bound = 0.0
    for pos in range(nq):
        j = order[pos]
        if prune and not dense and (count + length[j]) * DENSE_FROM >= n:
            dense = True  # (the sums stay; the list is done with, and its buffer holds candidates now)
            _clear(touched, count, x, seen, False)
            count = 0
        for s in range(nseg):
            count = _add(
                iids_l[s], weights_l[s], starts[s, j], ends[s, j], qw[j], count_alive, alive, use_mask, mask,
                x, not dense, seen, touched, count
            )  # fmt: skip
        added_lift += lift[j]
        if not prune or pos == nq - 1 or (not dense and count < k):
            continue
        left = 0.0  # what the terms not added yet can lift a score by, together
        for t in range(pos + 1, nq):
            left += lift[order[t]]
        if left >= added_lift:  # (the bound is at most what the added terms lift)
            continue
        # a lower bound of the k-th best sum: the k-th best listed sum, or the k-th best group maximum
        # (k groups each hold a sum at least that high)
        if dense:
            tops = _group_maxima(x, n)
            bound = _kth(tops, touched, len(tops), k, True)
        else:
            bound = _kth(x, touched, count, k, False)
        if left >= bound:
            continue
        low = bound - left
        low -= 1e-9 * bound  # (float rounding of the sums and lifts)
        if dense:
            cand = touched
            ncand = _from_groups(x, tops, n, low, cand)
        else:
            cand = np.empty(count, dtype=np.int64)
            ncand = _at_least(x, touched, count, low, cand)
        for t in range(pos + 1, nq):  # the rest, most lifting first: look up, then drop who cannot reach
            j = order[t]
            left -= lift[j]
            for s in range(nseg):
                _look_up(iids_l[s], weights_l[s], starts[s, j], ends[s, j], qw[j], cand, ncand, x, seen, not dense)
            # the candidates' sums only grow: their k-th best is a bound too
            bound = max(bound, _kth(x, cand, ncand, k, False))
            low = bound - max(left, 0.0)
            low -= 1e-9 * bound
            ncand = _at_least(x, cand, ncand, low, cand)
        break
    if ncand < 0:
        if dense:
            tops = _group_maxima(x, n)
            low = _kth(tops, touched, len(tops), k, True)
            cand = touched
            ncand = _from_groups(x, tops, n, low * (1 - 1e-9), cand)
        else:
            cand = touched
            ncand = count
    ids, scores = _best(x, cand, ncand, k)
    _clear(touched, count, x, seen, True)
    if dense:
        _zero(x, n)
    return ids, scores
