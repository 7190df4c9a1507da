"""Point routes: upsert, retrieve, delete, payload and vector edits, batch, scroll, count (section 4).

``wait``, ``ordering`` and ``timeout`` query parameters are accepted; every write
is applied and durable before the response, so the status is always "completed".
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.ids import parse_point_id
from vecdb.models.points import (
    CountRequest,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    PointInsertOperations,
    PointRequest,
    PointsSelector,
    ScrollRequest,
    SetPayload,
    UpdateOperations,
    UpdateVectors,
)
from vecdb.service import VectorService

router = APIRouter(tags=["points"], route_class=JsonRoute)
Svc = Depends(service)
T0 = Depends(started)


@router.put("/collections/{collection_name}/points")
def upsert_points(
    collection_name: str, body: PointInsertOperations, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.upsert_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points")
def get_points(collection_name: str, body: PointRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.get_points(collection_name, body), t0)


@router.get("/collections/{collection_name}/points/{point_id}")
def get_point(collection_name: str, point_id: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    pid = parse_point_id(int(point_id) if point_id.isdigit() else point_id, "point_id")
    return ok(svc.get_point(collection_name, pid), t0)


@router.post("/collections/{collection_name}/points/delete")
def delete_points(collection_name: str, body: PointsSelector, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/payload")
def set_payload(collection_name: str, body: SetPayload, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.set_payload(collection_name, body), t0)


@router.put("/collections/{collection_name}/points/payload")
def overwrite_payload(collection_name: str, body: SetPayload, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.overwrite_payload(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/payload/delete")
def delete_payload(collection_name: str, body: DeletePayload, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_payload(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/payload/clear")
def clear_payload(collection_name: str, body: PointsSelector, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.clear_payload(collection_name, body), t0)


@router.put("/collections/{collection_name}/points/vectors")
def update_vectors(collection_name: str, body: UpdateVectors, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.update_vectors(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/vectors/delete")
def delete_vectors(collection_name: str, body: DeleteVectors, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_vectors(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/batch")
def batch_update(collection_name: str, body: UpdateOperations, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.batch_update(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/scroll")
def scroll_points(collection_name: str, body: ScrollRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.scroll_points(collection_name, body), t0)


@router.post("/collections/{collection_name}/facet")
def facet(collection_name: str, body: FacetRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.facet(collection_name, body), t0)


@router.post("/collections/{collection_name}/points/count")
def count_points(collection_name: str, body: CountRequest, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.count_points(collection_name, body), t0)
