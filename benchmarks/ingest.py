"""Durable ingest rate: vecdb embedded and REST upserts against the raw LMDB floor.

Every vecdb upsert is one fsynced LMDB transaction, so the reference is raw
LMDB writing the same keys and values (vecdb's byte layout: id -> internal id,
internal id -> header + payload JSON, internal id -> float32 row), one
``sync=True`` transaction per batch, with all bytes prepared beforehand. The
floor is measured before and after the vecdb runs to show drift from other
load on the machine. Encoding/decoding rows show what JSON alone costs.
"""

from __future__ import annotations

import argparse
import struct
import threading
import time
from typing import Any

import numpy as np
import orjson

from benchmarks.common import (
    Section,
    Server,
    check,
    http_client,
    load_dataset,
    make_clustered,
    markdown_table,
    payloads_for,
    peak_rss_mib,
    profile_top,
    scratch_dir,
)

EMBEDDED_TARGET = 50_000
REST_TARGET = 10_000
_OPTS = orjson.OPT_SERIALIZE_NUMPY


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--batch", type=int, default=1000, help="points per upsert (default 1000)")
    p.add_argument(
        "--distance",
        choices=["Cosine", "Dot", "Euclid"],
        default=None,
        help="default Cosine (or the data set's metric)",
    )
    p.add_argument(
        "--dataset",
        choices=["synthetic", "sift5k", "glove50"],
        default="synthetic",
        help="ingest a real data set's base vectors (truncated to --n) instead of clustered data",
    )
    p.add_argument("--no-rest", action="store_true", help="skip the REST rows")


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def raw_lmdb_floor(path: Any, base: np.ndarray, batches: list[tuple[int, int]]) -> float:
    """Seconds to write vecdb's rows for ``base`` with raw LMDB, one fsynced txn per batch."""
    import lmdb

    iid_s, vec_s, head_s = struct.Struct(">Q"), struct.Struct(">QH"), struct.Struct(">QB")
    prepared = []
    for lo, hi in batches:
        rows = []
        for i in range(lo, hi):
            key = b"\x00" + i.to_bytes(8, "big")
            payload = orjson.dumps({"i": i, "tag": f"t{i % 10}"})
            rows.append(
                (
                    key,
                    iid_s.pack(i),
                    head_s.pack(1, len(key)) + key + payload,
                    vec_s.pack(i, 0),
                    base[i].astype("<f4").tobytes(),
                )
            )
        prepared.append(rows)
    env = lmdb.open(str(path), map_size=1 << 34, max_dbs=5, sync=True, metasync=True, readahead=False, meminit=False)
    ids, points, vectors, meta = (env.open_db(x) for x in (b"ids", b"points", b"vectors", b"meta"))
    t0 = time.perf_counter()
    for seq, ((_, hi), rows) in enumerate(zip(batches, prepared, strict=True)):
        with env.begin(write=True) as txn:
            for key, iid, record, vkey, vec in rows:
                txn.put(key, iid, db=ids)
                txn.put(iid, record, db=points)
                txn.put(vkey, vec, db=vectors)
            txn.put(b"counters", orjson.dumps({"next_iid": hi, "seq": seq}), db=meta)
    elapsed = time.perf_counter() - t0
    env.close()
    return elapsed


def run(args: argparse.Namespace) -> Section:
    import vecdb

    t_start = time.perf_counter()
    if getattr(args, "dataset", "synthetic") == "synthetic":
        base = make_clustered(args.n, args.dim, seed=args.seed)
        source = "clustered"
        args.distance = args.distance or "Cosine"
    else:
        ds = load_dataset(args.dataset, args.datasets, n=args.n)
        base, source = ds.base, ds.name
        args.distance = args.distance or ds.distance
    n, d = base.shape
    batches = _batches(n, args.batch)
    print(f"[ingest] {source}: {n} x {d}, batches of {args.batch}", flush=True)
    rows: list[tuple[str, float, str]] = []  # label, seconds, target note
    notes: list[str] = []
    profile_md = ""

    with scratch_dir(args.tmp, "ingest") as tmp:
        floor1 = raw_lmdb_floor(tmp / "lmdb1", base, batches)
        rows.append(("raw LMDB, same bytes, 1 fsynced txn / batch (before)", floor1, "reference"))

        # JSON costs alone (what a REST client and server must pay at least).
        bodies: list[bytes] = []
        t0 = time.perf_counter()
        for lo, hi in batches:
            bodies.append(
                orjson.dumps(
                    {"batch": {"ids": list(range(lo, hi)), "vectors": base[lo:hi], "payloads": payloads_for(lo, hi)}},
                    option=_OPTS,
                )
            )
        rows.append(("orjson.dumps of the REST bodies (client encode)", time.perf_counter() - t0, "reference"))
        t0 = time.perf_counter()
        for body in bodies:
            parsed = orjson.loads(body)["batch"]
            np.asarray(parsed["vectors"], dtype=np.float32)
        rows.append(("orjson.loads + np.asarray(vectors) (server decode floor)", time.perf_counter() - t0, "reference"))
        notes.append(f"REST body size: {sum(map(len, bodies)) / len(bodies) / 1e6:.2f} MB per batch of {args.batch}.")
        del bodies

        # --- embedded ---
        client = vecdb.Client(path=tmp / "embedded")
        try:

            def emb_batch_dicts(name: str) -> None:
                for lo, hi in batches:
                    client.upsert(
                        name, {"ids": list(range(lo, hi)), "vectors": base[lo:hi], "payloads": payloads_for(lo, hi)}
                    )

            def emb_points(name: str) -> None:
                for lo, hi in batches:
                    client.upsert(
                        name,
                        [{"id": i, "vector": base[i], "payload": {"i": i, "tag": f"t{i % 10}"}} for i in range(lo, hi)],
                    )

            for label, fn, coll in [
                ("vecdb embedded upsert, batch dict {ids, vectors: ndarray, payloads}", emb_batch_dicts, "emb_b"),
                ("vecdb embedded upsert, list of point dicts", emb_points, "emb_p"),
            ]:
                client.create_collection(coll, {"size": d, "distance": args.distance})
                print(f"[ingest] {label}", flush=True)
                t0 = time.perf_counter()
                fn(coll)
                rows.append((label, time.perf_counter() - t0, f">= {EMBEDDED_TARGET:,}/s"))
                assert client.count(coll).count == n, "embedded ingest lost points"
                # Its optimizer would keep indexing in the background and slow the next row down.
                client.delete_collection(coll)
            if args.profile:
                client.create_collection("emb_prof", {"size": d, "distance": args.distance})
                sub = batches[: max(1, min(len(batches), 20))]
                prof = profile_top(
                    lambda: [
                        client.upsert(
                            "emb_prof",
                            {"ids": list(range(lo, hi)), "vectors": base[lo:hi], "payloads": payloads_for(lo, hi)},
                        )
                        for lo, hi in sub
                    ],
                    limit=18,
                )
                profile_md = (
                    f"\ncProfile of {len(sub)} embedded batch-dict upserts of {args.batch} "
                    f"(sorted by own time):\n\n{prof}\n"
                )
        finally:
            client.close()

        # --- REST ---
        if not args.no_rest:
            with Server(tmp / "rest", tmp) as server:
                setup = http_client(server.url)

                def rest_ingest(coll: str, parts: list[list[tuple[int, int]]]) -> float:
                    check(
                        setup.put(
                            f"/collections/{coll}",
                            content=orjson.dumps({"vectors": {"size": d, "distance": args.distance}}),
                            headers={"content-type": "application/json"},
                        )
                    )
                    clients = [http_client(server.url) for _ in parts]
                    errors: list[BaseException] = []

                    def worker(c: Any, mine: list[tuple[int, int]]) -> None:
                        try:
                            for lo, hi in mine:
                                body = orjson.dumps(
                                    {
                                        "batch": {
                                            "ids": list(range(lo, hi)),
                                            "vectors": base[lo:hi],
                                            "payloads": payloads_for(lo, hi),
                                        }
                                    },
                                    option=_OPTS,
                                )
                                check(
                                    c.put(
                                        f"/collections/{coll}/points?wait=true",
                                        content=body,
                                        headers={"content-type": "application/json"},
                                    )
                                )
                        except BaseException as exc:  # surfaced below
                            errors.append(exc)

                    threads = [
                        threading.Thread(target=worker, args=(c, m)) for c, m in zip(clients, parts, strict=True)
                    ]
                    t0 = time.perf_counter()
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    elapsed = time.perf_counter() - t0
                    for c in clients:
                        c.close()
                    if errors:
                        raise errors[0]
                    count = check(
                        setup.post(
                            f"/collections/{coll}/points/count",
                            content=b'{"exact":true}',
                            headers={"content-type": "application/json"},
                        )
                    )["count"]
                    assert count == n, f"REST ingest stored {count} of {n} points"
                    check(setup.delete(f"/collections/{coll}"))  # stop its background indexing
                    return elapsed

                print("[ingest] REST, 1 client", flush=True)
                rows.append(
                    (
                        "vecdb REST PUT /points (batch body, orjson), 1 client",
                        rest_ingest("rest1", [batches]),
                        f">= {REST_TARGET:,}/s",
                    )
                )
                print("[ingest] REST, 2 client threads", flush=True)
                rows.append(
                    (
                        "vecdb REST PUT /points, 2 concurrent client threads",
                        rest_ingest("rest2", [batches[0::2], batches[1::2]]),
                        f">= {REST_TARGET:,}/s",
                    )
                )
                setup.close()
            notes.append(f"Server process peak RSS: {server.peak_rss_mib or float('nan'):,.0f} MiB.")

        floor2 = raw_lmdb_floor(tmp / "lmdb2", base, batches)
        rows.append(("raw LMDB, same bytes, 1 fsynced txn / batch (after)", floor2, "reference"))

    floor = min(floor1, floor2)
    table_rows = []
    for label, secs, target in rows:
        rate = n / secs
        if target.startswith(">="):
            goal = int(target.split()[1].replace(",", "").rstrip("/s"))
            target = f"{target}: {'MET' if rate >= goal else 'NOT MET'}"
        table_rows.append([label, rate, secs, f"{secs / floor:.2f}x", target])
    table = markdown_table(["method", "points/s", "seconds", "time vs raw LMDB floor", "target"], table_rows)
    notes.append(f"Raw LMDB floor drift (after / before): {floor2 / floor1:.2f}x; ratios use the lower one.")
    notes.append(
        f"This process peak RSS: {peak_rss_mib():,.0f} MiB. Section wall time {time.perf_counter() - t_start:.1f} s."
    )
    md = (
        f'{n:,} {source} points x {d} float32, payload `{{"i": i, "tag": "t{{i%10}}"}}`, {args.distance}, '
        f"{len(batches)} upserts of {args.batch}; every upsert is durable (fsync) before it returns. "
        f"Default collection settings: the HNSW optimizer indexes in the background while the "
        f"upserts run (each collection is deleted before the next row).\n\n"
        + table
        + "\n\n"
        + "\n".join(f"* {x}" for x in notes)
        + "\n"
        + profile_md
    )
    return Section(f"ingest, {n:,} x {d}", md)
