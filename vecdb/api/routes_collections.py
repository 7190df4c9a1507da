"""Collection, alias and payload-index routes (qdrant-api.md sections 3 and 6)."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.models.collections import (
    ChangeAliasesOperation,
    CreateCollection,
    CreateFieldIndex,
    CreateVectorName,
    UpdateCollection,
)
from vecdb.service import VectorService

router = APIRouter(tags=["collections"], route_class=JsonRoute)
Svc = Depends(service)
T0 = Depends(started)


@router.get("/collections")
def get_collections(svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.get_collections(), t0)


@router.get("/collections/{collection_name}")
def get_collection(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.get_collection(collection_name), t0)


@router.get("/collections/{collection_name}/exists")
def collection_exists(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.collection_exists(collection_name), t0)


@router.put("/collections/{collection_name}")
def create_collection(
    collection_name: str,
    body: Optional[CreateCollection] = Body(None),
    svc: VectorService = Svc,
    t0: float = T0,
) -> Response:
    return ok(svc.create_collection(collection_name, body or CreateCollection()), t0)


@router.patch("/collections/{collection_name}")
def update_collection(
    collection_name: str, body: UpdateCollection, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.update_collection(collection_name, body), t0)


@router.delete("/collections/{collection_name}")
def delete_collection(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_collection(collection_name), t0)


@router.put("/collections/{collection_name}/vectors/{vector_name}")
def create_vector_name(
    collection_name: str, vector_name: str, body: CreateVectorName, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.create_vector_name(collection_name, vector_name, body), t0)


@router.delete("/collections/{collection_name}/vectors/{vector_name}")
def delete_vector_name(collection_name: str, vector_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_vector_name(collection_name, vector_name), t0)


@router.post("/collections/aliases")
def update_aliases(body: ChangeAliasesOperation, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.update_aliases(body), t0)


@router.get("/aliases")
def get_aliases(svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.get_aliases(), t0)


@router.get("/collections/{collection_name}/aliases")
def get_collection_aliases(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.get_collection_aliases(collection_name), t0)


@router.put("/collections/{collection_name}/index")
def create_field_index(
    collection_name: str, body: CreateFieldIndex, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.create_field_index(collection_name, body), t0)


@router.delete("/collections/{collection_name}/index/{field_name}")
def delete_field_index(collection_name: str, field_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_field_index(collection_name, field_name), t0)
