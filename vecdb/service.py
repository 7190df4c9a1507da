"""The one service interface behind every transport.

``VectorService`` has one method per REST endpoint, taking and returning the
request/response models of :mod:`vecdb.models`. ``LocalService`` implements it
over a :class:`~vecdb.engine.database.Database` in this process; the REST API adapts
it to HTTP (``vecdb/api``), and the remote client implements it again over HTTP
(``clients/python``). The high-level, qdrant-client-shaped methods in
:mod:`vecdb.client.base` are written once against this interface, so the
embedded and the remote client behave the same by construction.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Optional, TypeVar

from vecdb.errors import InvalidInput, Unsupported
from vecdb.ids import PointId, parse_point_id
from vecdb.models.cluster import (
    ClusterOperation,
    CollectionClusterInfo,
    CreateShardKey,
    DeleteShardKey,
    LocalShardInfo,
    ShardKeysResponse,
)
from vecdb.models.collections import (
    ChangeAliasesOperation,
    CollectionExistence,
    CollectionInfo,
    CollectionsAliasesResponse,
    CollectionsResponse,
    CreateCollection,
    CreateFieldIndex,
    CreateVectorName,
    UpdateCollection,
)
from vecdb.models.points import (
    CountRequest,
    CountResult,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    PointInsertOperations,
    PointRequest,
    PointsSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    SetPayload,
    UpdateOperations,
    UpdateResult,
    UpdateVectors,
)
from vecdb.models.query import (
    ContextQuery,
    DiscoverInput,
    DiscoverQuery,
    DiscoverRequest,
    DiscoverRequestBatch,
    GroupsResult,
    NamedVector,
    NearestQuery,
    PointGroup,
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    QueryResponse,
    RecommendGroupsRequest,
    RecommendInput,
    RecommendQuery,
    RecommendRequest,
    RecommendRequestBatch,
    ScoredPoint,
    SearchGroupsRequest,
    SearchMatrixOffsetsResponse,
    SearchMatrixPair,
    SearchMatrixPairsResponse,
    SearchMatrixRequest,
    SearchRequest,
    SearchRequestBatch,
    WithLookup,
)
from vecdb.models.snapshots import SnapshotDescription, SnapshotRecover
from vecdb.models.stats import CollectionStats

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCAL_PEER_ID = 1
"""The peer id a single-node server reports for itself (Qdrant numbers its peers)."""

QDRANT_COMPAT_VERSION = "1.19.0"
"""The Qdrant version reported at ``GET /``: qdrant-client warns unless it is within one minor."""


class VectorService(abc.ABC):
    """Every operation of the REST API, as typed calls."""

    @abc.abstractmethod
    def root_info(self) -> dict[str, Any]: ...

    # collections
    @abc.abstractmethod
    def get_collections(self) -> CollectionsResponse: ...
    @abc.abstractmethod
    def collection_exists(self, name: str) -> CollectionExistence: ...
    @abc.abstractmethod
    def get_collection(self, name: str) -> CollectionInfo: ...

    def collection_stats(self) -> list[CollectionStats]:
        """Per-collection figures for ``/metrics`` and ``/readyz``: only a service over a database
        in this process has them (a remote one reads them from its server's ``/metrics``)."""
        raise Unsupported("collection stats: only a database opened in this process reports them")

    def unindexed_bytes(self, name: str, catch_up: bool = False) -> int:
        """Float32 bytes a search of ``name`` scans exactly beside its indexes in this process
        (``vecdb serve --workers``: a follower whose tail is large passes searches to the primary): as of
        the last catch-up (no LMDB read), or caught up first with ``catch_up``. 0 where nothing in this
        process holds it."""
        return 0

    @abc.abstractmethod
    def create_collection(self, name: str, req: CreateCollection) -> bool: ...
    @abc.abstractmethod
    def update_collection(self, name: str, req: UpdateCollection) -> bool: ...
    @abc.abstractmethod
    def delete_collection(self, name: str) -> bool: ...
    @abc.abstractmethod
    def create_vector_name(self, name: str, vector_name: str, req: CreateVectorName) -> UpdateResult: ...
    @abc.abstractmethod
    def delete_vector_name(self, name: str, vector_name: str) -> UpdateResult: ...
    @abc.abstractmethod
    def update_aliases(self, req: ChangeAliasesOperation) -> bool: ...
    @abc.abstractmethod
    def get_aliases(self) -> CollectionsAliasesResponse: ...
    @abc.abstractmethod
    def get_collection_aliases(self, name: str) -> CollectionsAliasesResponse: ...
    @abc.abstractmethod
    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult: ...
    @abc.abstractmethod
    def delete_field_index(self, name: str, field_name: str) -> UpdateResult: ...

    # cluster (a single node answers as one peer holding shard 0; vecdb.cluster.service serves the rest)
    def collection_cluster_info(self, name: str) -> CollectionClusterInfo:
        info = self.get_collection(name)
        local = LocalShardInfo(shard_id=0, points_count=info.points_count, state="Active")
        return CollectionClusterInfo(peer_id=LOCAL_PEER_ID, shard_count=1, local_shards=[local])

    def update_collection_cluster(self, name: str, op: ClusterOperation) -> bool:
        self.get_collection(name)
        asked = next(k for k, v in op.__dict__.items() if v is not None)
        raise Unsupported(f"{asked}: shard operations need a cluster (vecdb serve --ray; docs/cluster.md)")

    def list_shard_keys(self, name: str) -> ShardKeysResponse:
        self.get_collection(name)
        return ShardKeysResponse()

    def create_shard_key(self, name: str, req: CreateShardKey) -> bool:
        self.get_collection(name)
        raise Unsupported("shard_key: shard keys need a cluster (vecdb serve --ray) and sharding_method custom")

    def delete_shard_key(self, name: str, req: DeleteShardKey) -> bool:
        self.get_collection(name)
        raise Unsupported("shard_key: shard keys need a cluster (vecdb serve --ray) and sharding_method custom")

    # points
    @abc.abstractmethod
    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult: ...
    @abc.abstractmethod
    def get_points(self, name: str, req: PointRequest) -> list[Record]: ...
    @abc.abstractmethod
    def get_point(self, name: str, point_id: PointId) -> Record: ...
    @abc.abstractmethod
    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult: ...
    @abc.abstractmethod
    def set_payload(self, name: str, req: SetPayload) -> UpdateResult: ...
    @abc.abstractmethod
    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult: ...
    @abc.abstractmethod
    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult: ...
    @abc.abstractmethod
    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult: ...
    @abc.abstractmethod
    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult: ...
    @abc.abstractmethod
    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult: ...
    @abc.abstractmethod
    def batch_update(self, name: str, req: UpdateOperations) -> list[UpdateResult]: ...
    @abc.abstractmethod
    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult: ...
    @abc.abstractmethod
    def count_points(self, name: str, req: CountRequest) -> CountResult: ...
    @abc.abstractmethod
    def facet(self, name: str, req: FacetRequest) -> FacetResponse: ...

    # search
    @abc.abstractmethod
    def query_points(self, name: str, req: QueryRequest) -> QueryResponse: ...
    @abc.abstractmethod
    def query_batch_points(self, name: str, req: QueryRequestBatch) -> list[QueryResponse]: ...
    def recommend_points(self, name: str, req: RecommendRequest) -> list[ScoredPoint]:
        return self.query_points(name, recommend_as_query(req)).points

    def recommend_batch_points(self, name: str, req: RecommendRequestBatch) -> list[list[ScoredPoint]]:
        found = self.query_batch_points(name, QueryRequestBatch(searches=[recommend_as_query(r) for r in req.searches]))
        return [r.points for r in found]

    def recommend_groups(self, name: str, req: RecommendGroupsRequest) -> GroupsResult:
        ranked = recommend_as_query(RecommendRequest(**req.model_dump(include=_RECOMMEND_FIELDS), limit=1))
        return self.query_groups(name, _grouped(ranked, req))

    def discover_points(self, name: str, req: DiscoverRequest) -> list[ScoredPoint]:
        return self.query_points(name, discover_as_query(req)).points

    def discover_batch_points(self, name: str, req: DiscoverRequestBatch) -> list[list[ScoredPoint]]:
        found = self.query_batch_points(name, QueryRequestBatch(searches=[discover_as_query(r) for r in req.searches]))
        return [r.points for r in found]

    @abc.abstractmethod
    def search_matrix_pairs(self, name: str, req: SearchMatrixRequest) -> SearchMatrixPairsResponse: ...
    @abc.abstractmethod
    def search_matrix_offsets(self, name: str, req: SearchMatrixRequest) -> SearchMatrixOffsetsResponse: ...
    @abc.abstractmethod
    def query_groups(self, name: str, req: QueryGroupsRequest) -> GroupsResult: ...
    def search_groups(self, name: str, req: SearchGroupsRequest) -> GroupsResult:
        return self.query_groups(name, search_groups_as_query(req))

    @abc.abstractmethod
    def search_points(self, name: str, req: SearchRequest) -> list[ScoredPoint]: ...
    @abc.abstractmethod
    def search_batch_points(self, name: str, req: SearchRequestBatch) -> list[list[ScoredPoint]]: ...

    # snapshots (``wait=False``: started in the background, None returned)
    @abc.abstractmethod
    def create_snapshot(self, name: str, wait: bool = True) -> Optional[SnapshotDescription]: ...
    @abc.abstractmethod
    def list_snapshots(self, name: str) -> list[SnapshotDescription]: ...
    @abc.abstractmethod
    def delete_snapshot(self, name: str, snapshot: str) -> bool: ...
    @abc.abstractmethod
    def recover_snapshot(self, name: str, req: SnapshotRecover, wait: bool = True) -> Optional[bool]: ...
    @abc.abstractmethod
    def upload_snapshot(
        self,
        name: str,
        source: BinaryIO,
        checksum: Optional[str] = None,
        wait: bool = True,
    ) -> Optional[bool]: ...
    @abc.abstractmethod
    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path: ...

    def open_snapshot(self, name: str, snapshot: str) -> BinaryIO:
        """A snapshot's archive, open for the server to stream; only a service holding the files has one."""
        raise Unsupported("snapshot files are served only by the process that holds the data directory")

    def close(self) -> None:
        """Release what the service holds (files, connections); nothing by default."""
        return None


def matrix_pairs(ids: list[PointId], nearest: list[list[tuple[int, float]]]) -> SearchMatrixPairsResponse:
    """The distance matrix (sampled ids; each one's nearest as (position, score)) as ``matrix/pairs``."""
    pairs = [SearchMatrixPair(a=ids[r], b=ids[c], score=s) for r, row in enumerate(nearest) for c, s in row]
    return SearchMatrixPairsResponse(pairs=pairs)


def matrix_offsets(ids: list[PointId], nearest: list[list[tuple[int, float]]]) -> SearchMatrixOffsetsResponse:
    """The distance matrix as ``matrix/offsets``: parallel rows, columns and scores over ``ids``."""
    cells = [(r, c, s) for r, row in enumerate(nearest) for c, s in row]
    return SearchMatrixOffsetsResponse(
        offsets_row=[r for r, _, _ in cells],
        offsets_col=[c for _, c, _ in cells],
        scores=[s for _, _, s in cells],
        ids=ids,
    )


def look_up_groups(
    groups: list[PointGroup], lookup: str | WithLookup, retrieve: Callable[[str, PointRequest], list[Record]]
) -> None:
    """Each group's point of the same id in the lookup collection (none for an id that cannot be a point
    id, or is missing there); ``retrieve(collection, request)`` reads them."""
    if isinstance(lookup, str):
        lookup = WithLookup(collection=lookup)
    ids: dict[PointId, list[PointGroup]] = {}
    for group in groups:
        try:
            ids.setdefault(parse_point_id(group.id), []).append(group)
        except InvalidInput:
            continue
    req = PointRequest(
        ids=list(ids),
        with_payload=True if lookup.with_payload is None else lookup.with_payload,
        with_vector=False if lookup.with_vectors is None else lookup.with_vectors,
    )
    for record in retrieve(lookup.collection, req):
        for group in ids.get(record.id, []):
            group.lookup = record


def search_as_query(req: SearchRequest) -> QueryRequest:
    """The legacy ``points/search`` body, restated as a universal query."""
    vector: Any = req.vector
    using = None
    if isinstance(vector, NamedVector):
        using, vector = vector.name, vector.vector
    elif isinstance(vector, dict):
        using, vector = vector.get("name"), vector.get("vector")
        if not isinstance(using, str) or vector is None:
            raise InvalidInput('vector: a named vector is {"name": <vector name>, "vector": <vector>}')
    return QueryRequest(
        query=NearestQuery(nearest=vector),
        using=using,
        filter=req.filter,
        params=req.params,
        limit=req.limit,
        offset=req.offset or 0,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        score_threshold=req.score_threshold,
    )


_RECOMMEND_FIELDS = {"positive", "negative", "strategy", "filter", "params", "score_threshold", "using", "lookup_from"}


def _legacy_query(req: RecommendRequest | DiscoverRequest, query: Any) -> QueryRequest:
    """A legacy recommend or discover body as a query of the universal API (their shared fields)."""
    return QueryRequest(
        query=query,
        using=req.using,
        filter=req.filter,
        params=req.params,
        limit=req.limit,
        offset=req.offset or 0,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        score_threshold=getattr(req, "score_threshold", None),
        lookup_from=req.lookup_from,
    )


def recommend_as_query(req: RecommendRequest) -> QueryRequest:
    """The legacy ``points/recommend`` body, restated as a ``recommend`` query."""
    recommend = RecommendInput(positive=req.positive, negative=req.negative, strategy=req.strategy)
    return _legacy_query(req, RecommendQuery(recommend=recommend))


def discover_as_query(req: DiscoverRequest) -> QueryRequest:
    """The legacy ``points/discover`` body as a ``discover`` query (a ``context`` one without target)."""
    if req.target is not None:
        return _legacy_query(req, DiscoverQuery(discover=DiscoverInput(target=req.target, context=req.context)))
    return _legacy_query(req, ContextQuery(context=req.context or []))


def _grouped(ranked: QueryRequest, req: SearchGroupsRequest | RecommendGroupsRequest) -> QueryGroupsRequest:
    """A legacy grouped body as a grouped query: ``ranked`` (its search, restated as a query) grouped
    as ``req`` asks."""
    return QueryGroupsRequest(
        query=ranked.query,
        using=ranked.using,
        filter=ranked.filter,
        params=ranked.params,
        score_threshold=ranked.score_threshold,
        lookup_from=ranked.lookup_from,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        group_by=req.group_by,
        group_size=req.group_size,
        limit=req.limit,
        with_lookup=req.with_lookup,
    )


def search_groups_as_query(req: SearchGroupsRequest) -> QueryGroupsRequest:
    """The legacy ``points/search/groups`` body, restated as a grouped universal query."""
    search = SearchRequest(
        vector=req.vector, filter=req.filter, params=req.params, score_threshold=req.score_threshold, limit=1
    )
    return _grouped(search_as_query(search), req)


__all__ = [
    "LOCAL_PEER_ID",
    "VectorService",
    "look_up_groups",
    "matrix_offsets",
    "matrix_pairs",
    "discover_as_query",
    "recommend_as_query",
    "search_as_query",
    "search_groups_as_query",
]
