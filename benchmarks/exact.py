"""Exact search latency: vecdb (embedded and REST) against raw numpy and faiss brute force.

All single-query methods run interleaved (query i goes through every method,
in rotating order, before query i+1), so a burst of load from another job on
the machine hits them all alike; the ratio column compares p50 latencies with
raw numpy measured in the same loop. Batch methods are interleaved per round.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import orjson

from benchmarks.common import (
    Dataset,
    Section,
    Server,
    Stats,
    check,
    fill_embedded,
    http_client,
    interleaved,
    load_dataset,
    markdown_table,
    normalise,
    peak_rss_mib,
    profile_top,
    recall_at_k,
    scratch_dir,
    synthetic,
)

COLLECTION = "bench_exact"
TARGET_RATIO = 1.3


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="points (default 100000 synthetic; a real data set is used whole unless --n truncates it)",
    )
    p.add_argument("--dim", type=int, default=128, help="dimension of synthetic data (default 128)")
    p.add_argument("--queries", type=int, default=200, help="queries (default 200)")
    p.add_argument("--k", type=int, default=10, help="top-k (default 10)")
    p.add_argument(
        "--distance",
        choices=["Cosine", "Dot", "Euclid"],
        default=None,
        help="default Cosine (or the data set's metric)",
    )
    p.add_argument("--dataset", choices=["synthetic", "sift5k", "glove50"], default="synthetic")
    p.add_argument("--batch-rounds", type=int, default=5, help="repetitions of each batch method (default 5)")
    p.add_argument("--no-rest", action="store_true", help="skip the REST server rows")


# --- references ------------------------------------------------------------------------------


class Reference:
    """Raw brute force over the same (for Cosine: normalised at write time) float32 matrix."""

    def __init__(self, base: np.ndarray, distance: str) -> None:
        import faiss

        self.distance = distance
        self.matrix = normalise(base) if distance == "Cosine" else np.ascontiguousarray(base, dtype=np.float32)
        self.sq_norms = np.einsum("ij,ij->i", self.matrix, self.matrix)
        if distance == "Euclid":
            self.index = faiss.IndexFlatL2(self.matrix.shape[1])
        else:
            self.index = faiss.IndexFlatIP(self.matrix.shape[1])
        self.index.add(self.matrix)

    def _prep(self, q: np.ndarray) -> np.ndarray:
        return normalise(q) if self.distance == "Cosine" else q

    def _keys(self, products: np.ndarray) -> np.ndarray:
        """Smaller is nearer (in place: no second n-sized allocation)."""
        if self.distance == "Euclid":
            products *= -2.0
            products += self.sq_norms
            return products
        return np.negative(products, out=products)

    def numpy_one(self, q: np.ndarray, k: int) -> np.ndarray:
        keys = self._keys(self.matrix @ self._prep(q))
        top = np.argpartition(keys, k - 1)[:k]
        return top[np.argsort(keys[top], kind="stable")]

    def numpy_batch(self, qs: np.ndarray, k: int) -> np.ndarray:
        keys = self._keys(self._prep(qs) @ self.matrix.T)
        top = np.argpartition(keys, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1)

    def faiss_one(self, q: np.ndarray, k: int) -> np.ndarray:
        _, ids = self.index.search(self._prep(q)[None, :], k)
        return ids[0]

    def faiss_batch(self, qs: np.ndarray, k: int) -> np.ndarray:
        _, ids = self.index.search(np.ascontiguousarray(self._prep(qs)), k)
        return ids


def float64_truth(base: np.ndarray, queries: np.ndarray, distance: str, k: int) -> np.ndarray:
    """Exact top-k in float64 (ties to the lower id), the yardstick for every method's recall."""
    x = base.astype(np.float64)
    q = queries.astype(np.float64)
    if distance == "Cosine":
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((len(q), k), dtype=np.int64)
    for lo in range(0, len(q), 32):
        prod = q[lo : lo + 32] @ x.T
        keys = sq[None, :] - 2 * prod if distance == "Euclid" else -prod
        take = min(len(x), k + 16)
        cand = np.argpartition(keys, take - 1, axis=1)[:, :take]
        ck = np.take_along_axis(keys, cand, axis=1)
        order = np.lexsort((cand, ck), axis=1)[:, :k]
        out[lo : lo + 32] = np.take_along_axis(cand, order, axis=1)
    return out


# --- the benchmark ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Section:
    import vecdb

    t_start = time.perf_counter()
    if args.dataset == "synthetic":
        ds: Dataset = synthetic(
            args.n or 100_000, args.dim, args.queries, seed=args.seed, distance=args.distance or "Cosine"
        )
    else:
        ds = load_dataset(args.dataset, args.datasets, n=args.n)
        ds.queries = ds.queries[: args.queries]
        if ds.gt_ids is not None:
            ds.gt_ids = ds.gt_ids[: args.queries]
        if args.distance and args.distance != ds.distance:
            ds.distance, ds.gt_ids = args.distance, None
    base, queries, distance, k = ds.base, ds.queries, ds.distance, args.k
    n, nq = len(base), len(queries)
    print(f"[exact] {ds.name}: {n} x {base.shape[1]}, {nq} queries, {distance}, top-{k}", flush=True)

    ref = Reference(base, distance)
    truth = float64_truth(base, queries, distance, k)
    notes: list[str] = []

    with scratch_dir(args.tmp, "exact") as tmp:
        emb_path, rest_path = tmp / "embedded", tmp / "rest"
        client = vecdb.Client(path=emb_path)
        fill_s = fill_embedded(client, COLLECTION, base, distance)
        notes.append(
            f"Collection filled embedded with `upsert` batch dicts of 1,000 (ndarray vectors, small "
            f"payloads): {fill_s:.2f} s = {n / fill_s:,.0f} points/s."
        )
        client.close()
        # The server gets a byte copy of the closed collection (one data directory has one owner).
        shutil.copytree(emb_path, rest_path, ignore=shutil.ignore_patterns(".lock"))
        client = vecdb.Client(path=emb_path)
        server: Optional[Server] = None if args.no_rest else Server(rest_path, tmp)
        http = http_client(server.url) if server else None
        try:
            section = _measure(args, client, http, ref, queries, truth, ds, notes)
        finally:
            if http is not None:
                http.close()
            if server is not None:
                server.stop()
                notes.append(
                    f"Server process peak RSS: {server.peak_rss_mib or float('nan'):,.0f} MiB "
                    f"(startup incl. load of {n:,} points: {server.startup_s:.2f} s)."
                )
            client.close()
    notes.append(
        f"This process peak RSS: {peak_rss_mib():,.0f} MiB. Section wall time {time.perf_counter() - t_start:.1f} s."
    )
    section.markdown += "\n" + "\n".join(f"* {x}" for x in notes) + "\n"
    section.markdown += getattr(args, "_profile_md", "")
    return section


def _measure(
    args: argparse.Namespace,
    client: Any,
    http: Any,
    ref: Reference,
    queries: np.ndarray,
    truth: np.ndarray,
    ds: Dataset,
    notes: list[str],
) -> Section:
    k, nq, distance = args.k, len(queries), ds.distance
    url_one = f"/collections/{COLLECTION}/points/query"
    url_batch = f"/collections/{COLLECTION}/points/query/batch"
    opts = orjson.OPT_SERIALIZE_NUMPY
    found: dict[str, np.ndarray] = {}

    def recorder(name: str, fn: Callable[[int], Any]) -> Callable[[int], Any]:
        found[name] = np.full((nq, k), -1, dtype=np.int64)

        def call(i: int) -> None:
            ids = fn(i)
            found[name][i, : len(ids)] = ids

        return call

    def emb(i: int, payload: bool) -> list[int]:
        res = client.query_points(COLLECTION, query=queries[i], limit=k, with_payload=payload)
        return [p.id for p in res.points]

    def rest(i: int) -> list[int]:
        body = orjson.dumps({"query": queries[i], "limit": k, "with_payload": False}, option=opts)
        res = check(http.post(url_one, content=body, headers={"content-type": "application/json"}))
        return [p["id"] for p in res["points"]]

    single: dict[str, Callable[[int], Any]] = {
        "raw numpy brute force (same process)": recorder("numpy", lambda i: ref.numpy_one(queries[i], k)),
        "raw faiss IndexFlat (same process)": recorder("faiss", lambda i: ref.faiss_one(queries[i], k)),
    }
    direct = _direct_search(client, k, distance)
    if direct is not None:
        single["vecdb exact_search() direct (internal, no API layers)"] = recorder(
            "direct", lambda i: direct(queries[i])
        )
    single["vecdb embedded query_points (with_payload=False)"] = recorder("embedded", lambda i: emb(i, False))
    single["vecdb embedded query_points (with_payload=True)"] = recorder("embedded+payload", lambda i: emb(i, True))
    if http is not None:
        single["vecdb REST POST /points/query (keep-alive)"] = recorder("rest", rest)
        single["(HTTP floor: REST GET /healthz round trip)"] = lambda i: http.get("/healthz").raise_for_status()
    print(f"[exact] single queries: {len(single)} methods x {nq}", flush=True)
    stats = interleaved(single, nq)

    # --- batches ---
    def emb_batch() -> np.ndarray:
        reqs = [{"query": q, "limit": k, "with_payload": False} for q in queries]
        res = client.query_batch_points(COLLECTION, reqs)
        return np.array([[p.id for p in r.points] for r in res])

    def rest_batch() -> np.ndarray:
        body = orjson.dumps(
            {"searches": [{"query": q, "limit": k, "with_payload": False} for q in queries]}, option=opts
        )
        res = check(http.post(url_batch, content=body, headers={"content-type": "application/json"}))
        return np.array([[p["id"] for p in r["points"]] for r in res])

    batch_methods: dict[str, Callable[[], np.ndarray]] = {
        f"raw numpy batch ({nq} queries @ X.T)": lambda: ref.numpy_batch(queries, k),
        f"raw faiss batch search ({nq} queries)": lambda: ref.faiss_batch(queries, k),
        f"vecdb embedded query_batch_points ({nq} requests)": emb_batch,
    }
    if http is not None:
        batch_methods[f"vecdb REST /points/query/batch ({nq} searches)"] = rest_batch
    print(f"[exact] batches: {len(batch_methods)} methods x {args.batch_rounds} rounds", flush=True)
    bstats = {name: Stats() for name in batch_methods}
    bfound: dict[str, np.ndarray] = {}
    for name, fn in batch_methods.items():  # warm-up
        bfound[name] = fn()
    names = list(batch_methods)
    for r in range(args.batch_rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            bfound[name] = batch_methods[name]()
            bstats[name].add(time.perf_counter() - t0)

    # --- table ---
    keys_single = (
        ["numpy", "faiss"]
        + (["direct"] if direct else [])
        + ["embedded", "embedded+payload"]
        + (["rest", None] if http is not None else [])
    )
    base_p50 = stats[next(iter(single))].p50_ms
    rows: list[list[Any]] = []
    plot: list[tuple[str, float]] = []
    recall_rows: list[list[Any]] = []
    for (label, st), key in zip(stats.items(), keys_single, strict=True):
        rows.append([label, st.p50_ms, st.p99_ms, 1e3 / st.mean_ms, f"{st.p50_ms / base_p50:.2f}x"])
        if key is None:
            continue
        plot.append((label.replace(" (same process)", "").replace("vecdb ", ""), st.p50_ms))
        recall_rows.append(
            [label, f"{recall_at_k(found[key], truth, k):.4f}", f"{recall_at_k(found[key], found['numpy'], k):.4f}"]
        )
    batch_p50 = bstats[names[0]].p50_ms
    for name in names:
        st = bstats[name]
        rows.append(
            [
                name,
                st.p50_ms,
                max(st.samples) * 1e3,
                nq / (st.p50_ms / 1e3),
                f"{st.p50_ms / batch_p50:.2f}x (vs numpy batch)",
            ]
        )
        recall_rows.append(
            [
                name,
                f"{recall_at_k(bfound[name], truth, k):.4f}",
                f"{recall_at_k(bfound[name], bfound[names[0]], k):.4f}",
            ]
        )
    table = markdown_table(["method", "p50 ms", "p99 ms", "QPS", "ratio vs raw numpy (p50)"], rows)
    rtable = markdown_table(["method", f"recall@{k} vs float64 truth", f"recall@{k} vs raw numpy"], recall_rows)
    if ds.gt_ids is not None:
        notes.append(
            f"Recall of vecdb embedded vs the data set's shipped ground truth: "
            f"{recall_at_k(found['embedded'], ds.gt_ids, k):.4f}."
        )

    emb_ratio = stats["vecdb embedded query_points (with_payload=False)"].p50_ms / base_p50
    verdict = "MET" if emb_ratio <= TARGET_RATIO else "NOT MET"
    header = (
        f"{ds.name}: {len(ref.matrix):,} x {ref.matrix.shape[1]}, {distance}, top-{k}, {nq} queries. "
        f"Batch rows: p50 / p99 columns are the wall time of the whole batch (median / max of "
        f"{args.batch_rounds} rounds), QPS = queries / median batch time.\n\n"
        f"**Target: embedded single-query p50 within {TARGET_RATIO}x of raw brute force: {emb_ratio:.2f}x "
        f"-> {verdict}.**\n"
    )
    md = header + "\n" + table + "\n\nExactness:\n\n" + rtable + "\n\n"
    if args.profile:
        print("[exact] profiling embedded query_points", flush=True)
        prof = profile_top(lambda: [emb(i, False) for i in range(nq)], limit=18)
        args._profile_md = (
            f"\ncProfile of {nq} embedded `query_points(..., with_payload=False)` calls "
            f"(sorted by own time):\n\n{prof}\n"
        )
    source = "synthetic clusters" if ds.name.startswith("clustered") else ds.name
    return Section(f"exact search, {source}, {distance}, {len(ref.matrix):,} x {ref.matrix.shape[1]}", md, plot)


def _direct_search(client: Any, k: int, distance: str) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """vecdb's own exact_search() over the collection's snapshot: the engine without API layers."""
    try:
        from vecdb.index.flat import exact_search
        from vecdb.models.collections import Distance

        coll = client._service.db.get(COLLECTION)
        dist = Distance(distance)
    except Exception:  # internals moved: skip this diagnostic row
        return None

    def search(q: np.ndarray) -> np.ndarray:
        snap = coll.view
        data = snap.spaces[0]
        allowed = snap.live(0)
        qv = normalise(q) if distance == "Cosine" else q
        _, iids = exact_search(data.matrix[: snap.n], qv[None, :], k, dist, allowed, data.sq_norms[: snap.n])
        return iids[0]  # internal ids == external ids here (ids 0..n-1 inserted in order)

    return search
