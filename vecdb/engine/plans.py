"""A query becomes a plan before it runs: validate, resolve its vector, choose its knobs.

``QueryPlan`` is one stage: a nearest search in one vector space (dense, sparse, or BM25 over a
text field; without a query vector, a filtered scroll), with its filter, depth, thresholds and
search knobs. ``prefetch`` holds child stages (Qdrant's ``prefetch``, nested any depth): a stage
with children fuses them (``rrf``/``dbsf``), re-scores them with a formula, or re-scores their
candidates with its own nearest query; :mod:`vecdb.engine.stages` runs such trees.

Filters and exclusions flow down as in Qdrant (and its local mode): a stage's filter is merged
into each child's (:func:`merge_filters`), and a query by point id leaves that point out of the
stage and everything under it.

Order (see :class:`vecdb.engine.read.Reader`): texts are embedded and requests validated before
the read starts (a read may run again, or end under the write lock); plans are built inside the
consistent read, because a query by point id reads that point's stored vector.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vecdb.engine import planner
from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.output import PointOutput
from vecdb.engine.settings import MultiSpace, VectorSpace, index_config, multi_space_by_name, space_by_name
from vecdb.engine.views import prepare_query, unit
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.ids import PointId
from vecdb.limits import Limits
from vecdb.models.expressions import FormulaQuery
from vecdb.models.filters import Filter
from vecdb.models.points import SparseVector
from vecdb.models.query import (
    ExampleQuery,
    FusionQuery,
    MergingQuery,
    Mmr,
    NearestQuery,
    OrderByQuery,
    Prefetch,
    QueryRequest,
    RrfQuery,
    SampleQuery,
)
from vecdb.models.text import TextQuery
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
    sparse: Optional[SparseVector] = None
    """A sparse nearest query over the space ``request.using`` (run by ``engine/sparse_search.py``)."""
    multi: Optional[np.ndarray] = None
    """A MaxSim query matrix over the multivector space ``multi_space`` (``engine/multi_search.py``)."""
    multi_space: Optional[MultiSpace] = None
    text: Optional[TextQuery] = None
    """BM25 over the text index of the payload field ``request.using`` (``engine/text_search.py``)."""
    special: Optional[Any] = None
    """An ``order_by``, ``sample`` or example query (recommend, discover, context) as a stage of a tree
    (run by :meth:`vecdb.engine.read.Reader.stage_hits`)."""
    merge: Optional[Any] = None
    """A stage fusing its children: a FusionQuery, RrfQuery or compiled :class:`~vecdb.engine.formula.Formula`."""
    inherited: tuple[PointId, ...] = ()
    """Points a parent's query by id leaves out of this stage too."""
    where: str = "query"
    """How errors name this stage (``query``, ``prefetch.0.prefetch.1.query``, ...)."""

    @property
    def excluded(self) -> tuple[PointId, ...]:
        """Every point this stage leaves out: its own query's point and its parents'."""
        return self.inherited if self.exclude is None else (*self.inherited, self.exclude)

    @property
    def kind(self) -> str:
        """What the stage does, as ``explain`` names it."""
        if self.merge is not None:
            return "formula" if not isinstance(self.merge, (FusionQuery, RrfQuery)) else "fusion"
        if self.special is not None:
            return str(next(iter(type(self.special).model_fields)))  # order_by, sample, recommend, ...
        if self.sparse is not None:
            return "sparse"
        if self.multi is not None:
            return "multivector"
        if self.text is not None:
            return "text"
        return "scroll" if self.space is None else "nearest"

    @property
    def depth(self) -> int:
        """How many nearest candidates the stage asks the planner for."""
        req = self.request
        if self.mmr is not None:  # MMR re-ranks the nearest candidates; the offset applies after it
            return self.mmr.candidates_limit if self.mmr.candidates_limit is not None else req.limit
        return req.offset + req.limit

    def batch_key(self, pos: int, batched: bool) -> Hashable:
        """Plans with equal keys share one filter mask and one BLAS product or faiss call."""
        if self.excluded:
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
        if req.lookup_from is not None:
            raise Unsupported("lookup_from: is not supported yet")
        _validate_stage(req, req.prefetch or [], "" if len(reqs) == 1 else f"searches[{i}].", limits)


def _validate_stage(stage: QueryRequest | Prefetch, children: list[Prefetch], at: str, limits: Limits) -> None:
    """What Qdrant (and its local mode) refuses in a stage of a multi-stage query, before any read."""
    query = stage.query
    if children and query is None:
        raise InvalidInput(f"{at}query: a query is needed to merge the prefetches")
    if isinstance(query, MergingQuery) and not children:
        kind = "formula" if isinstance(query, FormulaQuery) else "fusion"
        raise InvalidInput(f"{at}query: cannot perform {kind} without prefetches")
    if isinstance(query, (FusionQuery, RrfQuery)) and stage.using:
        raise InvalidInput(f"{at}using: fusion queries cannot be combined with `using`")
    if isinstance(query, FormulaQuery):
        from vecdb.engine.formula import Formula  # compiling it is validating it

        Formula(query, f"{at}query.formula")
    for j, child in enumerate(children):
        where = f"{at}prefetch.{j}."
        if child.lookup_from is not None:
            raise Unsupported(f"{where}lookup_from: is not supported yet")
        if isinstance(child.query, dict):  # a Qdrant query kind vecdb does not parse (recommend, sample, ...)
            kind = next(iter(child.query), "?")
            raise Unsupported(f"{where}query.{kind}: this query kind is not supported yet")
        if child.score_threshold is not None and child.query is None:
            raise InvalidInput(f"{where}score_threshold: a query is needed to use the score_threshold")
        if child.limit is not None:
            limits.check_results(child.limit, 0, f"{where}limit")
        _validate_stage(child, child.prefetch or [], where, limits)


def merge_filters(outer: Optional[Filter], inner: Optional[Filter]) -> Optional[Filter]:
    """A parent's filter propagated into a child's, as Qdrant's ``Filter::merge_opts`` (and local mode):
    clauses concatenated field by field (so both ``should`` lists become alternatives of each other),
    ``min_should`` conditions joined with the larger count."""
    if outer is None:
        return inner
    if inner is None:
        return outer

    def clause(a: Optional[list[Any]], b: Optional[list[Any]]) -> Optional[list[Any]]:
        return b if a is None else a if b is None else [*a, *b]

    min_should = outer.min_should or inner.min_should
    if outer.min_should is not None and inner.min_should is not None:
        min_should = type(outer.min_should)(
            conditions=[*outer.min_should.conditions, *inner.min_should.conditions],
            min_count=max(outer.min_should.min_count, inner.min_should.min_count),
        )
    return Filter.model_construct(
        must=clause(outer.must, inner.must),
        must_not=clause(outer.must_not, inner.must_not),
        should=clause(outer.should, inner.should),
        min_should=min_should,
    )


def stage_request(child: Prefetch, parent_filter: Optional[Filter]) -> QueryRequest:
    """A prefetch as the request of its own stage: its filter merged under the parent's, no offset,
    nothing fetched (only the root reads payloads and vectors)."""
    return QueryRequest.model_construct(
        prefetch=child.prefetch,
        query=child.query,
        using=child.using,
        filter=merge_filters(parent_filter, child.filter),
        params=child.params,
        score_threshold=child.score_threshold,
        limit=10 if child.limit is None else child.limit,
        offset=0,
        with_payload=False,
        with_vector=False,
        lookup_from=None,
        shard_key=None,
        explain=None,
    )


def resolve_stages(
    reqs: list[QueryRequest], resolve: Callable[[list[QueryRequest]], list[QueryRequest]]
) -> list[QueryRequest]:
    """``resolve`` (a rewrite of each request's ``query``: embedding documents, telling text queries
    apart) applied to every stage of every request at once, so a batch's texts go to the model in
    one call whatever their depth."""
    stages: list[QueryRequest] = []

    def collect(children: Optional[list[Prefetch]]) -> None:
        for child in children or []:
            stages.append(QueryRequest.model_construct(query=child.query, using=child.using))
            collect(child.prefetch)

    for req in reqs:
        collect(req.prefetch)
    if not stages:
        return resolve(reqs)
    done = resolve([*reqs, *stages])
    resolved = iter(done[len(reqs) :])

    def rebuild(children: Optional[list[Prefetch]]) -> Optional[list[Prefetch]]:
        if not children:
            return children
        out = []
        for child in children:
            query = next(resolved).query  # (pre-order, as collected: the stage, then its children)
            out.append(child.model_copy(update={"query": query, "prefetch": rebuild(child.prefetch)}))
        return out

    return [
        req.model_copy(update={"prefetch": rebuild(req.prefetch)}) if req.prefetch else req for req in done[: len(reqs)]
    ]


_SINGLE_PATH = ["query"]


def stage_paths(reqs: list[QueryRequest]) -> list[str]:
    """Where each request's ``query`` is in the body, in the order :func:`resolve_stages` hands the
    requests and their stages to ``resolve`` (so an error names ``prefetch[1].prefetch[0].query``)."""
    if len(reqs) == 1 and not reqs[0].prefetch:
        return _SINGLE_PATH  # the common case, on every query
    tops = ["" if len(reqs) == 1 else f"searches[{i}]." for i in range(len(reqs))]
    stages: list[str] = []

    def collect(children: Optional[list[Prefetch]], prefix: str) -> None:
        for j, child in enumerate(children or []):
            stages.append(f"{prefix}prefetch[{j}].query")
            collect(child.prefetch, f"{prefix}prefetch[{j}].")

    for req, top in zip(reqs, tops, strict=True):
        collect(req.prefetch, top)
    return [f"{top}query" for top in tops] + stages


def is_multistage(req: QueryRequest) -> bool:
    """Whether a request runs as a tree of stages (:mod:`vecdb.engine.stages`) rather than one search."""
    return bool(req.prefetch)


class Planner:
    """Turns validated requests into plans for one collection (its spaces, settings and device)."""

    def __init__(self, tables: PointsTables, output: PointOutput) -> None:
        self.tables = tables
        self.output = output
        self._knobs: Optional[tuple[dict[str, Any], str, dict[Any, planner.SearchKnobs]]] = None

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
        if isinstance(req.query, (OrderByQuery, *ExampleQuery, SampleQuery)):
            return QueryPlan(req, special=req.query)
        if isinstance(req.query, TextQuery):
            return QueryPlan(req, text=req.query)
        nearest = req.query.nearest if isinstance(req.query, NearestQuery) else req.query
        if isinstance(nearest, SparseVector) and not (isinstance(req.query, NearestQuery) and req.query.mmr):
            return QueryPlan(req, sparse=nearest)
        multi_space = multi_space_by_name(self.output.state.multi_spaces, req.using)
        if multi_space is not None or _is_matrix(nearest):
            return self._multi_plan(reader, req, nearest, multi_space)
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

    def plan_tree(
        self,
        req: QueryRequest,
        reader: ReadOnDemand,
        spaces: list[VectorSpace],
        settings: dict[str, Any],
        device: str,
        inherited: tuple[PointId, ...] = (),
        where: str = "",
    ) -> QueryPlan:
        """The stage ``req`` and, recursively, its prefetches (already validated)."""
        query = req.query
        if isinstance(query, MergingQuery):
            plan = QueryPlan(req, merge=query)
            if isinstance(query, FormulaQuery):
                from vecdb.engine.formula import Formula

                plan.merge = Formula(query, f"{where}query.formula", self.output.state.payload_index.analyzers)
        else:
            plan = self.plan(req, reader, spaces, settings, device)
        plan.inherited, plan.where = inherited, f"{where}query"
        for j, child in enumerate(req.prefetch or []):
            plan.prefetch.append(
                self.plan_tree(
                    stage_request(child, req.filter),
                    reader,
                    spaces,
                    settings,
                    device,
                    plan.excluded,
                    f"{where}prefetch.{j}.",
                )
            )
        return plan

    def knobs(self, req: QueryRequest, settings: dict[str, Any], device: str) -> planner.SearchKnobs:
        """The collection's defaults (``params`` None, the common case) or the request's knobs, worked
        out once per settings, device and distinct ``params`` (a few microseconds each time otherwise)."""
        params = req.params
        quant = params.quantization if params is not None else None
        key = (
            None
            if params is None
            else (
                params.hnsw_ef,
                params.nprobe,
                params.exact,
                None if quant is None else (quant.ignore, quant.rescore, quant.oversampling),
            )
        )
        cached = self._knobs
        if cached is None or cached[0] is not settings or cached[1] != device:
            cached = self._knobs = (settings, device, {})
        knobs = cached[2].get(key)
        if knobs is None:
            knobs = knobs_for(req, settings, device)
            if len(cached[2]) < 64:
                cached[2][key] = knobs
        return knobs

    def _multi_plan(
        self, reader: ReadOnDemand, req: QueryRequest, nearest: Any, space: Optional[MultiSpace]
    ) -> QueryPlan:
        """A MaxSim stage: a query matrix (or a point's stored one, by id) over a multivector space."""
        from vecdb.engine.multi_search import prepare_multi_query, stored_query

        if space is None:
            raise InvalidInput(
                f"query: a multivector query needs a multivector space; vector {req.using or '(default)'!r} "
                "is not one (name one in using)"
            )
        if isinstance(req.query, NearestQuery) and req.query.mmr is not None:
            raise Unsupported("query.mmr: maximal marginal relevance over multivectors is not supported yet")
        if isinstance(nearest, (int, str)):
            txn = reader.txn()
            stored = self.output.lookup(txn, nearest)
            if stored is None:
                raise NotFound(f"No point with id {nearest} found")
            matrix = stored_query(self.tables, txn, stored.iid, space, nearest)
            return QueryPlan(req, multi=matrix, multi_space=space, exclude=nearest)
        if isinstance(nearest, dict):
            kind = next(iter(nearest), "?")
            raise Unsupported(f"query.{kind}: this query kind is not supported yet; use nearest")
        if not _is_matrix(nearest):
            raise InvalidInput(
                f"query: vector {space.name or '(default)'!r} is a multivector: expected a list of vectors, "
                "got a single vector"
            )
        return QueryPlan(req, multi=prepare_multi_query(nearest, space), multi_space=space)

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
            return space, unit(row.astype(np.float32), space), query
        if not isinstance(query, np.ndarray):
            query = np.asarray(query, dtype=np.float32)
        if query.ndim != 1:
            raise InvalidInput(f"query: expected one vector, got an array of shape {query.shape}")
        return space, prepare_query(query, space, "query"), None


def _is_matrix(query: Any) -> bool:
    """Whether a query is a multivector: a list of vectors, or a 2-d array."""
    if isinstance(query, np.ndarray):
        return query.ndim == 2
    return isinstance(query, list) and bool(query) and isinstance(query[0], (list, tuple, np.ndarray))


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
