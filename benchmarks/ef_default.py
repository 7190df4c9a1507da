"""The default ``hnsw_ef``: recall@10 and search speed per ef, on the shared data sets and 384-d data.

vecdb searches with ``max(DEFAULT_EF, ef_construct)`` when a query names no ``hnsw_ef``
(``vecdb/engine/planner.py``). This measures what each candidate costs and buys, on graphs built as
vecdb builds them (faiss HNSW, m=16, ef_construct=100; vecdb's graph is faiss's, so its recall at an
ef is this recall: ``python -m benchmarks hnsw`` shows both side by side): sift5k (Euclid), glove50
(Cosine; ``--n`` points), and 384-d clustered data (Cosine, sentence-embedding-sized, ``--n`` points),
with exact ground truth. The chosen default is the smallest ef of the ladder whose recall@10 reaches
``--target`` on every data set (or the largest of the ladder).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Section, load_dataset, make_clustered, make_queries, markdown_table, normalise

LADDER = (32, 64, 100, 128, 192, 256, 384, 512)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points of glove50 and of the 384-d data (default 100000)")
    p.add_argument("--queries", type=int, default=300, help="queries per data set (default 300)")
    p.add_argument("--target", type=float, default=0.95, help="recall@10 the default must reach (default 0.95)")


def _sets(args: argparse.Namespace) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    out = []
    sift = load_dataset("sift5k", Path(args.datasets))
    out.append(("sift5k (5,000 x 128, Euclid)", sift.base, sift.queries[: args.queries], "Euclid"))
    glove = load_dataset("glove50", Path(args.datasets), n=args.n)
    out.append((f"glove50 ({len(glove.base):,} x 50, Cosine)", glove.base, glove.queries[: args.queries], "Cosine"))
    out.append(
        (
            f"clustered ({args.n:,} x 384, Cosine)",
            make_clustered(args.n, 384, seed=args.seed),
            make_queries(args.queries, 384, seed=args.seed),
            "Cosine",
        )
    )
    return out


def _measure(base: np.ndarray, queries: np.ndarray, distance: str) -> list[tuple[int, float, float]]:
    import faiss

    faiss.omp_set_num_threads(1)
    if distance == "Cosine":
        base, queries = normalise(base), normalise(queries)
        index = faiss.IndexHNSWFlat(base.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
        truth = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    else:
        index = faiss.IndexHNSWFlat(base.shape[1], 16)
        d2 = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
        truth = np.argsort(d2, axis=1, kind="stable")[:, :10]
    index.hnsw.efConstruction = 100
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # (the build uses the machine; searches run one thread)
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    faiss.omp_set_num_threads(1)
    out = []
    for ef in LADDER:
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        found = np.stack([index.search(queries[i : i + 1], 10, params=params)[1][0] for i in range(len(queries))])
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(len(queries)):
                index.search(queries[i : i + 1], 10, params=params)
            best = min(best, (time.perf_counter() - t0) / len(queries))
        recall = float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist(), strict=True)])
        )
        out.append((ef, recall, 1.0 / best))
    return out


def run(args: argparse.Namespace) -> Section:
    from vecdb.engine.planner import DEFAULT_EF

    rows: list[list[Any]] = []
    reached: dict[int, bool] = {ef: True for ef in LADDER}
    per_set: dict[str, dict[int, tuple[float, float]]] = {}
    for name, base, queries, distance in _sets(args):
        measured = _measure(base, queries, distance)
        per_set[name] = {ef: (recall, qps) for ef, recall, qps in measured}
        top_qps = measured[0][2]
        for ef, recall, qps in measured:
            reached[ef] = reached[ef] and recall >= args.target
            rows.append([name, ef, recall, qps, qps / top_qps, "<- vecdb's default" if ef == DEFAULT_EF else ""])
        print(f"[ef] {name}: " + ", ".join(f"ef {ef}: {r:.3f}" for ef, r, _ in measured), flush=True)
    chosen = next((ef for ef in LADDER if reached[ef]), LADDER[-1])
    text = (
        f"faiss HNSW m=16, ef_construct=100 (vecdb's graph), top-10, {args.queries} queries per set, one thread; "
        f"`QPS share` = QPS over the same set's QPS at ef {LADDER[0]}.\n\n"
        + markdown_table(["data set", "ef", "recall@10", "QPS (1 thread)", "QPS share", ""], rows)
        + f"\n\nSmallest ef of the ladder with recall@10 >= {args.target} on every set: **{chosen}** "
        f"(vecdb's DEFAULT_EF: {DEFAULT_EF}).\n"
    )
    return Section("Default hnsw_ef: recall and speed per ef", text)


__all__ = ["LADDER", "add_args", "run"]
