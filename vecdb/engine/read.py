"""The read path: query, scroll, count and retrieve of one collection.

A query runs in three steps: texts are embedded and requests validated first (before any read:
a read may run again, or end under the write lock); inside one consistent read
(:mod:`vecdb.engine.mvcc`) each request becomes a :class:`~vecdb.engine.plans.QueryPlan`; plans
are then grouped and executed — compatible ones share one filter mask and one BLAS product or
faiss call (:mod:`vecdb.engine.planner`) — and only the final top-k points are read back from
LMDB (:mod:`vecdb.engine.output`).

A filter becomes a boolean mask over internal ids, from the payload indexes or a scan of the
stored payloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Optional, Union

import lmdb
import numpy as np

from vecdb.engine import examples, mmr, ordering, planner
from vecdb.engine.documents import resolve_queries
from vecdb.engine.mask_cache import MaskCache
from vecdb.engine.multi_search import MultiCost, maxsim, multi_top, shown
from vecdb.engine.multi_search import chunks as multi_chunks
from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.output import PointOutput, nothing_stored_wanted
from vecdb.engine.plain_query import answer as answer_plain
from vecdb.engine.plain_query import is_plain, trim
from vecdb.engine.planner import Explain
from vecdb.engine.plans import Planner, QueryPlan, is_multistage, resolve_stages, stage_paths, validate
from vecdb.engine.point_view import StoredPointView, stored_has_vector
from vecdb.engine.settings import (
    MultiSpace,
    SparseSpace,
    VectorSpace,
    multi_space_by_name,
    space_by_name,
    space_index,
    sparse_space_by_name,
)
from vecdb.engine.sparse_search import (
    sparse_has_vector,
    sparse_holders,
    sparse_row_scores,
    sparse_scores,
    sparse_top,
)
from vecdb.engine.stages import TreeRun
from vecdb.engine.state import CollectionState
from vecdb.engine.text_search import parse_text_query, text_queries, text_top
from vecdb.engine.views import ReadView
from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import Predicate, compile_filter
from vecdb.filtering.filter_input import as_filter
from vecdb.ids import PointId, id_to_key
from vecdb.models.filters import Filter
from vecdb.models.points import (
    CountRequest,
    FacetRequest,
    FacetResponse,
    FacetValueHit,
    OrderBy,
    PointRequest,
    Record,
    ScrollRequest,
    ScrollResult,
    SparseVector,
)
from vecdb.models.query import (
    ExampleQuery,
    Mmr,
    OrderByQuery,
    QueryRequest,
    QueryResponse,
    RecommendQuery,
    SampleQuery,
    ScoredPoint,
    SearchMatrixRequest,
)
from vecdb.storage.points import StoredPoint

DEFAULT_SCROLL_LIMIT = 10
NO_FACET_INDEX = (
    "No appropriate index for faceting: `{key}`. Please create one to facet on this field. Check "
    "https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload schemas "
    "support Match conditions"
)
SCROLL_BY_MASK = 64
"""A filtered scroll is served from the filter's mask while ``matches^2 <= SCROLL_BY_MASK x limit x
points``: ordering ``m`` matches by id costs about 10 ns each (numpy), while walking the ids finds a
page of ``limit`` after about ``limit x points / m`` point reads of 1-3 us each. Measured by
``python -m benchmarks scroll`` (100k points): 0.2% matching, the mask serves pages of 10 / 100 about
100x / 250x faster than the walk; at 10% matching and pages of 10 the walk is faster (0.22 against
0.30 ms), which this constant leaves to the walk; trying the mask first costs about 0.03 ms there."""


class Reader:
    """Every read of one collection, against the state it shares with the writer."""

    def __init__(self, state: CollectionState) -> None:
        self.state = state
        self.output = PointOutput(state)
        self.planner = Planner(state.tables, self.output)
        self._masks = MaskCache()

    # --- query ---------------------------------------------------------------------------

    def query(self, req: QueryRequest) -> QueryResponse:
        return self.query_batch([req])[0]

    def query_batch(self, reqs: list[QueryRequest]) -> list[QueryResponse]:
        """Answer several queries from one view and at most one read transaction.

        A query that needs nothing from LMDB (no payload, no vector, a filter the payload indexes
        answer or the mask cache holds) opens no transaction: ids and versions come from the view.
        One that surely reads LMDB (payloads, vectors, prefetch stages) opens it first ("eager", see
        :mod:`vecdb.engine.mvcc`); a filter may not need it, so it opens one only when it must (and the
        read starts again should a write have landed between the view and that transaction).
        """
        state = self.state
        if len(reqs) == 1 and is_plain(reqs[0]):
            plain = answer_plain(self, reqs[0])
            if plain is not None:
                return [plain]
        if not all(isinstance(r.query, (np.ndarray, list)) and not r.prefetch for r in reqs):
            # (plain vectors, the common case, hold no text to embed or tell apart)
            paths = stage_paths(reqs)
            reqs = resolve_stages(reqs, lambda rs: resolve_queries(text_queries(rs, state), state.settings, paths))
        validate(reqs, state.limits)
        for req in reqs:
            if isinstance(req.query, OrderByQuery):
                ordering.check(state, ordering.as_order_by(req.query.order_by))
        eager = not all(
            not r.prefetch and nothing_stored_wanted(r.with_payload) and nothing_stored_wanted(r.with_vector)
            for r in reqs
        )
        return state.mvcc.read(lambda view, reader: self._run(view, reader, reqs), eager)

    def _run(self, view: ReadView, reader: ReadOnDemand, reqs: list[QueryRequest]) -> list[QueryResponse]:
        state = self.state
        out: list[Optional[QueryResponse]] = [None] * len(reqs)
        groups: dict[Any, list[tuple[int, QueryPlan]]] = {}
        trees: list[tuple[int, QueryPlan]] = []
        for pos, req in enumerate(reqs):
            if is_multistage(req):
                plan = self.planner.plan_tree(req, reader, state.spaces, state.settings, state.search_device)
                trees.append((pos, plan))
                continue
            if isinstance(req.query, OrderByQuery):
                out[pos] = self._ordered_stage(view, reader, req)
                continue
            if isinstance(req.query, (*ExampleQuery, SampleQuery)):
                out[pos] = self._example_stage(view, reader, req)
                continue
            plan = self.planner.plan(req, reader, state.spaces, state.settings, state.search_device)
            if plan.sparse is not None:
                out[pos] = self._sparse_stage(reader, view, plan)
                continue
            if plan.multi is not None:
                out[pos] = self._multi_stage(reader, view, plan)
                continue
            if plan.text is not None:
                out[pos] = self._text_stage(reader, view, plan)
                continue
            if plan.space is None:
                out[pos] = self._scroll_stage(reader.txn(), req)
                continue
            groups.setdefault(plan.batch_key(pos, len(reqs) > 1), []).append((pos, plan))
        for members in groups.values():
            for pos, response in self._nearest_stage(reader, view, members):
                out[pos] = response
        if trees:
            for pos, response in TreeRun(self, view, reader).run(trees):
                out[pos] = response
        return [r for r in out if r is not None]

    def _nearest_stage(
        self, reader: ReadOnDemand, view: ReadView, members: list[tuple[int, QueryPlan]]
    ) -> list[tuple[int, QueryResponse]]:
        """One group of compatible nearest plans: one mask, one search, then per plan its offset,
        threshold, MMR re-ranking and output."""
        explain = Explain()
        all_hits = self.nearest_hits(reader, view, members, explain)
        t0 = time.perf_counter()
        out = []
        for (pos, plan), hits in zip(members, all_hits, strict=True):
            req = plan.request
            points = self.output.scored_hits(reader.txn, view, hits, req.with_payload, req.with_vector)
            out.append((pos, QueryResponse(points=points)))
        explain.timings_ms["fetch"] = (time.perf_counter() - t0) * 1e3
        if any(p.request.explain for _, p in members):
            details = explain.as_dict()
            details["batched_queries"] = len(members)
            for (_, response), (_, plan) in zip(out, members, strict=True):
                if plan.request.explain:
                    response.explain = details
        return out

    def nearest_hits(
        self,
        reader: ReadOnDemand,
        view: ReadView,
        members: list[tuple[Any, QueryPlan]],
        explain: Explain,
        mask_of: Optional[Callable[[QueryPlan], Optional[np.ndarray]]] = None,
    ) -> list[list[tuple[float, int]]]:
        """The hits of a group of compatible nearest plans (one mask, one search), each with its offset,
        threshold and MMR re-ranking applied. ``mask_of``: the filter mask of a plan, when the caller
        keeps them (multi-stage queries share masks across stages)."""
        first = members[0][1]
        space = first.space
        assert space is not None and first.knobs is not None
        t0 = time.perf_counter()
        if mask_of is not None:
            mask = mask_of(first)
        else:
            mask = self.filter_mask(reader, first.request.filter, view)
            for pid in first.excluded:
                iid = self.state.tables.iid_of(reader.txn(), id_to_key(pid))
                if iid is not None and iid < view.n:
                    if mask is None:
                        mask = np.ones(view.n, dtype=bool)
                    elif not mask.flags.writeable:
                        mask = mask.copy()  # (a kept mask is read-only)
                    mask[iid] = False
        explain.timings_ms["filter"] = (time.perf_counter() - t0) * 1e3
        vectors = [p.vector for _, p in members if p.vector is not None]
        queries = vectors[0][None, :] if len(vectors) == 1 else np.stack(vectors)
        all_hits = planner.search(
            view, space, self.state.ann.get(space.index), queries, first.depth, mask, first.knobs, explain
        )
        return [self.finish(view, plan, hits) for (_, plan), hits in zip(members, all_hits, strict=True)]

    @staticmethod
    def finish(
        view: ReadView, plan: QueryPlan, hits: list[tuple[float, int]], offset: bool = True
    ) -> list[tuple[float, int]]:
        """A nearest stage's ``hits`` (its ``depth`` best) with offset, threshold and MMR applied."""
        space, req = plan.space, plan.request
        assert space is not None
        skip = req.offset if offset else 0
        hits = trim(hits, 0 if plan.mmr is not None else skip, req.score_threshold, space.distance)
        if plan.mmr is not None:
            hits = _diversified(view, space, hits, plan.mmr, req.offset + req.limit)[skip:]
        return hits

    def _sparse_stage(self, reader: ReadOnDemand, view: ReadView, plan: QueryPlan) -> QueryResponse:
        """A sparse nearest query (``engine/sparse_search.py``)."""
        using, sparse = plan.request.using, plan.sparse  # (using None: sparse_top names the missing space)
        return self._ranked_stage(
            reader, view, plan, lambda mask, k: sparse_top(self.state, view, reader, using, sparse, k, mask)
        )

    def _multi_stage(self, reader: ReadOnDemand, view: ReadView, plan: QueryPlan) -> QueryResponse:
        """An exact MaxSim query over a multivector space (``engine/multi_search.py``)."""
        req, space, query = plan.request, plan.multi_space, plan.multi
        assert space is not None and query is not None
        t0 = time.perf_counter()
        mask = self.filter_mask(reader, req.filter, view)
        t1 = time.perf_counter()
        if plan.exclude is not None:
            iid = self.state.tables.iid_of(reader.txn(), id_to_key(plan.exclude))
            if iid is not None and iid < view.n:
                mask = np.ones(view.n, dtype=bool) if mask is None else mask.copy()
                mask[iid] = False
        cost = MultiCost()
        depth = req.offset + req.limit
        hits = multi_top(self.state, view, reader, space, query, depth, mask, req.score_threshold, cost)[req.offset :]
        t2 = time.perf_counter()
        points = self.output.scored_hits(reader.txn, view, hits, req.with_payload, req.with_vector)
        response = QueryResponse(points=points)
        if req.explain:
            response.explain = {
                **cost.as_dict(),
                "timings_ms": {
                    "filter": round((t1 - t0) * 1e3, 4),
                    "maxsim": round((t2 - t1) * 1e3, 4),
                    "fetch": round((time.perf_counter() - t2) * 1e3, 4),
                },
            }
        return response

    def _text_stage(self, reader: ReadOnDemand, view: ReadView, plan: QueryPlan) -> QueryResponse:
        """BM25 over a text index (``engine/text_search.py``)."""
        req = plan.request
        assert plan.text is not None and req.using is not None
        text, k1, b = parse_text_query(plan.text)
        field = req.using
        return self._ranked_stage(
            reader, view, plan, lambda mask, k: text_top(self.state, view, reader, field, text, k1, b, k, mask)
        )

    def _ranked_stage(
        self,
        reader: ReadOnDemand,
        view: ReadView,
        plan: QueryPlan,
        top: Callable[[Optional[np.ndarray], int], list[tuple[float, int]]],
    ) -> QueryResponse:
        """One single-stage query ranked by similarity (higher is better): its filter mask, ``top``'s
        best ``offset + limit``, the offset, the threshold, then the output."""
        req = plan.request
        mask = self.filter_mask(reader, req.filter, view)
        hits = top(mask, req.offset + req.limit)[req.offset :]
        if req.score_threshold is not None:
            hits = [(s, i) for s, i in hits if s > req.score_threshold]
        return QueryResponse(points=self.output.scored_hits(reader.txn, view, hits, req.with_payload, req.with_vector))

    def _scroll_stage(self, txn: lmdb.Transaction, req: QueryRequest) -> QueryResponse:
        """No ``query``: a filtered scroll in id order, every score 1.0 (as Qdrant's local mode)."""
        predicate = compile_filter(req.filter, self.state.payload_index.analyzers)
        records, _ = self._scan_ids(txn, predicate, None, req.offset + req.limit)
        points = [self.output.scored(txn, p, 1.0, req.with_payload, req.with_vector) for p in records[req.offset :]]
        return QueryResponse(points=points)

    def filter_mask(self, reader: ReadOnDemand, flt: Optional[Filter], view: ReadView) -> Optional[np.ndarray]:
        """Bool mask over internal ids ``< view.n`` of the points that pass ``flt`` (None: no filter).

        Payload indexes answer what they can: wholly (a mask, no payload read),
        or as a superset whose members alone are then checked against the
        stored payloads; otherwise every stored payload is checked. The result
        is kept for the next read of the same view (``engine/mask_cache.py``).
        """
        parsed = _restricting(flt)
        if parsed is None:
            return None
        key = self._mask_key(parsed, view)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._filter_mask(reader, parsed, view)
            if mask is not None:
                kept = self._masks.put(key, mask)
                mask = mask if kept is None else kept  # (the kept array: the next query gets the same one)
        return mask

    def indexed_mask(self, reader: ReadOnDemand, flt: Optional[Filter], view: ReadView) -> Optional[np.ndarray]:
        """:meth:`filter_mask` when it costs no payload read: held by the mask cache, or answered
        wholly by the payload indexes; else None (also for no filter)."""
        parsed = _restricting(flt)
        if parsed is None:
            return None
        key = self._mask_key(parsed, view)
        mask = self._masks.get(key)
        if mask is not None or not self.state.payload_index.fields:
            return mask
        exact = self.state.payload_index.filter_mask(parsed, view.n)
        if exact is None:
            return None
        reader.check_index()
        mask = exact & view.alive[: view.n]
        kept = self._masks.put(key, mask)
        return mask if kept is None else kept

    def _mask_key(self, parsed: Filter, view: ReadView) -> tuple[Any, ...]:
        # (exclude_none: a third cheaper, and a field left out and a field sent as null filter alike)
        return (view.seq, view.n, self.state.payload_index.generation, parsed.model_dump_json(exclude_none=True))

    def _filter_mask(self, reader: ReadOnDemand, parsed: Filter, view: ReadView) -> Optional[np.ndarray]:
        state = self.state
        indexed = bool(state.payload_index.fields)
        exact = state.payload_index.filter_mask(parsed, view.n) if indexed else None
        if exact is not None:  # (only well-formed conditions on indexed fields are answered exactly)
            reader.check_index()
            return exact & view.alive[: view.n]
        predicate = compile_filter(parsed, state.payload_index.analyzers)  # (raises for malformed conditions)
        if predicate is None:
            return None
        candidates = state.payload_index.candidates_mask(parsed, view.n) if indexed else None
        if indexed:  # (with no field indexed there is nothing to be consistent with)
            reader.check_index()
        has_vector = StoredPointView(lambda iid, name: self._view_has_vector(view, iid, name, reader))
        txn = reader.txn()
        mask = np.zeros(view.n, dtype=bool)
        if candidates is not None:
            for iid in np.flatnonzero(candidates & view.alive[: view.n]).tolist():
                point = state.tables.get(txn, iid)
                if point is not None and predicate(has_vector.bind(point)):
                    mask[iid] = True
            return mask
        for point in state.tables.iter_points(txn):
            if point.iid < view.n and predicate(has_vector.bind(point)):
                mask[point.iid] = True
        return mask

    def _view_has_vector(self, view: ReadView, iid: int, name: str, reader: Optional[ReadOnDemand] = None) -> bool:
        index = space_index(self.state.spaces, name)
        if index is not None:
            return bool(view.spaces[index].present[iid])
        multi = multi_space_by_name(self.state.multi_spaces, name) if self.state.multi_spaces else None
        if multi is not None:  # (held in LMDB alone: asked of the read's transaction)
            return reader is not None and self.state.tables.has_multi(reader.txn(), iid, multi.index)
        return bool(sparse_has_vector(self.state, view, iid, name))

    # --- scroll / count / retrieve -------------------------------------------------------

    def scroll(self, req: ScrollRequest) -> ScrollResult:
        """Points in id order from ``offset``. A filter the payload indexes answer (or the mask cache
        holds) whose matches are few enough is served from its mask: only the page's points are read.
        Otherwise the ``ids`` table is walked in order, each point read and checked, until the page is
        full (cheap when matches are dense, a full scan when they are rare)."""
        limit = req.limit or DEFAULT_SCROLL_LIMIT
        self.state.limits.check_results(limit, 0, "limit")
        with_payload = True if req.with_payload is None else req.with_payload
        if req.order_by is not None:
            order_by = ordering.as_order_by(req.order_by)
            ordering.check(self.state, order_by)
            if req.offset is not None:
                raise InvalidInput(ordering.NO_OFFSET)
            return ScrollResult(
                points=self.state.mvcc.read(
                    lambda view, reader: self._ordered_records(view, reader, order_by, req, limit, with_payload),
                    not nothing_stored_wanted(with_payload) or not nothing_stored_wanted(req.with_vector),
                ),
                next_page_offset=None,
            )
        if req.filter is not None:
            page = self.state.mvcc.read(  # (not eager: the walk, if chosen, opens a transaction of its own)
                lambda view, reader: self._scroll_by_mask(view, reader, req, limit, with_payload)
            )
            if page is not None:
                return page
        with self.state.env.read() as txn:
            predicate = compile_filter(req.filter, self.state.payload_index.analyzers)
            records, next_id = self._scan_ids(txn, predicate, req.offset, limit)
            points = [self.output.record(txn, p, with_payload, req.with_vector) for p in records]
        return ScrollResult(points=points, next_page_offset=next_id)

    def _example_stage(self, view: ReadView, reader: ReadOnDemand, req: QueryRequest) -> QueryResponse:
        """``recommend``, ``discover``, ``context`` and ``sample`` (``engine/examples.py``)."""
        mask = self.filter_mask(reader, req.filter, view)
        hits = self.stage_hits(view, reader, req, mask, req.offset + req.limit)[req.offset :]
        points = self.output.scored_hits(reader.txn, view, hits, req.with_payload, req.with_vector)
        if isinstance(req.query, SampleQuery):
            for point in points:
                point.version = 0  # (Qdrant's server: a random draw has no version to report)
        return QueryResponse(points=points)

    def stage_hits(
        self, view: ReadView, reader: ReadOnDemand, req: QueryRequest, mask: Optional[np.ndarray], depth: int
    ) -> list[tuple[float, int]]:
        """The best ``depth`` hits of an ``order_by`` (score 0, in its order), ``sample`` (score 0, drawn) or
        example query (``recommend``, ``discover``, ``context``) over the points ``mask`` allows, its
        ``score_threshold`` applied, no offset: a query of its own, or a stage of a multi-stage one."""
        state = self.state
        query = req.query
        if isinstance(query, OrderByQuery):
            order_by = ordering.as_order_by(query.order_by)
            ordering.check(state, order_by)
            return [(0.0, iid) for _, iid in ordering.ordered_iids(state, view, reader, order_by, mask, depth)]
        if isinstance(query, SampleQuery):
            return [(0.0, iid) for iid in examples.sample(view, mask, depth)]
        kind = next(iter(type(req.query).model_fields))  # type: ignore[union-attr]  # recommend, discover, context
        sparse = sparse_space_by_name(state.sparse_spaces, req.using) if req.using else None
        multi = multi_space_by_name(state.multi_spaces, req.using)
        if sparse is not None or multi is not None:
            return self._example_hits(view, reader, req, kind, mask, sparse, multi, depth)
        space = space_by_name(state.spaces, req.using)
        found = examples.Examples(state.tables, reader, space, f"query.{kind}")
        if isinstance(query, RecommendQuery) and query.recommend.strategy in (None, "average_vector"):
            vector = examples.average_vector(found, query)
            mask = examples.leave_out(view, mask, found.mentioned)
            knobs = self.planner.knobs(req, state.settings, state.search_device)
            ann = state.ann.get(space.index)
            hits = planner.search(view, space, ann, vector[None, :], depth, mask, knobs, Explain())[0]
            return trim(hits, 0, req.score_threshold, space.distance)
        score = examples.scorer(found, query)
        candidates = examples.candidates_of(view, space, mask, found.mentioned)
        hits = examples.scan_top(view, space, candidates, score, depth)
        if req.score_threshold is not None:
            hits = [(s, i) for s, i in hits if s > req.score_threshold]
        return hits

    def _example_hits(
        self,
        view: ReadView,
        reader: ReadOnDemand,
        req: QueryRequest,
        kind: str,
        mask: Optional[np.ndarray],
        sparse: Optional[SparseSpace],
        multi: Optional[MultiSpace],
        depth: int,
    ) -> list[tuple[float, int]]:
        """recommend, discover and context over a sparse or multivector space (``engine/examples.py``):
        ``average_vector`` as a nearest query of that kind, the others by an exact scan."""
        state, query = self.state, req.query
        space: Any = sparse if sparse is not None else multi
        found = examples.Examples(state.tables, reader, space, f"query.{kind}")
        if isinstance(query, RecommendQuery) and query.recommend.strategy in (None, "average_vector"):
            vector = examples.average_vector(found, query)
            mask = examples.leave_out(view, mask, found.mentioned)
            if multi is not None:
                return multi_top(state, view, reader, multi, vector, depth, mask, req.score_threshold)
            as_query = SparseVector.model_construct(indices=vector[0].tolist(), values=vector[1].tolist())
            hits = sparse_top(state, view, reader, req.using, as_query, depth, mask)
        else:
            score = examples.scorer(found, query)
            candidates = examples.candidates_of(view, None, mask, found.mentioned)
            if multi is not None:
                only = np.zeros(view.n, dtype=bool)
                only[candidates] = True
                blocks: Any = (
                    (iids, np.asarray(score(lambda e, r=rows, s=starts: maxsim(e, r, s, multi.distance)), np.float64))
                    for iids, rows, starts in multi_chunks(state.tables, reader.txn(), view, multi, only)
                )
            else:
                candidates = candidates[sparse_holders(state, view, req.using)[candidates]]
                blocks = [
                    (
                        candidates,
                        np.asarray(
                            score(lambda e: sparse_row_scores(state, view, reader, req.using, e, candidates)),
                            np.float64,
                        ),
                    )
                ]
            hits = examples.top_of(blocks, depth)
        if req.score_threshold is not None:
            hits = [(s, i) for s, i in hits if s > req.score_threshold]
        return hits

    def distance_matrix(self, req: SearchMatrixRequest) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
        """``sample`` random live points passing the filter and holding the vector ``using`` (sorted by id:
        integers, then UUIDs) and, for each, its ``limit`` nearest among the others as ``(position in that
        list, score)``; over a sparse space only the others sharing a term with it, as a sparse search."""
        state = self.state
        sparse = sparse_space_by_name(state.sparse_spaces, req.using) if req.using else None
        multi = multi_space_by_name(state.multi_spaces, req.using)
        space = space_by_name(state.spaces, req.using) if sparse is None and multi is None else None

        def body(view: ReadView, reader: ReadOnDemand) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
            mask = self.filter_mask(reader, req.filter, view)
            if space is not None:
                holders = view.live(space.index)
            elif sparse is not None:
                holders = sparse_holders(state, view, req.using) & view.alive[: view.n]
            else:
                assert multi is not None
                holders = np.zeros(view.n, dtype=bool)
                stored = state.tables.multi_holders(reader.txn(), multi.index)
                holders[stored[stored < view.n]] = True
                holders &= view.alive[: view.n]
            drawn = examples.sample_ids(holders if mask is None else holders & mask, req.sample)
            if len(drawn) < 2:
                return [], []  # (no matrix of fewer than two points)
            ids = view.ids.ids_of(drawn)
            order = sorted(range(len(ids)), key=lambda j: ("", ids[j]) if isinstance(ids[j], int) else (ids[j], 0))
            chosen = np.asarray(drawn, dtype=np.int64)[order]
            if space is not None:
                rows = view.spaces[space.index].matrix[chosen]
                return [ids[j] for j in order], examples.nearest_among(rows, space.distance, req.limit)
            scores = self._pairwise(view, reader, chosen, req.using, sparse, multi)
            return [ids[j] for j in order], examples.best_of_rows(scores, req.limit, multi)

        return state.mvcc.read(body)

    def _pairwise(
        self,
        view: ReadView,
        reader: ReadOnDemand,
        chosen: np.ndarray,
        using: Optional[str],
        sparse: Optional[SparseSpace],
        multi: Optional[MultiSpace],
    ) -> np.ndarray:
        """Scores of every chosen point (rows) against every other (columns), as a query by that point scores
        them: sparse, the dot product over shared terms (NaN where none is shared); multivector, MaxSim."""
        state, txn = self.state, reader.txn()
        n = len(chosen)
        out = np.full((n, n), np.nan)
        if sparse is not None:
            for r, iid in enumerate(chosen.tolist()):
                row = state.tables.get_sparse(txn, iid, sparse.index)
                assert row is not None  # (a holder, read in the same transaction)
                query = SparseVector.model_construct(indices=row[0].tolist(), values=row[1].tolist())
                out[r] = sparse_scores(state, view, reader, using, query, chosen)
            return out
        assert multi is not None
        only = np.zeros(view.n, dtype=bool)
        only[chosen] = True
        position = {iid: j for j, iid in enumerate(chosen.tolist())}
        for iids, rows, starts in multi_chunks(state.tables, txn, view, multi, only):
            columns = [position[i] for i in iids.tolist()]
            for r, iid in enumerate(chosen.tolist()):
                matrix = state.tables.get_multi(txn, iid, multi.index, multi.size)
                assert matrix is not None
                out[r, columns] = shown(maxsim(matrix, rows, starts, multi.distance), multi.distance)
        return out

    def _ordered_records(
        self,
        view: ReadView,
        reader: ReadOnDemand,
        order_by: OrderBy,
        req: Union[ScrollRequest, QueryRequest],
        count: int,
        with_payload: Any,
    ) -> list[Record]:
        """The first ``count`` records in ``order_by``'s order among the points passing ``req.filter``."""
        mask = self.filter_mask(reader, req.filter, view)
        entries = ordering.ordered_iids(self.state, view, reader, order_by, mask, count)
        txn = reader.txn()
        found = self.state.tables.get_many(txn, [iid for _, iid in entries])
        records = []
        for (value, _), point in zip(entries, found, strict=True):
            if point is not None:  # (a consistent read finds every point; kept as a guard)
                record = self.output.record(txn, point, with_payload, req.with_vector)
                record.order_value = value
                records.append(record)
        return records

    def _ordered_stage(self, view: ReadView, reader: ReadOnDemand, req: QueryRequest) -> QueryResponse:
        """An ``order_by`` query: the ordered records after ``offset``, every score 0 (Qdrant's server)."""
        assert isinstance(req.query, OrderByQuery)
        order_by = ordering.as_order_by(req.query.order_by)
        with_payload = False if req.with_payload is None else req.with_payload
        records = self._ordered_records(view, reader, order_by, req, req.offset + req.limit, with_payload)
        return QueryResponse(
            points=[
                ScoredPoint(
                    id=r.id, version=0, score=0.0, payload=r.payload, vector=r.vector, order_value=r.order_value
                )
                for r in records[req.offset :]
            ]
        )

    def _scroll_by_mask(
        self, view: ReadView, reader: ReadOnDemand, req: ScrollRequest, limit: int, with_payload: Any
    ) -> Optional[ScrollResult]:
        """A scroll page from the filter's mask, or None when the mask would cost a payload scan or
        its matches are so many that walking the ids in order finds the page sooner (see
        :data:`SCROLL_BY_MASK`)."""
        mask = self.indexed_mask(reader, req.filter, view)
        if mask is None:
            return None
        if int(np.count_nonzero(mask)) ** 2 > SCROLL_BY_MASK * limit * max(view.count, 1):
            return None
        page = view.ids.page_in_id_order(np.flatnonzero(mask), req.offset, limit + 1)
        txn = reader.txn()
        found = self.state.tables.get_many(txn, page[:limit].tolist())
        points = [self.output.record(txn, p, with_payload, req.with_vector) for p in found if p is not None]
        next_id = view.ids.ids_of(page[limit:])[0] if len(page) > limit else None
        return ScrollResult(points=points, next_page_offset=next_id)

    def _scan_ids(
        self, txn: lmdb.Transaction, predicate: Optional[Predicate], offset: Optional[PointId], limit: int
    ) -> tuple[list[StoredPoint], Optional[PointId]]:
        """Up to ``limit`` matching points in id order from ``offset``, and the next page's first id."""
        tables, spaces = self.state.tables, self.state.spaces
        sparse, multi = self.state.sparse_spaces, self.state.multi_spaces
        has_vector = StoredPointView(lambda iid, name: stored_has_vector(tables, txn, spaces, iid, name, sparse, multi))
        found: list[StoredPoint] = []
        start = None if offset is None else id_to_key(offset)
        for iid in tables.iter_ids_from(txn, start):
            point = tables.get(txn, iid)
            if point is None or (predicate is not None and not predicate(has_vector.bind(point))):
                continue
            if len(found) == limit:
                return found, point.id
            found.append(point)
        return found, None

    def facet(self, req: FacetRequest) -> FacetResponse:
        """Counts per value of an indexed field among the live points passing the filter: always exact
        (``exact: false`` allows an estimate; the index counts exactly at about the same cost)."""
        if not self.state.payload_index.has_match(req.key):
            raise InvalidInput(NO_FACET_INDEX.format(key=req.key))

        def body(view: ReadView, reader: ReadOnDemand) -> list[tuple[Any, int]]:
            mask = self.filter_mask(reader, req.filter, view)
            accept = view.alive[: view.n] if mask is None else view.alive[: view.n] & mask
            counts = self.state.payload_index.facet(req.key, accept)
            reader.check_index()
            return counts

        counts = self.state.mvcc.read(body)[: req.limit]
        return FacetResponse(hits=[FacetValueHit(value=value, count=count) for value, count in counts])

    def count(self, req: CountRequest) -> int:
        def body(view: ReadView, reader: ReadOnDemand) -> int:
            mask = self.filter_mask(reader, req.filter, view)
            return view.count if mask is None else int(np.count_nonzero(mask))

        return self.state.mvcc.read(body, eager=req.filter is not None)

    def retrieve(self, req: PointRequest) -> list[Record]:
        with_payload = True if req.with_payload is None else req.with_payload
        with self.state.env.read() as txn:
            found = (self.output.lookup(txn, pid) for pid in dict.fromkeys(req.ids))
            return [self.output.record(txn, p, with_payload, req.with_vector) for p in found if p is not None]


def _restricting(flt: Optional[Filter]) -> Optional[Filter]:
    """The filter parsed, or None when there is none or it is empty (an empty filter filters nothing)."""
    parsed = as_filter(flt)
    if parsed is None or not (parsed.must or parsed.should or parsed.must_not or parsed.min_should):
        return None
    return parsed


def _diversified(
    view: ReadView, space: VectorSpace, hits: list[tuple[float, int]], params: Mmr, limit: int
) -> list[tuple[float, int]]:
    """``hits`` (nearest first) re-ranked by maximal marginal relevance, scores unchanged."""
    if not hits:
        return []
    iids = np.fromiter((i for _, i in hits), dtype=np.int64, count=len(hits))
    scores = np.fromiter((s for s, _ in hits), dtype=np.float64, count=len(hits))
    relevance = mmr.relevance_of(scores, space.distance)
    rows = view.spaces[space.index].matrix[iids]
    diversity = mmr.DEFAULT_DIVERSITY if params.diversity is None else params.diversity
    return [hits[j] for j in mmr.select(rows, relevance, space.distance, diversity, limit)]
