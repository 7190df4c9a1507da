"""Reopen time: ``vecdb.Client(path)`` + first query on an N-point collection vs reading its raw bytes.

vecdb rebuilds its in-memory matrix from LMDB when a collection opens. The
references read the same data with no vecdb code: the whole ``data.mdb`` file
(the page-cache floor) and one raw LMDB cursor pass over the ``vectors`` table
into a numpy matrix (the least any LMDB-backed loader must do). All rounds are
interleaved and warm (the file sits in the page cache; dropping caches would
disturb other jobs on the machine). A second table repeats the comparison in
fresh child processes, which also gives each one's peak RSS.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    Section,
    Stats,
    fill_embedded,
    make_clustered,
    make_queries,
    markdown_table,
    peak_rss_mib,
    profile_top,
    run_child,
    scratch_dir,
)

COLLECTION = "bench_reopen"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5, after 1 warm-up)")
    p.add_argument("--distance", choices=["Cosine", "Dot", "Euclid"], default="Cosine")


def read_file_bytes(coll_dir: Path) -> int:
    return len((coll_dir / "data.mdb").read_bytes())


def raw_lmdb_vectors(coll_dir: Path, dim: int) -> np.ndarray:
    """One cursor pass over the ``vectors`` table, joined into a float32 matrix."""
    import lmdb

    env = lmdb.open(str(coll_dir), readonly=True, lock=False, max_dbs=8, readahead=False)
    try:
        db = env.open_db(b"vectors", create=False)
        with env.begin(buffers=False) as txn:
            raw = b"".join(txn.cursor(db=db).iternext(keys=False, values=True))
        return np.frombuffer(raw, dtype="<f4").reshape(-1, dim)
    finally:
        env.close()


def vecdb_open_query(data_dir: Path, q: np.ndarray) -> tuple[float, float, float]:
    """Seconds for the constructor, the first query and a second query."""
    import vecdb

    t0 = time.perf_counter()
    client = vecdb.Client(path=data_dir)
    t1 = time.perf_counter()
    res = client.query_points(COLLECTION, query=q, limit=10, with_payload=False)
    t2 = time.perf_counter()
    client.query_points(COLLECTION, query=q, limit=10, with_payload=False)
    t3 = time.perf_counter()
    assert len(res.points) == 10
    client.close()
    return t1 - t0, t2 - t1, t3 - t2


# Run with ``python -c`` in a fresh interpreter: imports count, nothing of this package is loaded.
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
mode, data_dir, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np
if mode == "vecdb":
    import vecdb
    t1 = time.perf_counter()
    client = vecdb.Client(path=data_dir)
    res = client.query_points(COLLECTION, query=np.ones(dim, dtype=np.float32), limit=10, with_payload=False)
    assert len(res.points) == 10
    t2 = time.perf_counter()
    client.close()
else:
    import lmdb
    t1 = time.perf_counter()
    env = lmdb.open(data_dir + "/collections/" + COLLECTION, readonly=True, lock=False, max_dbs=8)
    db = env.open_db(b"vectors", create=False)
    with env.begin(buffers=False) as txn:
        raw = b"".join(txn.cursor(db=db).iternext(keys=False, values=True))
    m = np.frombuffer(raw, dtype="<f4").reshape(-1, dim)
    top = np.argpartition(-(m @ np.ones(dim, dtype=np.float32)), 9)[:10]
    t2 = time.perf_counter()
    env.close()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"import_s": t1 - t0, "work_s": t2 - t1, "peak_rss_mib": hwm}))
""".replace("COLLECTION", repr(COLLECTION))


def run(args: argparse.Namespace) -> Section:
    import vecdb

    t_start = time.perf_counter()
    n, d = args.n, args.dim
    base = make_clustered(n, d, seed=args.seed)
    q = make_queries(1, d, seed=args.seed)[0]
    print(f"[reopen] building {n} x {d}", flush=True)
    notes: list[str] = []
    with scratch_dir(args.tmp, "reopen") as tmp:
        data_dir = tmp / "data"
        client = vecdb.Client(path=data_dir)
        fill_embedded(client, COLLECTION, base, args.distance)
        client.close()
        coll_dir = data_dir / "collections" / COLLECTION
        size_mb = (coll_dir / "data.mdb").stat().st_size / 2**20
        check = raw_lmdb_vectors(coll_dir, d)
        assert check.shape == (n, d)

        stats: dict[str, Stats] = {k: Stats() for k in ("file", "lmdb", "ctor", "first", "second", "total")}

        def one_round(record: bool) -> None:
            order: list[tuple[str, Callable[[], Any]]] = [
                ("file", lambda: read_file_bytes(coll_dir)),
                ("lmdb", lambda: raw_lmdb_vectors(coll_dir, d)),
                ("vecdb", lambda: vecdb_open_query(data_dir, q)),
            ]
            for key, fn in order:
                t0 = time.perf_counter()
                out = fn()
                elapsed = time.perf_counter() - t0
                if not record:
                    continue
                if key == "vecdb":
                    ctor, first, second = out
                    stats["ctor"].add(ctor)
                    stats["first"].add(first)
                    stats["second"].add(second)
                    stats["total"].add(ctor + first)
                else:
                    stats[key].add(elapsed)

        one_round(record=False)
        for r in range(args.rounds):
            print(f"[reopen] round {r + 1}/{args.rounds}", flush=True)
            one_round(record=True)

        ref = stats["lmdb"].p50_ms
        rows = [
            [
                "reference: read data.mdb whole (page cache)",
                stats["file"].p50_ms,
                max(stats["file"].samples) * 1e3,
                f"{stats['file'].p50_ms / ref:.2f}x",
            ],
            ["reference: raw LMDB cursor over `vectors` -> ndarray", ref, max(stats["lmdb"].samples) * 1e3, "1.00x"],
            [
                "vecdb.Client(path) constructor",
                stats["ctor"].p50_ms,
                max(stats["ctor"].samples) * 1e3,
                f"{stats['ctor'].p50_ms / ref:.2f}x",
            ],
            [
                "vecdb first query after open",
                stats["first"].p50_ms,
                max(stats["first"].samples) * 1e3,
                f"{stats['first'].p50_ms / ref:.2f}x",
            ],
            [
                "vecdb constructor + first query",
                stats["total"].p50_ms,
                max(stats["total"].samples) * 1e3,
                f"{stats['total'].p50_ms / ref:.2f}x",
            ],
            [
                "(vecdb second query, steady state)",
                stats["second"].p50_ms,
                max(stats["second"].samples) * 1e3,
                f"{stats['second'].p50_ms / ref:.2f}x",
            ],
        ]
        table = markdown_table(["step", "p50 ms", "max ms", "ratio vs raw LMDB read"], rows)

        print("[reopen] fresh processes", flush=True)
        child_rows = []
        kids = {"raw": [], "vecdb": []}
        for _ in range(2):
            for mode in ("raw", "vecdb"):
                kids[mode].append(run_child(_CHILD, mode, str(data_dir), str(d), timeout=600))
        raw_k = min(kids["raw"], key=lambda x: x["work_s"])
        vec_k = min(kids["vecdb"], key=lambda x: x["work_s"])
        child_rows.append(
            [
                "raw: import numpy, lmdb; cursor read of `vectors` + one numpy query",
                raw_k["import_s"] * 1e3,
                raw_k["work_s"] * 1e3,
                raw_k["wall_s"] * 1e3,
                raw_k["peak_rss_mib"],
                "1.00x",
            ]
        )
        child_rows.append(
            [
                "vecdb: import numpy, vecdb; Client(path) + first query",
                vec_k["import_s"] * 1e3,
                vec_k["work_s"] * 1e3,
                vec_k["wall_s"] * 1e3,
                vec_k["peak_rss_mib"],
                f"{vec_k['work_s'] / raw_k['work_s']:.2f}x",
            ]
        )
        ctable = markdown_table(
            ["fresh process", "import ms", "open + query ms", "process wall ms", "peak RSS MiB", "open+query ratio"],
            child_rows,
        )
        profile_md = ""
        if args.profile:
            print("[reopen] profiling the constructor", flush=True)
            holder: list[Any] = []
            prof = profile_top(lambda: holder.append(vecdb.Client(path=data_dir)), limit=15)
            holder[0].close()
            profile_md = f"\ncProfile of `vecdb.Client(path)` on this collection (sorted by own time):\n\n{prof}\n"

    matrix_mb = n * d * 4 / 2**20
    notes.append(f"data.mdb is {size_mb:,.0f} MiB on disk for {matrix_mb:,.0f} MiB of float32 vectors.")
    notes.append(
        f"This process peak RSS: {peak_rss_mib():,.0f} MiB. Section wall time {time.perf_counter() - t_start:.1f} s."
    )
    md = (
        f"{n:,} points x {d} ({args.distance}) with small payloads; median of {args.rounds} warm rounds "
        f"(after one warm-up), interleaved.\n\n{table}\n\nIn fresh child processes (best of 2 each):\n\n"
        f"{ctable}\n\n" + "\n".join(f"* {x}" for x in notes) + "\n" + profile_md
    )
    return Section(f"reopen, {n:,} x {d}", md)
