"""A query becomes a plan before it runs: validate, resolve its vector, choose its knobs.

``QueryPlan`` is one stage: a nearest search in one vector space (or, without a query vector, a
filtered scroll), with its filter, depth, thresholds and search knobs. ``prefetch`` holds child
stages: today every plan is a leaf (a request with ``prefetch`` is refused at validation); the
multi-stage queries of hybrid retrieval add children here and a fusing executor in ``read``,
without a second code path.

Order (see :class:`vecdb.engine.read.Reader`): texts are embedded and requests validated before
the read starts (a read may run again, or end under the write lock); plans are built inside the
consistent read, because a query by point id reads that point's stored vector.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vecdb.engine import planner
from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.output import PointOutput
from vecdb.engine.settings import VectorSpace, index_config, space_by_name
from vecdb.engine.views import prepare_query
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.ids import PointId
from vecdb.limits import Limits
from vecdb.models.points import SparseVector
from vecdb.models.query import Mmr, NearestQuery, QueryRequest
from vecdb.storage.points import PointsTables


@dataclass
class QueryPlan:
    """One stage of a query, ready to run against a read view."""

    request: QueryRequest
    space: Optional[VectorSpace] = None
    """None: no query vector (a filtered scroll in id order, every score 1.0)."""
    vector: Optional[np.ndarray] = None
    exclude: Optional[PointId] = None
    """A query by point id leaves that point out of its own results."""
    knobs: Optional[planner.SearchKnobs] = None
    mmr: Optional[Mmr] = None
    prefetch: list[QueryPlan] = field(default_factory=list)

    @property
    def depth(self) -> int:
        """How many nearest candidates the stage asks the planner for."""
        req = self.request
        if self.mmr is not None:  # MMR re-ranks the nearest candidates; the offset applies after it
            return self.mmr.candidates_limit if self.mmr.candidates_limit is not None else req.limit
        return req.offset + req.limit

    def batch_key(self, pos: int, batched: bool) -> Hashable:
        """Plans with equal keys share one filter mask and one BLAS product or faiss call."""
        if self.exclude is not None:
            return ("by-id", pos)  # its own point is left out: a mask of its own
        if self.mmr is not None:
            return ("mmr", pos)  # its depth and re-ranking are its own
        if not batched:
            return pos
        req = self.request
        assert self.space is not None
        return (
            self.space.index,
            req.offset + req.limit,
            req.params.model_dump_json() if req.params else None,
            req.filter.model_dump_json() if req.filter is not None else None,
        )


def validate(reqs: list[QueryRequest], limits: Limits) -> None:
    """What a request may not ask, refused before any read."""
    for i, req in enumerate(reqs):
        limits.check_results(req.limit, req.offset, "limit" if len(reqs) == 1 else f"searches[{i}].limit")
        if req.prefetch:
            raise Unsupported("prefetch: multi-stage queries are not supported yet")
        if req.lookup_from is not None:
            raise Unsupported("lookup_from: is not supported yet")


class Planner:
    """Turns validated requests into plans for one collection (its spaces, settings and device)."""

    def __init__(self, tables: PointsTables, output: PointOutput) -> None:
        self.tables = tables
        self.output = output
        self._default_knobs: Optional[tuple[dict[str, Any], planner.SearchKnobs]] = None

    def plan(
        self,
        req: QueryRequest,
        reader: ReadOnDemand,
        spaces: list[VectorSpace],
        settings: dict[str, Any],
        device: str,
    ) -> QueryPlan:
        if req.query is None:
            return QueryPlan(req)
        space, vector, exclude = self._query_vector(reader, req, spaces)
        query = req.query
        return QueryPlan(
            req,
            space=space,
            vector=vector,
            exclude=exclude,
            knobs=self.knobs(req, settings, device),
            mmr=query.mmr if isinstance(query, NearestQuery) else None,
        )

    def knobs(self, req: QueryRequest, settings: dict[str, Any], device: str) -> planner.SearchKnobs:
        if req.params is None:  # the common case: the collection's defaults, worked out once per settings
            cached = self._default_knobs
            if cached is not None and cached[0] is settings and cached[1].device == device:
                return cached[1]
            knobs = knobs_for(req, settings, device)
            self._default_knobs = (settings, knobs)
            return knobs
        return knobs_for(req, settings, device)

    def _query_vector(
        self, reader: ReadOnDemand, req: QueryRequest, spaces: list[VectorSpace]
    ) -> tuple[VectorSpace, np.ndarray, Optional[PointId]]:
        query: Any = req.query
        if isinstance(query, NearestQuery):
            if query.mmr is not None and isinstance(query.nearest, SparseVector):
                raise Unsupported("query.mmr: maximal marginal relevance over sparse vectors is not supported yet")
            query = query.nearest
        elif isinstance(query, dict):
            kind = next(iter(query), "?")
            raise Unsupported(f"query.{kind}: this query kind is not supported yet; use nearest")
        space = space_by_name(spaces, req.using)
        if isinstance(query, SparseVector):
            raise Unsupported("query: sparse vectors are not supported yet")
        if isinstance(query, (int, str)):
            txn = reader.txn()
            stored = self.output.lookup(txn, query)
            if stored is None:
                raise NotFound(f"No point with id {query} found")
            row = self.tables.get_vector(txn, stored.iid, space.index)
            if row is None:
                raise InvalidInput(f"query: point {query} has no vector named {space.name!r}")
            return space, row.astype(np.float32), query
        if not isinstance(query, np.ndarray):
            if query and isinstance(query[0], list):
                raise Unsupported("query: multivectors are not supported yet")
            query = np.asarray(query, dtype=np.float32)
        if query.ndim != 1:
            raise InvalidInput(f"query: expected one vector, got an array of shape {query.shape}")
        return space, prepare_query(query, space, "query"), None


def knobs_for(req: QueryRequest, settings: dict[str, Any], device: str) -> planner.SearchKnobs:
    """The request's ``params`` over the collection's HNSW and index settings."""
    cfg = settings["hnsw_config"]
    index_cfg = index_config(settings)
    params = req.params
    quant = params.quantization if params else None
    return planner.SearchKnobs(
        exact=bool(params and params.exact),
        hnsw_ef=params.hnsw_ef if params else None,
        ef_default=max(planner.DEFAULT_EF, int(cfg.get("ef_construct") or 0)),
        full_scan_threshold_kb=int(cfg.get("full_scan_threshold") or 0),
        nprobe=params.nprobe if params else None,
        oversampling=quant.oversampling if quant else None,
        rescore=True if quant is None or quant.rescore is None else bool(quant.rescore),
        ignore_quantization=bool(quant and quant.ignore),
        device=device,
        index_type=index_cfg["type"],
    )
