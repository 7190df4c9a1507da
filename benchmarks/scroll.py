"""Filtered scroll and count: vecdb's mask path against its walk of the ids in order, in one process.

``--n`` points carry an integer payload ``r`` uniform in [0, 100000) with an integer payload index; the
filter ``r < T`` keeps a chosen share of them. Per share and page size, a filtered ``scroll`` (payloads
included, as a memory store lists a user's memories) is timed as vecdb serves it (from the filter's mask
when the payload index answers it and matches are few, see ``vecdb/engine/read.py``'s
``SCROLL_BY_MASK``) and with the mask path switched off (the walk of the ``ids`` table, checking each
point: the reference, what vecdb did before), interleaved; then a filtered ``count``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import Section, markdown_table, scratch_dir

COLLECTION = "bench_scroll"
SHARES = (0.002, 0.01, 0.1, 0.5)
LIMITS = (10, 100)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="points (default 100000)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per row and path (default 20)")


def _ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def run(args: argparse.Namespace) -> Section:
    import vecdb
    from vecdb.engine import read

    n = args.n
    rng = np.random.default_rng(args.seed)
    r = rng.integers(0, 100_000, size=n)
    rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "scroll") as tmp:
        client = vecdb.Client(path=str(tmp / "db"))
        client.create_collection(COLLECTION, {"size": 4, "distance": "Cosine"})
        client.create_payload_index(COLLECTION, "r", "integer")
        vectors = rng.random((n, 4), dtype=np.float32)
        for lo in range(0, n, 5000):
            hi = min(n, lo + 5000)
            client.upsert(
                COLLECTION,
                [
                    {"id": i, "vector": vectors[i], "payload": {"r": int(r[i]), "note": f"memory {i}"}}
                    for i in range(lo, hi)
                ],
            )
        by_mask = read.Reader._scroll_by_mask
        try:
            for share in SHARES:
                flt = {"must": [{"key": "r", "range": {"lt": int(share * 100_000)}}]}
                matches = client.count(COLLECTION, count_filter=flt).count
                for limit in LIMITS:

                    def scroll(limit: int = limit, flt: dict[str, Any] = flt) -> Any:
                        return client.scroll(COLLECTION, scroll_filter=flt, limit=limit)

                    timed = {}
                    for _ in range(2):  # interleaved: each path twice, the second figure kept
                        read.Reader._scroll_by_mask = by_mask  # type: ignore[method-assign]
                        timed["vecdb"] = _ms(scroll, args.repeats)
                        read.Reader._scroll_by_mask = lambda *a: None  # type: ignore[method-assign]
                        timed["walk"] = _ms(scroll, max(1, args.repeats // 4) if share < 0.01 else args.repeats)
                    read.Reader._scroll_by_mask = by_mask  # type: ignore[method-assign]
                    served = matches**2 <= read.SCROLL_BY_MASK * limit * n  # (the rule vecdb applies)
                    rows.append(
                        [
                            f"{share:.1%}",
                            f"{matches:,}",
                            limit,
                            "mask" if served else "walk",
                            timed["vecdb"],
                            timed["walk"],
                            timed["walk"] / timed["vecdb"],
                        ]
                    )
                count_ms = _ms(lambda flt=flt: client.count(COLLECTION, count_filter=flt), args.repeats)
                rows.append([f"{share:.1%}", f"{matches:,}", "count", "index", count_ms, None, None])
        finally:
            read.Reader._scroll_by_mask = by_mask  # type: ignore[method-assign]
            client.close()
    table = markdown_table(
        ["matching", "points matching", "page (limit)", "vecdb's path", "vecdb ms (median)", "id walk ms", "speed-up"],
        rows,
    )
    text = (
        f"{n:,} points, integer payload index on `r`, filter `r < T`; scroll with payloads. The id walk is "
        "vecdb with its mask path switched off (what it did before: every point read and checked in id "
        f"order until the page is full). Medians of {args.repeats} calls (a quarter of that for the slowest walks).\n\n"
        + table
    )
    return Section(f"Filtered scroll and count, {n:,} points", text)
