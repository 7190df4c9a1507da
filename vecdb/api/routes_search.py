"""Search routes: the universal Query API and the legacy search adapters (section 5)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.models.query import (
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    SearchGroupsRequest,
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


@router.post("/collections/{collection_name}/points/search", deprecated=True)
def search_points(collection_name: str, body: SearchRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.search_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/search/batch", deprecated=True)
def search_batch_points(
    collection_name: str, body: SearchRequestBatch, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.search_batch_points(collection_name, body), t0)
