"""Sparse nearest search: exact dot products over the query's terms, from the inverted index.

Qdrant's semantics (its local mode, ``qdrant_client/local``): a point scores the dot product over
the terms it shares with the query; a point sharing no term is not a hit at all (local mode gives it
``-inf`` and skips it), even where a shared term's product is 0 it is one. With ``modifier: idf``
each query weight is multiplied by ``ln((N - df + 0.5) / (df + 0.5) + 1)``, where ``N`` counts the
live points holding a vector of that space and ``df`` those of them holding the term.

Everything is array work over posting lists: one ``searchsorted`` per segment, one slice per
(segment, query term), then ``bincount`` (large candidate sets) or a sort (small ones) to sum.
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


def _scored(
    state: CollectionState, view: ReadView, using: Optional[str], query: Any, mask: Optional[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(internal ids ascending, float32 scores) of every live point sharing a term with ``query``,
    restricted to ``mask`` (bool over internal ids ``< view.n``; None: no filter)."""
    space = sparse_space(state, using)
    terms, weights = prepare_sparse(query, "query")
    index = _index(state, space, view)
    none = np.zeros(0, np.int64), np.zeros(0, np.float32)
    if not len(terms):
        return none
    which, iids, stored = index.gather(terms)
    n = view.n
    if len(iids) and int(iids.max()) >= n:  # postings of writes after this view
        inside = iids < n
        which, iids, stored = which[inside], iids[inside], stored[inside]
    live = view.alive[iids]
    if not live.all():
        which, iids, stored = which[live], iids[live], stored[live]
    q = weights.astype(np.float64)
    if space.idf:
        df = np.bincount(which, minlength=len(terms))
        docs = index.docs(view.seq, view.alive, n)
        q = q * np.log((docs - df + 0.5) / (df + 0.5) + 1.0)
    if mask is not None and len(iids):
        keep = mask[iids]
        which, iids, stored = which[keep], iids[keep], stored[keep]
    if not len(iids):
        return none
    contrib = stored.astype(np.float64) * q[which]
    if len(iids) * 16 >= n:  # many postings: sum by id in one pass over an array of the view's size
        sums = np.bincount(iids, weights=contrib)
        hit = np.bincount(iids) > 0
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
    ids, scores = _scored(state, view, using, query, mask)
    if not len(ids) or k <= 0:
        return []
    if len(ids) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth  # every tie of the k-th score, so that the lower ids win below
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return list(zip(scores[order].tolist(), ids[order].tolist(), strict=True))


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
    if not len(iids):
        return out
    mask = np.zeros(view.n, dtype=bool)
    mask[iids] = True
    ids, scores = _scored(state, view, using, query, mask)
    if len(ids):
        pos = np.searchsorted(ids, iids)
        pos = np.minimum(pos, len(ids) - 1)
        found = ids[pos] == iids
        out[found] = scores[pos[found]]
    return out


def sparse_has_vector(state: CollectionState, view: ReadView, iid: int, name: str) -> Optional[bool]:
    """Whether point ``iid`` (of ``view``) holds the sparse vector ``name``; None if no sparse space has that name."""
    space = sparse_space_by_name(state.sparse_spaces, name)
    if space is None:
        return None
    index = state.sparse[space.index]
    return iid < min(view.n, index.n) and bool(index.present[iid])


__all__ = ["sparse_has_vector", "sparse_scores", "sparse_space", "sparse_top"]
