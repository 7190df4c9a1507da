"""Multivectors (ColBERT-style late interaction): MaxSim re-scoring under a dense prefetch, and a root
MaxSim query, beside numpy doing the same MaxSim over matrices already in memory.

``--n`` documents (default 10,000), each with a dense ``--dim``-d vector and a ``--rows``-row matrix of
``--mdim``-d rows (default 32 x 128: a short passage's ColBERT tokens), normalised (Cosine). Queries are
``--qrows``-row matrices (default 32) built near a document, with the dense vector of that document
plus noise as the prefetch. Rows:

* ingest: points per second of the upsert (dense vector + matrix + payload per point, batches of 256);
* re-score: the dense prefetch (``--candidates``, default 100, HNSW) then MaxSim over those candidates
  (the matrices read from LMDB by key); the reference is numpy's MaxSim over the same candidates'
  matrices held in a Python list (no storage, no prefetch): the floor for the arithmetic alone;
* root MaxSim over every document (an exact scan of the ``multi`` table); the reference is numpy's
  MaxSim over one in-memory matrix of every row (``np.maximum.reduceat``), the same arithmetic.

Latency is per single query, p50 and p99 over ``--queries``; both sides at the machine's default
threading (BLAS uses every core) and pinned to one thread as a second pair of rows.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir

COLLECTION = "bench_multi"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=10_000, help="documents (default 10000)")
    p.add_argument("--dim", type=int, default=128, help="dense vector size (default 128)")
    p.add_argument("--mdim", type=int, default=128, help="multivector row size (default 128)")
    p.add_argument("--rows", type=int, default=32, help="rows per document (default 32)")
    p.add_argument("--qrows", type=int, default=32, help="rows per query (default 32)")
    p.add_argument("--candidates", type=int, default=100, help="dense prefetch limit (default 100)")
    p.add_argument("--queries", type=int, default=100, help="timed queries per row (default 100)")


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def _pcts(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(args: argparse.Namespace) -> Section:
    import vecdb

    rng = np.random.default_rng(args.seed)
    n = args.n
    dense = _unit(rng.normal(size=(n, args.dim)))
    topics = _unit(rng.normal(size=(64, args.mdim)))
    mats = [
        _unit(topics[rng.integers(0, 64, args.rows)] + 0.6 * rng.normal(size=(args.rows, args.mdim))) for _ in range(n)
    ]
    targets = rng.integers(0, n, args.queries)
    q_dense = _unit(dense[targets] + 0.3 * rng.normal(size=(args.queries, args.dim)))
    q_mats = [
        _unit(mats[t][rng.integers(0, args.rows, args.qrows)] + 0.3 * rng.normal(size=(args.qrows, args.mdim)))
        for t in targets
    ]
    rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "multivector") as tmp:
        client = vecdb.Client(path=tmp / "db")
        client.create_collection(
            COLLECTION,
            {
                "dense": {"size": args.dim, "distance": "Cosine"},
                "colbert": {"size": args.mdim, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
            },
            optimizers_config={"indexing_threshold": 1},
        )
        t0 = time.perf_counter()
        for lo in range(0, n, 256):
            hi = min(n, lo + 256)
            client.upsert(
                COLLECTION,
                [
                    {"id": i, "vector": {"dense": dense[i], "colbert": mats[i]}, "payload": {"doc": i}}
                    for i in range(lo, hi)
                ],
            )
        ingest_s = time.perf_counter() - t0
        while client.get_collection(COLLECTION).status != "green":
            time.sleep(0.2)
        rows.append(["ingest (points/s)", f"{n / ingest_s:,.0f}", "", "", ""])
        all_rows = np.concatenate(mats)
        starts = np.arange(0, n * args.rows, args.rows)

        def rescore(i: int) -> Any:
            return client.query_points(
                COLLECTION,
                prefetch={"query": q_dense[i], "using": "dense", "limit": args.candidates},
                query=q_mats[i],
                using="colbert",
                limit=10,
                with_payload=False,
            ).points

        def rescore_numpy(i: int) -> Any:
            cand = client.query_points(
                COLLECTION, query=q_dense[i], using="dense", limit=args.candidates, with_payload=False
            ).points
            ids = [p.id for p in cand]
            t0 = time.perf_counter()
            scores = [float((q_mats[i] @ mats[j].T).max(axis=1).sum()) for j in ids]
            order = np.argsort(scores)[::-1][:10]
            return [ids[j] for j in order], time.perf_counter() - t0

        def root(i: int) -> Any:
            return client.query_points(
                COLLECTION, query=q_mats[i], using="colbert", limit=10, with_payload=False
            ).points

        def root_numpy(i: int) -> Any:
            sims = q_mats[i] @ all_rows.T
            total = np.maximum.reduceat(sims, starts, axis=1).sum(axis=0)
            return np.argsort(-total)[:10]

        from threadpoolctl import threadpool_limits

        for label, limit in (("default threads", None), ("1 thread", 1)):
            with threadpool_limits(limits=limit):
                t_v, t_n, agree = [], [], 0
                for i in range(args.queries):
                    t0 = time.perf_counter()
                    got = rescore(i)
                    t_v.append(time.perf_counter() - t0)
                    want, spent = rescore_numpy(i)
                    t_n.append(spent)
                    agree += [p.id for p in got] == want
                (v50, v99), (n50, n99) = _pcts(t_v), _pcts(t_n)
                rows.append(
                    [
                        f"re-score {args.candidates} candidates, {label}",
                        f"{v50:.2f} / {v99:.2f}",
                        f"{n50:.2f} / {n99:.2f}",
                        f"{v50 / n50:.1f}x",
                        f"{agree}/{args.queries}",
                    ]
                )
                t_v, t_n, agree = [], [], 0
                for i in range(args.queries):
                    t0 = time.perf_counter()
                    got = root(i)
                    t_v.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    want = root_numpy(i)
                    t_n.append(time.perf_counter() - t0)
                    agree += [p.id for p in got] == want.tolist()
                (v50, v99), (n50, n99) = _pcts(t_v), _pcts(t_n)
                rows.append(
                    [
                        f"root MaxSim over {n:,} documents, {label}",
                        f"{v50:.2f} / {v99:.2f}",
                        f"{n50:.2f} / {n99:.2f}",
                        f"{v50 / n50:.1f}x",
                        f"{agree}/{args.queries}",
                    ]
                )
        client.close()
    table = markdown_table(
        ["what", "vecdb ms p50 / p99", "numpy in memory ms p50 / p99", "vecdb / numpy (p50)", "same top 10"], rows
    )
    text = (
        f"{n:,} documents, each a {args.dim}-d dense vector and a {args.rows} x {args.mdim} matrix (Cosine); "
        f"queries of {args.qrows} rows; {args.queries} queries per row. The re-score reference times numpy's "
        "MaxSim alone over the candidates vecdb's own dense prefetch returned (matrices already in memory).\n\n" + table
    )
    return Section(f"Multivectors, {n:,} x {args.rows} x {args.mdim}", text)
