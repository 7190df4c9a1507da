"""A sharded collection's router: one request in, a request per shard out, one answer back.

The router speaks to its shards through the :class:`~vecdb.service.VectorService` interface, so a shard
may be an in-process :class:`~vecdb.engine.service.LocalService` (each with its own data directory: how
the tests and a single machine run it) or, next, a Ray actor serving one (issue 18). The collection has
the same name on every shard; the router knows only the shard count.

Served so far (the rest of the interface comes with the Ray actors):

* writes: ``upsert_points`` and ``update_vectors`` cut by :func:`~vecdb.cluster.sharding.shard_of`;
  ``delete_points``, the payload writes and ``delete_vectors`` by ids to their shards, by filter to every
  shard (a write spanning shards is one transaction per shard, not one in all);
* reads: ``get_points`` (in the order asked), ``count_points`` (summed), ``facet`` (counts summed, exact),
  ``scroll_points`` (merged in
  Qdrant's scroll order: integers, then UUIDs, with the global next page id), and ``query_points`` for a
  single-stage nearest query (fanned out with ``offset + limit`` and merged by
  :func:`~vecdb.cluster.sharding.merge_ranked`). A multi-stage query, a query by point id and the other
  query kinds are refused by name until their global merge is built (a per-shard fusion or grouping
  would not equal a single node's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from vecdb.cluster.sharding import merge_ranked, shard_of, split_by_shard
from vecdb.errors import Unsupported
from vecdb.ids import PointId, id_to_key
from vecdb.models.collections import CreateCollection, CreateFieldIndex, Distance
from vecdb.models.points import (
    Batch,
    CountRequest,
    CountResult,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    FacetValueHit,
    PointIdsList,
    PointInsertOperations,
    PointRequest,
    PointsBatch,
    PointsList,
    PointsSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    SetPayload,
    UpdateResult,
    UpdateVectors,
)
from vecdb.models.query import NearestQuery, QueryRequest, QueryResponse
from vecdb.service import VectorService

_SMALLER_FIRST = (Distance.EUCLID.value, Distance.MANHATTAN.value)
FACET_ALL = 1 << 31
"""A facet limit above any field's number of values: each shard answers every value it holds."""


class ShardRouter:
    """Routes one collection's requests over ``shards`` (each a service holding one shard's collection)."""

    def __init__(self, shards: Sequence[VectorService]) -> None:
        if not shards:
            raise ValueError("a sharded collection needs at least one shard")
        self.shards = list(shards)
        self._distances: dict[tuple[str, str], str] = {}
        """The distance of each (collection, vector) queried, read from the first shard once."""

    @property
    def shard_number(self) -> int:
        return len(self.shards)

    # --- collections ------------------------------------------------------------------------------

    def create_collection(self, name: str, req: CreateCollection) -> bool:
        """The collection on every shard (each a one-shard collection of the same settings)."""
        per_shard = req.model_copy(update={"shard_number": None})
        self._forget(name)
        for shard in self.shards:
            shard.create_collection(name, per_shard)
        return True

    def delete_collection(self, name: str) -> bool:
        self._forget(name)
        return all([shard.delete_collection(name) for shard in self.shards])

    def _forget(self, name: str) -> None:
        self._distances = {k: v for k, v in self._distances.items() if k[0] != name}

    def _all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every shard: all at once where the shards can be sent work without waiting
        (``submit``/``gather``, as Ray actors can), else one after another."""
        first: Any = self.shards[0]
        if hasattr(first, "submit"):
            return list(first.gather([shard.submit(method, *args) for shard in self.shards]))  # type: ignore[attr-defined]
        return [getattr(shard, method)(*args) for shard in self.shards]

    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult:
        return _last([shard.create_field_index(name, req) for shard in self.shards])

    def delete_field_index(self, name: str, field_name: str) -> UpdateResult:
        return _last([shard.delete_field_index(name, field_name) for shard in self.shards])

    # --- writes -----------------------------------------------------------------------------------

    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult:
        """Each point to its shard; shards without a point get no request."""
        results = []
        for shard, part in zip(self.shards, _split_upsert(req, self.shard_number), strict=True):
            if part is not None:
                results.append(shard.upsert_points(name, part))
        return _last(results)

    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult:
        if isinstance(req, PointIdsList):
            groups = split_by_shard(req.points, self.shard_number)
            results = [
                shard.delete_points(name, PointIdsList(points=[req.points[j] for j in group]))
                for shard, group in zip(self.shards, groups, strict=True)
                if group
            ]
            return _last(results)
        return _last([shard.delete_points(name, req) for shard in self.shards])

    def set_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._by_ids(req, "points", lambda shard, part: shard.set_payload(name, part))

    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._by_ids(req, "points", lambda shard, part: shard.overwrite_payload(name, part))

    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult:
        return self._by_ids(req, "points", lambda shard, part: shard.delete_payload(name, part))

    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult:
        if isinstance(req, PointIdsList):
            return self._by_ids(req, "points", lambda shard, part: shard.clear_payload(name, part))
        return _last([shard.clear_payload(name, req) for shard in self.shards])

    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult:
        return self._by_ids(req, "points", lambda shard, part: shard.delete_vectors(name, part))

    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult:
        """Each point's new vectors to its shard. A point missing on its shard fails that shard's part
        alone: the other shards' parts are written (a single node writes none)."""
        groups = split_by_shard([p.id for p in req.points], self.shard_number)
        return _last(
            [
                shard.update_vectors(name, req.model_copy(update={"points": [req.points[j] for j in group]}))
                for shard, group in zip(self.shards, groups, strict=True)
                if group
            ]
        )

    def _by_ids(self, req: Any, field: str, call: Any) -> UpdateResult:
        """A write naming points by id (``req.<field>``) to their shards; one selecting by filter to all."""
        ids = getattr(req, field)
        if ids is None:
            return _last([call(shard, req) for shard in self.shards])
        groups = split_by_shard(ids, self.shard_number)
        return _last(
            [
                call(shard, req.model_copy(update={field: [ids[j] for j in group]}))
                for shard, group in zip(self.shards, groups, strict=True)
                if group
            ]
        )

    # --- reads ------------------------------------------------------------------------------------

    def facet(self, name: str, req: FacetRequest) -> FacetResponse:
        """Counts per value summed over the shards (each asked for every value, so the sum is exact), most
        points first, ties by value, as one collection orders them."""
        every = req.model_copy(update={"limit": FACET_ALL})
        totals: dict[tuple[str, Any], int] = {}
        for answer in self._all("facet", name, every):
            for hit in answer.hits:
                key = (type(hit.value).__name__, hit.value)
                totals[key] = totals.get(key, 0) + hit.count
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0][1]))[: req.limit]
        return FacetResponse(hits=[FacetValueHit(value=value, count=count) for (_, value), count in ranked])

    def get_points(self, name: str, req: PointRequest) -> list[Record]:
        """The points asked for, in the order asked (each asked of its shard once)."""
        wanted = list(dict.fromkeys(req.ids))
        found: dict[bytes, Record] = {}
        for shard, group in zip(self.shards, split_by_shard(wanted, self.shard_number), strict=True):
            if group:
                part = req.model_copy(update={"ids": [wanted[j] for j in group]})
                for record in shard.get_points(name, part):
                    found[id_to_key(record.id)] = record
        return [found[key] for key in (id_to_key(i) for i in wanted) if key in found]

    def count_points(self, name: str, req: CountRequest) -> CountResult:
        return CountResult(count=sum(r.count for r in self._all("count_points", name, req)))

    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult:
        """Pages in Qdrant's scroll order across shards: each shard's page from ``offset``, merged by id
        key; the next page starts at the first id not returned, from any shard."""
        if req.order_by is not None:
            raise Unsupported("order_by: scrolling a sharded collection in a field's order is not supported yet")
        pages = self._all("scroll_points", name, req)
        limit = req.limit or 10
        merged = sorted((p for page in pages for p in page.points), key=lambda r: id_to_key(r.id))
        following: list[PointId] = [r.id for r in merged[limit:]]
        following += [page.next_page_offset for page in pages if page.next_page_offset is not None]
        next_id = min(following, key=id_to_key) if following else None
        return ScrollResult(points=merged[:limit], next_page_offset=next_id)

    def query_points(self, name: str, req: QueryRequest) -> QueryResponse:
        """A single-stage nearest query: every shard's best ``offset + limit``, merged, ``offset`` dropped."""
        query = req.query.nearest if isinstance(req.query, NearestQuery) else req.query
        if req.prefetch or isinstance(req.query, NearestQuery) and req.query.mmr is not None:
            raise Unsupported("query: multi-stage and MMR queries on a sharded collection are not supported yet")
        if not (
            isinstance(query, np.ndarray) or (isinstance(query, list) and query and not isinstance(query[0], list))
        ):
            raise Unsupported("query: only a dense vector query is supported on a sharded collection yet")
        per_shard = req.model_copy(update={"offset": 0, "limit": req.offset + req.limit})
        answers = [answer.points for answer in self._all("query_points", name, per_shard)]
        higher = self._distance(name, req.using) not in _SMALLER_FIRST
        return QueryResponse(points=merge_ranked(answers, req.offset, req.limit, _score, higher))

    def _distance(self, name: str, using: Optional[str]) -> str:
        key = (name, using or "")
        found = self._distances.get(key)
        if found is None:
            vectors: Any = self.shards[0].get_collection(name).config.params.vectors
            params = vectors if "distance" in vectors else vectors.get(using or "", {})
            found = self._distances[key] = str(params.get("distance", Distance.COSINE.value))
        return found


def _score(point: Any) -> float:
    return float(point.score)


def _last(results: list[UpdateResult]) -> UpdateResult:
    """One write's result across shards (each shard numbers its own operations)."""
    return results[-1] if results else UpdateResult(operation_id=0, status="completed")


def _split_upsert(req: PointInsertOperations, shards: int) -> list[Optional[PointInsertOperations]]:
    """The upsert cut into one request per shard (None where a shard gets no point)."""
    extra: dict[str, Any] = {"update_filter": req.update_filter, "update_mode": req.update_mode}
    if isinstance(req, PointsList):
        groups = split_by_shard([p.id for p in req.points], shards)
        return [PointsList(points=[req.points[j] for j in g], **extra) if g else None for g in groups]
    assert isinstance(req, PointsBatch)
    batch = req.batch
    groups = split_by_shard(batch.ids, shards)
    out: list[Optional[PointInsertOperations]] = []
    for group in groups:
        if not group:
            out.append(None)
            continue
        vectors: Any
        if isinstance(batch.vectors, dict):
            vectors = {k: [column[j] for j in group] for k, column in batch.vectors.items()}
        elif isinstance(batch.vectors, np.ndarray):
            vectors = batch.vectors[np.asarray(group)]
        else:
            vectors = [batch.vectors[j] for j in group]
        payloads = None if batch.payloads is None else [batch.payloads[j] for j in group]
        part = Batch.model_construct(ids=[batch.ids[j] for j in group], vectors=vectors, payloads=payloads)
        out.append(PointsBatch.model_construct(batch=part, shard_key=None, **extra))
    return out


__all__ = ["ShardRouter", "shard_of"]
