"""Multivector (late-interaction, ColBERT-style) search: exact MaxSim over rows kept in LMDB.

Qdrant's semantics (its local mode, ``qdrant_client/local/multi_distances.py``): a query matrix ``Q``
scores a point's matrix ``D`` by ``sum over q in Q of max over d in D of sim(q, d)``, where ``sim`` is
the space's similarity as Qdrant computes it inside (Cosine and Dot: the dot product of rows normalised
at write time; Euclid: minus the squared distance; Manhattan: minus the L1 distance). The score shown
is that sum, except Euclid (``sqrt(|sum|)``) and Manhattan (``|sum|``), which rank smaller first.

Why no index: a multivector's rows are many per point (ColBERT: one per token), so they would cost
many times a dense space's memory, and their usual role is re-scoring a dense prefetch's few hundred
candidates, where an exact MaxSim is cheap. So the rows stay in LMDB's ``multi`` table, read in the
query's own transaction (consistent with its view by the read protocol); a root query scans the
space's range once (one cursor walk, scored in chunks of one BLAS product each); a re-score stage
fetches its candidates' rows by key. ``explain`` reports how many points and rows were compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.settings import MultiSpace, multi_space_by_name
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView, prepare_multi
from vecdb.errors import InvalidInput
from vecdb.models.collections import Distance
from vecdb.storage.points import PointsTables

CHUNK_ROWS = 65536
"""Stored rows scored per BLAS product (bounds the ``query rows x CHUNK_ROWS`` similarity block)."""
FETCH_BY_KEY = 8
"""A filter keeping at most ``view.n / FETCH_BY_KEY`` points fetches their rows by key; more walk the range."""
_MANHATTAN_CELLS = 1 << 22
"""Manhattan has no product form: its ``query rows x stored rows x size`` differences go in blocks of this many."""


@dataclass
class MultiCost:
    """What a MaxSim search compared (``explain``)."""

    points: int = 0
    rows: int = 0
    query_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": "exact_maxsim",
            "points_scored": self.points,
            "stored_rows": self.rows,
            "query_rows": self.query_rows,
            "row_comparisons": self.points and self.rows * self.query_rows,
        }


def multi_space(state: CollectionState, using: Optional[str]) -> Optional[MultiSpace]:
    """The multivector space ``using`` names, or None when it names another kind (or nothing)."""
    return multi_space_by_name(state.multi_spaces, using)


def prepare_multi_query(query: Any, space: MultiSpace, field: str = "query") -> np.ndarray:
    """A query matrix validated as a stored one (Cosine rows normalised)."""
    return prepare_multi(query, space, field)


def stored_query(tables: PointsTables, txn: Any, iid: int, space: MultiSpace, point: Any) -> np.ndarray:
    """The matrix of the stored point ``iid`` for a query by id (InvalidInput when it has none)."""
    found = tables.get_multi(txn, iid, space.index, space.size)
    if found is None:
        raise InvalidInput(f"query: point {point} has no vector named {space.name!r}")
    return found


def maxsim(query: np.ndarray, rows: np.ndarray, starts: np.ndarray, distance: Distance) -> np.ndarray:
    """The internal MaxSim (higher is better, float64) of each stored matrix: ``rows`` are the matrices'
    rows one after another, ``starts`` where each matrix begins. (Stored rows by query rows: the maxima
    then run down contiguous rows, measured 1.6x faster than the transposed product.)"""
    if distance == Distance.MANHATTAN:
        sims = _manhattan(query, rows)
    else:
        sims = rows @ query.T  # [stored rows, query rows], float32 BLAS
        if distance == Distance.EUCLID:
            q2 = np.einsum("ij,ij->i", query, query)
            r2 = np.einsum("ij,ij->i", rows, rows)
            sims = 2 * sims - r2[:, None] - q2[None, :]
    best = np.maximum.reduceat(sims, starts, axis=0)
    return best.sum(axis=1, dtype=np.float64)  # type: ignore[no-any-return]


def _manhattan(query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.empty((len(rows), len(query)), dtype=np.float32)
    step = max(1, _MANHATTAN_CELLS // max(1, len(query) * rows.shape[1]))
    for lo in range(0, len(rows), step):
        block = rows[lo : lo + step]
        out[lo : lo + step] = -np.abs(block[:, None, :] - query[None, :, :]).sum(axis=-1)
    return out


def shown(internal: np.ndarray, distance: Distance) -> np.ndarray:
    """Scores as Qdrant shows them: Euclid ``sqrt(|sum|)``, Manhattan ``|sum|``, the sum otherwise."""
    if distance == Distance.EUCLID:
        return np.sqrt(np.abs(internal))
    if distance == Distance.MANHATTAN:
        return np.abs(internal)
    return internal


def chunks(
    tables: PointsTables, txn: Any, view: ReadView, space: MultiSpace, mask: Optional[np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(internal ids, rows, starts)`` of every live point of ``view`` holding a vector of ``space`` that
    ``mask`` allows (bool over internal ids ``< view.n``; None: every point), about :data:`CHUNK_ROWS`
    rows at a time: each point's matrix is ``rows[starts[j]:starts[j + 1]]``."""
    n, alive = view.n, view.alive
    if mask is not None and np.count_nonzero(mask) * FETCH_BY_KEY <= n:
        wanted = np.flatnonzero(mask[:n] & alive[:n]).tolist()
        source: Any = tables.multi_of(txn, space.index, wanted)
    else:
        source = tables.multi_scan(txn, space.index)
    iids: list[int] = []
    raws: list[bytes] = []
    held = 0
    width = space.size * 4

    def chunk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = np.fromiter((len(r) // width for r in raws), dtype=np.int64, count=len(raws))
        rows = np.frombuffer(b"".join(raws), dtype="<f4").reshape(-1, space.size)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        return np.asarray(iids, dtype=np.int64), rows, starts

    for iid, raw in source:
        if iid >= n or not alive[iid] or (mask is not None and not mask[iid]):
            continue
        iids.append(iid)
        raws.append(raw)
        held += len(raw) // width
        if held >= CHUNK_ROWS:
            yield chunk()
            iids, raws, held = [], [], 0
    if iids:
        yield chunk()


def _scored(
    tables: PointsTables,
    txn: Any,
    view: ReadView,
    space: MultiSpace,
    query: np.ndarray,
    mask: Optional[np.ndarray],
    cost: MultiCost,
) -> tuple[np.ndarray, np.ndarray]:
    """(internal ids ascending, internal MaxSim) of every point :func:`chunks` yields."""
    ids_out: list[np.ndarray] = []
    sims_out: list[np.ndarray] = []
    for iids, rows, starts in chunks(tables, txn, view, space, mask):
        sims_out.append(maxsim(query, rows, starts, space.distance))
        ids_out.append(iids)
        cost.points += len(iids)
        cost.rows += len(rows)
    cost.query_rows = len(query)
    if not ids_out:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    return np.concatenate(ids_out), np.concatenate(sims_out)


def multi_top(
    state: CollectionState,
    view: ReadView,
    reader: ReadOnDemand,
    space: MultiSpace,
    query: np.ndarray,
    k: int,
    mask: Optional[np.ndarray],
    threshold: Optional[float] = None,
    cost: Optional[MultiCost] = None,
) -> list[tuple[float, int]]:
    """The ``k`` best ``(shown score, internal id)`` by MaxSim, best first, ties by lower internal id;
    ``threshold`` keeps scores better than it (above; below for Euclid and Manhattan)."""
    cost = cost if cost is not None else MultiCost()
    if k <= 0:
        return []
    ids, sims = _scored(state.tables, reader.txn(), view, space, query, mask, cost)
    if not len(ids):
        return []
    scores = shown(sims, space.distance)
    if threshold is not None:
        keep = scores > threshold if _bigger_first(space.distance) else scores < threshold
        ids, sims, scores = ids[keep], sims[keep], scores[keep]
    if len(ids) > k:  # the k best and whatever ties the k-th, so that ties go to the lower id
        kth = sims[np.argpartition(-sims, k - 1)[k - 1]]
        keep = sims >= kth
        ids, sims, scores = ids[keep], sims[keep], scores[keep]
    order = np.lexsort((ids, -sims))[:k]
    return [(float(scores[j]), int(ids[j])) for j in order.tolist()]


def _bigger_first(distance: Distance) -> bool:
    return distance not in (Distance.EUCLID, Distance.MANHATTAN)


__all__ = ["MultiCost", "chunks", "maxsim", "multi_space", "multi_top", "prepare_multi_query", "shown", "stored_query"]
