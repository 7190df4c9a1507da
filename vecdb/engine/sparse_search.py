"""Sparse nearest search: exact dot products over the query's terms, from the inverted index.

Qdrant's semantics (its local mode, ``qdrant_client/local``): a point scores the dot product over
the terms it shares with the query; a point sharing no term is not a hit at all (local mode gives it
``-inf`` and skips it), even where a shared term's product is 0 it is one. With ``modifier: idf``
each query weight is multiplied by ``ln((N - df + 0.5) / (df + 0.5) + 1)``, where ``N`` counts the
live points holding a vector of that space and ``df`` those of them holding the term.

A query's top k comes from one compiled call over the inverted index
(:meth:`~vecdb.index.sparse.InvertedIndex.top`, :mod:`vecdb.index.sparse_kernels`); re-scoring a
prefetch's candidates is array work over the posting lists (one ``searchsorted`` per segment, one
slice per segment and query term).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand, StaleRead
from vecdb.engine.settings import SparseSpace, sparse_space_by_name
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView, prepare_sparse
from vecdb.errors import InvalidInput
from vecdb.index.sparse import InvertedIndex
from vecdb.models.points import SparseVector

Ranges = list[tuple[int, np.ndarray, np.ndarray, float]]
"""(query-term position, iids ascending, stored weights, largest weight) of each posting list a query touches."""

DENSE_FROM = 32
"""Re-scoring: postings of at least ``view.n / DENSE_FROM`` are summed by id over an array of the
view's size (one C loop, no sort); fewer are sorted by id instead (measured: the two cost the same at
about n / 32 postings, on 50k and 100k documents)."""


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
    space = sparse_space(state, using)
    terms, weights = prepare_sparse(query, "query")
    index = _index(state, space, view)
    if not len(terms) or k <= 0:
        return []
    n = view.n
    docs = index.docs(view.seq, view.alive, n)
    some_dead = docs < index.holders(n)  # otherwise every posting below n is a live point's
    ids, scores = index.top(terms, weights, n, k, view.alive, some_dead, mask, docs if space.idf else None)
    return list(zip(scores.tolist(), ids.tolist(), strict=True))


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


def sparse_holders(state: CollectionState, view: ReadView, using: Optional[str]) -> np.ndarray:
    """Bool over internal ids ``< view.n``: the point holds a vector of the sparse space ``using`` (dead
    points included: a caller masks them)."""
    index = state.sparse[sparse_space(state, using).index]
    out = np.zeros(view.n, dtype=bool)
    upto = min(view.n, index.n)
    out[:upto] = index.present[:upto]
    return out


def sparse_row_scores(
    state: CollectionState, view: ReadView, reader: ReadOnDemand, using: Optional[str], row: Any, iids: np.ndarray
) -> np.ndarray:
    """:func:`sparse_scores` of a validated sparse row, 0 where no term is shared (the core similarity of
    recommend, discover and context, local mode's ``empty_is_zero``)."""
    query = SparseVector.model_construct(indices=row[0].tolist(), values=row[1].tolist())
    return np.nan_to_num(sparse_scores(state, view, reader, using, query, iids), nan=0.0)  # type: ignore[no-any-return]


def sparse_has_vector(state: CollectionState, view: ReadView, iid: int, name: str) -> Optional[bool]:
    """Whether point ``iid`` (of ``view``) holds the sparse vector ``name``; None if no sparse space has that name."""
    space = sparse_space_by_name(state.sparse_spaces, name)
    if space is None:
        return None
    index = state.sparse[space.index]
    return iid < min(view.n, index.n) and bool(index.present[iid])


__all__ = [
    "sparse_has_vector",
    "sparse_holders",
    "sparse_row_scores",
    "sparse_scores",
    "sparse_space",
    "sparse_top",
]
