"""A collection's shards and replicas: the cluster report, shard moves, shard keys (Qdrant's distributed
routes). A single-node server answers the report as one peer holding shard 0 and refuses the rest with a
400 that says a cluster is needed; ``vecdb serve --ray`` serves them all (docs/cluster.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.models.cluster import ClusterOperation, CreateShardKey, DeleteShardKey
from vecdb.service import VectorService

router = APIRouter(tags=["distributed"], route_class=JsonRoute)
Svc = Depends(service)
T0 = Depends(started)


@router.get("/collections/{collection_name}/cluster")
def collection_cluster_info(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.collection_cluster_info(collection_name), t0)


@router.post("/collections/{collection_name}/cluster")
def update_collection_cluster(
    collection_name: str, body: ClusterOperation, svc: VectorService = Svc, t0: float = T0
) -> Response:
    return ok(svc.update_collection_cluster(collection_name, body), t0)


@router.get("/collections/{collection_name}/shards")
def list_shard_keys(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.list_shard_keys(collection_name), t0)


@router.put("/collections/{collection_name}/shards")
def create_shard_key(collection_name: str, body: CreateShardKey, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.create_shard_key(collection_name, body), t0)


@router.post("/collections/{collection_name}/shards/delete")
def delete_shard_key(collection_name: str, body: DeleteShardKey, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.delete_shard_key(collection_name, body), t0)
