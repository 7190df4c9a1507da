"""Groups, order_by and facet latency beside the plain query; qdrant-client's class over the engine.

``--n`` points (default 1,000,000) of ``--dim`` generated vectors, HNSW-indexed, with an LLM-memory
payload: ``user`` (1,000 users, Zipf-skewed: a few users hold many memories), ``doc`` (chunks of 5
per document), ``at`` (a distinct timestamp-like integer) and ``tag`` (20 values); payload indexes on
``user`` and ``tag`` (keyword), ``at`` and ``doc`` (integer: a grouped query completes its groups with a
filter on the group field, which an index answers). Each row is the median of ``--repeats`` calls
through the embedded client, beside the plain nearest query (limit 10) in the same run, so the ratio
survives a noisy machine. Then ``vecdb.QdrantClient`` (qdrant-client's own class over the same engine)
beside ``vecdb.Client`` for the same query, interleaved: the cost of its argument handling and model
conversion.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir

COLLECTION = "bench_surface"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=1_000_000, help="points (default 1000000)")
    p.add_argument("--dim", type=int, default=16, help="vector size (default 16)")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per row (default 30)")


def _ms(fn: Callable[[int], Any], repeats: int) -> float:
    """Median milliseconds of ``fn(0..repeats-1)`` (after one warm-up call)."""
    fn(repeats)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def _fill(client: Any, n: int, dim: int, rng: np.random.Generator) -> tuple[float, float]:
    """Seconds to upsert, and to have every point indexed."""
    client.create_collection(COLLECTION, {"size": dim, "distance": "Cosine"})
    for field, kind in (("user", "keyword"), ("tag", "keyword"), ("at", "integer"), ("doc", "integer")):
        client.create_payload_index(COLLECTION, field, kind)
    users = np.minimum(rng.zipf(1.3, size=n), 1000) - 1
    tags = rng.integers(0, 20, size=n)
    at = rng.permutation(n) * 7 + 1_700_000_000
    t0 = time.perf_counter()
    for lo in range(0, n, 10_000):
        hi = min(n, lo + 10_000)
        payloads = [
            {"user": f"u{users[i]}", "doc": i // 5, "at": int(at[i]), "tag": f"t{tags[i]}"} for i in range(lo, hi)
        ]
        client.upsert(
            COLLECTION,
            {
                "ids": list(range(lo, hi)),
                "vectors": rng.normal(size=(hi - lo, dim)).astype(np.float32),
                "payloads": payloads,
            },
        )
    upserted = time.perf_counter() - t0
    while client.get_collection(COLLECTION).status != "green":
        time.sleep(0.5)
    return upserted, time.perf_counter() - t0


def run(args: argparse.Namespace) -> Section:
    import vecdb

    rng = np.random.default_rng(args.seed)
    queries = rng.normal(size=(args.repeats + 1, args.dim)).astype(np.float32)
    user_of = [f"u{int(u)}" for u in rng.integers(0, 20, size=args.repeats + 1)]  # (busy users)
    with scratch_dir(args.tmp, "surface") as tmp:
        qc = vecdb.QdrantClient(path=tmp / "db")
        client = qc._client.engine  # the embedded vecdb.Client under it: one process may open a directory once
        upserted, indexed = _fill(client, args.n, args.dim, rng)

        def by_user(i: int) -> dict[str, Any]:
            return {"must": [{"key": "user", "match": {"value": user_of[i]}}]}

        newest = {"key": "at", "direction": "desc"}
        rows_spec: list[tuple[str, Callable[[int], Any]]] = [
            (
                "plain query, limit 10 (reference)",
                lambda i: client.query_points(COLLECTION, query=queries[i], limit=10),
            ),
            (
                "query filtered by user, limit 10",
                lambda i: client.query_points(COLLECTION, query=queries[i], query_filter=by_user(i), limit=10),
            ),
            ("scroll order_by at desc, limit 10", lambda i: client.scroll(COLLECTION, order_by=newest, limit=10)),
            (
                "scroll order_by at desc, filtered by user, limit 10",
                lambda i: client.scroll(COLLECTION, scroll_filter=by_user(i), order_by=newest, limit=10),
            ),
            (
                "query order_by at desc (newest first), limit 10",
                lambda i: client.query_points(COLLECTION, query={"order_by": newest}, limit=10),
            ),
            ("facet tag (20 values)", lambda i: client.facet(COLLECTION, "tag")),
            ("facet user (1,000 values), limit 10", lambda i: client.facet(COLLECTION, "user", limit=10)),
            (
                "facet tag, filtered by user",
                lambda i: client.facet(COLLECTION, "tag", facet_filter=by_user(i), limit=20),
            ),
            (
                "groups by doc: 10 groups of 3",
                lambda i: client.query_points_groups(COLLECTION, "doc", query=queries[i], limit=10, group_size=3),
            ),
            (
                "groups by user: 10 groups of 3 (skewed)",
                lambda i: client.query_points_groups(COLLECTION, "user", query=queries[i], limit=10, group_size=3),
            ),
        ]
        rows: list[list[Any]] = []
        reference = None
        for label, fn in rows_spec:
            ms = _ms(fn, args.repeats)
            reference = ms if reference is None else reference
            rows.append([label, ms, ms / reference])

        # qdrant-client's class over the engine, beside the embedded client: interleaved rounds, best of each
        plain_best = wrapped_best = float("inf")
        for _ in range(5):
            plain_best = min(
                plain_best, _ms(lambda i: client.query_points(COLLECTION, query=queries[i], limit=10), args.repeats)
            )
            wrapped_best = min(
                wrapped_best, _ms(lambda i: qc.query_points(COLLECTION, query=queries[i], limit=10), args.repeats)
            )
        qc.close()
    table = markdown_table(["call (embedded, median)", "ms", "x plain query"], rows)
    overhead = markdown_table(
        ["client", "query_points ms (median, best of 5 rounds)", "ratio"],
        [
            ["vecdb.Client", plain_best, 1.0],
            ["vecdb.QdrantClient (qdrant-client's class)", wrapped_best, wrapped_best / plain_best],
        ],
    )
    text = (
        f"{args.n:,} points x {args.dim} (Cosine, HNSW), payload indexes on `user`, `tag` (keyword), `at` and `doc` "
        f"(integer); upserted in {upserted:.0f} s, indexed after {indexed:.0f} s. Medians of {args.repeats} calls.\n\n"
        + table
        + "\n\nqdrant-client's class over the same engine (goal: model conversion must not double a query's cost):\n\n"
        + overhead
    )
    return Section(f"Groups, order_by and facet, {args.n:,} points", text)
