"""HNSW search: recall@10 vs QPS per hnsw_ef, vecdb (embedded, batch, REST) against raw faiss HNSW.

For every data set (default sift5k and glove50 from ../shared/datasets), one
collection is filled through the embedded client while the background
optimizer builds its graph (timed from the first upsert until the collection
reports green); then raw faiss ``IndexHNSWFlat`` with the same ``m`` and
``ef_construct`` is built in the same process from the same vectors (Cosine:
normalised, inner product; Euclid: L2). Per ``hnsw_ef`` the single-query
methods run interleaved (query i through every method, in a random order,
before query i+1), so load from other jobs hits them alike; batch methods are
timed per round. Recall is against the data set's shipped ground truth, or a
float64 brute force when ``--n`` truncates the base (or for synthetic data).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import orjson

from benchmarks.common import (
    Dataset,
    Section,
    Server,
    Stats,
    check,
    http_client,
    interleaved,
    load_dataset,
    markdown_table,
    normalise,
    payloads_for,
    peak_rss_mib,
    plot_recall_qps,
    profile_top,
    recall_at_k,
    scratch_dir,
    synthetic,
)
from benchmarks.exact import float64_truth

COLLECTION = "bench_hnsw"
RECALL_TARGET = 0.95
QPS_RATIO_TARGET = 0.8
SAME_RECALL = 0.01
"""Recall difference under which vecdb and raw faiss at the same ef count as equal recall."""
PLOT_NAME = "hnsw_recall_qps.png"
_OPTS = orjson.OPT_SERIALIZE_NUMPY
_JSON = {"content-type": "application/json"}

EMB, BATCH, REST, FAISS, FAISS_BATCH = (
    "vecdb embedded query_points",
    "vecdb embedded query_batch_points",
    "vecdb REST /points/query",
    "raw faiss search (1 query)",
    "raw faiss batch search",
)
EMB_DEFAULT = "vecdb embedded, default ef (no params)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default="sift5k,glove50",
        help="comma-separated: sift5k, glove50, synthetic (default sift5k,glove50)",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="points: truncates a real data set (ground truth then recomputed by brute force); "
        "synthetic default 100000",
    )
    p.add_argument("--dim", type=int, default=128, help="dimension of synthetic data (default 128)")
    p.add_argument(
        "--distance",
        choices=["Cosine", "Dot", "Euclid"],
        default="Cosine",
        help="metric of synthetic data (default Cosine; real data sets use their own)",
    )
    p.add_argument("--queries", type=int, default=1000, help="queries (default 1000, at most the data set's)")
    p.add_argument(
        "--exact-queries",
        type=int,
        default=200,
        help="queries for the exact (params.exact) reference row (default 200)",
    )
    p.add_argument("--k", type=int, default=10, help="top-k (default 10)")
    p.add_argument("--efs", default="16,32,64,128,256", help="hnsw_ef values (default 16,32,64,128,256)")
    p.add_argument("--m", type=int, default=16, help="hnsw_config.m (default 16)")
    p.add_argument(
        "--ef-construct",
        type=int,
        default=100,
        help="hnsw_config.ef_construct (default 100); vecdb's default search ef is read from explain",
    )
    p.add_argument(
        "--indexing-threshold",
        type=int,
        default=1,
        help="optimizers_config.indexing_threshold in KB (default 1: index even sift5k)",
    )
    p.add_argument("--batch-rounds", type=int, default=3, help="repetitions of each batch method (default 3)")
    p.add_argument("--no-rest", action="store_true", help="skip the REST server rows")


# --- helpers shared with benchmarks.filtered -------------------------------------------------


def rss_mib(settle: bool = False) -> dict[str, float]:
    """Current VmRSS / RssAnon / RssFile of this process in MiB (Linux). ``settle``: first collect
    garbage and hand freed heap memory back to the OS (``malloc_trim``), so that only live memory counts."""
    if settle:
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def status_of(info: Any) -> str:
    return str(getattr(info.status, "value", info.status))


def wait_green(client: Any, name: str, timeout: float = 3600.0, poll: float = 0.02) -> Any:
    """Poll ``get_collection`` until the optimizer has indexed everything (green)."""
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        status = status_of(info)
        if status == "green":
            return info
        if status == "red":
            raise RuntimeError(f"collection {name} is red: {info.optimizer_status}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"collection {name} still {status} after {timeout:.0f} s "
                f"({info.indexed_vectors_count} of {info.points_count} indexed)"
            )
        time.sleep(poll)


def index_memory_bytes(client: Any, name: str) -> Optional[int]:
    """vecdb's own accounting of its HNSW graph (internal API; None if it moved)."""
    try:
        coll = client._service.db.get(name)
        return int(coll.ann[0].index.memory_bytes())
    except Exception:
        return None


def _snapshot_capacity(client: Any, name: str) -> Optional[int]:
    try:
        return int(client._service.db.get(name).view.spaces[0].matrix.shape[0])
    except Exception:
        return None


def faiss_hnsw_bytes(index: Any) -> int:
    """The same accounting for a raw faiss IndexHNSWFlat: vectors, links, levels, offsets."""
    hnsw = index.hnsw
    return int(
        index.ntotal * index.d * 4 + hnsw.neighbors.size() * 4 + hnsw.levels.size() * 4 + hnsw.offsets.size() * 8
    )


def upsert_batches(
    client: Any,
    name: str,
    base: np.ndarray,
    lo_id: int = 0,
    batch: int = 1000,
    payloads: Optional[Callable[[int, int], list[dict[str, Any]]]] = None,
) -> float:
    """Upsert ``base`` as ids ``lo_id..`` in batch dicts of ``batch``; returns seconds."""
    t0 = time.perf_counter()
    for lo in range(0, len(base), batch):
        hi = min(lo + batch, len(base))
        body: dict[str, Any] = {"ids": list(range(lo_id + lo, lo_id + hi)), "vectors": base[lo:hi]}
        if payloads is not None:
            body["payloads"] = payloads(lo_id + lo, lo_id + hi)
        client.upsert(name, body)
    return time.perf_counter() - t0


# --- raw faiss --------------------------------------------------------------------------------


class RawHnsw:
    """faiss IndexHNSWFlat with vecdb's m / ef_construct over the vectors vecdb indexes."""

    def __init__(self, base: np.ndarray, distance: str, m: int, ef_construct: int) -> None:
        import faiss

        self.distance = distance
        self.xb = normalise(base) if distance == "Cosine" else np.ascontiguousarray(base, dtype=np.float32)
        metric = faiss.METRIC_L2 if distance == "Euclid" else faiss.METRIC_INNER_PRODUCT
        before = rss_mib(settle=True)
        self.index = faiss.IndexHNSWFlat(self.xb.shape[1], m, metric)
        self.index.hnsw.efConstruction = ef_construct
        t0 = time.perf_counter()
        self.index.add(self.xb)
        self.add_s = time.perf_counter() - t0
        after = rss_mib(settle=True)
        self.rss_delta = {key: after[key] - before.get(key, 0.0) for key in after}
        self.flat = faiss.IndexFlatL2(self.xb.shape[1]) if distance == "Euclid" else faiss.IndexFlatIP(self.xb.shape[1])
        self.flat.add(self.xb)

    def prep(self, queries: np.ndarray) -> np.ndarray:
        return normalise(queries) if self.distance == "Cosine" else np.ascontiguousarray(queries)

    def set_ef(self, ef: int) -> None:
        self.index.hnsw.efSearch = ef


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class CurveSection(Section):
    """A Section that also carries recall / QPS curves: {dataset: {method: [(ef, recall, qps)]}}."""

    curves: dict[str, dict[str, list[tuple[int, float, float]]]] = field(default_factory=dict)


def _datasets(args: argparse.Namespace) -> list[Dataset]:
    out = []
    for name in [x.strip() for x in args.dataset.split(",") if x.strip()]:
        if name == "synthetic":
            ds = synthetic(args.n or 100_000, args.dim, args.queries, seed=args.seed, distance=args.distance)
        elif name in ("sift5k", "glove50"):
            if not (Path(args.datasets) / f"{name}_base.npy").exists():
                print(f"[hnsw] {args.datasets}/{name}_base.npy not found: skipping {name}", flush=True)
                continue
            ds = load_dataset(name, args.datasets, n=args.n)
            ds.queries = ds.queries[: args.queries]
            if ds.gt_ids is not None:
                ds.gt_ids = ds.gt_ids[: args.queries]
        else:
            raise SystemExit(f"--dataset: unknown data set {name!r} (sift5k, glove50, synthetic)")
        out.append(ds)
    return out


def run(args: argparse.Namespace) -> CurveSection:
    t_start = time.perf_counter()
    efs = [int(x) for x in args.efs.split(",") if x.strip()]
    if args.threads > 0:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    parts: list[str] = []
    targets: list[list[Any]] = []
    curves: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    for ds in _datasets(args):
        md, tgt, curve = _run_dataset(args, ds, efs)
        parts.append(md)
        targets.extend(tgt)
        curves[ds.name] = curve
    names = ", ".join(curves) or "no data set"
    head = (
        f"HNSW m={args.m}, ef_construct={args.ef_construct}, top-{args.k}; the default row sends no "
        f"hnsw_ef (the ef vecdb then uses is read from explain; raw faiss runs at the same ef); "
        f"BLAS/OpenMP threads per process: {args.threads or 'library default'} (raw faiss included). "
        f"QPS of single-query rows = 1 / mean latency; of batch rows = queries / median batch time.\n\n"
        + markdown_table(["target", "data set", "measured", "verdict"], targets)
        + "\n"
    )
    md = head + "\n" + "\n".join(parts)
    md += (
        f"\n* This process peak RSS: {peak_rss_mib():,.0f} MiB. Section wall time "
        f"{time.perf_counter() - t_start:.1f} s.\n"
    )
    return CurveSection(f"HNSW recall vs QPS: {names}", md, curves=curves)


def _run_dataset(args: argparse.Namespace, ds: Dataset, efs: list[int]) -> tuple[str, list[list[Any]], dict]:
    import vecdb

    t_ds = time.perf_counter()
    base, queries, distance, k = ds.base, ds.queries, ds.distance, args.k
    n, d, nq = len(base), base.shape[1], len(queries)
    print(f"[hnsw] {ds.name}: {n} x {d}, {nq} queries, {distance}, top-{k}", flush=True)
    if ds.gt_ids is not None:
        truth, truth_note = np.asarray(ds.gt_ids[:, :k]), "the data set's shipped ground truth"
    else:
        truth, truth_note = float64_truth(base, queries, distance, k), "a float64 brute force (computed here)"
    notes: list[str] = []
    build_rows: list[list[Any]] = []

    with scratch_dir(args.tmp, "hnsw") as tmp:
        emb_path, rest_path = tmp / "embedded", tmp / "rest"
        # --- raw faiss first: nothing is freed afterwards that vecdb's allocations could reuse ----
        print("[hnsw] raw faiss: IndexHNSWFlat add", flush=True)
        raw = RawHnsw(base, distance, args.m, args.ef_construct)
        fq = raw.prep(queries)

        # --- vecdb: ingest while the optimizer builds, then wait for green ---------------------
        rss0 = rss_mib(settle=True)
        client = vecdb.Client(path=emb_path)
        client.create_collection(
            COLLECTION,
            vectors_config={"size": d, "distance": distance},
            hnsw_config={"m": args.m, "ef_construct": args.ef_construct},
            optimizers_config={"indexing_threshold": args.indexing_threshold},
        )
        print("[hnsw] vecdb: ingest + optimizer build", flush=True)
        t0 = time.perf_counter()
        ingest_s = upsert_batches(client, COLLECTION, base, payloads=payloads_for)
        indexed_at_ingest_end = client.get_collection(COLLECTION).indexed_vectors_count
        info = wait_green(client, COLLECTION)
        green_s = time.perf_counter() - t0
        rss1 = rss_mib(settle=True)
        matrix_rows = _snapshot_capacity(client, COLLECTION)
        vecdb_index_bytes = index_memory_bytes(client, COLLECTION)
        if info.indexed_vectors_count != n:
            notes.append(f"**indexed_vectors_count is {info.indexed_vectors_count} at green, not {n}.**")

        # reference ingest with indexing disabled (same client, dropped afterwards)
        client.create_collection(
            COLLECTION + "_noidx",
            vectors_config={"size": d, "distance": distance},
            optimizers_config={"indexing_threshold": 0},
        )
        noidx_s = upsert_batches(client, COLLECTION + "_noidx", base, payloads=payloads_for)
        client.delete_collection(COLLECTION + "_noidx")

        build_rows += [
            [
                "ingest, optimizer building concurrently (points/s)",
                n / ingest_s,
                f"{n / noidx_s:,.0f} (vecdb, indexing_threshold=0)",
                f"{noidx_s / ingest_s:.2f}x",
            ],
            ["points indexed when the last upsert returned", indexed_at_ingest_end, "-", "-"],
            [
                "build: first upsert -> green (s)",
                green_s,
                f"{raw.add_s:.2f} (raw faiss add, all at once)",
                f"{green_s / raw.add_s:.2f}x",
            ],
            ["build: last upsert -> green (s)", green_s - ingest_s, "-", "-"],
            [
                "indexing rate (points/s, first upsert -> green)",
                n / green_s,
                f"{n / raw.add_s:,.0f}",
                f"{raw.add_s / green_s:.2f}x",
            ],
        ]
        for key in ("VmRSS", "RssAnon", "RssFile"):
            if key in rss1 and key in raw.rss_delta:
                v = (rss1[key] - rss0.get(key, 0.0)) * 2**20 / n
                f = raw.rss_delta[key] * 2**20 / n
                build_rows.append(
                    [f"process {key} delta per vector (bytes)", v, f"{f:,.0f}", f"{v / f:.2f}x" if f >= 1 else "-"]
                )
        faiss_bytes = faiss_hnsw_bytes(raw.index)
        build_rows.append(
            [
                "index's own accounting per vector (bytes)",
                None if vecdb_index_bytes is None else vecdb_index_bytes / n,
                f"{faiss_bytes / n:,.0f}",
                "-" if vecdb_index_bytes is None else f"{vecdb_index_bytes / faiss_bytes:.2f}x",
            ]
        )
        notes.append(
            f"Memory: vector data alone is {d * 4} bytes per vector (float32). RSS deltas are taken "
            f"after gc + malloc_trim(0). vecdb's covers the client, the in-memory snapshot (matrix, "
            f"norms, masks), the HNSW graph (which holds a second copy of every vector), payloads and "
            f"touched LMDB pages (RssFile); raw faiss's covers the index only (its input matrix was "
            f"allocated before)."
            + (
                f" vecdb's snapshot matrix has room for {matrix_rows:,} rows (zeroed pages past the "
                f"{n:,} used ones are not resident)."
                if matrix_rows
                else ""
            )
        )

        # --- REST server on a byte copy; reopen embedded (loads the checkpointed graph) -------
        t0 = time.perf_counter()
        client.close()
        close_s = time.perf_counter() - t0
        shutil.copytree(emb_path, rest_path, ignore=shutil.ignore_patterns(".lock"))
        t0 = time.perf_counter()
        client = vecdb.Client(path=emb_path)
        info = client.get_collection(COLLECTION)
        reopen_s = time.perf_counter() - t0
        notes.append(
            f"Close (checkpoints the graph) {close_s:.2f} s; reopen {reopen_s:.2f} s, then "
            f"{status_of(info)} with {info.indexed_vectors_count:,} indexed vectors."
        )
        t0 = time.perf_counter()
        info = wait_green(client, COLLECTION)  # the saved graph loads in the background: query it, not the scan
        notes.append(
            f"The saved graph was loaded {time.perf_counter() - t0:.2f} s after the reopen returned "
            f"({info.indexed_vectors_count:,} indexed); every query below ran after that."
        )
        server: Optional[Server] = None if args.no_rest else Server(rest_path, tmp)
        http = http_client(server.url) if server else None
        if http is not None:
            rinfo = check(http.get(f"/collections/{COLLECTION}"))
            notes.append(
                f"REST server startup (load + graph checkpoint) {server.startup_s:.2f} s, "  # type: ignore[union-attr]
                f"status {rinfo['status']}, {rinfo['indexed_vectors_count']:,} indexed."
            )
        try:
            rows, curve, summary = _queries(args, client, http, raw, queries, fq, truth, efs, notes)
        finally:
            if http is not None:
                http.close()
            if server is not None:
                server.stop()
                notes.append(f"Server process peak RSS: {server.peak_rss_mib or float('nan'):,.0f} MiB.")
            client.close()

    # --- targets --------------------------------------------------------------------------------
    rec, ratio, worst = summary["recall"], summary["ratio"], summary["worst"]
    targets = [
        [
            f"recall@{k} >= {RECALL_TARGET} at the default ef ({summary['default_ef']}), embedded",
            ds.name,
            f"{rec:.4f}",
            "MET" if rec >= RECALL_TARGET else "NOT MET",
        ],
        [
            f"embedded QPS >= {QPS_RATIO_TARGET}x raw faiss (1 thread) at equal recall, default ef",
            ds.name,
            f"{ratio:.2f}x ({summary['how']}; same ef {summary['ratio_ef']:.2f}x, interpolated "
            f"{summary['ratio_interp']:.2f}x)",
            "MET" if ratio >= QPS_RATIO_TARGET else "NOT MET",
        ],
        [
            f"the same, worst hnsw_ef of {','.join(map(str, efs))}",
            ds.name,
            f"{worst[1]:.2f}x at ef={worst[0]} ({worst[2]})",
            "MET" if worst[1] >= QPS_RATIO_TARGET else "NOT MET",
        ],
    ]
    if ds.gt_ids is None:
        notes.append(f"Recall vs {truth_note}" + (" (the base was truncated by --n)." if args.n else "."))
    else:
        notes.append(f"Recall vs {truth_note}.")
    notes.append(f"Data set wall time {time.perf_counter() - t_ds:.1f} s.")
    source = "synthetic clusters" if ds.name.startswith("clustered") else ds.name
    md = (
        f"### {source}: {n:,} x {d}, {distance}, {nq} queries\n\n"
        f"Build (vecdb embedded, upserts of 1,000 with small payloads; raw faiss in the same process):\n\n"
        + markdown_table(["measure", "vecdb", "reference", "vecdb / reference"], build_rows)
        + "\n\nRecall and throughput (`ratio` = QPS / raw faiss QPS of the same kind, single or batch, "
        "at the same ef; `eq. recall` = vecdb QPS / raw faiss single QPS interpolated at vecdb's recall; the "
        f"QPS target uses the same-ef ratio where both recalls agree within {SAME_RECALL}, as that pair was "
        "timed interleaved):\n\n"
        + markdown_table(
            ["search", "method", f"recall@{k}", "QPS", "p50 ms", "p99 ms", "ratio (same ef)", "ratio (eq. recall)"],
            rows,
        )
        + "\n\n"
        + "\n".join(f"* {x}" for x in notes)
        + "\n"
        + summary.get("profile", "")
    )
    return md, targets, curve


def _queries(
    args: argparse.Namespace,
    client: Any,
    http: Any,
    raw: RawHnsw,
    queries: np.ndarray,
    fq: np.ndarray,
    truth: np.ndarray,
    efs: list[int],
    notes: list[str],
) -> tuple[list, dict, dict]:
    k, nq = args.k, len(queries)
    url = f"/collections/{COLLECTION}/points/query"
    settings: list[tuple[str, Optional[int], Optional[dict[str, Any]]]] = [
        ("exact (params.exact)", None, {"exact": True})
    ]
    settings += [(f"hnsw_ef={ef}", ef, {"hnsw_ef": ef}) for ef in efs]
    default_ef = _default_ef(client, queries[0], k, args.ef_construct, notes)
    settings.append((f"default (no params; ef={default_ef})", default_ef, None))

    rows: list[list[Any]] = []
    curve: dict[str, list[tuple[int, float, float]]] = {m: [] for m in (EMB, BATCH, REST, FAISS, FAISS_BATCH)}
    results: dict[str, dict[str, tuple[float, float]]] = {}  # setting -> method -> (recall, qps)

    def measure(label: str, ef: Optional[int], params: Optional[dict[str, Any]]) -> None:
        is_exact = params is not None and params.get("exact")
        n_use = min(nq, args.exact_queries) if is_exact else nq
        found: dict[str, np.ndarray] = {}

        def rec(name: str, fn: Callable[[int], Any]) -> Callable[[int], Any]:
            found[name] = np.full((n_use, k), -1, dtype=np.int64)

            def call(i: int, _name: str = name) -> None:
                ids = fn(i)
                found[_name][i, : len(ids)] = ids[:k]

            return call

        def emb(i: int, _params: Optional[dict[str, Any]] = params) -> list[int]:
            res = client.query_points(COLLECTION, query=queries[i], limit=k, search_params=_params, with_payload=False)
            return [p.id for p in res.points]

        def rest(i: int, _params: Optional[dict[str, Any]] = params) -> list[int]:
            body: dict[str, Any] = {"query": queries[i], "limit": k, "with_payload": False}
            if _params is not None:
                body["params"] = _params
            res = check(http.post(url, content=orjson.dumps(body, option=_OPTS), headers=_JSON))
            return [p["id"] for p in res["points"]]

        if is_exact:

            def raw_one(i: int) -> np.ndarray:
                return raw.flat.search(fq[i : i + 1], k)[1][0]

            def raw_batch() -> np.ndarray:
                return raw.flat.search(fq[:n_use], k)[1]
        else:
            raw.set_ef(int(ef))  # type: ignore[arg-type]

            def raw_one(i: int) -> np.ndarray:
                return raw.index.search(fq[i : i + 1], k)[1][0]

            def raw_batch() -> np.ndarray:
                return raw.index.search(fq[:n_use], k)[1]

        methods = {EMB: rec(EMB, emb), FAISS: rec(FAISS, raw_one)}
        if http is not None:
            methods[REST] = rec(REST, rest)
        print(f"[hnsw] {label}: {len(methods)} single-query methods x {n_use}", flush=True)
        stats = interleaved(methods, n_use)

        reqs = [
            {"query": queries[i], "limit": k, "with_payload": False, **({"params": params} if params else {})}
            for i in range(n_use)
        ]

        def emb_batch() -> np.ndarray:
            res = client.query_batch_points(COLLECTION, reqs)
            out = np.full((n_use, k), -1, dtype=np.int64)
            for i, r in enumerate(res):
                ids = [p.id for p in r.points][:k]
                out[i, : len(ids)] = ids
            return out

        bstats: dict[str, Stats] = {BATCH: Stats(), FAISS_BATCH: Stats()}
        bfns = {BATCH: emb_batch, FAISS_BATCH: raw_batch}
        for name, fn in bfns.items():
            found[name] = fn()  # warm-up
        for r in range(args.batch_rounds):
            for name in list(bfns) if r % 2 == 0 else list(bfns)[::-1]:
                t0 = time.perf_counter()
                found[name] = fn_out = bfns[name]()
                bstats[name].add(time.perf_counter() - t0)
                del fn_out

        res_here: dict[str, tuple[float, float]] = {}
        for name in (EMB, BATCH, REST, FAISS, FAISS_BATCH):
            if name not in found:
                continue
            recall = recall_at_k(found[name], truth[:n_use], k)
            if name in stats:
                st = stats[name]
                qps = 1e3 / st.mean_ms
            else:
                st = bstats[name]
                qps = n_use / (st.p50_ms / 1e3)
            res_here[name] = (recall, qps)
        results[label] = res_here
        for name, (recall, qps) in res_here.items():
            ref = FAISS_BATCH if name in (BATCH, FAISS_BATCH) else FAISS
            ratio = f"{qps / res_here[ref][1]:.2f}x" if name not in (FAISS, FAISS_BATCH) else "ref"
            st = stats.get(name)
            rows.append(
                [label, name, f"{recall:.4f}", qps, st.p50_ms if st else "-", st.p99_ms if st else "-", ratio, "-"]
            )
            if not is_exact and not label.startswith("default"):
                curve[name].append((int(ef), recall, qps))  # type: ignore[arg-type]
            elif name == EMB and label.startswith("default"):
                curve[EMB_DEFAULT] = [(int(ef), recall, qps)]  # type: ignore[arg-type]

    for label, ef, params in settings:
        measure(label, ef, params)

    # equal-recall ratios: raw faiss single QPS interpolated (log QPS, linear in recall) at vecdb's recall
    fr = sorted((r, q) for _, r, q in curve[FAISS])
    xs, ys = np.array([r for r, _ in fr]), np.log([q for _, q in fr])

    def faiss_qps_at(recall: float) -> tuple[float, str]:
        if len(xs) == 0:
            return float("nan"), ""
        flag = "" if xs[0] <= recall <= xs[-1] else " (extrap.)"
        return float(np.exp(np.interp(recall, xs, ys))), flag

    worst = (0, float("inf"), "")
    summary: dict[str, Any] = {"default_ef": default_ef}
    for row in rows:
        label, name = row[0], row[1]
        if name in (EMB, REST) and not label.startswith("exact"):
            recall, qps = results[label][name]
            fq_at, flag = faiss_qps_at(recall)
            row[7] = f"{qps / fq_at:.2f}x{flag}"
            if name == EMB:
                ef = int(label.split("=")[-1].rstrip(")"))
                f_recall, f_qps = results[label][FAISS]
                # Equal recall: where the two graphs give the same recall at this ef (within SAME_RECALL), the
                # same-ef ratio is it, and it was measured interleaved; else interpolate along faiss's curve,
                # whose points were timed in other rounds (drift between rounds on a shared machine).
                if abs(recall - f_recall) <= SAME_RECALL:
                    ratio, how = qps / f_qps, "same ef, same recall"
                else:
                    ratio, how = qps / fq_at, "interpolated" + flag
                if label.startswith("default"):
                    summary.update(recall=recall, ratio=ratio, how=how, ratio_ef=qps / f_qps, ratio_interp=qps / fq_at)
                elif ratio < worst[1]:
                    worst = (ef, ratio, how)
    summary["worst"] = worst

    # one explained query: which plan the default search takes
    try:
        ex = client.query_points(COLLECTION, query=queries[0], limit=k, with_payload=False, explain=True).explain
        if ex:
            notes.append(
                f"explain of a default query: plan {ex.get('plan')}, ef {ex.get('ef')}, indexed "
                f"{ex.get('indexed_vectors')}, fresh scanned {ex.get('fresh_scanned')}, timings ms "
                f"{ex.get('timings_ms')}."
            )
    except TypeError:
        notes.append("explain=True is not accepted by this client version.")
    if args.profile:
        print("[hnsw] profiling embedded query_points at the default ef", flush=True)
        n_prof = min(nq, 500)
        prof = profile_top(
            lambda: [
                client.query_points(COLLECTION, query=queries[i], limit=k, with_payload=False) for i in range(n_prof)
            ],
            limit=18,
        )
        summary["profile"] = (
            f"\ncProfile of {n_prof} embedded `query_points(..., with_payload=False)` calls at "
            f"the default ef (sorted by own time):\n\n{prof}\n"
        )
    return rows, curve, summary


def _default_ef(client: Any, query: np.ndarray, k: int, fallback: int, notes: list[str]) -> int:
    """The ef vecdb uses when a query sends no hnsw_ef, from explain (``fallback`` if explain cannot say)."""
    try:
        ex = client.query_points(COLLECTION, query=query, limit=k, with_payload=False, explain=True).explain or {}
    except TypeError:
        ex = {}
    if ex.get("plan") == "hnsw" and ex.get("ef"):
        return int(ex["ef"])
    notes.append(
        f"**explain did not report a graph search ef for a default query ({ex}); assuming ef_construct={fallback}.**"
    )
    return fallback


# --- plot -------------------------------------------------------------------------------------


def plot(section: Section, path: Path) -> bool:
    """Recall@k (x) vs QPS (y, log) per method, one panel per data set."""
    curves = getattr(section, "curves", None)
    if not curves:
        return False
    styles = {
        EMB: ("#3a7bd5", "o-"),
        BATCH: ("#3a7bd5", "s--"),
        REST: ("#2ca02c", "^-"),
        FAISS: ("#d62728", "o-"),
        FAISS_BATCH: ("#d62728", "s--"),
        EMB_DEFAULT: ("#000000", "*"),
    }
    return plot_recall_qps(
        curves, path, section.title, RECALL_TARGET, styles, annotate=(EMB, "ef="), highlight=EMB_DEFAULT
    )
