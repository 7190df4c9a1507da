"""The ``vecdb`` command line. Every option of ``serve`` is also a ``VECDB_*`` environment variable."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from vecdb.api.settings import ServerSettings, available_cores
from vecdb.cli import bench as cli_bench
from vecdb.cli import data as cli_data
from vecdb.cli import snapshots as cli_snapshots

app = typer.Typer(add_completion=False, help="vecdb: vector similarity database.")


@app.callback()
def main() -> None:
    """vecdb command line."""


@app.command()
def serve(
    path: str = typer.Option(ServerSettings.path, envvar="VECDB_PATH", help="Data directory (created if missing)."),
    host: str = typer.Option(
        ServerSettings.host, envvar="VECDB_HOST", help="Bind address; loopback unless told otherwise."
    ),
    port: int = typer.Option(ServerSettings.port, envvar="VECDB_PORT", help="TCP port of the REST API."),
    log_level: str = typer.Option(
        ServerSettings.log_level, envvar="VECDB_LOG_LEVEL", help="debug, info, warning or error."
    ),
    log_format: str = typer.Option(
        ServerSettings.log_format, envvar="VECDB_LOG_FORMAT", help="text, or json: one JSON object per line."
    ),
    access_log: bool = typer.Option(
        ServerSettings.access_log,
        "--access-log/--no-access-log",
        envvar="VECDB_ACCESS_LOG",
        help="Log one structured record per request (logger vecdb.access, INFO).",
    ),
    api_key: Optional[str] = typer.Option(
        None, envvar="VECDB_API_KEY", help="Require this key on every route but / and health checks."
    ),
    read_only_api_key: Optional[str] = typer.Option(
        None, envvar="VECDB_READ_ONLY_API_KEY", help="A key that may only read (writes with it get 403)."
    ),
    cors_origins: str = typer.Option(
        "",
        envvar="VECDB_CORS_ORIGINS",
        help="Comma-separated origins browsers may call from ('*' for any); CORS is off when empty.",
    ),
    max_request_bytes: int = typer.Option(
        ServerSettings.max_request_bytes,
        envvar="VECDB_MAX_REQUEST_BYTES",
        help="Largest request body accepted (413 beyond).",
    ),
    max_snapshot_upload_bytes: int = typer.Option(
        ServerSettings.max_snapshot_upload_bytes,
        envvar="VECDB_MAX_SNAPSHOT_UPLOAD_BYTES",
        help="Largest snapshot file an upload may carry (413 beyond).",
    ),
    max_batch_points: int = typer.Option(
        ServerSettings.max_batch_points,
        envvar="VECDB_MAX_BATCH_POINTS",
        help="Points one write request may carry (400 beyond).",
    ),
    max_payload_bytes: int = typer.Option(
        ServerSettings.max_payload_bytes,
        envvar="VECDB_MAX_PAYLOAD_BYTES",
        help="Bytes of one point's payload as JSON (400 beyond).",
    ),
    max_results: int = typer.Option(
        ServerSettings.max_results,
        envvar="VECDB_MAX_RESULTS",
        help="limit + offset of one query, search or scroll (400 beyond).",
    ),
    inline_queries: bool = typer.Option(
        ServerSettings.inline_queries,
        envvar="VECDB_INLINE_QUERIES",
        help="Run queries and searches on the event loop's thread (no hop to a worker thread); "
        "--no-inline-queries runs them in worker threads.",
    ),
    decode_processes: int = typer.Option(
        ServerSettings.decode_processes,
        envvar="VECDB_DECODE_PROCESSES",
        help="Helper processes decoding large upsert bodies (so that queries need not wait for the JSON "
        "parse); 0 decodes in the server process.",
    ),
    workers: Optional[int] = typer.Option(
        None,
        envvar="VECDB_WORKERS",
        min=1,
        show_default="the machine's cores",
        help="Server processes answering clients over the data directory: with N > 1, N readers and one "
        "writing process they pass everything else to; 1 is a single process. See README, Workers.",
    ),
    primary_serves: bool = typer.Option(
        ServerSettings.primary_serves,
        "--primary-serves/--no-primary-serves",
        envvar="VECDB_PRIMARY_SERVES",
        help="With --workers: the writing process takes client connections too (N processes in all), "
        "or only writes (N readers plus the writer).",
    ),
    follower_tail_kb: int = typer.Option(
        ServerSettings.follower_tail_kb,
        envvar="VECDB_FOLLOWER_TAIL_KB",
        min=0,
        help="With --workers: a reader passes searches to the writer while the rows it would scan exactly "
        "(written since the last saved graph) exceed this many KB.",
    ),
    max_collection_bytes: int = typer.Option(
        ServerSettings.max_collection_bytes,
        envvar="VECDB_MAX_COLLECTION_BYTES",
        help="Largest LMDB map of one collection; writes beyond it get 507.",
    ),
    ray_address: Optional[str] = typer.Option(
        None,
        "--ray",
        envvar="VECDB_RAY",
        help="Serve sharded, replicated collections on a Ray cluster (pip install 'vecdb[cluster]'): 'auto' joins "
        "this machine's Ray cluster or starts one, or give a cluster's ADDRESS. PATH then holds the shard map; "
        "replicas keep their data under PATH/nodes on their nodes. See docs/cluster.md.",
    ),
) -> None:
    """Serve the Qdrant-compatible REST API over the data directory at PATH."""
    import uvicorn

    from vecdb.api.access_log import configure_logging
    from vecdb.api.app import create_app
    from vecdb.errors import VecdbError

    if log_format not in ("text", "json"):
        typer.echo(f"vecdb: --log-format must be text or json, not {log_format!r}", err=True)
        raise typer.Exit(code=2)
    configure_logging(log_level, log_format)
    settings = ServerSettings(
        path=path,
        host=host,
        port=port,
        log_level=log_level,
        log_format=log_format,
        access_log=access_log,
        api_key=api_key,
        read_only_api_key=read_only_api_key,
        cors_origins=tuple(o.strip() for o in cors_origins.split(",") if o.strip()),
        max_request_bytes=max_request_bytes,
        max_snapshot_upload_bytes=max_snapshot_upload_bytes,
        max_collection_bytes=max_collection_bytes,
        max_batch_points=max_batch_points,
        max_payload_bytes=max_payload_bytes,
        max_results=max_results,
        inline_queries=inline_queries,
        decode_processes=decode_processes,
        workers=workers if workers is not None else available_cores(),
        primary_serves=primary_serves,
        follower_tail_kb=follower_tail_kb,
    )
    if ray_address is not None:
        _serve_cluster(settings, ray_address)
        return
    if settings.workers > 1:
        from vecdb.api.workers import Supervisor

        try:
            Supervisor(settings).serve()
        except VecdbError as exc:
            typer.echo(f"vecdb: {exc}", err=True)
            raise typer.Exit(code=2) from None
        return
    try:
        application = create_app(settings)
    except VecdbError as exc:
        typer.echo(f"vecdb: {exc}", err=True)
        raise typer.Exit(code=2) from None
    logging.getLogger(__name__).info("serving %s on http://%s:%d", path, host, port)
    # log_config=None: uvicorn's own records go through the root handler above (and its format)
    uvicorn.run(application, host=host, port=port, log_level=log_level.lower(), access_log=False, log_config=None)


def _serve_cluster(settings: ServerSettings, address: str) -> None:
    """``vecdb serve --ray``: one server process routing to replica actors (Ray imported only here)."""
    import uvicorn

    from vecdb.api.app import create_app
    from vecdb.api.settings import request_limits

    try:
        from vecdb.cluster.actors import open_cluster

        service = open_cluster(
            Path(settings.path),
            address,
            max_map_size=settings.max_collection_bytes,
            limits=request_limits(settings),
        )
    except ImportError as exc:
        typer.echo(f"vecdb: --ray needs Ray: pip install 'vecdb[cluster]' ({exc})", err=True)
        raise typer.Exit(code=2) from None
    application = create_app(settings, service=service)
    logging.getLogger(__name__).info(
        "serving the cluster (shard map in %s) on http://%s:%d", settings.path, settings.host, settings.port
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,
    )


# data commands (import, export, collections, bench) and snapshot commands (create, list, download, delete, restore)
app.command("import")(cli_data.import_command)
app.command("export")(cli_data.export_command)
app.add_typer(cli_data.collections_app, name="collections")
app.command("bench", context_settings=cli_bench.CONTEXT_SETTINGS)(cli_bench.bench_command)
app.add_typer(cli_snapshots.app, name="snapshots")


if __name__ == "__main__":
    app()
