"""``/metrics``: Prometheus text exposition of requests, latencies, collections and the optimizer.

Each app owns its registry (never prometheus_client's global one), so two servers
in one process, as tests run them, count apart. Request metrics are labelled by
the route *template* (``/collections/{collection_name}/points/query``), never the
raw path: a label per collection name or point id would grow without bound.
Collection figures are read from the service at scrape time, so they are never
stale and cost nothing between scrapes.

Under ``vecdb serve --workers N`` every worker counts the requests it answers, but
``/metrics`` is answered by the primary alone (followers forward it). The supervisor
then sets ``PROMETHEUS_MULTIPROC_DIR`` before starting the workers, so that
prometheus-client's multi-process mode keeps each process's counts in files there, and
the primary renders the sum over every worker, including those that died and were
started again (a counter never goes backwards). The collection gauges come from the
primary's service: they describe the data, which every worker shares.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vecdb import __version__
from vecdb.api.settings import MULTIPROCESS_ENV
from vecdb.service import VectorService

UNMATCHED_ROUTE = "<unmatched>"
"""Route label of requests no route answered (404s for unknown paths, 401s before routing)."""

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STATUSES = ("green", "yellow", "red")


class _CollectionsCollector(Collector):
    """Gauges per collection, read from the service when Prometheus scrapes."""

    def __init__(self, service: VectorService, started: float) -> None:
        self.service = service
        self.started = started

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.service.collection_stats()
        points = GaugeMetricFamily("vecdb_collection_points", "Points stored in the collection", labels=["collection"])
        indexed = GaugeMetricFamily(
            "vecdb_collection_indexed_vectors", "Vectors an ANN index (HNSW or IVF-PQ) holds", labels=["collection"]
        )
        backlog = GaugeMetricFamily(
            "vecdb_optimizer_backlog_vectors",
            "Stored vectors the background optimizer has not indexed yet",
            labels=["collection"],
        )
        status = GaugeMetricFamily(
            "vecdb_collection_status",
            "1 for the collection's current status (green: indexed; yellow: optimizer at work; red: optimizer failed)",
            labels=["collection", "status"],
        )
        loaded = GaugeMetricFamily(
            "vecdb_collection_index_loaded",
            "1 once the saved index was read back after the open",
            labels=["collection"],
        )
        payload = GaugeMetricFamily("vecdb_collection_payload_indexes", "Indexed payload fields", labels=["collection"])
        for s in stats:
            points.add_metric([s.name], s.points)
            indexed.add_metric([s.name], s.indexed_vectors)
            backlog.add_metric([s.name], s.index_backlog)
            loaded.add_metric([s.name], 1 if s.index_loaded else 0)
            payload.add_metric([s.name], s.payload_indexes)
            for name in _STATUSES:
                status.add_metric([s.name, name], 1 if s.status == name else 0)
        count = GaugeMetricFamily("vecdb_collections", "Collections in the data directory")
        count.add_metric([], len(stats))
        uptime = GaugeMetricFamily("vecdb_uptime_seconds", "Seconds since the server started")
        uptime.add_metric([], time.monotonic() - self.started)
        info = GaugeMetricFamily("vecdb_build_info", "vecdb version", labels=["version"])
        info.add_metric([__version__], 1)
        yield from (count, points, indexed, backlog, status, loaded, payload, uptime, info)


class Metrics:
    """The registry of one server app."""

    def __init__(self, service: VectorService) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "vecdb_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "vecdb_http_request_duration_seconds",
            "Time to answer a request, body sent",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.collections = _CollectionsCollector(service, time.monotonic())
        self.registry.register(self.collections)
        self.shared_folder = os.environ.get(MULTIPROCESS_ENV)
        """Where every worker's counts are, under ``--workers`` (None: this process's own registry)."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        if self.shared_folder is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(merged, self.shared_folder)  # every worker's requests, summed
        merged.register(self.collections)
        return generate_latest(merged)
