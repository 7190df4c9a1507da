"""Scalar (int8) and binary quantization beside float32: recall@10, queries per second and index memory
per vector.

vecdb's ``hnsw`` collection, its ``quantization_config.scalar`` collection (``hnsw_sq``: the graph over
int8 codes) and its ``quantization_config.binary`` collection (``hnsw_bq``: the graph over one-bit codes),
candidates of both re-ranked from the float32 rows, on the same data; beside faiss's own
``IndexHNSWFlat``, ``IndexHNSWSQ`` (QT_8bit) and ``IndexBinaryHNSW`` (sign bits), not re-ranked, with
the same ``m``/``ef_construct``; in the same process, one thread each, queries interleaved. Memory is
the index's own (faiss's codes or float32 copy, graph links, vecdb's label map); vecdb also keeps its
float32 rows (``4 x dim`` bytes a point) in every case, which is what re-ranking reads.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir
from benchmarks.exact import float64_truth
from benchmarks.hnsw import load_dataset

COLLECTIONS: tuple[tuple[str, Any], ...] = (
    ("f32", None),
    ("int8", {"scalar": {"type": "int8"}}),
    ("bin", {"binary": {}}),
)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="glove50", help="glove50, sift5k or synthetic (default glove50)")
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000; synthetic: generated)")
    p.add_argument("--dim", type=int, default=128, help="synthetic dimension (default 128)")
    p.add_argument("--clusters", type=int, default=256, help="synthetic clusters (default 256)")
    p.add_argument(
        "--spread",
        type=float,
        default=1 / 3,
        help="synthetic noise over cluster-centre scale (default 1/3: tight clusters that share their centre's "
        "signs, which one-bit codes cannot tell apart; about 1 resembles text embeddings)",
    )
    p.add_argument("--queries", type=int, default=300, help="queries (default 300)")
    p.add_argument("--ef", type=int, default=64, help="hnsw_ef for every method (default 64)")
    p.add_argument(
        "--wide-ef", type=int, default=256, help="one more row: the binary graph at this hnsw_ef (default 256)"
    )


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if args.dataset == "synthetic":
        rng = np.random.default_rng(args.seed)
        centers = rng.normal(size=(args.clusters, args.dim))
        picks = rng.integers(0, args.clusters, args.n + args.queries)
        data = (centers[picks] + args.spread * rng.normal(size=(args.n + args.queries, args.dim))).astype(np.float32)
        return data[: args.n], data[args.n :], "Cosine"
    ds = load_dataset(args.dataset, args.datasets, args.n)
    return ds.base, ds.queries[: args.queries], ds.distance


def _recall(found: list[list[Any]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


def run(args: argparse.Namespace) -> Section:
    import faiss

    import vecdb
    from vecdb.index.distance import normalise

    faiss.omp_set_num_threads(1)
    base, queries, distance = _data(args)
    n, dim = base.shape
    truth = float64_truth(base, queries, distance, 10)
    rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "quantization") as tmp:
        client = vecdb.Client(path=tmp / "db")
        built: dict[str, float] = {}
        for name, quantization in COLLECTIONS:
            client.create_collection(
                name,
                {"size": dim, "distance": distance},
                hnsw_config={"m": 16, "ef_construct": 100},
                optimizers_config={"indexing_threshold": 1},
                quantization_config=quantization,
            )
            t0 = time.perf_counter()
            for lo in range(0, n, 5000):
                client.upsert(name, {"ids": list(range(lo, min(n, lo + 5000))), "vectors": base[lo : lo + 5000]})
            while client.get_collection(name).status != "green":
                time.sleep(0.2)
            built[name] = time.perf_counter() - t0
        metric = faiss.METRIC_INNER_PRODUCT if distance in ("Cosine", "Dot") else faiss.METRIC_L2
        x = normalise(base) if distance == "Cosine" else base
        qx = normalise(queries) if distance == "Cosine" else queries
        flat = faiss.IndexHNSWFlat(dim, 16, metric)
        sq = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 16, metric)
        for index in (flat, sq):
            index.hnsw.efConstruction = 100
            t0 = time.perf_counter()
            index.train(x)
            index.add(x)
            built["faiss-flat" if index is flat else "faiss-sq"] = time.perf_counter() - t0
        from vecdb.index.hnsw_bq import encode

        bits = 8 * -(-dim // 8)
        binary = faiss.IndexBinaryHNSW(bits, 16)
        binary.hnsw.efConstruction = 100
        t0 = time.perf_counter()
        binary.add(encode(x, bits))
        built["faiss-bq"] = time.perf_counter() - t0
        q_codes = encode(qx, bits)
        params = faiss.SearchParametersHNSW()
        params.efSearch = args.ef
        search = {"hnsw_ef": args.ef}

        def vecdb_query(name: str, params: Any = search) -> Any:
            return lambda i: [
                p.id
                for p in client.query_points(
                    name, query=queries[i], limit=10, search_params=params, with_payload=False
                ).points
            ]

        wide = f"vecdb hnsw_bq (1 bit, re-ranked), hnsw_ef {args.wide_ef}"

        def faiss_query(index: Any) -> Any:
            return lambda i: index.search(qx[i : i + 1], 10, params=params)[1][0].tolist()

        def faiss_binary_query(i: int) -> Any:
            return binary.search(q_codes[i : i + 1], 10, params=params)[1][0].tolist()

        methods = {
            "vecdb hnsw (float32)": vecdb_query("f32"),
            "vecdb hnsw_sq (int8, re-ranked)": vecdb_query("int8"),
            "vecdb hnsw_bq (1 bit, re-ranked)": vecdb_query("bin"),
            wide: vecdb_query("bin", {"hnsw_ef": args.wide_ef}),
            "faiss IndexHNSWFlat": faiss_query(flat),
            "faiss IndexHNSWSQ (int8, not re-ranked)": faiss_query(sq),
            "faiss IndexBinaryHNSW (1 bit, not re-ranked)": faiss_binary_query,
        }
        found: dict[str, list[list[Any]]] = {m: [] for m in methods}
        seconds = dict.fromkeys(methods, 0.0)
        for i in range(len(queries)):  # interleaved: every method answers query i before query i+1
            for method, fn in methods.items():
                t0 = time.perf_counter()
                found[method].append(fn(i))
                seconds[method] += time.perf_counter() - t0
        from vecdb.engine import collection as _  # noqa: F401  (the index objects, for their memory)

        coll_mem = {}
        for name, _quantization in COLLECTIONS:
            with client.service.db.use(name) as coll:
                coll_mem[name] = coll.inspect().indexes[0].index.memory_bytes() / n
        hnsw_links = flat.hnsw.neighbors.size() * 4 / n
        memory = {
            "vecdb hnsw (float32)": coll_mem["f32"],
            "vecdb hnsw_sq (int8, re-ranked)": coll_mem["int8"],
            "vecdb hnsw_bq (1 bit, re-ranked)": coll_mem["bin"],
            wide: coll_mem["bin"],
            "faiss IndexHNSWFlat": dim * 4 + hnsw_links + 12,
            "faiss IndexHNSWSQ (int8, not re-ranked)": dim + sq.hnsw.neighbors.size() * 4 / n + 12,
            "faiss IndexBinaryHNSW (1 bit, not re-ranked)": bits / 8 + binary.hnsw.neighbors.size() * 4 / n + 12,
        }
        build_of = {
            "vecdb hnsw (float32)": built["f32"],
            "vecdb hnsw_sq (int8, re-ranked)": built["int8"],
            "vecdb hnsw_bq (1 bit, re-ranked)": built["bin"],
            wide: built["bin"],
            "faiss IndexHNSWFlat": built["faiss-flat"],
            "faiss IndexHNSWSQ (int8, not re-ranked)": built["faiss-sq"],
            "faiss IndexBinaryHNSW (1 bit, not re-ranked)": built["faiss-bq"],
        }
        for method in methods:
            qps = len(queries) / seconds[method]
            rows.append([method, _recall(found[method], truth), qps, memory[method], build_of[method]])
        client.close()
    table = markdown_table(
        ["index", "recall@10", "QPS (1 query, 1 thread)", "index bytes / vector", "build s (ingest + index)"], rows
    )
    text = (
        f"{args.dataset} {n:,} x {dim} ({distance}), {len(queries)} queries, hnsw_ef {args.ef} (one binary row at "
        f"{args.wide_ef}), m 16, ef_construct "
        f"100. Index bytes exclude vecdb's float32 rows ({dim * 4} bytes a vector, kept by both vecdb collections "
        "for exact scans and re-ranking).\n\n" + table
    )
    return Section(f"Scalar and binary quantization, {args.dataset} {n:,}", text)
