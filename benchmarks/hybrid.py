"""Hybrid retrieval (dense + BM25): answer quality on a real text corpus, and the cost of fusion over REST.

The corpus is :func:`benchmarks.text_corpus.docstring_pairs`: every documented function and class of
Python's standard library whose docstring's first sentence and rest are both unique. The rest is
stored; the first sentence is the query, and the one right answer is its own docstring. Documents
go in as text, the way an LLM app sends them: the collection names ``all-MiniLM-L6-v2`` for its
``dense`` vector (``vecdb[embed]``, run in-process, no download) and each point also gets a
``qdrant/bm25`` document for its ``bm25`` sparse vector (``modifier: idf``).

1. Quality (embedded): MRR@10 and recall@10 of dense only, sparse only, and the two fused by
   RRF and by DBSF (a ``prefetch`` of each half, ``--prefetch`` candidates each).
2. Latency over REST (one keep-alive connection to ``vecdb serve``, the dense half an HNSW graph):
   the dense query, the sparse query and the hybrid RRF query, interleaved; and from
   ``explain``, the time of the fusion stage itself beside the whole query's.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import Section, Server, check, http_client, interleaved, markdown_table, scratch_dir
from benchmarks.text_corpus import docstring_pairs

COLLECTION = "stdlib"
K = 10
MODEL = "all-MiniLM-L6-v2"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=int, default=0, help="use only the first N query/document pairs (default: all)")
    p.add_argument("--prefetch", type=int, default=20, help="candidates each half hands to fusion (default 20)")
    p.add_argument("--rest-queries", type=int, default=500, help="timed REST queries of each kind (default 500)")


def _rank_of(hits: list[int], want: int) -> int:
    """1-based rank of ``want`` in ``hits`` (0 when absent)."""
    return hits.index(want) + 1 if want in hits else 0


def _scores(ranks: list[int]) -> tuple[float, float]:
    mrr = float(np.mean([1.0 / r if r else 0.0 for r in ranks]))
    recall = float(np.mean([1.0 if r else 0.0 for r in ranks]))
    return mrr, recall


def _bodies(vec: list[float], sparse: tuple[list[int], list[float]], prefetch: int) -> dict[str, dict[str, Any]]:
    """The three query bodies of one question (REST shape; the embedded client takes the same dicts)."""
    dense_q = {"query": vec, "using": "dense"}
    sparse_q = {"query": {"indices": sparse[0], "values": sparse[1]}, "using": "bm25"}
    return {
        "dense": {**dense_q, "limit": K},
        "sparse": {**sparse_q, "limit": K},
        "rrf": {
            "prefetch": [{**dense_q, "limit": prefetch}, {**sparse_q, "limit": prefetch}],
            "query": {"fusion": "rrf"},
            "limit": K,
        },
        "dbsf": {
            "prefetch": [{**dense_q, "limit": prefetch}, {**sparse_q, "limit": prefetch}],
            "query": {"fusion": "dbsf"},
            "limit": K,
        },
    }


def run(args: argparse.Namespace) -> Section:
    import vecdb
    from vecdb.engine.bm25_model import bm25_model
    from vecdb.engine.embed import embed_texts

    pairs = docstring_pairs()
    if args.pairs:
        pairs = pairs[: args.pairs]
    n = len(pairs)
    print(f"[hybrid] {n:,} docstrings of the standard library", flush=True)
    md: list[str] = []
    with scratch_dir(args.tmp, "hybrid") as tmp:
        path = tmp / "db"
        client = vecdb.Client(path=str(path))
        client.create_collection(
            COLLECTION,
            {"dense": {"size": 384, "distance": "Cosine"}},
            sparse_vectors_config={"bm25": {"modifier": "idf"}},
            embedding={"model": MODEL, "vector": "dense"},
            optimizers_config={"indexing_threshold": 1},  # an HNSW graph however small the corpus
        )
        t0 = time.perf_counter()
        for lo in range(0, n, 64):
            client.upsert(
                COLLECTION,
                [
                    {
                        "id": i,
                        "vector": {
                            "dense": {"text": pairs[i].document},
                            "bm25": {"text": pairs[i].document, "model": "qdrant/bm25"},
                        },
                        "payload": {"name": pairs[i].name},
                    }
                    for i in range(lo, min(lo + 64, n))
                ],
            )
        ingest_s = time.perf_counter() - t0
        print(f"[hybrid] ingested as text in {ingest_s:.1f} s", flush=True)
        t0 = time.perf_counter()
        vectors = embed_texts(MODEL, [p.query for p in pairs], "query").tolist()
        embed_s = time.perf_counter() - t0
        model = bm25_model(None, "query")
        sparse = [model.query(p.query) for p in pairs]
        bodies = [_bodies(vectors[i], sparse[i], args.prefetch) for i in range(n)]
        deadline = time.monotonic() + 300
        while client.get_collection(COLLECTION).status != "green" and time.monotonic() < deadline:
            time.sleep(0.1)

        # --- quality ---
        ranks: dict[str, list[int]] = {kind: [] for kind in ("dense", "sparse", "rrf", "dbsf")}
        for i in range(n):
            for kind in ranks:
                res = client.query_points(COLLECTION, **_embedded(bodies[i][kind]))
                ranks[kind].append(_rank_of([int(p.id) for p in res.points], i))
        labels = {
            "dense": f"dense only ({MODEL}, HNSW)",
            "sparse": "sparse only (qdrant/bm25, IDF)",
            "rrf": f"hybrid, RRF (k = 2, prefetch {args.prefetch} + {args.prefetch})",
            "dbsf": f"hybrid, DBSF (prefetch {args.prefetch} + {args.prefetch})",
        }
        rows = [[labels[kind], *_scores(r)] for kind, r in ranks.items()]
        best_half = max(_scores(ranks["dense"])[0], _scores(ranks["sparse"])[0])
        md.append(
            f"{n:,} queries (a docstring's first sentence), one right answer each (the rest of that docstring), "
            f"among {n:,} documents. Ingest as text (MiniLM and bm25 in-process, batches of 64): {ingest_s:.1f} s "
            f"({n / ingest_s:,.0f} documents/s); embedding the queries: {embed_s:.1f} s.\n\n"
            + markdown_table(["retrieval", "MRR@10", "recall@10"], rows)
            + "\n\nHybrid over the better half: RRF MRR "
            + f"{_scores(ranks['rrf'])[0] / best_half:.3f}x, DBSF MRR {_scores(ranks['dbsf'])[0] / best_half:.3f}x."
        )
        client.close()

        # --- REST latency ---
        with Server(path, tmp) as server, http_client(server.url) as http:
            url = f"/collections/{COLLECTION}/points/query"
            nq = min(args.rest_queries, n)
            for i in range(min(20, n)):  # connection and first-use warm-up
                check(http.post(url, json=bodies[i]["rrf"]))
            kinds = ("dense", "sparse", "rrf")
            stats = interleaved(
                {kind: (lambda i, kind=kind: check(http.post(url, json=bodies[i][kind]))) for kind in kinds},
                nq,
                warmup=10,
                seed=args.seed,
            )
            fusion_ms, total_ms, halves_ms = [], [], []
            for i in range(nq):
                res = check(http.post(url, json={**bodies[i]["rrf"], "explain": True}))
                stage = res["explain"]["stage"]
                fusion_ms.append(stage["merge_ms"])
                halves_ms.append(sum(c["time_ms"] for c in stage["prefetch"]))
                total_ms.append(res["explain"]["timings_ms"]["total"])
        lat_rows = [[kind, stats[kind].p50_ms, stats[kind].p99_ms, 1e3 / stats[kind].mean_ms] for kind in kinds]
        f50, t50 = float(np.median(fusion_ms)), float(np.median(total_ms))
        md.append(
            f"REST latency, one keep-alive connection, {nq:,} queries of each kind interleaved (vectors sent as "
            "JSON floats, sparse vectors as indices/values; the dense half is an HNSW graph at its default ef):\n\n"
            + markdown_table(["query", "p50 ms", "p99 ms", "QPS (1 / mean)"], lat_rows)
            + f"\n\nThe fusion stage itself (explain's `merge_ms` of the RRF stage): p50 "
            f"{f50 * 1e3:.1f} us, p99 {float(np.percentile(fusion_ms, 99)) * 1e3:.1f} us; the engine's whole "
            f"query (explain's total) p50 {t50 * 1e3:.0f} us, the two prefetches "
            f"{float(np.median(halves_ms)) * 1e3:.0f} us: fusion is **{100 * f50 / t50:.1f}%** of the engine's "
            "query and "
            f"{100 * f50 / stats['rrf'].p50_ms:.1f}% of the REST round trip."
        )
    return Section(f"Hybrid retrieval, {n:,} standard-library docstrings", "\n\n".join(md))


def _embedded(body: dict[str, Any]) -> dict[str, Any]:
    """A REST body as :meth:`vecdb.Client.query_points` keywords."""
    out = dict(body)
    if "filter" in out:
        out["query_filter"] = out.pop("filter")
    return out
