"""Sparse nearest search: exact dot products over the query's terms, from the inverted index.

Qdrant's semantics (its local mode, ``qdrant_client/local``): a point scores the dot product over
the terms it shares with the query; a point sharing no term is not a hit at all (local mode gives it
``-inf`` and skips it), even where a shared term's product is 0 it is one. With ``modifier: idf``
each query weight is multiplied by ``ln((N - df + 0.5) / (df + 0.5) + 1)``, where ``N`` counts the
live points holding a vector of that space and ``df`` those of them holding the term.

Everything is array work over posting lists: one ``searchsorted`` per segment, one slice per
(segment, query term). A query with many postings (common words) adds them into a scratch array
the size of the collection and picks its best through per-block maxima; one with few sorts its
postings by id instead.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand, StaleRead
from vecdb.engine.settings import SparseSpace, sparse_space_by_name
from vecdb.engine.state import CollectionState
from vecdb.engine.top_k import best
from vecdb.engine.views import ReadView, prepare_sparse
from vecdb.errors import InvalidInput
from vecdb.index.sparse import InvertedIndex

Ranges = list[tuple[int, np.ndarray, np.ndarray, float]]
"""(query-term position, iids ascending, stored weights, largest weight) of each posting list a query touches."""

DENSE_FROM = 32
"""A query whose posting lists hold at least ``view.n / DENSE_FROM`` postings sums them into an array
the size of the view (one C loop, no sort); smaller ones sort their postings by id instead (measured:
the two cost the same at about n / 32 postings, on 50k and 100k documents)."""
GROUPS_OF = 64
"""Points per group of the top-k pre-selection: the ``k``-th best group maximum bounds the ``k``-th best
score. Groups are strided (columns of a 64-row matrix), so their maxima are one vectorised pass."""

_scratch = threading.local()


def sparse_space(state: CollectionState, using: Optional[str]) -> SparseSpace:
    """The sparse space ``using`` names (InvalidInput, as Qdrant words it, when there is none)."""
    space = sparse_space_by_name(state.sparse_spaces, using)
    if space is None:
        raise InvalidInput(f"Not existing vector name error: {using or ''}")
    return space


def _index(state: CollectionState, space: SparseSpace, view: ReadView) -> InvertedIndex:
    index = state.sparse[space.index]
    if index.dropped_seq > view.seq:  # a merge dropped postings of points this (older) view still sees
        raise StaleRead
    return index


def _query(
    state: CollectionState, view: ReadView, using: Optional[str], query: Any
) -> Optional[tuple[InvertedIndex, Ranges, np.ndarray]]:
    """The index, posting lists (ids ``< view.n``) and float64 term weights (IDF applied when the
    space has it) of a sparse query; None when the query has no term."""
    space = sparse_space(state, using)
    terms, weights = prepare_sparse(query, "query")
    index = _index(state, space, view)
    if not len(terms):
        return None
    n = view.n
    ranges = index.ranges(terms, n)
    q = weights.astype(np.float64)
    if space.idf:
        docs = index.docs(view.seq, view.alive, n)
        some_dead = docs < index.holders(n)  # otherwise every posting below n is a live point's
        df = np.zeros(len(terms), dtype=np.int64)
        for j, ids, _, _ in ranges:
            df[j] += int(np.count_nonzero(view.alive[ids])) if some_dead else len(ids)
        q = q * np.log((docs - df + 0.5) / (df + 0.5) + 1.0)
    return index, ranges, q


def _scored(view: ReadView, ranges: Ranges, q: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(internal ids ascending, float32 scores) of every live point sharing a term with the query,
    restricted to ``mask`` (bool over internal ids ``< view.n``; None: no filter)."""
    none = np.zeros(0, np.int64), np.zeros(0, np.float32)
    if not ranges:
        return none
    if len(ranges) == 1:
        j, iids, stored, _ = ranges[0]
        which = np.full(len(iids), j, dtype=np.int64)
    else:
        which = np.concatenate([np.full(len(r[1]), r[0], dtype=np.int64) for r in ranges])
        iids = np.concatenate([r[1] for r in ranges])
        stored = np.concatenate([r[2] for r in ranges])
    keep = view.alive[iids]
    if mask is not None:
        keep &= mask[iids]
    if not keep.all():
        which, iids, stored = which[keep], iids[keep], stored[keep]
    if not len(iids):
        return none
    contrib = stored.astype(np.float64) * q[which]
    n = view.n
    if len(iids) * DENSE_FROM >= n:  # many postings: sum by id in one pass over an array of the view's size
        sums = np.bincount(iids, weights=contrib, minlength=n)
        hit = np.bincount(iids, minlength=n) > 0
        ids = np.flatnonzero(hit)
        return ids, sums[ids].astype(np.float32)
    order = np.argsort(iids, kind="stable")
    sorted_ids = iids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    return sorted_ids[starts], np.add.reduceat(contrib[order], starts).astype(np.float32)


def _accumulator(n: int) -> np.ndarray:
    """This thread's float32 scratch of at least ``n`` zeros (whoever uses it zeroes it again)."""
    acc: Optional[np.ndarray] = getattr(_scratch, "acc", None)
    if acc is None or len(acc) < n:
        acc = np.zeros(max(n, 1024) * 5 // 4, dtype=np.float32)
        _scratch.acc = acc
    return acc


def _dense_top(
    view: ReadView, index: InvertedIndex, ranges: Ranges, q: np.ndarray, k: int, mask: Optional[np.ndarray]
) -> list[tuple[float, int]]:
    """:func:`sparse_top` for a query with many postings and only positive weights (a point is then
    a hit exactly when its sum is > 0): add the postings into a float32 scratch array of the view's
    size, zero the points that are dead or filtered out, then pick the best without sorting the array.

    The pick: split the points into groups of :data:`GROUPS_OF` (strided: the columns of a
    ``GROUPS_OF``-row matrix, so that their maxima are one vectorised pass). The ``k``-th largest group
    maximum is a lower bound of the ``k``-th best score (``k`` groups each hold a point at least that
    good), so only the members of the groups whose maximum reaches it (less a relative 1e-6, for
    float32 ties), and the few points past the last whole group, are ranked.

    Common terms (in more than ``1 / COMMON_FROM`` of the points: "the", "of") are most of the
    postings and add little to a score (their IDF is small). So the rare terms are added first (or, when
    there is none, the term that lifts a score most), giving a bound; the common terms that lift
    least are then left out while together they could add under :data:`SKIP_SHARE` of it, the others
    added. The ones left out are only looked up in their posting lists, for the few points close
    enough to the bound to be lifted into the best (MaxScore's idea; the answer is the same).
    """
    n = view.n
    x = _accumulator(n)[:n]
    dead = index.docs(view.seq, view.alive, n) < index.holders(n)  # some point holding postings is dead
    keep = (mask[:n] & view.alive[:n] if dead else mask[:n]) if mask is not None else (view.alive[:n] if dead else None)
    width = n // GROUPS_OF
    try:
        if width < k:  # a tiny collection: every hit
            _add(x, ranges, q, keep)
            cand = np.flatnonzero(x > 0)
            return best(cand, x[cand].copy(), k)
        lists: dict[int, Ranges] = {}
        lift: dict[int, float] = {}  # the most a term adds to one score
        for r in ranges:
            lists.setdefault(r[0], []).append(r)
            lift[r[0]] = max(lift.get(r[0], 0.0), float(q[r[0]]) * r[3])
        order = sorted(lists, key=lambda j: -lift[j])
        first = [j for j in order if sum(len(r[1]) for r in lists[j]) * COMMON_FROM <= n] or order[:1]
        _add(x, [r for j in first for r in lists[j]], q, keep)
        tops = _tops(x, width)
        bound = _kth(tops, k)
        # the common terms that lift least (the longest lists, "the") are left out while together they
        # lift under SKIP_SHARE of the bound; the others are added now
        pending: list[int] = []
        total = 0.0
        for j in reversed(order):
            if j in first or total + lift[j] >= SKIP_SHARE * bound:
                break
            pending.append(j)
            total += lift[j]
        rest = [r for j in order if j not in first and j not in pending for r in lists[j]]
        if rest:
            _add(x, rest, q, keep)
            tops = _tops(x, width)
            bound = _kth(tops, k)
        lifts = sum(lift[j] for j in pending)
        low = bound - lifts - 1e-6 * bound
        if pending and low > 0:
            cand = _at_least(x, tops, low)
            if len(cand) <= LOOKUP_AT_MOST:
                scores = x[cand].copy()
                for j in pending:
                    for _, ids, w, _ in lists[j]:
                        pos = np.minimum(np.searchsorted(ids, cand), len(ids) - 1)
                        has = ids[pos] == cand
                        scores[has] += w[pos[has]] * np.float32(q[j])
                return best(cand, scores, k)
        if pending:  # they lift too much, or too many points would need them: add them like the others
            _add(x, [r for j in pending for r in lists[j]], q, keep)
            tops = _tops(x, width)
            bound = _kth(tops, k)
        cand = _at_least(x, tops, bound * (1 - 1e-6)) if bound > 0 else np.flatnonzero(x > 0)
        return best(cand, x[cand].copy(), k)
    finally:
        x.fill(0.0)


COMMON_FROM = 16
"""A term in more than ``n / COMMON_FROM`` of the points is common (see :func:`_dense_top`)."""
LOOKUP_AT_MOST = 2048
"""The most points that get common terms looked up rather than added."""
SKIP_SHARE = 0.3
"""Common terms are looked up rather than added while what they can add together is under this share
of the bound (a larger share leaves more points near the bound to look up)."""


def _add(x: np.ndarray, ranges: Ranges, q: np.ndarray, keep: Optional[np.ndarray]) -> None:
    """Add ``ranges``' weighted postings to ``x``, then zero the points ``keep`` leaves out."""
    for j, ids, w, _ in ranges:
        np.add.at(x, ids, w * np.float32(q[j]))  # (ids are unique within one posting list)
    if keep is not None and ranges:  # (multiplying by a bool array is several times faster than copyto's where=)
        np.multiply(x, keep, out=x)


def _tops(x: np.ndarray, width: int) -> np.ndarray:
    """Each group's maximum (group ``i``: points ``i, i + width, ...``). fmax: a float32 overflow's inf
    times 0 is NaN, which must not hide a group's best."""
    return np.fmax.reduce(x[: width * GROUPS_OF].reshape(GROUPS_OF, width), axis=0)  # type: ignore[no-any-return]


def _kth(tops: np.ndarray, k: int) -> float:
    """The ``k``-th largest group maximum: a lower bound of the ``k``-th best score (0 when fewer than
    ``k`` groups have a hit)."""
    bound = float(np.sort(tops)[len(tops) - k])  # (not partition: quadratic on the many groups with no hit)
    return bound if bound > 0 else 0.0


def _at_least(x: np.ndarray, tops: np.ndarray, low: float) -> np.ndarray:
    """The points with ``x >= low`` (> 0): members of the groups whose maximum reaches it, and the
    points past the last whole group (in no group)."""
    width = len(tops)
    cols = np.flatnonzero(tops >= low)
    members = (cols[None, :] + width * np.arange(GROUPS_OF)[:, None]).ravel()
    tail = np.arange(width * GROUPS_OF, len(x))
    cand = np.concatenate((members, tail)) if len(tail) else members
    return cand[x[cand] >= low]


def sparse_top(
    state: CollectionState,
    view: ReadView,
    reader: ReadOnDemand,
    using: Optional[str],
    query: Any,
    k: int,
    mask: Optional[np.ndarray],
) -> list[tuple[float, int]]:
    """The ``k`` best ``(score, internal id)`` of a sparse query, best first, ties by lower internal id.

    ``query``: a :class:`~vecdb.models.points.SparseVector` (validated here, errors naming ``query``);
    ``mask``: bool over internal ids ``< view.n`` (None: no filter). Only live points holding a vector
    of that space that share a term with the query are returned. ``reader`` is unused (the index is
    immutable once published, so no retry check is needed) and kept for the shared signature.
    """
    found = _query(state, view, using, query)
    if found is None or k <= 0:
        return []
    index, ranges, q = found
    postings = sum(len(r[1]) for r in ranges)
    if postings * DENSE_FROM >= view.n and index.positive() and bool((q[[r[0] for r in ranges]] > 0).all()):
        return _dense_top(view, index, ranges, q, k, mask)
    ids, scores = _scored(view, ranges, q, mask)
    return best(ids, scores, k) if len(ids) else []


def sparse_scores(
    state: CollectionState,
    view: ReadView,
    reader: ReadOnDemand,
    using: Optional[str],
    query: Any,
    iids: np.ndarray,
) -> np.ndarray:
    """float32 score of each of ``iids`` (internal ids ``< view.n``) for a sparse query, for re-scoring a
    prefetch's candidates. **NaN** where the point is not a hit: it is dead, lacks the vector, or shares
    no term with the query (Qdrant's local mode scores those ``-inf`` and drops them), so a caller drops
    NaNs. IDF, when the space has it, is over the whole collection, not over ``iids``."""
    iids = np.asarray(iids, dtype=np.int64)
    out = np.full(len(iids), np.nan, dtype=np.float32)
    found = _query(state, view, using, query)
    if not len(iids) or found is None:
        return out
    mask = np.zeros(view.n, dtype=bool)
    mask[iids] = True
    ids, scores = _scored(view, found[1], found[2], mask)
    if len(ids):
        pos = np.searchsorted(ids, iids)
        pos = np.minimum(pos, len(ids) - 1)
        hit = ids[pos] == iids
        out[hit] = scores[pos[hit]]
    return out


def sparse_has_vector(state: CollectionState, view: ReadView, iid: int, name: str) -> Optional[bool]:
    """Whether point ``iid`` (of ``view``) holds the sparse vector ``name``; None if no sparse space has that name."""
    space = sparse_space_by_name(state.sparse_spaces, name)
    if space is None:
        return None
    index = state.sparse[space.index]
    return iid < min(view.n, index.n) and bool(index.present[iid])


__all__ = ["sparse_has_vector", "sparse_scores", "sparse_space", "sparse_top"]
