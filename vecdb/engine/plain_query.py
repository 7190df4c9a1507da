"""The plain nearest query, answered without the query planner's stage machinery.

Most queries an application sends are the same shape: one dense vector, top-``limit``, maybe a
filter (by user, agent, session), maybe ``hnsw_ef``, with or without payloads. Through the
general path (:mod:`vecdb.engine.plans`, the stage and batch grouping of
:mod:`vecdb.engine.read`) such a query builds a plan, a batch group and per-stage records: tens of
microseconds of Python around a search that itself takes well under a millisecond. Here the same
query calls :func:`vecdb.engine.planner.search` (the one place that chooses exact scan or index,
masks, widens and merges fresh rows) directly; and when nothing needs choosing (no filter, every
row in the index, nothing to re-rank) it goes straight to the index.

It is a shortcut, not a second engine: a request of any other shape (prefetch, MMR, a query by
id, text, sparse vectors, ``explain``, payload selectors, vectors) returns None from
:func:`answer` before anything is read, and the general path runs, so every refusal and every
unusual plan keeps one implementation. Results are the general path's, hit for hit
(``tests/engine/test_plain_query.py`` compares both on generated collections).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from vecdb.engine import planner
from vecdb.engine.output import nothing_stored_wanted
from vecdb.engine.planner import AnnState
from vecdb.engine.settings import DEFAULT_VECTOR, VectorSpace
from vecdb.engine.views import ReadView, prepare_query
from vecdb.index.distance import higher_is_better, metric_of
from vecdb.models.collections import Distance
from vecdb.models.query import QueryResponse

if TYPE_CHECKING:
    from vecdb.engine.mvcc import ReadOnDemand
    from vecdb.engine.read import Reader
    from vecdb.models.query import QueryRequest


def is_plain(req: QueryRequest) -> bool:
    """A request this module may answer: one dense vector (array or list of numbers), with any of
    ``using``, ``filter``, ``params``, ``limit``, ``offset``, ``score_threshold`` and a whole-payload
    ``with_payload``."""
    query = req.query
    if isinstance(query, np.ndarray):
        if query.ndim != 1 or query.dtype.kind not in "fiu":
            return False
    elif not (isinstance(query, list) and query and type(query[0]) in (float, int)):
        return False
    return (
        req.prefetch is None
        and req.lookup_from is None
        and not req.explain
        and (req.with_payload is None or type(req.with_payload) is bool)
        and (req.with_vector is None or req.with_vector is False)
    )


def answer(reader: Reader, req: QueryRequest) -> Optional[QueryResponse]:
    """The response to ``req`` (see :func:`is_plain`), or None: run the general path."""
    state = reader.state
    name = req.using or DEFAULT_VECTOR
    for space in state.spaces:
        if space.name == name:
            break
    else:
        return None  # (the general path names the missing vector)
    if len(req.query) != space.size:  # type: ignore[arg-type]
        return None
    state.limits.check_results(req.limit, req.offset, "limit")
    vector = prepare_query(np.asarray(req.query, dtype=np.float32), space, "query")
    knobs = reader.planner.knobs(req, state.settings, state.search_device)
    depth = req.offset + req.limit
    output = reader.output

    def body(view: ReadView, on_demand: ReadOnDemand) -> QueryResponse:
        ann = state.ann.get(space.index)
        hits = None
        if req.filter is None and ann is not None and not knobs.exact:
            hits = _indexed_hits(view, space, ann, vector, depth, knobs)
        if hits is None:
            mask = reader.filter_mask(on_demand, req.filter, view)
            hits = planner.search(view, space, ann, vector[None, :], depth, mask, knobs, planner.Explain())[0]
        hits = trim(hits, req.offset, req.score_threshold, space.distance)
        points = output.scored_hits(on_demand.txn, view, hits, req.with_payload, False)
        return QueryResponse(points=points)

    response: QueryResponse = state.mvcc.read(body, not nothing_stored_wanted(req.with_payload))
    return response


def _indexed_hits(
    view: ReadView, space: VectorSpace, ann: AnnState, vector: np.ndarray, k: int, knobs: planner.SearchKnobs
) -> Optional[list[tuple[float, int]]]:
    """The top ``k`` from the index alone, when it alone decides them: every row indexed, no tombstone
    starving the graph; else None. A graph over quantized codes (``hnsw_sq``) has its candidates
    re-ranked from the float32 rows as the planner re-ranks them (``rescore``); IVF-PQ takes the
    planner's path."""
    index = ann.index
    if ann.covered < view.n or (index.quantized and (knobs.ignore_quantization or not index.allows_by_position)):
        return None
    mask, dead = ann.tombstones(view)
    probe = index.probe(k, knobs, 1.0)
    dists, ids = index.search(vector[None, :], probe.fetch, probe.breadth, mask, knobs.device)
    id_row: list[int] = ids[0].tolist()
    if len(id_row) - id_row.count(-1) < min(k, index.ntotal - dead):
        return None  # the tombstones starved the graph: the planner widens the search
    if index.quantized and knobs.rescore:
        return planner.rescore(view, space, vector, np.asarray([i for i in id_row if i >= 0], dtype=np.int64), k)
    from_raw = metric_of(space.distance).from_raw
    scores: list[float] = (dists[0] if from_raw is None else from_raw(dists[0])).tolist()
    return [(s, i) for s, i in zip(scores, id_row, strict=True) if i >= 0][:k]


def trim(
    hits: list[tuple[float, int]], offset: int, threshold: Optional[float], distance: Distance
) -> list[tuple[float, int]]:
    """A stage's best ``hits`` after its ``offset`` and ``score_threshold`` (strictly better than it)."""
    hits = hits[offset:]
    if threshold is not None:
        if higher_is_better(distance):
            return [(s, i) for s, i in hits if s > threshold]
        return [(s, i) for s, i in hits if s < threshold]
    return hits


__all__ = ["answer", "is_plain", "trim"]
