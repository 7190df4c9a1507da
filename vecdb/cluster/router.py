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

import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from vecdb.cluster.global_query import GlobalQuery, in_field_order
from vecdb.cluster.replicas import ReplicaSet, single
from vecdb.cluster.sharding import shard_of, split_by_shard
from vecdb.errors import InvalidInput, NotFound
from vecdb.ids import PointId, id_to_key
from vecdb.models.collections import CreateCollection, CreateFieldIndex, Distance, UpdateCollection
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
from vecdb.models.query import GroupsResult, QueryGroupsRequest, QueryRequest, QueryResponse, SearchMatrixRequest

_SMALLER_FIRST = (Distance.EUCLID.value, Distance.MANHATTAN.value)
FACET_ALL = 1 << 31
"""A facet limit above any field's number of values: each shard answers every value it holds."""


class ShardRouter:
    """Routes one collection's requests over ``shards``: each a :class:`~vecdb.cluster.replicas.ReplicaSet`
    (or a service, taken as a shard of one replica). ``shard_keys`` (custom sharding) maps each shard key
    to the shards holding it; without it, every point goes to a shard by its id's hash."""

    def __init__(self, shards: Sequence[Any], shard_keys: Optional[dict[Any, list[int]]] = None) -> None:
        if not shards and shard_keys is None:
            raise ValueError("a sharded collection needs at least one shard")
        self.shards: list[ReplicaSet] = [s if isinstance(s, ReplicaSet) else single(i, s) for i, s in enumerate(shards)]
        self.shard_keys = shard_keys
        self._distances: dict[tuple[str, str], str] = {}
        """The distance of each (collection, vector) queried, read from the first shard once."""

    @property
    def shard_number(self) -> int:
        return len(self.shards)

    # --- where a request goes ---------------------------------------------------------------------

    def _keyed(self, selector: Any, field: str = "shard_key") -> list[int]:
        """The shards of the shard keys ``selector`` names (one key or a list), each key checked."""
        assert self.shard_keys is not None
        keys = selector if isinstance(selector, list) else [selector]
        out: list[int] = []
        for key in keys:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise InvalidInput(f"{field}: a shard key is a string or an integer, not {key!r}")
            if key not in self.shard_keys:
                raise NotFound(f"{field}: shard key {key!r} does not exist")
            out += [s for s in self.shard_keys[key] if s not in out]
        return out

    def _reads_from(self, selector: Any) -> list[int]:
        """The shards a read looks at: those of the selected shard keys, or all."""
        if selector is None:
            return list(range(self.shard_number))
        if self.shard_keys is None:
            raise InvalidInput("shard_key: this collection is sharded by point id (sharding_method auto)")
        return self._keyed(selector)

    def _writes_to(self, selector: Any, must: bool) -> list[int]:
        """The shards a write may touch; with custom sharding an upsert (``must``) names its shard key."""
        if self.shard_keys is not None and selector is None and must:
            raise InvalidInput("shard_key: a collection with custom sharding needs a shard key on this write")
        return self._reads_from(selector)

    def _split(self, ids: Sequence[PointId], group: list[int]) -> list[tuple[int, list[int]]]:
        """``ids`` cut among the shards in ``group`` by hash: (shard, positions in ``ids``) for each shard hit."""
        parts = split_by_shard(ids, len(group))
        return [(group[j], part) for j, part in enumerate(parts) if part]

    # --- calls --------------------------------------------------------------------------------------

    def _read(self, shards: Sequence[int], method: str, *args: Any) -> list[Any]:
        """``method(*args)`` read from one replica of each of ``shards``, all started before any is awaited."""
        started = [self.shards[s].submit_read(method, *args) for s in shards]
        return [self.shards[s].finish_read(p) for s, p in zip(shards, started, strict=True)]

    def _all(self, method: str, *args: Any) -> list[Any]:
        return self._read(range(self.shard_number), method, *args)  # type: ignore[arg-type]

    def _write(self, parts: Sequence[tuple[int, tuple[Any, ...]]], method: str) -> UpdateResult:
        """One write cut in ``parts`` (shard, arguments): started on every replica of every shard (shard locks
        taken in shard order), then awaited; the first failure is raised once all are awaited."""
        started = []
        try:
            for s, args in sorted(parts, key=lambda part: part[0]):
                started.append((s, self.shards[s].submit_write(method, *args)))
        finally:
            results: list[Any] = []
            failure: Optional[BaseException] = None
            for s, pending in started:
                try:
                    results.append(self.shards[s].finish_write(pending))
                except BaseException as exc:  # noqa: BLE001 (every shard's lock must be released first)
                    failure = failure or exc
            if failure is not None:
                raise failure
        return _last(results)

    def _write_all(self, shards: Sequence[int], method: str, *args: Any) -> UpdateResult:
        return self._write([(s, args) for s in shards], method)

    # --- collections ------------------------------------------------------------------------------

    def create_collection(self, name: str, req: CreateCollection) -> bool:
        """The collection on every shard (each a one-shard collection of the same settings)."""
        self._forget(name)
        self._write_all(range(self.shard_number), "create_collection", name, per_shard_create(req))  # type: ignore[arg-type]
        return True

    def delete_collection(self, name: str) -> bool:
        self._forget(name)
        self._write_all(range(self.shard_number), "delete_collection", name)  # type: ignore[arg-type]
        return True

    def _forget(self, name: str) -> None:
        self._distances = {k: v for k, v in self._distances.items() if k[0] != name}

    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult:
        return self._write_all(range(self.shard_number), "create_field_index", name, req)  # type: ignore[arg-type]

    def delete_field_index(self, name: str, field_name: str) -> UpdateResult:
        return self._write_all(range(self.shard_number), "delete_field_index", name, field_name)  # type: ignore[arg-type]

    def update_collection(self, name: str, req: UpdateCollection) -> UpdateResult:
        return self._write_all(range(self.shard_number), "update_collection", name, req)  # type: ignore[arg-type]

    # --- writes -----------------------------------------------------------------------------------

    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult:
        """Each point to its shard (of its shard key, with custom sharding); shards without a point get no
        request."""
        group = self._writes_to(req.shard_key, must=True)
        return self._write([(s, (name, part)) for s, part in _split_upsert(req, group)], "upsert_points")

    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult:
        group = self._writes_to(req.shard_key, must=False)
        plain = req.model_copy(update={"shard_key": None})
        if isinstance(plain, PointIdsList):
            parts = self._split(plain.points, group)
            return self._write(
                [(s, (name, PointIdsList(points=[plain.points[j] for j in part]))) for s, part in parts],
                "delete_points",
            )
        return self._write_all(group, "delete_points", name, plain)

    def set_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._by_ids(name, req, "set_payload")

    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._by_ids(name, req, "overwrite_payload")

    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult:
        return self._by_ids(name, req, "delete_payload")

    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult:
        if isinstance(req, PointIdsList):
            return self._by_ids(name, req, "clear_payload")
        return self._write_all(
            self._writes_to(req.shard_key, must=False),
            "clear_payload",
            name,
            req.model_copy(update={"shard_key": None}),
        )

    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult:
        return self._by_ids(name, req, "delete_vectors")

    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult:
        """Each point's new vectors to its shard. A point missing on its shard fails that shard's part
        alone: the other shards' parts are written (a single node writes none)."""
        group = self._writes_to(req.shard_key, must=True)
        plain = req.model_copy(update={"shard_key": None})
        parts = self._split([p.id for p in plain.points], group)
        return self._write(
            [(s, (name, plain.model_copy(update={"points": [plain.points[j] for j in part]}))) for s, part in parts],
            "update_vectors",
        )

    def _by_ids(self, name: str, req: Any, method: str) -> UpdateResult:
        """A write naming points by id (``req.points``) to their shards; one selecting by filter to all. With
        custom sharding and no shard key, ids go to every shard (each applies those it holds)."""
        group = self._writes_to(req.shard_key, must=False)
        plain = req.model_copy(update={"shard_key": None})
        ids = plain.points
        if ids is None or self.shard_keys is not None and req.shard_key is None:
            return self._write_all(group, method, name, plain)
        parts = self._split(ids, group)
        return self._write(
            [(s, (name, plain.model_copy(update={"points": [ids[j] for j in part]}))) for s, part in parts], method
        )

    # --- reads ------------------------------------------------------------------------------------

    def facet(self, name: str, req: FacetRequest) -> FacetResponse:
        """Counts per value summed over the shards (each asked for every value, so the sum is exact), most
        points first, ties by value, as one collection orders them."""
        every = req.model_copy(update={"limit": FACET_ALL, "shard_key": None})
        totals: dict[tuple[str, Any], int] = {}
        for answer in self._read(self._reads_from(req.shard_key), "facet", name, every):
            for hit in answer.hits:
                key = (type(hit.value).__name__, hit.value)
                totals[key] = totals.get(key, 0) + hit.count
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0][1]))[: req.limit]
        return FacetResponse(hits=[FacetValueHit(value=value, count=count) for (_, value), count in ranked])

    def get_points(self, name: str, req: PointRequest) -> list[Record]:
        """The points asked for, in the order asked (each asked of its shard once; with custom sharding,
        of every shard of the selected keys)."""
        wanted = list(dict.fromkeys(req.ids))
        group = self._reads_from(req.shard_key)
        plain = req.model_copy(update={"shard_key": None})
        if self.shard_keys is not None:
            parts = [(s, list(range(len(wanted)))) for s in group]
        else:
            parts = self._split(wanted, group)
        started = [
            (
                s,
                self.shards[s].submit_read(
                    "get_points", name, plain.model_copy(update={"ids": [wanted[j] for j in part]})
                ),
            )
            for s, part in parts
        ]
        found: dict[bytes, Record] = {}
        for s, pending in started:
            for record in self.shards[s].finish_read(pending):
                found.setdefault(id_to_key(record.id), record)
        return [found[key] for key in (id_to_key(i) for i in wanted) if key in found]

    def get_point(self, name: str, point_id: PointId) -> Record:
        found = self.get_points(name, PointRequest(ids=[point_id], with_payload=True, with_vector=True))
        if not found:
            raise NotFound(f"point {point_id} does not exist in collection {name!r}")
        return found[0]

    def count_points(self, name: str, req: CountRequest) -> CountResult:
        plain = req.model_copy(update={"shard_key": None})
        return CountResult(
            count=sum(r.count for r in self._read(self._reads_from(req.shard_key), "count_points", name, plain))
        )

    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult:
        """Pages in Qdrant's scroll order across shards: each shard's page from ``offset``, merged by id
        key; the next page starts at the first id not returned, from any shard."""
        plain = req.model_copy(update={"shard_key": None})
        pages = self._read(self._reads_from(req.shard_key), "scroll_points", name, plain)
        limit = req.limit or 10
        if req.order_by is not None:  # (no next page in a field's order: the next starts from the last value)
            return ScrollResult(points=in_field_order([p.points for p in pages], req.order_by)[:limit])
        merged = sorted((p for page in pages for p in page.points), key=lambda r: id_to_key(r.id))
        following: list[PointId] = [r.id for r in merged[limit:]]
        following += [page.next_page_offset for page in pages if page.next_page_offset is not None]
        next_id = min(following, key=id_to_key) if following else None
        return ScrollResult(points=merged[:limit], next_page_offset=next_id)

    def query_points(self, name: str, req: QueryRequest) -> QueryResponse:
        """Any query, answered as one collection (:mod:`vecdb.cluster.global_query`)."""
        t0 = time.perf_counter()
        run = self._global(name, req.shard_key, bool(req.explain))
        points = run.points(req.model_copy(update={"shard_key": None, "explain": None}))
        if not req.explain:
            return QueryResponse(points=points)
        total = round((time.perf_counter() - t0) * 1e3, 4)
        plan = {"plan": "sharded", "shards": len(self._reads_from(req.shard_key)), "stage": run.stage}
        return QueryResponse(points=points, explain={**plan, "timings_ms": {"total": total}})

    def query_batch_points(self, name: str, reqs: list[QueryRequest]) -> list[QueryResponse]:
        """A batch: one call per shard where every query is a plain stage (and all select the same shards)."""
        keys = {repr(r.shard_key) for r in reqs}
        if len(keys) != 1:
            return [self.query_points(name, r) for r in reqs]
        plain = [r.model_copy(update={"shard_key": None}) for r in reqs]
        return [QueryResponse(points=p) for p in self._global(name, reqs[0].shard_key).batch(plain)]

    def query_groups(self, name: str, req: QueryGroupsRequest) -> GroupsResult:
        return self._global(name, req.shard_key).groups(req.model_copy(update={"shard_key": None}))

    def distance_matrix(
        self, name: str, req: SearchMatrixRequest
    ) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
        return self._global(name, req.shard_key).matrix(req.model_copy(update={"shard_key": None}))

    def _global(self, name: str, selector: Any, explaining: bool = False) -> GlobalQuery:
        shards = self._reads_from(selector)
        return GlobalQuery(
            name,
            lambda method, req: self._read(shards, method, name, req),
            lambda req: self.get_points(name, req),
            lambda using: self._distance(name, using),
            explaining,
        )

    def _distance(self, name: str, using: Optional[str]) -> str:
        key = (name, using or "")
        found = self._distances.get(key)
        if found is None:
            vectors: Any = self.shards[0].read("get_collection", name).config.params.vectors
            params = vectors if "distance" in vectors else vectors.get(using or "", {})
            found = self._distances[key] = str(params.get("distance", Distance.COSINE.value))
        return found


def per_shard_create(req: CreateCollection) -> CreateCollection:
    """The settings each shard's one-shard collection is created with (the cluster's own left out)."""
    return req.model_copy(
        update={
            "shard_number": None,
            "sharding_method": None,
            "replication_factor": None,
            "write_consistency_factor": None,
        }
    )


def _score(point: Any) -> float:
    return float(point.score)


def _last(results: list[UpdateResult]) -> UpdateResult:
    """One write's result across shards (each shard numbers its own operations)."""
    return results[-1] if results else UpdateResult(operation_id=0, status="completed")


def _split_upsert(req: PointInsertOperations, group: list[int]) -> list[tuple[int, PointInsertOperations]]:
    """The upsert cut into one request per shard of ``group`` that gets points: (shard, its request)."""
    extra: dict[str, Any] = {"update_filter": req.update_filter, "update_mode": req.update_mode}
    if isinstance(req, PointsList):
        parts = split_by_shard([p.id for p in req.points], len(group))
        return [(group[j], PointsList(points=[req.points[i] for i in g], **extra)) for j, g in enumerate(parts) if g]
    assert isinstance(req, PointsBatch)
    batch = req.batch
    out: list[tuple[int, PointInsertOperations]] = []
    for j, part in enumerate(split_by_shard(batch.ids, len(group))):
        if not part:
            continue
        vectors: Any
        if isinstance(batch.vectors, dict):
            vectors = {k: [column[i] for i in part] for k, column in batch.vectors.items()}
        elif isinstance(batch.vectors, np.ndarray):
            vectors = batch.vectors[np.asarray(part)]
        else:
            vectors = [batch.vectors[i] for i in part]
        payloads = None if batch.payloads is None else [batch.payloads[i] for i in part]
        cut = Batch.model_construct(ids=[batch.ids[i] for i in part], vectors=vectors, payloads=payloads)
        out.append((group[j], PointsBatch.model_construct(batch=cut, shard_key=None, **extra)))
    return out


__all__ = ["ShardRouter", "per_shard_create", "shard_of"]
