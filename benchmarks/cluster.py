"""Sharded collections (issue 18, first pieces): the router's fan-out overhead per query, beside one
collection in the same process.

``--n`` generated points (default 100,000 x ``--dim`` 64, Cosine, HNSW-indexed), the same data in one
collection and split over 1, 2 and 4 shards: shards in this process (``ShardRouter`` over
``LocalService``s: the routing and merging alone) and shards as Ray actors (one process each: the remote
call on top). Single queries (limit 10), p50 and p99 over ``--queries``, and ingest rate. On a 2-core
machine the actors share the cores with the driver: the figures show the overhead, not a speed-up,
which needs more cores or nodes.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000)")
    p.add_argument("--dim", type=int, default=64, help="vector size (default 64)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per row (default 200)")
    p.add_argument("--no-ray", action="store_true", help="leave out the Ray actor rows")


def _fill(service: Any, base: np.ndarray) -> float:
    """Seconds to upsert ``base`` and have it indexed."""
    from vecdb.models.collections import CreateCollection
    from vecdb.models.points import PointsBatch

    service.create_collection(
        "c",
        CreateCollection.model_validate(
            {"vectors": {"size": base.shape[1], "distance": "Cosine"}, "optimizers_config": {"indexing_threshold": 1}}
        ),
    )
    t0 = time.perf_counter()
    for lo in range(0, len(base), 5000):
        hi = min(len(base), lo + 5000)
        batch = {"ids": list(range(lo, hi)), "vectors": base[lo:hi]}
        service.upsert_points("c", PointsBatch.model_construct(batch=_batch(batch), shard_key=None))
    seconds = time.perf_counter() - t0
    return seconds


def _batch(columns: dict[str, Any]) -> Any:
    from vecdb.models.points import Batch

    return Batch.model_construct(ids=columns["ids"], vectors=columns["vectors"], payloads=None)


def _indexed(services: list[Any]) -> None:
    from vecdb.models.points import CountRequest

    for service in services:
        while service.get_collection("c").status != "green":
            time.sleep(0.2)
        service.count_points("c", CountRequest())


def _latency(service: Any, queries: np.ndarray) -> tuple[float, float, list[list[Any]]]:
    from vecdb.models.query import QueryRequest

    times, found = [], []
    service.query_points("c", QueryRequest.model_validate({"query": queries[0].tolist()}))  # warm-up
    for q in queries:
        req = QueryRequest.model_validate({"query": q.tolist(), "limit": 10, "with_payload": False})
        t0 = time.perf_counter()
        points = service.query_points("c", req).points
        times.append(time.perf_counter() - t0)
        found.append([p.id for p in points])
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), found


def run(args: argparse.Namespace) -> Section:
    from vecdb.cluster.router import ShardRouter
    from vecdb.engine.database import Database
    from vecdb.engine.service import LocalService

    rng = np.random.default_rng(args.seed)
    centers = rng.normal(size=(256, args.dim))
    base = (centers[rng.integers(0, 256, args.n)] + 0.5 * rng.normal(size=(args.n, args.dim))).astype(np.float32)
    queries = (base[rng.integers(0, args.n, args.queries)] + 0.1 * rng.normal(size=(args.queries, args.dim))).astype(
        np.float32
    )
    rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "cluster") as tmp:
        one = LocalService(Database(tmp / "one"))
        ingest = _fill(one, base)
        _indexed([one])
        ref50, ref99, ref_found = _latency(one, queries)
        rows.append(
            ["one collection (reference)", f"{args.n / ingest:,.0f}", f"{ref50:.3f}", f"{ref99:.3f}", "1.00", "-"]
        )
        kinds = ["in process"] + ([] if args.no_ray else ["Ray actors"])
        ray_started = False
        for kind in kinds:
            for shards in (1, 2, 4):
                paths = [tmp / f"{kind[:2]}{shards}_{s}" for s in range(shards)]
                if kind == "in process":
                    members: list[Any] = [LocalService(Database(p)) for p in paths]
                else:
                    import ray

                    from vecdb.cluster.actors import start_shards

                    if not ray_started:
                        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                        ray_started = True
                    members = start_shards(paths)
                router = ShardRouter(members)
                seconds = _fill(router, base)
                _indexed(members)
                p50, p99, found = _latency(router, queries)
                same = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, ref_found, strict=True)]))
                rows.append(
                    [
                        f"{shards} shard{'s' if shards > 1 else ''}, {kind}",
                        f"{args.n / seconds:,.0f}",
                        f"{p50:.3f}",
                        f"{p99:.3f}",
                        f"{p50 / ref50:.2f}",
                        f"{same:.3f}",
                    ]
                )
                if kind == "in process":
                    for member in members:
                        member.db.close()
                else:
                    import ray

                    for member in members:
                        ray.kill(member.actor, no_restart=True)
        if ray_started:
            import ray

            ray.shutdown()
        one.db.close()
    table = markdown_table(
        [
            "collection",
            "ingest points/s",
            "query p50 ms",
            "query p99 ms",
            "p50 / one collection",
            "top-10 overlap with one collection",
        ],
        rows,
    )
    text = (
        f"{args.n:,} x {args.dim} generated points (Cosine, HNSW), {args.queries} single queries of limit 10. Each "
        "shard answers with its own HNSW graph, so a sharded answer can differ from one graph's by the graphs' "
        "approximation (the overlap column, against the one collection's top 10); exact plans give identical "
        "answers (tests/engine/test_shard_router.py).\n\n" + table
    )
    return Section(f"Sharded collections, {args.n:,} x {args.dim}", text)
