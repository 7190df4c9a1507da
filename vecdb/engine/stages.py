"""Multi-stage queries: a tree of stages (:class:`~vecdb.engine.plans.QueryPlan`) run inside one read.

Order of work, for every tree of a batch at once:

1. The dense nearest leaves of all trees are grouped like single-stage queries (same space, depth,
   params and filter: one mask and one BLAS product or faiss call, :meth:`Reader.nearest_hits`).
2. Each tree is evaluated bottom-up. A stage's result is its candidates, ``(score, internal id)``
   best first:

   * leaves: dense nearest (from step 1), sparse nearest (``sparse_search.sparse_top``), BM25 text
     (``text_search.text_top``), or a filtered scroll (score 1.0, id order);
   * ``rrf`` / ``dbsf`` (:mod:`vecdb.engine.fusion`) and ``formula`` (:mod:`vecdb.engine.formula`)
     combine the children's lists, taking no filter of their own (as Qdrant's local mode);
   * a nearest query (dense, sparse or text) over children re-scores the union of their candidates
     that also pass the stage's filter: dense from the view's rows, exact; sparse and text through
     the same search restricted to those candidates.

   Then ``limit`` (and at the root ``offset``) and ``score_threshold`` apply: a nearest stage keeps
   scores better than the threshold, fusion and formula stages scores ``>=`` it (local mode's rules).
3. Only the root reads payloads and vectors, in the read's one LMDB transaction.

Filter masks are computed once per distinct (filter, exclusions) within the read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from vecdb.engine import fusion, planner
from vecdb.engine.formula import Formula
from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.planner import Explain
from vecdb.engine.plans import QueryPlan, merge_filters
from vecdb.engine.point_view import StoredPointView
from vecdb.engine.views import ReadView
from vecdb.filtering.evaluate import PointView, compile_filter
from vecdb.ids import id_to_key
from vecdb.index.distance import higher_is_better
from vecdb.models.filters import Filter, HasIdCondition
from vecdb.models.query import FusionQuery, QueryResponse, RrfQuery

if TYPE_CHECKING:
    from vecdb.engine.read import Reader

Hits = list[tuple[float, int]]


class TreeRun:
    """The trees of one batch, evaluated against one read view."""

    def __init__(self, owner: Reader, view: ReadView, reader: ReadOnDemand) -> None:
        self.owner = owner
        self.state = owner.state
        self.view = view
        self.reader = reader
        self._masks: dict[Any, Optional[np.ndarray]] = {}
        self._dense: dict[int, tuple[Hits, dict[str, Any]]] = {}
        self._point_view: Optional[StoredPointView] = None

    def run(self, trees: list[tuple[int, QueryPlan]]) -> list[tuple[int, QueryResponse]]:
        self._dense_leaves([plan for _, plan in trees])
        out = []
        for pos, plan in trees:
            t0 = time.perf_counter()
            hits, explain, before = self._stage(plan)
            req = plan.request
            points = self.owner.output.scored_hits(self.reader.txn, self.view, hits, req.with_payload, req.with_vector)
            response = QueryResponse(points=points)
            if req.explain:
                response.explain = {
                    "plan": "multi-stage",
                    "stage": explain,
                    "timings_ms": {"total": round((time.perf_counter() - t0) * 1e3 + before, 4)},
                }
            out.append((pos, response))
        return out

    # --- leaves ----------------------------------------------------------------------------

    def _dense_leaves(self, roots: list[QueryPlan]) -> None:
        """Every dense nearest leaf of every tree, searched in groups of compatible plans."""
        leaves: list[QueryPlan] = []

        def visit(plan: QueryPlan) -> None:
            if plan.prefetch:
                for child in plan.prefetch:
                    visit(child)
            elif plan.kind == "nearest":
                leaves.append(plan)

        for root in roots:
            visit(root)
        groups: dict[Any, list[tuple[int, QueryPlan]]] = {}
        for plan in leaves:
            groups.setdefault(plan.batch_key(id(plan), True), []).append((id(plan), plan))
        for members in groups.values():
            t0 = time.perf_counter()
            explain = Explain()
            hits_of = self.owner.nearest_hits(self.reader, self.view, members, explain, self.mask)
            details = explain.as_dict()
            details["batched_queries"] = len(members)
            details["time_ms"] = round((time.perf_counter() - t0) * 1e3, 4)
            for (key, _), hits in zip(members, hits_of, strict=True):
                self._dense[key] = (hits, details)

    def mask(self, plan: QueryPlan) -> Optional[np.ndarray]:
        """The stage's filter and exclusions as a bool mask over internal ids (None: everything)."""
        flt = plan.request.filter
        key = (flt.model_dump_json() if flt is not None else None, plan.excluded)
        if key in self._masks:
            return self._masks[key]
        mask = self.owner.filter_mask(self.reader, flt, self.view)
        if plan.excluded:
            tables, txn = self.state.tables, self.reader.txn()
            for pid in plan.excluded:
                iid = tables.iid_of(txn, id_to_key(pid))
                if iid is not None and iid < self.view.n:
                    if mask is None:
                        mask = np.ones(self.view.n, dtype=bool)
                    elif not mask.flags.writeable:
                        mask = mask.copy()  # (a kept mask is read-only)
                    mask[iid] = False
        self._masks[key] = mask
        return mask

    # --- stages ----------------------------------------------------------------------------

    def _stage(self, plan: QueryPlan) -> tuple[Hits, dict[str, Any], float]:
        """The stage's candidates, best first, its explain entry, and the milliseconds of the dense
        searches under it that ran before the tree (grouped with the batch's others): its
        ``time_ms`` counts them, so that a stage's time covers its children's."""
        t0 = time.perf_counter()
        req = plan.request
        sources: list[Hits] = []
        children = []
        before = 0.0
        for child in plan.prefetch:
            hits, details, child_before = self._stage(child)
            sources.append(hits)
            children.append(details)
            before += child_before
        explain: dict[str, Any] = {"kind": plan.kind}
        if plan.space is not None or plan.sparse is not None or plan.text is not None or plan.multi is not None:
            explain["using"] = req.using
        depth = req.offset + req.limit
        if plan.merge is not None:
            t_merge = time.perf_counter()
            hits = self._merge(plan, sources, depth)
            explain["merge_ms"] = round((time.perf_counter() - t_merge) * 1e3, 4)  # the fusion or formula alone
        elif plan.special is not None:
            explain["using"] = req.using
            hits = self._special(plan, sources, depth)
        elif plan.prefetch:
            hits = self._rescore(plan, sources, depth, explain)
        elif plan.kind == "nearest":
            hits, leaf = self._dense[id(plan)]
            explain["search"] = leaf
            before += leaf["time_ms"]  # (its group's time)
        else:
            hits = self._leaf(plan, None if plan.kind == "scroll" else self.mask(plan), depth, explain)
        hits = hits[req.offset :]
        spent = (time.perf_counter() - t0) * 1e3 + before
        explain.update(limit=req.limit, candidates=len(hits), time_ms=round(spent, 4))
        if children:
            explain["prefetch"] = children
        return hits, explain, before

    def _leaf(
        self, plan: QueryPlan, mask: Optional[np.ndarray], depth: int, explain: Optional[dict[str, Any]] = None
    ) -> Hits:
        """A sparse, text, multivector or scroll stage over the points ``mask`` allows (threshold applied,
        no offset); a multivector stage says what it compared in ``explain``."""
        req = plan.request
        if plan.multi is not None:
            from vecdb.engine.multi_search import MultiCost, multi_top

            assert plan.multi_space is not None
            cost = MultiCost()
            hits = multi_top(
                self.state, self.view, self.reader, plan.multi_space, plan.multi, depth, mask, req.score_threshold, cost
            )
            if explain is not None:
                explain["maxsim"] = cost.as_dict()
            return hits
        if plan.sparse is not None:
            from vecdb.engine.sparse_search import sparse_top

            hits = sparse_top(self.state, self.view, self.reader, req.using, plan.sparse, depth, mask)
        elif plan.text is not None:
            from vecdb.engine.text_search import parse_text_query, text_top

            text, k1, b = parse_text_query(plan.text)
            hits = text_top(self.state, self.view, self.reader, req.using or "", text, k1, b, depth, mask)
        else:
            return self._scroll(plan, depth)
        if req.score_threshold is not None:
            t = req.score_threshold
            hits = [(s, i) for s, i in hits if s > t]
        return hits

    def _scroll(self, plan: QueryPlan, depth: int) -> Hits:
        """No query: the first ``depth`` points that pass the stage's filter, in id order, score 1.0."""
        flt = plan.request.filter
        if plan.excluded:
            flt = merge_filters(flt, Filter(must_not=[HasIdCondition(has_id=list(plan.excluded))]))
        predicate = compile_filter(flt, self.state.payload_index.analyzers)
        points, _ = self.owner._scan_ids(self.reader.txn(), predicate, None, depth)
        return [(1.0, p.iid) for p in points]

    def _special(self, plan: QueryPlan, sources: list[Hits], depth: int) -> Hits:
        """An order_by, sample or example stage: over the stage's filter, and over its children's
        candidates when it has children (as local mode restricts such a query to them)."""
        mask = self.mask(plan)
        if plan.prefetch:
            only = np.zeros(self.view.n, dtype=bool)
            for hits in sources:
                if hits:
                    only[np.fromiter((i for _, i in hits), dtype=np.int64, count=len(hits))] = True
            mask = only if mask is None else only & mask
        return self.owner.stage_hits(self.view, self.reader, plan.request, mask, depth)

    def _merge(self, plan: QueryPlan, sources: list[Hits], depth: int) -> Hits:
        query, req = plan.merge, plan.request
        if isinstance(query, (RrfQuery, FusionQuery)):
            hits = fusion.fuse(query, sources, depth)
        else:
            assert isinstance(query, Formula)
            hits = query.rescore(sources, self._point, depth)
        if req.score_threshold is not None:
            t = req.score_threshold
            hits = [(s, i) for s, i in hits if s >= t]
        return hits

    def _rescore(self, plan: QueryPlan, sources: list[Hits], depth: int, explain: dict[str, Any]) -> Hits:
        """A nearest query over its children: the union of their candidates, filtered, scored anew."""
        iids = np.unique(np.fromiter((i for hits in sources for _, i in hits), dtype=np.int64))
        mask = self.mask(plan)
        if mask is not None:
            iids = iids[mask[iids]]
        if plan.space is None:  # sparse, text or multivector: the same search, restricted to the candidates
            only = np.zeros(self.view.n, dtype=bool)
            only[iids] = True
            return self._leaf(plan, only, depth, explain) if len(iids) else []
        space, req = plan.space, plan.request
        assert plan.vector is not None
        iids = iids[self.view.live(space.index)[iids]] if len(iids) else iids
        k = depth if plan.mmr is None else max(depth, plan.depth)
        hits = planner.rescore(self.view, space, plan.vector, iids, k)
        if plan.mmr is None:
            if req.score_threshold is not None:
                t, better = req.score_threshold, higher_is_better(space.distance)
                hits = [(s, i) for s, i in hits if (s > t if better else s < t)]
            return hits
        return self.owner.finish(self.view, plan, hits[: plan.depth], offset=False)

    def _point(self, iid: int) -> Optional[PointView]:
        """The stored point ``iid`` for a formula (payload, id, vectors); one view object, rebound."""
        point = self.state.tables.get(self.reader.txn(), iid)
        if point is None:
            return None
        if self._point_view is None:
            self._point_view = StoredPointView(
                lambda i, name: self.owner._view_has_vector(self.view, i, name, self.reader)
            )
        return self._point_view.bind(point)
