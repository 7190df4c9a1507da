"""Filtered top-k planning: exact scan of the candidates, or the HNSW graph restricted to them.

A graph restricted to a small allow-list loses its neighbours and its recall
collapses, while an exact scan of a small candidate set is both exact and
fast; past a size the graph wins. The crossover is expressed in bytes scanned
(Qdrant's ``full_scan_threshold``, in KB) because it moves with dimension.

Points not yet in the graph ("fresh": internal ids at or above the index's
watermark) are always scanned exactly and merged, so a point is findable the
moment its upsert returns. Every returned score is recomputed from the stored
float32 rows, so the graph and the scan rank by the same numbers and ties break
by the lower internal id, as in the exact path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vecdb.engine.settings import DEFAULT_HNSW, VectorSpace
from vecdb.engine.views import ReadView
from vecdb.index.base import DenseIndex, kind_of
from vecdb.index.distance import metric_of
from vecdb.index.flat import exact_search

DEFAULT_EF = 256
"""Search beam when a query gives no ``hnsw_ef``: ``max(DEFAULT_EF, ef_construct)``. The smallest ef of
32..512 reaching recall@10 0.95 on sift5k (0.965; 0.948 at 192), glove50 100k (0.999) and 384-d
clustered data (1.000), m=16 (``python -m benchmarks ef-default``). Qdrant uses ``ef_construct``
(100): 0.89 on sift5k; embedding-like data reaches 0.99 at 100, 2.3x faster than at 256."""
MIN_GRAPH_SELECTIVITY = 0.01
"""A filter keeping fewer points than this share is scanned exactly however large the collection:
forced onto the graph, 100k x 128 gave recall@10 of 0.85 at 0.1% and 0.97 at 0.5% (0.99 at 1%)."""
_SELECTIVITY_BOOST = 0.3
"""Below this fraction of allowed points, ef (or nprobe) grows as 0.3 / selectivity (at most 8x)."""


_FILTERED_KEPT = 8
"""Filter masks whose derived allow-lists one published index keeps (each about 2 bytes per point)."""
GATHERED_BYTES = 8 << 20
"""The most float32 row bytes one kept filter holds gathered for its exact scans."""


class FilteredRows:
    """One filter's allowed rows of one space and view, and what the search needs of them; read-only,
    shared by concurrent queries (each field is worked out at most once, on first use)."""

    def __init__(self, allowed: np.ndarray, index: DenseIndex) -> None:
        allowed.flags.writeable = False
        self.allowed = allowed
        self.candidates = int(np.count_nonzero(allowed))
        self._index = index
        self._rows: Optional[np.ndarray] = None
        self._in_index: Optional[tuple[np.ndarray, int]] = None
        self._gathered: Any = None  # None: not worked out; False: not kept (too many rows)

    @property
    def rows(self) -> np.ndarray:
        """The allowed internal ids, ascending (an exact scan gathers them)."""
        if self._rows is None:
            rows = np.flatnonzero(self.allowed)
            rows.flags.writeable = False
            self._rows = rows
        return self._rows

    def gathered(self, matrix: np.ndarray, sq_norms: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The allowed rows of ``matrix`` (and their squared norms) gathered contiguously, with their
        internal ids, when they are few (a third of the points at most, :data:`GATHERED_BYTES` at most):
        an exact scan of a selective filter then reads them without gathering them again per query."""
        if self._gathered is None:
            rows = self.rows
            n = len(self.allowed)
            if not len(rows) or len(rows) * 3 >= n or len(rows) * matrix.shape[1] * 4 > GATHERED_BYTES:
                self._gathered = False
            else:
                self._gathered = (matrix[rows], sq_norms[rows], rows)
        return self._gathered or None

    @property
    def in_index(self) -> tuple[np.ndarray, int]:
        """The allow-list over the index's positions, and how many it allows."""
        if self._in_index is None:
            in_index = self.allowed[self._index.labels]
            in_index.flags.writeable = False
            self._in_index = (in_index, int(np.count_nonzero(in_index)))
        return self._in_index


@dataclass(frozen=True)
class AnnState:
    """A published ANN index (any registered kind) of one vector space and the internal-id watermark it covers.

    Every live vector with an internal id below ``covered`` is in ``index``;
    those at or above it are fresh. Replaced as a whole, never changed.
    """

    index: DenseIndex
    covered: int
    _tombstones: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)
    _filtered: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def dead_count(self, snap: ReadView) -> int:
        """Deleted points the index still holds (see :meth:`tombstones`)."""
        return self.tombstones(snap)[1]

    def filtered(self, snap: ReadView, space: int, filter_mask: np.ndarray) -> FilteredRows:
        """What a kept (read-only) filter mask means for ``space`` of ``snap`` and for this index, worked
        out once per mask: the mask cache hands the same array to every query with the same filter, so a
        filter repeated on every query (a user, a tenant) costs no pass over the collection after the first."""
        key = (id(filter_mask), space)
        cached = self._filtered.get(key)
        if cached is not None and cached[0] is filter_mask and cached[1] is snap:
            return cached[2]  # type: ignore[no-any-return]
        allowed = snap.live(space)
        allowed &= filter_mask
        rows = FilteredRows(allowed, self.index)
        if len(self._filtered) >= _FILTERED_KEPT:
            self._filtered.clear()
        self._filtered[key] = (filter_mask, snap, rows)
        return rows

    def tombstones(self, snap: ReadView) -> tuple[Optional[np.ndarray], int]:
        """The allow-list that hides deleted points, in the index's own id space (positions for kinds that
        allow by position, such as HNSW; else internal ids; None when none are deleted), and how many
        are deleted. Computed once per read view (writes publish a new one), not per query."""
        cached = self._tombstones.get(id(snap))
        if cached is not None and cached[0] is snap:
            return cached[1], cached[2]
        return self._tombstone_state(snap)

    def _tombstone_state(self, snap: ReadView) -> tuple[Optional[np.ndarray], int]:
        live = snap.alive[self.index.labels]
        dead = int(len(live) - np.count_nonzero(live))
        mask: Optional[np.ndarray] = None
        if dead:
            mask = live if self.index.allows_by_position else snap.alive[: snap.n].copy()
        self._tombstones.clear()
        self._tombstones[id(snap)] = (snap, mask, dead)
        return mask, dead


@dataclass
class Explain:
    """What the planner chose and what each stage cost (returned when a query asks)."""

    plan: str = "exact"
    reason: str = ""
    candidates: int = 0
    indexed: int = 0
    fresh_scanned: int = 0
    ef: Optional[int] = None
    nprobe: Optional[int] = None
    rescored: int = 0
    widenings: int = 0
    fallback: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "reason": self.reason,
            "candidates": self.candidates,
            "indexed_vectors": self.indexed,
            "fresh_scanned": self.fresh_scanned,
            "ef": self.ef,
            "nprobe": self.nprobe,
            "candidates_rescored": self.rescored,
            "widenings": self.widenings,
            "fallback_to_exact": self.fallback,
            "timings_ms": {k: round(v, 4) for k, v in self.timings_ms.items()},
        }


@dataclass(frozen=True)
class SearchKnobs:
    """The query's ``params`` and the collection's HNSW settings that steer the plan."""

    exact: bool = False
    hnsw_ef: Optional[int] = None
    ef_default: int = DEFAULT_EF
    full_scan_threshold_kb: int = DEFAULT_HNSW["full_scan_threshold"]
    nprobe: Optional[int] = None
    oversampling: Optional[float] = None
    rescore: bool = True
    ignore_quantization: bool = False
    device: str = "cpu"
    index_type: str = "hnsw"


def search(
    snap: ReadView,
    space: VectorSpace,
    ann: Optional[AnnState],
    queries: np.ndarray,
    k: int,
    filter_mask: Optional[np.ndarray],
    knobs: SearchKnobs,
    explain: Explain,
) -> list[list[tuple[float, int]]]:
    """Per query (rows of ``queries``, one shared filter), the top-``k`` ``(score, internal id)``, best first.

    A batch goes through one BLAS product (exact plan) or one faiss call (graph plan).
    """
    n = snap.n
    data = snap.spaces[space.index]
    if filter_mask is None and ann is not None and not knobs.exact and not _codes_ignored(ann, knobs):
        # Unfiltered graph search: no full-length mask is needed, just the fresh rows'.
        explain.candidates = data.live
        return _graph(snap, space, ann, queries, k, None, False, knobs, explain)
    allowed: Optional[np.ndarray] = None  # None: every row below n is a live vector of this space
    kept: Optional[FilteredRows] = None
    if filter_mask is not None and ann is not None and not filter_mask.flags.writeable:
        kept = ann.filtered(snap, space.index, filter_mask)  # (a mask the mask cache keeps: derived once)
        allowed = kept.allowed
        explain.candidates = kept.candidates
    else:
        if filter_mask is not None or data.live != n:
            allowed = snap.live(space.index)
            if filter_mask is not None:
                allowed &= filter_mask
        explain.candidates = n if allowed is None else int(np.count_nonzero(allowed))
    bytes_to_scan = explain.candidates * space.size * 4
    reason = _exact_reason(ann, knobs, filter_mask is not None, bytes_to_scan, space, explain.candidates, data.live)
    if reason:
        explain.plan, explain.reason = "exact", reason
        t0 = time.perf_counter()
        hits = _exact(snap, space, queries, k, allowed, kept)
        explain.timings_ms["exact_scan"] = (time.perf_counter() - t0) * 1e3
        return hits
    assert ann is not None
    return _graph(snap, space, ann, queries, k, allowed, filter_mask is not None, knobs, explain, kept)


def _codes_ignored(ann: Optional[AnnState], knobs: SearchKnobs) -> bool:
    """``params.quantization.ignore`` on a quantized index (IVF-PQ): its codes are not to be used at all."""
    return knobs.ignore_quantization and ann is not None and ann.index.quantized


def _exact_reason(
    ann: Optional[AnnState],
    knobs: SearchKnobs,
    filtered: bool,
    bytes_to_scan: int,
    space: VectorSpace,
    candidates: int,
    total: int,
) -> str:
    if knobs.exact:
        return "params.exact"
    if _codes_ignored(ann, knobs):
        return "params.quantization.ignore (IVF-PQ codes not used)"
    if ann is None:
        if not metric_of(space.distance).indexable:
            return f"{space.distance.value} is always exact"
        kind = knobs.index_type
        return f"index type {kind}: every search is exact" if not kind_of(kind).ann else "no index yet"
    if filtered and bytes_to_scan <= knobs.full_scan_threshold_kb * 1024:
        return "candidates below full_scan_threshold"
    if filtered and candidates < MIN_GRAPH_SELECTIVITY * total:
        return "filter keeps under 1% of the points (the graph's recall would collapse)"
    return ""


def _exact(
    snap: ReadView,
    space: VectorSpace,
    queries: np.ndarray,
    k: int,
    allowed: Optional[np.ndarray],
    kept: Optional[FilteredRows] = None,
) -> list[list[tuple[float, int]]]:
    data = snap.spaces[space.index]
    n = snap.n
    gathered = None if kept is None else kept.gathered(data.matrix, data.sq_norms)
    if gathered is not None:  # a repeated selective filter: its rows were gathered once
        matrix, sq_norms, rows = gathered
        scores, found = exact_search(matrix, queries, k, space.distance, None, sq_norms)
        iids = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    else:
        scores, iids = exact_search(
            data.matrix[:n], queries, k, space.distance, allowed, data.sq_norms[:n], None if kept is None else kept.rows
        )
    return [
        [(s, i) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
        for row_s, row_i in zip(scores.tolist(), iids.tolist(), strict=True)
    ]


def _graph(
    snap: ReadView,
    space: VectorSpace,
    ann: AnnState,
    queries: np.ndarray,
    k: int,
    allowed: Optional[np.ndarray],
    filtered: bool,
    knobs: SearchKnobs,
    explain: Explain,
    kept: Optional[FilteredRows] = None,
) -> list[list[tuple[float, int]]]:
    """ANN search (any kind: HNSW graph, IVF-PQ lists) restricted to ``allowed``, merged with an exact scan
    of the fresh rows; widened, then exact, for queries whose allow-list starved the index."""
    index, covered = ann.index, ann.covered
    nq = len(queries)
    explain.indexed = index.ntotal
    t0 = time.perf_counter()
    boost = 1.0
    if filtered:
        assert allowed is not None
        if kept is not None:
            in_index, allowed_in_index = kept.in_index
        else:
            in_index = allowed[index.labels]
            allowed_in_index = int(np.count_nonzero(in_index))
        selectivity = max(allowed_in_index / index.ntotal, 1e-9) if index.ntotal else 1.0
        if selectivity < _SELECTIVITY_BOOST:
            boost = min(8.0, _SELECTIVITY_BOOST / selectivity)
        mask: Optional[np.ndarray] = in_index if index.allows_by_position else allowed
    else:
        mask, dead = ann.tombstones(snap)
        allowed_in_index = index.ntotal - dead
    probe = index.probe(k, knobs, boost)
    explain.plan = index.kind
    timings = explain.timings_ms
    t1 = time.perf_counter()
    timings["allow_list"] = (t1 - t0) * 1e3

    # Fresh points: exact scan of the rows the index does not hold yet.
    fresh: Optional[np.ndarray] = None
    if covered < snap.n:
        fresh_allowed = snap.live(space.index, covered) if allowed is None else allowed[covered:]
        explain.fresh_scanned = int(np.count_nonzero(fresh_allowed))
        if explain.fresh_scanned:
            data = snap.spaces[space.index]
            _, rows = exact_search(
                data.matrix[covered : snap.n],
                queries,
                k,
                space.distance,
                fresh_allowed,
                data.sq_norms[covered : snap.n],
            )
            fresh = np.where(rows >= 0, rows + covered, -1)
    t0 = time.perf_counter()
    timings["fresh_scan"] = (t0 - t1) * 1e3

    want = min(k, allowed_in_index)
    used = probe.breadth
    if want:
        dists, ids = index.search(queries, probe.fetch, used, mask, knobs.device)
        id_rows = ids.tolist()  # (plain lists from here: ten hits cost less in Python than in numpy calls)
        short = [len(row) - row.count(-1) < want for row in id_rows]  # (ids are >= 0, or -1 for none)
        while any(short) and used < probe.max_breadth:
            used = min(probe.max_breadth, used * 4)  # the allow-list cut the index's reach: widen
            explain.widenings += 1
            redo = np.flatnonzero(short)
            d2, i2 = index.search(queries[redo], probe.fetch, used, mask, knobs.device)
            dists[redo], ids[redo] = d2, i2
            id_rows = ids.tolist()
            short = [len(row) - row.count(-1) < want for row in id_rows]
    else:
        dists = np.zeros((nq, 0), dtype=np.float32)
        ids = np.full((nq, 0), -1, dtype=np.int64)
        id_rows, short = [[] for _ in range(nq)], [False] * nq
    if index.breadth_name:
        setattr(explain, index.breadth_name, used)  # ef, nprobe
    t1 = time.perf_counter()
    timings[index.search_stage] = (t1 - t0) * 1e3
    if any(short):
        # Still short after widening: scan the allowed indexed rows exactly for those queries.
        explain.fallback = True
        index_allowed = snap.live(space.index) if allowed is None else allowed.copy()
        index_allowed[covered:] = False
        redo = np.flatnonzero(short)
        data = snap.spaces[space.index]
        _, exact_ids = exact_search(
            data.matrix[: snap.n], queries[redo], k, space.distance, index_allowed, data.sq_norms[: snap.n]
        )
        ids = np.full((nq, max(ids.shape[1], k)), -1, dtype=np.int64) if ids.shape[1] < k else ids.copy()
        ids[redo] = -1
        ids[redo, :k] = exact_ids
        t0 = time.perf_counter()
        timings["fallback_scan"] = (t0 - t1) * 1e3
        t1 = t0

    out = []
    as_is = fresh is None and (not index.quantized or not knobs.rescore)
    if as_is:
        from_raw = metric_of(space.distance).from_raw  # faiss's squared L2 -> Qdrant's distance
        dist_rows = (dists if from_raw is None else from_raw(dists)).tolist()
    for qi in range(nq):
        if as_is and not short[qi]:
            # The index's own scores rank the answer (no merge, or re-ranking not asked for).
            out.append([(d, i) for d, i in zip(dist_rows[qi], id_rows[qi], strict=True) if i >= 0][:k])
            continue
        cand = ids[qi] if fresh is None else np.concatenate([ids[qi], fresh[qi]])
        cand = cand[cand >= 0]
        explain.rescored += len(cand)
        out.append(rescore(snap, space, queries[qi], cand, k))
    timings["rescore"] = (time.perf_counter() - t1) * 1e3
    return out


def rescore(snap: ReadView, space: VectorSpace, query: np.ndarray, iids: np.ndarray, k: int) -> list[tuple[float, int]]:
    """Exact float32 scores of a few candidates, best ``k`` first, ties to the lower id."""
    if not len(iids):
        return []
    iids = np.unique(iids)
    metric = metric_of(space.distance)
    scores = metric.scores(snap.spaces[space.index].matrix[iids], query)
    order = np.lexsort((iids, -scores if metric.higher_is_better else scores))[:k]
    return [(float(scores[j]), int(iids[j])) for j in order]
