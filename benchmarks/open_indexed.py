"""Open time of a large HNSW-indexed collection (target: 1M points in under 5 s), no graph rebuild.

Builds the collection once through the embedded client (ingest, then the
background optimizer until the collection is green), closes it (the optimizer
checkpoints its graph), then opens it in fresh child processes and times
``vecdb.Client(path)`` plus the first query. The reference is the least any
loader must do for the same data, in its own fresh process: faiss
``read_index`` of the saved graph file plus one raw LMDB cursor pass over the
stored vectors. The child also reports how many vectors were indexed right
after the open: all of them means the graph was loaded, not rebuilt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Section, make_clustered, markdown_table, run_child, scratch_dir

COLLECTION = "bench_open_indexed"
TARGET_S = 5.0


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=1_000_000, help="points (default 1000000)")
    p.add_argument("--dim", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--rounds", type=int, default=3, help="fresh-process opens (default 3)")
    p.add_argument(
        "--keep",
        default=None,
        help="reuse/keep the built data directory here (skips the build when it already holds the collection)",
    )


_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
mode, data_dir, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np
q = np.ones(dim, dtype=np.float32)
if mode == "vecdb":
    import vecdb
    t1 = time.perf_counter()
    client = vecdb.Client(path=data_dir)
    t_open = time.perf_counter()
    res = client.query_points(COLLECTION, query=q, limit=10, with_payload=False, explain=True)
    t2 = time.perf_counter()
    while client.get_collection(COLLECTION).status != "green":  # the graph loads in the background
        time.sleep(0.01)
    t3 = time.perf_counter()
    graph = client.query_points(COLLECTION, query=q, limit=10, with_payload=False, explain=True)
    info = client.get_collection(COLLECTION)
    extra = {"indexed": info.indexed_vectors_count, "points": info.points_count,
             "plan": res.explain["plan"] + " -> " + graph.explain["plan"], "open_s": t_open - t1,
             "graph_s": t3 - t1}
    client.close()
else:
    import faiss, lmdb, glob
    t1 = time.perf_counter()
    coll = data_dir + "/collections/" + COLLECTION
    index = faiss.read_index(glob.glob(coll + "/index/space0.*.hnsw")[0])
    env = lmdb.open(coll, readonly=True, lock=False, max_dbs=8)
    db = env.open_db(b"vectors", create=False)
    with env.begin(buffers=False) as txn:
        raw = b"".join(txn.cursor(db=db).iternext(keys=False, values=True))
    m = np.frombuffer(raw, dtype="<f4").reshape(-1, dim)
    t_open = time.perf_counter()
    index.search(q[None], 10)
    t2 = time.perf_counter()
    env.close()
    extra = {"indexed": index.ntotal, "points": len(m), "plan": "raw", "open_s": t_open - t1,
             "graph_s": t_open - t1}
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"import_s": t1 - t0, "work_s": t2 - t1, "peak_rss_mib": hwm, **extra}))
""".replace("COLLECTION", repr(COLLECTION))


def _build(data_dir: Path, n: int, dim: int, seed: int) -> list[tuple[str, str]]:
    import vecdb

    notes = []
    base = make_clustered(n, dim, seed=seed)
    client = vecdb.Client(path=data_dir)
    try:
        client.create_collection(COLLECTION, {"size": dim, "distance": "Cosine"})
        t0 = time.perf_counter()
        for lo in range(0, n, 10_000):
            hi = min(lo + 10_000, n)
            client.upsert(COLLECTION, {"ids": list(range(lo, hi)), "vectors": base[lo:hi]})
        ingest = time.perf_counter() - t0
        notes.append(("ingest (durable, batches of 10,000)", f"{ingest:.1f} s ({n / ingest:,.0f} points/s)"))
        del base
        while client.get_collection(COLLECTION).status != "green":
            time.sleep(1.0)
        built = time.perf_counter() - t0
        notes.append(("first upsert to green (optimizer built the graph)", f"{built:.1f} s"))
        t1 = time.perf_counter()
    finally:
        client.close()
    notes.append(("close (checkpoint of the graph)", f"{time.perf_counter() - t1:.1f} s"))
    return notes


def run(args: argparse.Namespace) -> Section:
    t_start = time.perf_counter()
    n, d = args.n, args.dim
    print(f"[open_indexed] {n} x {d}", flush=True)
    with scratch_dir(args.tmp, "open_indexed") as tmp:
        data_dir = Path(args.keep) if args.keep else tmp / "db"
        marker = data_dir / "collections" / COLLECTION / "index"
        notes = [] if marker.exists() else _build(data_dir, n, d, args.seed)
        size = sum(f.stat().st_size for f in (data_dir / "collections" / COLLECTION).rglob("*") if f.is_file())
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "vecdb": []}
        for _ in range(args.rounds):
            for mode in ("raw", "vecdb"):
                runs[mode].append(run_child(_CHILD, mode, str(data_dir), str(d), timeout=900))
    rows = []
    for mode, label in (
        ("raw", "raw: faiss read_index + LMDB cursor pass, one faiss search"),
        ("vecdb", "vecdb: Client(path) + first query_points"),
    ):
        best = min(runs[mode], key=lambda r: r["work_s"])
        rows.append(
            (
                label,
                f"{best['import_s'] * 1e3:,.0f}",
                f"{best['open_s']:.2f}",
                f"{best['work_s']:.2f}",
                f"{best['graph_s']:.2f}",
                f"{best['indexed']:,} / {best['points']:,}",
                best["plan"],
                f"{best['peak_rss_mib']:,.0f}",
            )
        )
    vec = min(r["work_s"] for r in runs["vecdb"])
    raw = min(r["work_s"] for r in runs["raw"])
    verdict = "MET" if vec < TARGET_S else "NOT MET"
    md = (
        f"{n:,} x {d} Cosine, HNSW m=16 ef_construct=100, {args.rounds} fresh-process opens each "
        f"(best shown; warm page cache). Collection directory: {size / 2**30:.2f} GiB.\n\n"
        f"**Target: open of a {n:,}-point indexed collection in under {TARGET_S:.0f} s: {vec:.2f} s "
        f"(open + first query) -> {verdict}; {vec / raw:.2f}x the raw floor.**\n\n"
        + markdown_table(
            [
                "fresh process",
                "import ms",
                "open s",
                "open + first query s",
                "open to graph loaded (green) s",
                "indexed / points once green",
                "plan of first query -> once green",
                "peak RSS MiB",
            ],
            rows,
        )
        + "\n\nvecdb serves as soon as `Client(path)` returns (the snapshot of the vectors is read from "
        "LMDB); the saved graph is loaded by the optimizer thread meanwhile, so a query in the first "
        "seconds is an exact scan, and nothing is rebuilt."
    )
    if notes:
        md += "\n\nBuild of the collection (once):\n\n" + markdown_table(["step", "time"], notes)
    md += f"\n\nSection wall time {time.perf_counter() - t_start:.0f} s."
    return Section(f"open of an indexed collection, {n:,} x {d}", md)


__all__ = ["add_args", "run"]
