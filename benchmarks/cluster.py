"""Sharded, replicated collections (issue 18): what the cluster costs beside one collection, in one run.

``--n`` generated points (default 100,000 x ``--dim`` 64, 256 clusters, Cosine, HNSW), the same data in:

* one collection in this process (the reference: one node's ``LocalService``);
* 1, 2 and 4 shards through the cluster service with its replicas in this process
  (``LocalPlacement``: the routing and merging alone);
* 1, 2 and 4 shards on simulated Ray nodes (``ray.cluster_utils.Cluster``, 4 nodes, one raylet each,
  every replica an actor pinned to its node): the remote calls on top.

Measured for each: ingest rate, single queries (limit 10) p50 / p99 and throughput from one client
thread, batch throughput (``query_batch_points`` of ``--batch`` queries: one call per shard), and the top-10
overlap with the reference (each shard searches its own graph). Then, on the Ray nodes: ingest with
``replication_factor`` 1 and 2; where a single query's time goes (the slowest shard's own work, read from
its explain; an empty actor call; the rest is the router: request copies, merging, models); and the rate
at which a shard is copied to a new replica (``replicate_shard``, the same stream as catch-up).

A 2-core machine runs every node here: the figures bound the overhead; a speed-up from more shards needs
cores (or machines) of their own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir

NODES = 4


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000)")
    p.add_argument("--dim", type=int, default=64, help="vector size (default 64)")
    p.add_argument("--queries", type=int, default=200, help="timed single queries per row (default 200)")
    p.add_argument("--batch", type=int, default=100, help="queries per batch (default 100)")
    p.add_argument("--no-ray", action="store_true", help="leave out the Ray rows")


def _create(service: Any, dim: int, shards: int | None = None, rf: int = 1) -> None:
    from vecdb.models.collections import CreateCollection

    body: dict[str, Any] = {
        "vectors": {"size": dim, "distance": "Cosine"},
        "optimizers_config": {"indexing_threshold": 1},
    }
    if shards is not None:
        body.update(shard_number=shards, replication_factor=rf)
    service.create_collection("c", CreateCollection.model_validate(body))


def _ingest(service: Any, base: np.ndarray) -> float:
    """Points per second upserted (batches of 2,000, each acknowledged durably)."""
    from vecdb.models.points import Batch, PointsBatch

    t0 = time.perf_counter()
    for lo in range(0, len(base), 2000):
        hi = min(len(base), lo + 2000)
        batch = Batch.model_construct(ids=list(range(lo, hi)), vectors=base[lo:hi], payloads=None)
        service.upsert_points("c", PointsBatch.model_construct(batch=batch, shard_key=None))
    return len(base) / (time.perf_counter() - t0)


def _green(service: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while str(getattr(service.get_collection("c").status, "value", service.get_collection("c").status)) != "green":
        if time.monotonic() > deadline:
            raise TimeoutError("the shards' indexes were not built in time")
        time.sleep(0.2)


def _singles(service: Any, queries: np.ndarray) -> tuple[list[float], list[list[Any]]]:
    from vecdb.models.query import QueryRequest

    service.query_points("c", QueryRequest.model_validate({"query": queries[0].tolist()}))  # warm-up
    times, found = [], []
    for q in queries:
        req = QueryRequest.model_validate({"query": q.tolist(), "limit": 10})
        t0 = time.perf_counter()
        points = service.query_points("c", req).points
        times.append(time.perf_counter() - t0)
        found.append([p.id for p in points])
    return times, found


def _batch_qps(service: Any, queries: np.ndarray, size: int) -> float:
    from vecdb.models.query import QueryRequestBatch

    batches = [queries[lo : lo + size] for lo in range(0, len(queries), size)]
    reqs = [
        QueryRequestBatch.model_validate({"searches": [{"query": q.tolist(), "limit": 10} for q in b]}) for b in batches
    ]
    service.query_batch_points("c", reqs[0])  # warm-up
    t0 = time.perf_counter()
    for _ in range(3):
        for req in reqs:
            service.query_batch_points("c", req)
    return 3 * len(queries) / (time.perf_counter() - t0)


def _row(label: str, ingest: float, times: list[float], qps_batch: float, ref50: float, overlap: str) -> list[Any]:
    ms = np.asarray(times) * 1e3
    p50 = float(np.percentile(ms, 50))
    return [
        label,
        f"{ingest:,.0f}",
        f"{p50:.3f}",
        f"{float(np.percentile(ms, 99)):.3f}",
        f"{1e3 / float(ms.mean()):,.0f}",
        f"{qps_batch:,.0f}",
        f"{p50 / ref50:.2f}" if ref50 else "1.00",
        overlap,
    ]


def _overlap(found: list[list[Any]], reference: list[list[Any]]) -> str:
    return f"{np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, reference, strict=True)]):.3f}"


def _breakdown(service: Any, queries: np.ndarray) -> dict[str, float]:
    """Median ms of: the whole query at the router; its slowest shard's own work (explain); an empty call to
    a replica (the transport alone)."""
    from vecdb.models.query import QueryRequest

    totals, shard_work, empty = [], [], []
    router = service._routers["c"]
    replica = router.shards[0].replicas[0]
    for q in queries[:100]:
        req = QueryRequest.model_validate({"query": q.tolist(), "limit": 10, "explain": True})
        t0 = time.perf_counter()
        explain = service.query_points("c", req).explain
        totals.append((time.perf_counter() - t0) * 1e3)
        shard_work.append(max(sum(s["timings_ms"].values()) for s in explain["stage"]["shards"]))
        t0 = time.perf_counter()
        replica.handle.alive(30.0)
        empty.append((time.perf_counter() - t0) * 1e3)
    return {
        "total": float(np.median(totals)),
        "shard": float(np.median(shard_work)),
        "call": float(np.median(empty)),
    }


def _copy_rate(service: Any, count: int) -> tuple[float, float, int]:
    """``replicate_shard`` of shard 0 to a node without a replica of it: seconds to start the new replica
    (its actor and empty collection), and points per second streamed once it is filling (``Partial``)."""
    from vecdb.cluster.service import peer_id
    from vecdb.models.cluster import ClusterOperation

    shard = service._routers["c"].shards[0]
    source = shard.replicas[0]
    holders = {r.node for r in shard.replicas}
    target = next(n for n in service.placement.nodes() if n not in holders)
    op = {"shard_id": shard.shard_id, "from_peer_id": peer_id(source.node), "to_peer_id": peer_id(target)}
    t0 = time.perf_counter()
    service.update_collection_cluster("c", ClusterOperation.model_validate({"replicate_shard": op}))
    new = shard.replicas[-1]
    while new.state == "Dead" and service.collection_cluster_info("c").shard_transfers:
        time.sleep(0.005)
    t1 = time.perf_counter()
    while service.collection_cluster_info("c").shard_transfers:
        time.sleep(0.005)
    t2 = time.perf_counter()
    assert all(r.state == "Active" for r in shard.replicas), shard
    return t1 - t0, count / (t2 - t1), count


def run(args: argparse.Namespace) -> Section:
    from vecdb.cluster.placement import LocalPlacement
    from vecdb.cluster.service import ClusterService
    from vecdb.cluster.shard_map import ShardMapStore
    from vecdb.engine.database import Database
    from vecdb.engine.service import LocalService
    from vecdb.models.points import CountRequest

    rng = np.random.default_rng(args.seed)
    centers = rng.normal(size=(256, args.dim))
    base = (centers[rng.integers(0, 256, args.n)] + 0.5 * rng.normal(size=(args.n, args.dim))).astype(np.float32)
    queries = (base[rng.integers(0, args.n, args.queries)] + 0.1 * rng.normal(size=(args.queries, args.dim))).astype(
        np.float32
    )
    rows: list[list[Any]] = []
    ingest_rows: list[list[Any]] = []
    breakdown_rows: list[list[Any]] = []
    copy_rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "cluster") as tmp:
        one = LocalService(Database(tmp / "one"))
        _create(one, args.dim)
        rate = _ingest(one, base)
        _green(one)
        times, reference = _singles(one, queries)
        ref50 = float(np.percentile(np.asarray(times) * 1e3, 50))
        rows.append(_row("one collection (reference)", rate, times, _batch_qps(one, queries, args.batch), 0.0, "-"))
        one.db.close()

        def measure(label: str, make: Any, shards: int) -> Any:
            service = make(tmp / f"{label}-{shards}")
            _create(service, args.dim, shards)
            rate = _ingest(service, base)
            _green(service)
            times, found = _singles(service, queries)
            rows.append(
                _row(
                    f"{shards} shard{'s' if shards > 1 else ''}, {label}",
                    rate,
                    times,
                    _batch_qps(service, queries, args.batch),
                    ref50,
                    _overlap(found, reference),
                )
            )
            return service

        def local(path: Path) -> Any:
            return ClusterService(
                LocalPlacement(path, [f"node-{i}" for i in range(NODES)]), ShardMapStore(str(path / "m.json"))
            )

        for shards in (1, 2, 4):
            measure("in process", local, shards).close()
        if not args.no_ray:
            from tests.helpers import simulated_ray_nodes
            from vecdb.cluster.actors import RayPlacement, start_coordinator

            with simulated_ray_nodes(NODES):

                def on_ray(path: Path) -> Any:  # (one coordinator per Ray cluster: every service shares its root)
                    return ClusterService(RayPlacement(tmp / "ray"), start_coordinator(tmp / "ray"))

                for shards in (1, 2, 4):
                    service = measure("Ray, simulated nodes", on_ray, shards)
                    parts = _breakdown(service, queries)
                    rest = parts["total"] - parts["shard"] - parts["call"]
                    breakdown_rows.append(
                        [
                            shards,
                            f"{parts['total']:.3f}",
                            f"{parts['shard']:.3f}",
                            f"{parts['call']:.3f}",
                            f"{rest:.3f}",
                            f"{ref50:.3f}",
                        ]
                    )
                    if shards == 2:
                        copied = service._routers["c"].shards[0].read("count_points", "c", CountRequest()).count
                        start, rate, count = _copy_rate(service, copied)
                        copy_rows.append(
                            [f"{count:,}", f"{start:.2f}", f"{rate:,.0f}", f"{rate * args.dim * 4 / 1e6:.1f}"]
                        )
                    service.delete_collection("c")
                    service.close()
                for rf in (1, 2):
                    service = on_ray(tmp / f"rf{rf}")
                    _create(service, args.dim, 2, rf)
                    rate = _ingest(service, base)
                    ingest_rows.append([f"2 shards, replication_factor {rf}", f"{rate:,.0f}"])
                    service.delete_collection("c")
                    service.close()
    table = markdown_table(
        [
            "collection",
            "ingest points/s",
            "single p50 ms",
            "single p99 ms",
            "single QPS (1 client)",
            f"batch QPS ({args.batch} a call)",
            "p50 / one collection",
            "top-10 overlap with one collection",
        ],
        rows,
    )
    text = (
        f"{args.n:,} x {args.dim} generated points (256 clusters, Cosine, HNSW m 16, ef 64 default), "
        f"{args.queries} queries of limit 10; {NODES} simulated Ray nodes on this machine. Each shard searches its "
        "own graph, so a sharded answer can differ from one graph's by the graphs' approximation (overlap column); "
        "exact plans give identical answers (tests/engine/test_cluster_service.py, the sharded differential "
        "tests).\n\n" + table
    )
    if breakdown_rows:
        text += "\n\nWhere a single query's time goes on the Ray nodes (medians, ms):\n\n" + markdown_table(
            [
                "shards",
                "query at the router",
                "slowest shard's own work (explain)",
                "empty actor call",
                "router (rest)",
                "one collection, whole query",
            ],
            breakdown_rows,
        )
    if ingest_rows:
        text += "\n\nIngest with replicas (Ray nodes; every write acknowledged once every replica committed it):\n\n"
        text += markdown_table(["collection", "ingest points/s"], ingest_rows)
    if copy_rows:
        text += "\n\nCopying a shard to a new replica (`replicate_shard`; catch-up streams the same way):\n\n"
        text += markdown_table(
            ["points copied", "new replica started (s)", "points/s streamed", "MB/s of vectors"], copy_rows
        )
    return Section(f"Sharded collections, {args.n:,} x {args.dim}", text)
