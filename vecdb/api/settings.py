"""Server settings: each a CLI flag and a ``VECDB_*`` environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from vecdb.limits import DEFAULT_MAX_MAP_SIZE, Limits


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask: a container's cpuset, ``taskset``), at least 1:
    ``vecdb serve`` starts one reader per core unless ``--workers`` says otherwise."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # (not Linux)
        return max(1, os.cpu_count() or 1)


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multi-process folder: the supervisor of ``--workers`` sets it before starting the
workers, so their request counts land in files there, summed by the primary's ``/metrics``."""


@dataclass(frozen=True)
class ServerSettings:
    path: str = "./vecdb_data"
    """Data directory; created if missing, owned by this process while it runs."""
    host: str = "127.0.0.1"
    """Bind address. Loopback by default: exposing the server is an explicit choice."""
    port: int = 6333
    """Qdrant's REST port, so clients work with their defaults."""
    log_level: str = "info"
    log_format: str = "text"
    """``text`` (one readable line per record) or ``json`` (one JSON object per line, for log pipelines)."""
    access_log: bool = True
    """One structured record per request on the ``vecdb.access`` logger (method, path, route, status,
    duration, collection, client, ``x-request-id``), at INFO."""
    api_key: Optional[str] = field(default=None, repr=False)
    """When set, every route but ``/`` and the health checks requires it (``api-key`` header or Bearer token)."""
    read_only_api_key: Optional[str] = field(default=None, repr=False)
    """A second key that may only read (GET, retrieve, scroll, count, query, search); writes with it get 403.
    Alone (without ``api_key``) it makes the server read-only to every client."""
    cors_origins: tuple[str, ...] = ()
    """Origins a browser may call the API from (``*`` for any); none by default: CORS stays off."""
    max_request_bytes: int = 32 * 1024 * 1024
    """Largest accepted request body (Qdrant's default); larger bodies get 413."""
    max_snapshot_upload_bytes: int = 64 * 1024**3
    """Largest snapshot file ``POST /collections/{c}/snapshots/upload`` accepts (a whole collection;
    spooled to disk while it arrives). The JSON body limit above does not apply to it."""
    max_batch_points: int = 10_000
    """Points one write request may carry (an upsert, or all upserts of one ``points/batch``)."""
    max_payload_bytes: int = 1024 * 1024
    """Bytes of one point's payload as stored JSON."""
    max_results: int = 10_000
    """``limit + offset`` of one query, search or scroll (larger pages: page with ``offset``)."""
    inline_queries: bool = True
    """Run queries and searches on the event loop's thread (no hop to a worker thread and back); off,
    they run in the worker threads, and a slow query never delays the others' request parsing."""
    decode_processes: int = 1
    """Helper processes that decode large upsert bodies (JSON parsing holds the interpreter for tens of
    milliseconds per batch of 1,000 x 384, which queries would wait for); 0: decode in the server process."""
    workers: int = 1
    """Server processes over the data directory (``vecdb serve --workers``, :mod:`vecdb.api.workers`):
    one writes (the primary), the others answer reads and forward the rest to it. ``vecdb serve``
    defaults to :func:`available_cores`; an app built in-process (``create_app``) is one process."""
    primary_serves: bool = False
    """With ``workers`` > 1: whether the primary also takes client connections (``workers`` processes in
    all), or only writes and the requests followers pass it (``workers`` followers plus the primary), so
    that no query waits behind a write's decoding in the writer's interpreter."""
    follower_tail_kb: int = 4096
    """With ``workers`` > 1: a follower passes a search to the primary while the rows it would scan
    exactly beside the saved graphs (written since the primary's last checkpoint) exceed this many KB;
    the primary's graphs grow as it writes. 4 MB scans in about half a millisecond."""
    worker_number: int = 0
    """This process's number among them (set by the supervisor; 0 is the primary)."""
    max_collection_bytes: int = DEFAULT_MAX_MAP_SIZE
    """Largest LMDB map of one collection (its maps start small and double as they fill, up to this);
    a write past it gets 507 and changes nothing, and the store stays readable."""


def request_limits(settings: ServerSettings) -> Limits:
    return Limits(
        max_points=settings.max_batch_points,
        max_payload_bytes=settings.max_payload_bytes,
        max_results=settings.max_results,
    )
