"""Search routes: the universal Query API and the legacy search adapters (section 5)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.models.query import (
    DiscoverRequest,
    DiscoverRequestBatch,
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    RecommendGroupsRequest,
    RecommendRequest,
    RecommendRequestBatch,
    SearchGroupsRequest,
    SearchMatrixRequest,
    SearchRequest,
    SearchRequestBatch,
)
from vecdb.service import VectorService

router = APIRouter(tags=["search"], route_class=JsonRoute)
Svc = Depends(service)
T0 = Depends(started)


@router.post("/collections/{collection_name}/points/query")
def query_points(collection_name: str, body: QueryRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.query_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/query/batch")
def query_batch_points(
    collection_name: str, body: QueryRequestBatch, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.query_batch_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/query/groups")
def query_points_groups(
    collection_name: str, body: QueryGroupsRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.query_groups(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search/groups", deprecated=True)
def search_points_groups(
    collection_name: str, body: SearchGroupsRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.search_groups(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search/matrix/pairs")
def search_matrix_pairs(
    collection_name: str, body: SearchMatrixRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.search_matrix_pairs(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search/matrix/offsets")
def search_matrix_offsets(
    collection_name: str, body: SearchMatrixRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.search_matrix_offsets(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/recommend", deprecated=True)
def recommend_points(
    collection_name: str, body: RecommendRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.recommend_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/recommend/batch", deprecated=True)
def recommend_batch_points(
    collection_name: str, body: RecommendRequestBatch, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.recommend_batch_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/recommend/groups", deprecated=True)
def recommend_groups(
    collection_name: str, body: RecommendGroupsRequest, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.recommend_groups(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/discover", deprecated=True)
def discover_points(collection_name: str, body: DiscoverRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.discover_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/discover/batch", deprecated=True)
def discover_batch_points(
    collection_name: str, body: DiscoverRequestBatch, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.discover_batch_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search", deprecated=True)
def search_points(collection_name: str, body: SearchRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.search_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search/batch", deprecated=True)
def search_batch_points(
    collection_name: str, body: SearchRequestBatch, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.search_batch_points(collection_name, body), t0)
