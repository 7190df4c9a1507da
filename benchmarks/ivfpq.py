"""IVF-PQ: vecdb's index (codebooks from its own K-Means) vs raw faiss ``IndexIVFPQ``, same nlist / m.

Per data set: train and add time, bytes per vector, then for each nprobe the
recall@10 of the codes alone and after exact re-ranking of the best
``k * oversampling`` candidates from the float32 vectors, with single-query
QPS (one thread) beside raw faiss at the same nprobe and beside the exact
scan (faiss ``IndexFlat``). This measures the index itself; collections
reach it through the planner.
"""

from __future__ import annotations

import argparse
import ctypes
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from benchmarks.common import (
    Dataset,
    Section,
    load_dataset,
    markdown_table,
    normalise,
    plot_recall_qps,
    recall_at_k,
    synthetic,
)

PLOT_NAME = "ivfpq_recall_qps.png"
RECALL_TARGET = 0.90
COMPRESSION_TARGET = 16.0


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sets",
        default="sift5k,glove50,synthetic",
        help="comma-separated: sift5k, glove50, synthetic (default all three)",
    )
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic points (default 1000000)")
    p.add_argument("--dim", type=int, default=128, help="synthetic dimension (default 128)")
    p.add_argument("--queries", type=int, default=200, help="queries per data set (default 200)")
    p.add_argument("--nprobes", default="1,2,4,8,16,32,64", help="nprobe sweep (default 1,2,4,8,16,32,64)")
    p.add_argument(
        "--oversampling",
        type=float,
        default=None,
        help="re-ranked candidates = k x this (default: vecdb's, index.ivfpq.DEFAULT_OVERSAMPLING)",
    )
    p.add_argument("--pq-m", type=int, default=None, help="code bytes per vector (default: vecdb's default_pq_m)")
    p.add_argument("--nlist", type=int, default=None, help="lists (default: vecdb's default_nlist)")
    p.add_argument("--device", default="cpu", help="device vecdb trains on: cpu, cuda or auto (default cpu)")
    p.add_argument(
        "--collection-n",
        type=int,
        default=200_000,
        help="points of the collection-level run (embedded client, planner, vectors on disk); 0 skips",
    )


def _exact_truth(ds: Dataset, ip: bool, k: int) -> tuple[np.ndarray, Any]:
    import faiss

    flat = faiss.IndexFlatIP(ds.base.shape[1]) if ip else faiss.IndexFlatL2(ds.base.shape[1])
    flat.add(ds.base)
    _, truth = flat.search(ds.queries, k)
    return truth, flat


def _single_qps(fn: Any, queries: np.ndarray) -> tuple[float, list[Any]]:
    out = [fn(q[None]) for q in queries[:5]]  # warm-up
    t0 = time.perf_counter()
    out = [fn(q[None]) for q in queries]
    return len(queries) / (time.perf_counter() - t0), out


def _rerank(base: np.ndarray, ip: bool, q: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray:
    cand = cand[cand >= 0]
    rows = base[cand]
    key = -(rows @ q) if ip else ((rows - q) ** 2).sum(axis=1)
    return cand[np.argsort(key, kind="stable")[:k]]


def _one(
    ds: Dataset, args: argparse.Namespace, k: int = 10
) -> tuple[str, dict[str, list[tuple[int, float, float]]], list[list[Any]]]:
    import faiss

    from vecdb.index.ivfpq import IvfPqIndex, IvfPqShape, default_nlist, default_pq_m
    from vecdb.models.collections import Distance

    distance = Distance(ds.distance)
    ip = distance is not Distance.EUCLID
    if distance is Distance.COSINE:
        ds = Dataset(ds.name, normalise(ds.base), normalise(ds.queries), ds.distance, ds.gt_ids)
    n, d = ds.base.shape
    nlist, m = args.nlist or default_nlist(n), args.pq_m or default_pq_m(d)
    print(f"[ivfpq] {ds.name}: {n:,} x {d}, {distance.value}, nlist {nlist}, pq_m {m}", flush=True)
    truth, flat = _exact_truth(ds, ip, k)

    t0 = time.perf_counter()
    trained = IvfPqIndex.train(ds.base, distance, IvfPqShape(nlist, m), seed=0, device=args.device)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = trained.grown(np.arange(n), ds.base)
    add_s = time.perf_counter() - t0

    quantizer = faiss.IndexFlatIP(d) if ip else faiss.IndexFlatL2(d)
    raw = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2)
    sample = ds.base[np.random.default_rng(0).choice(n, min(n, max(nlist * 64, 65536)), replace=False)]
    t0 = time.perf_counter()
    raw.train(sample)
    raw_train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw.add(ds.base)
    raw_add_s = time.perf_counter() - t0

    exact_qps, _ = _single_qps(lambda q: flat.search(q, k), ds.queries)
    ours_bytes = index.memory_bytes() / n
    raw_bytes = (raw.code_size + 8) * n / n + (raw.quantizer.ntotal * d * 4 + raw.pq.centroids.size() * 4) / n
    build = [
        ["train (s)", train_s, raw_train_s, f"{train_s / raw_train_s:.2f}x"],
        ["add (s)", add_s, raw_add_s, f"{add_s / raw_add_s:.2f}x"],
        [
            "bytes per vector in memory (codes, ids; centroids and codebooks shared out)",
            ours_bytes,
            raw_bytes,
            f"{ours_bytes / raw_bytes:.2f}x",
        ],
        ["compression vs float32 (4 d bytes)", f"{4 * d / ours_bytes:.1f}x", f"{4 * d / raw_bytes:.1f}x", "-"],
    ]
    from vecdb.index.ivfpq import DEFAULT_OVERSAMPLING

    cand_k = int(round(k * (args.oversampling or DEFAULT_OVERSAMPLING)))
    rows: list[list[Any]] = []
    curves: dict[str, list[tuple[int, float, float]]] = {
        "vecdb, re-ranked": [],
        "vecdb, codes only": [],
        "raw faiss IVFPQ": [],
    }
    params = faiss.SearchParametersIVF()
    for nprobe in [int(x) for x in args.nprobes.split(",") if int(x) <= nlist]:
        params.nprobe = nprobe
        qps_codes, found_codes = _single_qps(lambda q, p=nprobe: index.search(q, k, p)[1][0], ds.queries)
        qps_rr, found_rr = _single_qps(
            lambda q, p=nprobe: _rerank(ds.base, ip, q[0], index.search(q, cand_k, p)[1][0], k), ds.queries
        )
        qps_raw, found_raw = _single_qps(lambda q: raw.search(q, k, params=params)[1][0], ds.queries)
        r_codes = recall_at_k(np.array(found_codes), truth, k)
        r_rr = recall_at_k(np.array([np.pad(f, (0, k - len(f)), constant_values=-1) for f in found_rr]), truth, k)
        r_raw = recall_at_k(np.array(found_raw), truth, k)
        curves["vecdb, codes only"].append((nprobe, r_codes, qps_codes))
        curves["vecdb, re-ranked"].append((nprobe, r_rr, qps_rr))
        curves["raw faiss IVFPQ"].append((nprobe, r_raw, qps_raw))
        rows.append(
            [nprobe, r_codes, r_rr, qps_rr, f"{qps_rr / exact_qps:.2f}x", r_raw, qps_raw, f"{qps_codes / qps_raw:.2f}x"]
        )
    batch_md = _batch(index, ds.queries, cand_k, nlist)
    md = (
        f"### {ds.name}: {n:,} x {d}, {distance.value}, nlist {nlist}, pq_m {m} x 8 bits, top-{k}\n\n"
        + markdown_table(["measure", "vecdb", "raw faiss", "vecdb / faiss"], build)
        + f"\n\nExact scan (faiss IndexFlat, 1 query at a time): {exact_qps:,.0f} QPS. Re-ranking scores the best "
        f"{cand_k} candidates exactly from the float32 vectors.\n\n"
        + markdown_table(
            [
                "nprobe",
                "vecdb recall, codes",
                "vecdb recall, re-ranked",
                "vecdb QPS re-ranked",
                "vs exact QPS",
                "raw faiss recall",
                "raw faiss QPS",
                "vecdb codes-only QPS / faiss",
            ],
            rows,
        )
        + "\n\n"
        + batch_md
        + "\n"
    )
    best = [r for r in rows if r[2] >= RECALL_TARGET]
    code_ratio = 4 * d / m
    faster = bool(best) and float(best[0][4][:-1]) > 1
    verdict = [
        ds.name,
        f"{m} B of codes: {code_ratio:.1f}x ({4 * d / ours_bytes:.1f}x with ids and shared tables)",
        f"nprobe {best[0][0]}: recall {best[0][2]:.3f}, {best[0][4]} exact QPS" if best else "never",
        ("MET" if faster and code_ratio >= COMPRESSION_TARGET else "NOT MET") if d >= 128 else "-",
    ]
    return md, curves, [verdict]


def _batch(index: Any, queries: np.ndarray, fetch: int, nlist: int) -> str:
    """Batch search (all queries in one call) at the default nprobe: faiss on the CPU, CuPy where a GPU is."""
    from vecdb.index.device import gpu_available
    from vecdb.index.ivfpq import default_nprobe

    nprobe = default_nprobe(nlist)
    timings = {}
    for device in ["cpu"] + (["cuda"] if gpu_available() else []):
        index.search(queries, fetch, nprobe, device=device)  # warm-up (tables, kernels)
        t0 = time.perf_counter()
        index.search(queries, fetch, nprobe, device=device)
        timings[device] = time.perf_counter() - t0
    line = (
        f"Batch search, {len(queries)} queries in one call, nprobe {nprobe}, {fetch} candidates each: CPU "
        f"(faiss) {len(queries) / timings['cpu']:,.0f} QPS"
    )
    if "cuda" in timings:
        line += (
            f"; GPU (CuPy) {len(queries) / timings['cuda']:,.0f} QPS = {timings['cpu'] / timings['cuda']:.1f}x the CPU"
        )
    else:
        line += "; no GPU in this process"
    return line + "."


def _warm_up(base: np.ndarray) -> None:
    """Compile the K-Means kernels and load faiss's code: one-time costs, not per-vector memory."""
    from vecdb.index.ivfpq import IvfPqIndex, IvfPqShape, default_pq_m
    from vecdb.models.collections import Distance

    d = base.shape[1]
    for nlist in (8, 16):  # both assignment routes (few centres; BLAS products)
        IvfPqIndex.train(base[:4096], Distance.EUCLID, IvfPqShape(nlist, default_pq_m(d)), device="cpu").grown(
            np.arange(4096), base[:4096]
        )
    try:  # freed arrays go back to the OS at once: glibc's adaptive mmap threshold would keep them in heaps
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _timed_queries(
    client: Any, queries: np.ndarray, k: int, params: Optional[dict[str, Any]]
) -> tuple[float, list[list[int]]]:
    found = []
    t0 = time.perf_counter()
    for q in queries:
        found.append(
            [p.id for p in client.query_points("c", query=q, limit=k, with_payload=False, search_params=params).points]
        )
    return len(queries) / (time.perf_counter() - t0), found


def _collection_run(ds: Dataset, args: argparse.Namespace, with_flat: bool, k: int = 10) -> list[list[Any]]:
    """``ds`` through embedded collections: an ivf_pq one (queried by default and with ``params.exact``),
    and when ``with_flat`` a flat one keeping float32 rows in memory, for memory per vector."""
    import vecdb
    from benchmarks.common import interleaved, scratch_dir
    from benchmarks.hnsw import rss_mib

    n, d = ds.base.shape
    ip = ds.distance != "Euclid"
    truth, flat = _exact_truth(ds, ip, k)
    del flat
    _warm_up(ds.base)
    rows = []
    configs = [("flat: float32 rows in memory", {"type": "flat"})] if with_flat else []
    configs.append(("ivf_pq: codes in memory, float32 rows on disk", {"type": "ivf_pq"}))
    for label, index in configs:
        print(f"[ivfpq] collection run: {ds.name}, {label}", flush=True)
        with scratch_dir(args.tmp, "vecdb-bench-ivfpq-") as path:
            before = rss_mib(settle=True)
            client = vecdb.Client(path=path)
            client.create_collection(
                "c", {"size": d, "distance": ds.distance}, index=index, optimizers_config={"indexing_threshold": 1}
            )  # KB: index even sift5k
            t0 = time.perf_counter()
            for lo in range(0, n, 5000):
                client.upsert("c", {"ids": list(range(lo, min(lo + 5000, n))), "vectors": ds.base[lo : lo + 5000]})
            ingest_s = time.perf_counter() - t0
            while client.get_collection("c").status != "green":
                time.sleep(0.1)
            green_s = time.perf_counter() - t0
            after = rss_mib(settle=True)
            plan = client.query_points("c", query=ds.queries[0], limit=k, with_payload=False, explain=True).explain
            _, found = _timed_queries(client, ds.queries, k, None)  # (also warms the vector file's pages)
            _, exact_found = _timed_queries(client, ds.queries, k, {"exact": True})
            stats = interleaved(
                {
                    "default": lambda i, c=client: c.query_points(
                        "c", query=ds.queries[i % len(ds.queries)], limit=k, with_payload=False
                    ),
                    "exact": lambda i, c=client: c.query_points(
                        "c",
                        query=ds.queries[i % len(ds.queries)],
                        limit=k,
                        with_payload=False,
                        search_params={"exact": True},
                    ),
                },
                max(len(ds.queries), 300),
            )
            qps, exact_qps = 1e3 / stats["default"].mean_ms, 1e3 / stats["exact"].mean_ms
            client.close()
        anon = (after.get("RssAnon", 0) - before.get("RssAnon", 0)) * 2**20 / n
        file = (after.get("RssFile", 0) - before.get("RssFile", 0)) * 2**20 / n
        rows.append(
            [
                ds.name,
                label,
                f"{n / ingest_s:,.0f}",
                f"{green_s:.1f}",
                f"{anon:.0f}",
                f"{file:.0f}",
                plan["plan"] + (f", nprobe {plan['nprobe']}" if plan.get("nprobe") else ""),
                recall_at_k(np.array(found), truth, k),
                qps,
                recall_at_k(np.array(exact_found), truth, k),
                exact_qps,
                f"{qps / exact_qps:.2f}x",
            ]
        )
    return rows


def _collections(args: argparse.Namespace) -> tuple[str, list[list[Any]]]:
    rows = []
    sift = Path(args.datasets) / "sift5k_base.npy"
    if sift.exists():
        ds = load_dataset("sift5k", args.datasets)
        rows += _collection_run(
            Dataset(ds.name, ds.base, ds.queries[: args.queries], ds.distance, None), args, with_flat=False
        )
    ds = synthetic(args.collection_n, args.dim, args.queries, seed=args.seed, distance="Euclid")
    rows += _collection_run(ds, args, with_flat=True)
    md = (
        "### Collections (embedded client, planner, default search params, vectors on disk for ivf_pq)\n\n"
        + markdown_table(
            [
                "data set",
                "collection",
                "ingest points/s",
                "green after (s)",
                "RssAnon bytes/vector",
                "RssFile bytes/vector",
                "plan",
                "recall@10",
                "QPS (1 query at a time)",
                "recall@10, params.exact",
                "QPS, params.exact",
                "QPS vs exact",
            ],
            rows,
        )
        + "\n\nRssAnon is memory that must fit; RssFile counts pages of the memory-mapped vector file that "
        "the kernel may evict (and LMDB's pages). Process RSS deltas after gc + malloc_trim(0), with the "
        "K-Means kernels compiled beforehand and glibc's mmap threshold fixed at 128 KiB (its adaptive "
        "threshold otherwise keeps the optimizer thread's freed training arrays in a heap). `params.exact` "
        "scans the same collection exactly: the QPS a user gets without the index. QPS = 1 / mean latency, "
        "the two kinds of query interleaved in random order.\n"
    )
    return md, [r for r in rows if r[1].startswith("ivf_pq")]


def run(args: argparse.Namespace) -> Section:
    sections, curves, verdicts = [], {}, []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name == "synthetic":
            ds = synthetic(args.n, args.dim, args.queries, seed=args.seed, distance="Euclid")
        else:
            if not (Path(args.datasets) / f"{name}_base.npy").exists():
                print(f"[ivfpq] {name} not found in {args.datasets}: skipped", flush=True)
                continue
            ds = load_dataset(name, args.datasets)
            ds = Dataset(ds.name, ds.base, ds.queries[: args.queries], ds.distance, None)
        md, c, v = _one(ds, args)
        sections.append(md)
        curves[ds.name] = c
        verdicts += v
    head = markdown_table(
        [
            "data set",
            "compression (float32 / code bytes)",
            f"first nprobe with re-ranked recall@10 >= {RECALL_TARGET}",
            "target (128-d: >= 16x, recall >= 0.90 above exact QPS)",
        ],
        verdicts,
    )
    if args.collection_n:
        md, ivf_rows = _collections(args)
        sections.append(md)
        head += "\n\nThrough collections (default params against `params.exact` on the same collection):\n\n"
        head += markdown_table(
            ["data set", "recall@10", "QPS vs exact scan", "target (recall >= 0.90 above exact QPS)"],
            [[r[0], r[7], r[11], "MET" if r[7] >= RECALL_TARGET and r[8] > r[10] else "NOT MET"] for r in ivf_rows],
        )
    section = Section("IVF-PQ: vecdb vs raw faiss IndexIVFPQ", head + "\n\n" + "\n".join(sections))
    section.curves = curves  # type: ignore[attr-defined]
    return section


def plot(section: Section, path: Path) -> bool:
    curves = getattr(section, "curves", None)
    if not curves:
        return False
    return plot_recall_qps(
        curves,
        path,
        section.title,
        RECALL_TARGET,
        annotate=("vecdb, re-ranked", "nprobe="),
        ylabel="queries per second, 1 thread (log)",
    )
