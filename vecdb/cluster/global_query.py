"""Queries over a sharded collection, answered as one collection answers them.

A shard ranks only its own points, so what is global is done here, over the shards' answers:

* **single stage** (nearest dense / sparse / multivector / document, recommend, discover, context): every
  shard's best ``offset + limit``, merged by score (the direction read from the shards' own rankings, so
  Euclid's smaller-first and every kind's rules need no second copy here), then ``offset`` dropped;
  ``order_by`` merged by ``order_value`` (ties by point id: one node breaks them by insertion order);
  ``sample`` a random pick of the shards' samples; no query: id order.
* **points as examples** (a query by point id, recommend / discover / context examples given as ids): the
  ids are read once (from their shards) and sent to every shard as the vectors they hold, and left out of
  the results as one node leaves them out; the exclusion flows down the stage's prefetches with its filter.
* **prefetch trees**: each prefetch is itself a global query (recursively, its filter merged under its
  parent's, as :func:`vecdb.engine.plans.stage_request` does on one node); the root then
  fuses their results here (``rrf``, ``dbsf``, with :mod:`vecdb.engine.fusion`, scores to the last bit),
  evaluates a ``formula`` here over the candidates' payloads, or sends its own query to the shards
  restricted to the candidates (``has_id``), merged as a single stage.
* **groups**: one node's grouping algorithm (:func:`vecdb.engine.groups.query_groups`) run over the global
  ranking above, so groups of a fusion, of prefetches, of array values come out as one node's.
* **the distance matrix**: a random sample of all shards' points, each one's nearest among the sample
  searched on every shard (one batch per shard) and merged.

* **MMR**: the global candidates with their vectors, re-ranked here as one node re-ranks them.

Refused by name: ``lookup_from`` (examples read from another collection).
``with_lookup`` is done by the cluster service, which reads the other collection.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import numpy as np

from vecdb.engine import fusion, mmr
from vecdb.engine import groups as engine_groups
from vecdb.engine.formula import Formula
from vecdb.engine.plans import merge_filters, stage_request, validate
from vecdb.errors import NotFound, Unsupported, VecdbError
from vecdb.ids import PointId, id_to_key
from vecdb.limits import Limits
from vecdb.models.collections import Distance
from vecdb.models.expressions import FormulaQuery
from vecdb.models.filters import Filter, HasIdCondition, HasVectorCondition
from vecdb.models.points import CountRequest, PointRequest, Record, SparseVector
from vecdb.models.query import (
    ContextPair,
    ContextQuery,
    DiscoverQuery,
    FusionQuery,
    GroupsResult,
    Mmr,
    NearestQuery,
    OrderByQuery,
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    QueryResponse,
    RecommendQuery,
    RrfQuery,
    SampleQuery,
    ScoredPoint,
    SearchMatrixRequest,
)

Read = Callable[[str, Any], list[Any]]
"""``read(method, request)``: the method asked of one replica of every shard the query covers."""


def is_point_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


class GlobalQuery:
    """One query (or grouped query) over ``shards`` of collection ``name``; ``read`` reaches the shards,
    ``get_points`` reads points wherever they live, ``distance_of`` names a vector's distance (a nearest
    query of a Euclid or Manhattan space ranks smaller first)."""

    def __init__(
        self,
        name: str,
        read: Read,
        get_points: Callable[[PointRequest], list[Record]],
        distance_of: Callable[[Optional[str]], str],
        explaining: bool = False,
    ) -> None:
        self.name = name
        self.read = read
        self.get_points = get_points
        self.distance_of = distance_of
        self.explaining = explaining
        """Build :attr:`stage`: each stage's kind, candidates, time, its shards' own explains, its prefetches."""
        self.stage: dict[str, Any] = {}
        self._shards: Optional[list[Any]] = None

    def higher_default(self, using: Optional[str]) -> bool:
        return self.distance_of(using) not in (Distance.EUCLID.value, Distance.MANHATTAN.value)

    # --- queries ------------------------------------------------------------------------------------

    def points(self, req: QueryRequest, at: str = "") -> list[ScoredPoint]:
        """The hits of ``req``; ``at`` is the stage's path in the whole request (``prefetch.1.``), put in
        front of the field an error names, as one node names it."""
        if not at:
            validate([req], Limits())  # the tree's own refusals first, named by path (the shards check limits)
            return self._points(req, at)
        try:
            return self._points(req, at)
        except VecdbError as exc:
            if (
                exc.message.startswith(at)
                or not exc.message.split(":", 1)[0].replace("_", "").replace(".", "").isalnum()
            ):
                raise
            raise type(exc)(at + exc.message) from None

    def _points(self, req: QueryRequest, at: str) -> list[ScoredPoint]:
        if req.lookup_from is not None:
            raise Unsupported("lookup_from: examples from another collection are not supported on a cluster yet")
        t0 = time.perf_counter()
        req = self._with_examples(req)
        children: list[dict[str, Any]] = []
        query = req.query
        if not req.prefetch:
            hits = self._single(req)
        elif isinstance(query, (FusionQuery, RrfQuery, FormulaQuery)):
            sources = self._sources(req, at, children)
            t_merge = time.perf_counter()
            hits = self._merged(req, sources)
            merge_ms = (time.perf_counter() - t_merge) * 1e3
        else:
            hits = self._single(self._over_candidates(req, at, children))
        if self.explaining:
            stage: dict[str, Any] = {"kind": stage_kind(query), "using": req.using, "limit": req.limit}
            if self._shards is not None:
                stage["shards"] = self._shards
            if children:
                stage["prefetch"] = children
            if isinstance(query, (FusionQuery, RrfQuery, FormulaQuery)) and req.prefetch:
                stage["merge_ms"] = round(merge_ms, 4)
            stage.update(candidates=len(hits), time_ms=round((time.perf_counter() - t0) * 1e3, 4))
            self.stage = stage
        self._shards = None
        return hits

    def _sources(self, req: Any, at: str, explains: list[dict[str, Any]]) -> list[list[ScoredPoint]]:
        """Each prefetch of ``req`` as a global query of its own (its filter under ``req``'s); each one's
        explain appended to ``explains`` when explaining."""
        out = []
        for i, child in enumerate(req.prefetch):
            out.append(self.points(stage_request(child, req.filter), f"{at}prefetch.{i}."))
            if self.explaining:
                explains.append(self.stage)
        return out

    def batch(self, reqs: list[QueryRequest]) -> list[list[ScoredPoint]]:
        """Several queries: where each is one plain stage (a vector, no example ids, no prefetch, MMR, order or
        sample), one batch per shard (a call each, not one per query), merged query by query; else one by one."""
        if not all(_plain(r) for r in reqs):
            return [self.points(r) for r in reqs]
        validate(reqs, Limits())
        per_shard = [r.model_copy(update={"offset": 0, "limit": r.offset + r.limit}) for r in reqs]
        answers = self.read("query_batch_points", QueryRequestBatch(searches=per_shard))
        out = []
        for j, r in enumerate(reqs):
            lists = [shard[j].points for shard in answers]
            out.append(
                _by_score(lists, _higher_first(lists, self.higher_default(r.using)))[r.offset : r.offset + r.limit]
            )
        return out

    def _over_candidates(self, req: Any, at: str = "", explains: Optional[list[dict[str, Any]]] = None) -> Any:
        """The root's own query, restricted to its prefetches' global candidates (as one node re-scores them)."""
        assert req.prefetch is not None
        sources = self._sources(req, at, [] if explains is None else explains)
        candidates = list({id_to_key(p.id): p.id for hits in sources for p in hits}.values())
        only = Filter(must=[HasIdCondition(has_id=candidates)])
        return req.model_copy(update={"prefetch": None, "filter": merge_filters(req.filter, only)})

    def _single(self, req: QueryRequest) -> list[ScoredPoint]:
        query = req.query
        if isinstance(query, NearestQuery) and query.mmr is not None:
            return self._diversified(req, query.mmr)
        depth = req.offset + req.limit
        per_shard = req.model_copy(update={"offset": 0, "limit": depth, "explain": self.explaining or None})
        found = self.read("query_points", per_shard)
        if self.explaining:
            self._shards = [a.explain for a in found]
        answers = [a.points for a in found]
        if isinstance(query, OrderByQuery):
            merged = in_field_order(answers, query.order_by)
        elif isinstance(query, SampleQuery):
            merged = [p for hits in answers for p in hits]
            random.shuffle(merged)
        elif query is None:
            merged = sorted((p for hits in answers for p in hits), key=lambda p: id_to_key(p.id))
        else:
            merged = _by_score(answers, _higher_first(answers, self.higher_default(req.using)))
        return merged[req.offset : depth]

    def _diversified(self, req: QueryRequest, params: Mmr) -> list[ScoredPoint]:
        """MMR over the global candidates: the ``candidates_limit`` (default ``limit``) nearest of all shards,
        with their vectors, re-ranked here by :func:`vecdb.engine.mmr.select` as one node re-ranks them."""
        assert isinstance(req.query, NearestQuery)
        using = req.using or ""
        depth = params.candidates_limit if params.candidates_limit is not None else req.limit
        plain = req.query.model_copy(update={"mmr": None})
        wants = req.with_vector
        per_shard = req.model_copy(
            update={"query": plain, "offset": 0, "limit": depth, "with_vector": [using] if using else True}
        )
        answers = [a.points for a in self.read("query_points", per_shard)] if depth else []
        distance = Distance(self.distance_of(req.using))
        candidates = _by_score(answers, _higher_first(answers, self.higher_default(req.using)))[:depth]
        if not candidates:
            return []
        rows = np.asarray(
            [p.vector.get(using) if isinstance(p.vector, dict) else p.vector for p in candidates], dtype=np.float32
        )
        relevance = mmr.relevance_of(np.asarray([p.score for p in candidates]), distance)
        diversity = mmr.DEFAULT_DIVERSITY if params.diversity is None else params.diversity
        chosen = [candidates[j] for j in mmr.select(rows, relevance, distance, diversity, req.offset + req.limit)]
        chosen = chosen[req.offset :]
        if not wants:
            for p in chosen:
                p.vector = None
        elif wants is not True:  # (named vectors asked for: read again, as asked)
            records = self._records([p.id for p in chosen], False, wants)
            for p in chosen:
                found = records.get(id_to_key(p.id))
                p.vector = found.vector if found is not None else None
        return chosen

    def _merged(self, req: QueryRequest, sources: list[list[ScoredPoint]]) -> list[ScoredPoint]:
        """Fusion or formula over the prefetches' global results, here; then ``score_threshold``, ``offset``,
        and the payloads and vectors asked for, read from the shards."""
        keys: dict[bytes, int] = {}
        ids: list[PointId] = []
        for hits in sources:
            for p in hits:
                if id_to_key(p.id) not in keys:
                    keys[id_to_key(p.id)] = len(ids)
                    ids.append(p.id)
        ranked = [[(p.score, keys[id_to_key(p.id)]) for p in hits] for hits in sources]
        depth = req.offset + req.limit
        query = req.query
        if isinstance(query, (RrfQuery, FusionQuery)):
            fused = fusion.fuse(query, ranked, depth)
        else:
            assert isinstance(query, FormulaQuery)
            formula = Formula(query)
            records = self._records(ids, with_payload=True, with_vector=True) if formula.needs_point else {}
            fused = formula.rescore(ranked, lambda key: _RecordView.of(records.get(id_to_key(ids[key]))), depth)
        if req.score_threshold is not None:
            fused = [(s, k) for s, k in fused if s >= req.score_threshold]
        fused = fused[req.offset :]
        wanted = [ids[k] for _, k in fused]
        records = self._records(wanted, req.with_payload or False, req.with_vector or False)
        out = []
        for score, k in fused:
            record = records.get(id_to_key(ids[k]))
            out.append(
                ScoredPoint(
                    id=ids[k],
                    score=score,
                    payload=record.payload if record is not None and req.with_payload else None,
                    vector=record.vector if record is not None else None,
                )
            )
        return out

    def _records(self, ids: Sequence[PointId], with_payload: Any, with_vector: Any) -> dict[bytes, Record]:
        if not ids:
            return {}
        req = PointRequest(ids=list(ids), with_payload=with_payload, with_vector=with_vector)
        return {id_to_key(r.id): r for r in self.get_points(req)}

    # --- points given as examples -----------------------------------------------------------------

    def _with_examples(self, req: Any) -> Any:
        """``req`` with every point id in its query replaced by that point's vector (read once), the ids left
        out of its results by a ``must_not`` on its filter (which its prefetches inherit)."""
        query = req.query
        ids = _example_ids(query)
        if not ids:
            return req
        vectors = self._vectors(ids, req.using)
        new_query = _substituted(query, lambda v: vectors[id_to_key(v)] if is_point_id(v) else v)
        leave_out = Filter(must_not=[HasIdCondition(has_id=ids)])
        return req.model_copy(update={"query": new_query, "filter": merge_filters(req.filter, leave_out)})

    def _vectors(self, ids: list[PointId], using: Optional[str]) -> dict[bytes, Any]:
        found = self._records(ids, with_payload=False, with_vector=[using or ""] if using else True)
        out: dict[bytes, Any] = {}
        for point_id in ids:
            record = found.get(id_to_key(point_id))
            if record is None:
                raise NotFound(f"No point with id {point_id} found")
            vector: Any = record.vector
            if isinstance(vector, dict):
                vector = vector.get(using or "")
            if vector is None:
                raise NotFound(f"No vector {using or '(default)'!r} in point {point_id}")
            if hasattr(vector, "indices"):
                vector = SparseVector(indices=list(vector.indices), values=list(vector.values))
            out[id_to_key(point_id)] = vector
        return out

    # --- groups -------------------------------------------------------------------------------------

    def groups(self, req: QueryGroupsRequest) -> GroupsResult:
        """One node's grouping (:func:`vecdb.engine.groups.query_groups`: rank, group, deepen until the first
        ``limit`` groups are known and full) over the global ranking of :meth:`points`."""
        live = sum(c.count for c in self.read("count_points", CountRequest()))
        groups = engine_groups.query_groups(lambda query: QueryResponse(points=self.points(query)), req, live)
        return GroupsResult(groups=groups)

    # --- the distance matrix ------------------------------------------------------------------------

    def matrix(self, req: SearchMatrixRequest) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
        """``sample`` random points of all shards (passing the filter, holding the vector ``using``), sorted by
        id, and each one's ``limit`` nearest among the others: one batch of searches per shard, merged."""
        holds = Filter(must=[HasVectorCondition(has_vector=req.using or "")])
        drawing = QueryRequest.model_construct(
            **_QUERY_DEFAULTS,
            query=SampleQuery(sample="random"),
            using=req.using,
            filter=merge_filters(req.filter, holds),
            limit=req.sample,
        )
        drawn = [p.id for hits in self.read("query_points", drawing) for p in hits.points]
        random.shuffle(drawn)
        ids = sorted(drawn[: req.sample], key=lambda i: ("", i) if isinstance(i, int) else (i, 0))
        if len(ids) < 2:
            return [], []
        vectors = self._vectors(ids, req.using)
        among = Filter(must=[HasIdCondition(has_id=ids)])
        searches = [
            QueryRequest.model_construct(
                **_QUERY_DEFAULTS,
                query=NearestQuery(nearest=vectors[id_to_key(i)]),
                using=req.using,
                filter=merge_filters(among, Filter(must_not=[HasIdCondition(has_id=[i])])),
                limit=req.limit,
            )
            for i in ids
        ]
        answers = self.read("query_batch_points", QueryRequestBatch(searches=searches))
        position = {id_to_key(i): j for j, i in enumerate(ids)}
        rows = []
        for j in range(len(ids)):
            per_shard = [shard[j].points for shard in answers]
            ranked = _by_score(per_shard, _higher_first(per_shard, self.higher_default(req.using)))[: req.limit]
            rows.append([(position[id_to_key(p.id)], float(p.score)) for p in ranked])
        return ids, rows


_QUERY_DEFAULTS: dict[str, Any] = {
    "prefetch": None,
    "params": None,
    "score_threshold": None,
    "with_vector": False,
    "with_payload": False,
    "lookup_from": None,
    "shard_key": None,
    "offset": 0,
    "explain": None,
}


def _plain(req: QueryRequest) -> bool:
    """One stage whose shards' rankings merge by score alone (see :meth:`GlobalQuery.batch`)."""
    query = req.query
    if req.prefetch or req.explain or req.lookup_from is not None or _example_ids(query):
        return False
    if isinstance(query, NearestQuery):
        return query.mmr is None
    return query is not None and not isinstance(
        query, (OrderByQuery, SampleQuery, FusionQuery, RrfQuery, FormulaQuery, dict)
    )


def in_field_order(answers: Sequence[Sequence[Any]], order_by: Any) -> list[Any]:
    """Hits or records of every shard in the order of their ``order_value`` (ties by point id)."""
    descending = not isinstance(order_by, str) and order_by.direction == "desc"
    merged = sorted((p for hits in answers for p in hits), key=lambda p: id_to_key(p.id))
    merged.sort(key=lambda p: _order_key(p.order_value), reverse=descending)
    return merged


def stage_kind(query: Any) -> str:
    """A stage's kind as one node's explain names it."""
    if isinstance(query, (FusionQuery, RrfQuery)):
        return "fusion"
    if query is None:
        return "scroll"
    if isinstance(query, NearestQuery):
        query = query.nearest
    if isinstance(query, SparseVector):
        return "sparse"
    for kind, model in (
        ("formula", FormulaQuery),
        ("order_by", OrderByQuery),
        ("sample", SampleQuery),
        ("recommend", RecommendQuery),
        ("discover", DiscoverQuery),
        ("context", ContextQuery),
    ):
        if isinstance(query, model):
            return kind
    return "nearest"


def _example_ids(query: Any) -> list[PointId]:
    found: list[PointId] = []
    _substituted(query, lambda v: found.append(v) if is_point_id(v) else None)
    return list({id_to_key(i): i for i in found}.values())


def _substituted(query: Any, swap: Callable[[Any], Any]) -> Any:
    """``query`` with ``swap`` applied to each example or target it holds (vectors and ids)."""

    def pair(p: ContextPair) -> ContextPair:
        return p.model_copy(update={"positive": swap(p.positive), "negative": swap(p.negative)})

    def pairs(value: Any) -> Any:
        return None if value is None else [pair(p) for p in value] if isinstance(value, list) else pair(value)

    if isinstance(query, NearestQuery):
        return query.model_copy(update={"nearest": swap(query.nearest)})
    if isinstance(query, RecommendQuery):
        rec = query.recommend
        positive = None if rec.positive is None else [swap(v) for v in rec.positive]
        negative = None if rec.negative is None else [swap(v) for v in rec.negative]
        return query.model_copy(
            update={"recommend": rec.model_copy(update={"positive": positive, "negative": negative})}
        )
    if isinstance(query, DiscoverQuery):
        dis = query.discover
        return query.model_copy(
            update={"discover": dis.model_copy(update={"target": swap(dis.target), "context": pairs(dis.context)})}
        )
    if isinstance(query, ContextQuery):
        return query.model_copy(update={"context": pairs(query.context)})
    if is_point_id(query):
        return swap(query)
    return query


def _higher_first(answers: Sequence[Sequence[ScoredPoint]], default: bool) -> bool:
    """Whether higher scores rank first, as the shards ranked their answers (``default`` if no shard's
    answer has two different scores)."""
    for hits in answers:
        for a, b in zip(hits, hits[1:], strict=False):
            if a.score != b.score:
                return a.score > b.score
    return default


def _by_score(answers: Sequence[Sequence[ScoredPoint]], higher: bool) -> list[ScoredPoint]:
    """Every shard's hits in one ranking (stable: equal scores keep shard order)."""
    merged = [p for hits in answers for p in hits]
    merged.sort(key=lambda p: p.score, reverse=higher)
    return merged


def _order_key(value: Any) -> Any:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


class _RecordView:
    """A record read from a shard, as a formula sees a stored point."""

    __slots__ = ("record",)

    def __init__(self, record: Record) -> None:
        self.record = record

    @classmethod
    def of(cls, record: Optional[Record]) -> Optional[_RecordView]:
        return None if record is None else cls(record)

    @property
    def id(self) -> PointId:
        return self.record.id

    @property
    def payload(self) -> dict[str, Any]:
        return self.record.payload or {}

    def has_vector(self, name: str) -> bool:
        vector = self.record.vector
        if isinstance(vector, dict):
            return vector.get(name) is not None
        return vector is not None and name == ""


__all__ = ["GlobalQuery", "in_field_order", "is_point_id"]
