"""The plain nearest query, answered without the planner.

Most queries an application sends are the same shape: one dense vector, top-``limit``, no filter,
no prefetch, maybe ``hnsw_ef``, with or without payloads. Through the general path
(:mod:`vecdb.engine.plans`, :mod:`vecdb.engine.planner`) such a query builds a plan, a mask, an
explain record and per-stage timings: tens of microseconds of Python around an index search that
itself takes under a hundred at a modest ``ef``. Here the same query goes straight to the index.

It is a shortcut, not a second engine: whenever anything is not the common case (the request's
shape, fresh rows the index does not cover yet, a quantized index, an allow-list that starved the
graph) :func:`answer` returns None before doing anything visible and the general path runs, so
every refusal and every unusual plan keeps one implementation. Results are the general path's,
hit for hit (``tests/engine/test_plain_query.py`` compares both on generated collections).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from vecdb.engine.output import nothing_stored_wanted
from vecdb.engine.settings import DEFAULT_VECTOR
from vecdb.engine.views import ReadView, prepare_query
from vecdb.index.distance import metric_of
from vecdb.models.query import QueryResponse

if TYPE_CHECKING:
    from vecdb.engine.mvcc import ReadOnDemand
    from vecdb.engine.read import Reader
    from vecdb.models.query import QueryRequest


def is_plain(req: QueryRequest) -> bool:
    """A request this module may answer: one dense vector (array or list of numbers), nothing else
    but ``using``, ``limit``, ``hnsw_ef`` and a whole-payload ``with_payload``."""
    query = req.query
    if isinstance(query, np.ndarray):
        if query.ndim != 1 or query.dtype.kind not in "fiu":
            return False
    elif not (isinstance(query, list) and query and type(query[0]) in (float, int)):
        return False
    params = req.params
    return (
        req.prefetch is None
        and req.filter is None
        and not req.offset
        and req.score_threshold is None
        and req.lookup_from is None
        and not req.explain
        and (params is None or (not params.exact and params.nprobe is None and params.quantization is None))
        and (req.with_payload is None or type(req.with_payload) is bool)
        and (req.with_vector is None or req.with_vector is False)
    )


def answer(reader: Reader, req: QueryRequest) -> Optional[QueryResponse]:
    """The response to ``req`` (see :func:`is_plain`) by one index search, or None: run the general path."""
    state = reader.state
    name = req.using or DEFAULT_VECTOR
    for space in state.spaces:
        if space.name == name:
            break
    else:
        return None  # (the general path names the missing vector)
    if len(req.query) != space.size:  # type: ignore[arg-type]
        return None
    state.limits.check_results(req.limit, 0, "limit")
    vector = prepare_query(np.asarray(req.query, dtype=np.float32), space, "query")
    knobs = reader.planner.knobs(req, state.settings, state.search_device)
    if knobs.exact:  # (a collection whose index type scans exactly)
        return None
    with_payload = req.with_payload
    k = req.limit
    from_raw = metric_of(space.distance).from_raw
    output = reader.output

    def body(view: ReadView, on_demand: ReadOnDemand) -> Optional[QueryResponse]:
        ann = state.ann.get(space.index)
        if ann is None or ann.covered < view.n or ann.index.quantized:
            return None  # fresh rows to scan, re-ranking, or no index: the planner's work
        index = ann.index
        mask, dead = ann.tombstones(view)
        probe = index.probe(k, knobs, 1.0)
        dists, ids = index.search(vector[None, :], probe.fetch, probe.breadth, mask, knobs.device)
        id_row: list[int] = ids[0].tolist()
        if len(id_row) - id_row.count(-1) < min(k, index.ntotal - dead):
            return None  # the tombstones starved the graph: the planner widens the search
        scores: list[float] = (dists[0] if from_raw is None else from_raw(dists[0])).tolist()
        hits = [(s, i) for s, i in zip(scores, id_row, strict=True) if i >= 0][:k]
        points = output.scored_hits(on_demand.txn, view, hits, with_payload, False)
        return QueryResponse(points=points)

    result: Optional[QueryResponse] = state.mvcc.read(body, not nothing_stored_wanted(with_payload))
    return result


__all__ = ["answer", "is_plain"]
