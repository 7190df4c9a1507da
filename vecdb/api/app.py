"""The FastAPI application: routes, middleware and error mapping around one VectorService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Optional

import orjson
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response

from vecdb import __version__
from vecdb.api import (
    routes_cluster,
    routes_collections,
    routes_dashboard,
    routes_points,
    routes_search,
    routes_snapshots,
    routes_unsupported,
)
from vecdb.api.decode_pool import DecodePool
from vecdb.api.errors import install_error_handlers
from vecdb.api.fast_routes import FastRoutes
from vecdb.api.metrics import Metrics
from vecdb.api.middleware import ServerMiddleware
from vecdb.api.settings import ServerSettings, request_limits
from vecdb.engine.database import Database
from vecdb.engine.follow import Worker
from vecdb.engine.service import LocalService
from vecdb.service import VectorService


def create_app(settings: Optional[ServerSettings] = None, service: Optional[VectorService] = None) -> FastAPI:
    """Build the app over ``service``, or over a Database opened at ``settings.path``."""
    settings = settings or ServerSettings()

    decode_pool = DecodePool(settings.decode_processes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        decode_pool.close()
        app.state.service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="vecdb",
        version=__version__,
        description="Vector similarity database with a Qdrant-compatible REST API.",
    )
    app.state.service = (
        service
        if service is not None
        else LocalService(
            Database(
                settings.path,
                max_map_size=settings.max_collection_bytes,
                limits=request_limits(settings),
                worker=Worker(settings.worker_number, settings.workers) if settings.workers > 1 else None,
            )
        )
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(routes_collections.router)
    app.include_router(routes_points.router)
    app.include_router(routes_search.router)
    app.include_router(routes_snapshots.router)
    app.include_router(routes_dashboard.router)
    app.include_router(routes_cluster.router)
    app.include_router(routes_unsupported.router)  # Qdrant's other routes: 400 "not supported yet", never 405

    @app.get("/", tags=["service"])
    def root() -> Response:
        return Response(orjson.dumps(app.state.service.root_info()), media_type="application/json")

    for path in ("/healthz", "/livez"):
        app.add_api_route(
            path, _health(path.strip("/")), methods=["GET"], tags=["service"], response_class=PlainTextResponse
        )

    @app.get("/readyz", tags=["service"], response_class=PlainTextResponse)
    def readyz() -> Response:
        """503 until every collection has read its saved index back: before that, searches scan exactly
        (correct but slow), so a load balancer should keep traffic on a ready replica."""
        loading = [s.name for s in app.state.service.collection_stats() if not s.index_loaded]
        if loading:
            return PlainTextResponse(f"not ready: loading the index of {', '.join(loading)}", status_code=503)
        return PlainTextResponse("all shards are ready")

    metrics = Metrics(app.state.service)
    app.state.metrics = metrics

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        """Prometheus text format: requests and latencies by route, points, index status, optimizer backlog."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(  # inside ServerMiddleware: keys, body limits, metrics and logs apply to it too
        FastRoutes,
        service=lambda: app.state.service,
        inline=settings.inline_queries,
        decode_pool=decode_pool,
    )
    app.add_middleware(
        ServerMiddleware,
        max_body=settings.max_request_bytes,
        api_key=settings.api_key,
        read_only_api_key=settings.read_only_api_key,
        metrics=metrics,
        access_log=settings.access_log,
        max_upload=settings.max_snapshot_upload_bytes,
    )
    if settings.cors_origins:  # outermost, so that preflight requests need no API key
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    return app


def _health(name: str):  # type: ignore[no-untyped-def]
    def check() -> str:
        return f"{name} check passed"

    check.__name__ = name
    return check
