"""Qdrant routes vecdb does not serve yet: each answers 400 ``Bad request: ... not supported yet``.

Without them a Qdrant client calling, say, ``POST /collections/c/points/recommend`` got 405:
the path matches ``GET /collections/{collection_name}/points/{point_id}``, so Starlette
reported the method as wrong, as if the request were a mistake rather than a feature vecdb
lacks. Other paths got 404 "no route", which reads like a typo. Naming the route and saying
"not supported yet" (the :class:`~vecdb.errors.Unsupported` error, as for every other
missing feature) tells the caller what to change.

The routes stay out of the OpenAPI document: it describes what vecdb serves, and these
serve nothing. When a feature lands, its row leaves :data:`UNSUPPORTED_ROUTES` and a real
route takes its place.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi import APIRouter, Request

from vecdb.errors import Unsupported

C = "/collections/{collection_name}"

UNSUPPORTED_ROUTES: tuple[tuple[str, str, str], ...] = (
    # the legacy search family (Qdrant still registers them) and the query API's relatives
    # collection-level operations of newer servers
    ("GET", C + "/optimizations", "the optimizations report is"),
    # distribution: per-shard snapshots and the peer-level routes (the cluster routes are in routes_cluster)
    ("GET", C + "/shards/{shard_id}/snapshot", "shard snapshots are"),
    ("GET", C + "/shards/{shard_id}/snapshots", "shard snapshots are"),
    ("POST", C + "/shards/{shard_id}/snapshots", "shard snapshots are"),
    ("PUT", C + "/shards/{shard_id}/snapshots/recover", "shard snapshots are"),
    ("POST", C + "/shards/{shard_id}/snapshots/upload", "shard snapshots are"),
    ("GET", C + "/shards/{shard_id}/snapshots/{snapshot_name}", "shard snapshots are"),
    ("DELETE", C + "/shards/{shard_id}/snapshots/{snapshot_name}", "shard snapshots are"),
    ("GET", "/cluster", "cluster information is"),
    ("GET", "/cluster/telemetry", "cluster telemetry is"),
    ("POST", "/cluster/recover", "cluster recovery is"),
    ("DELETE", "/cluster/peer/{peer_id}", "cluster peers are"),
    # whole-storage snapshots (per-collection snapshots are served)
    ("GET", "/snapshots", "full-storage snapshots are"),
    ("POST", "/snapshots", "full-storage snapshots are"),
    ("GET", "/snapshots/{snapshot_name}", "full-storage snapshots are"),
    ("DELETE", "/snapshots/{snapshot_name}", "full-storage snapshots are"),
    # service endpoints vecdb answers elsewhere (/metrics, the dashboard) or not at all
    ("GET", "/telemetry", "telemetry is"),
    ("GET", "/issues", "the issues report is"),
    ("DELETE", "/issues", "the issues report is"),
    ("GET", "/quotas", "quotas are"),
    ("PUT", "/quotas", "quotas are"),
)
"""(method, path template, what is missing, with its verb): every Qdrant REST route vecdb does not serve."""


def _refuse(method: str, what: str) -> Callable[[Request], Coroutine[Any, Any, NoReturn]]:
    async def refuse(request: Request) -> NoReturn:  # async: nothing to wait for, so no thread hop
        raise Unsupported(f"{method} {request.url.path}: {what} not supported yet")

    return refuse


def _router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for method, path, what in UNSUPPORTED_ROUTES:
        endpoint = _refuse(method, what)
        endpoint.__name__ = "unsupported_" + method.lower() + path.replace("/", "_").replace("{", "").replace("}", "")
        router.add_api_route(path, endpoint, methods=[method], response_model=None)
    return router


router = _router()
