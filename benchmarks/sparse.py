"""Sparse (BM25) search: vecdb embedded beside bm25s, Qdrant Edge and qdrant-client's local mode, on the same tokens.

The corpus is :func:`benchmarks.text_corpus.sentence_documents` (docstring sentences of Python's
standard library, 100k documents by default) with queries of 2-5 words of random documents. Every
document is tokenised once, by vecdb's ``qdrant/bm25`` model (word tokenizer, lowercase, English
snowball stemmer, ``avg_len`` set to the corpus' real average so that the weights are textbook BM25);
then each engine gets exactly those tokens:

* vecdb: the sparse vectors (term id, BM25 weight) in a ``modifier: idf`` space;
* qdrant-client local mode (the semantics oracle) and Qdrant Edge (``qdrant-edge-py``, Rust,
  in-process): the same sparse vectors in an IDF space;
* bm25s (method ``lucene``, k1 and b as vecdb's model): the token strings. Its scores are vecdb's
  divided by ``k1 + 1`` (Lucene drops that constant), its ranking the same.

Checked before timing: vecdb's top 10 equal local mode's (ids and scores) on ``--oracle-queries``
queries, filtered and not; bm25s' and Edge's scores equal vecdb's (after the constant) on every
timed query. Timed: single queries (interleaved, so load changes hit every engine alike) and
batches, unfiltered and filtered (an integer payload field with an index in vecdb and Edge; a
precomputed weight mask in bm25s, which is what it offers). Also measured: ingest of the sparse
vectors and of raw text (server-side ``qdrant/bm25`` documents), resident memory and disk per document.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from benchmarks.common import Section, interleaved, markdown_table, peak_rss_mib, plot_bars, scratch_dir
from benchmarks.hnsw import rss_mib
from benchmarks.text_corpus import sentence_documents, word_queries

COLLECTION = "docs"
K = 10
BUCKETS = 100
PLOT_NAME = "sparse_qps.png"
BLOCK = 25
"""Timed queries run in blocks of this many per engine (engines in a fresh random order per block):
bm25s sweeps a score array the size of the corpus on every query, which evicts the CPU caches of
whichever engine runs next, and in real use each has a process of its own."""


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    p.add_argument("--queries", type=int, default=1000, help="timed single queries per engine (default 1000)")
    p.add_argument("--oracle-queries", type=int, default=10, help="queries checked against local mode (default 10)")
    p.add_argument("--oracle-n", type=int, default=0, help="documents local mode holds (default: all of --n)")
    p.add_argument("--allowed", type=float, default=0.1, help="fraction the filter allows (default 0.1)")
    p.add_argument("--text-ingest", type=int, default=20_000, help="documents ingested as raw text (default 20000)")
    p.add_argument(
        "--sentences",
        type=int,
        nargs=2,
        default=(2, 6),
        metavar=("LEAST", "MOST"),
        help="docstring sentences per document (default 2 6: about 55 tokens; 1 1: short notes of about 12)",
    )
    p.add_argument("--no-local", action="store_true", help="skip qdrant-client local mode")
    p.add_argument("--no-edge", action="store_true", help="skip Qdrant Edge")
    p.add_argument("--no-bm25s", action="store_true", help="skip bm25s")


# --------------------------------------------------------------------------------------------
# corpus -> tokens -> sparse vectors (once, shared by every engine)
# --------------------------------------------------------------------------------------------


class Corpus:
    def __init__(self, n: int, nq: int, seed: int, sentences: tuple[int, int] = (2, 6)) -> None:
        from vecdb.engine.bm25_model import bm25_model, token_id

        t0 = time.perf_counter()
        self.texts = sentence_documents(n, seed, tuple(sentences))  # type: ignore[arg-type]
        self.query_texts = word_queries(self.texts, nq, seed)
        plain = bm25_model(None, "bench")
        self.doc_tokens = [plain.tokens(t) for t in self.texts]
        self.avg_len = float(np.mean([len(t) for t in self.doc_tokens]))
        self.options = {"avg_len": self.avg_len}
        self.model = bm25_model(self.options, "bench")
        self.k1, self.b = self.model.k, self.model.b
        self.tokenise_s = time.perf_counter() - t0
        self.docs: list[tuple[list[int], list[float]]] = []
        for tokens in self.doc_tokens:
            counts: dict[int, int] = {}
            for token in tokens:
                tid = token_id(token)
                counts[tid] = counts.get(tid, 0) + 1
            norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
            ids = sorted(counts)
            self.docs.append((ids, [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in ids]))
        self.query_tokens = [list(dict.fromkeys(self.model.tokens(q))) for q in self.query_texts]
        self.queries = [([token_id(t) for t in toks], [1.0] * len(toks)) for toks in self.query_tokens]
        self.buckets = np.arange(n) % BUCKETS
        self.postings = sum(len(d[0]) for d in self.docs)

    def check_model(self) -> None:
        """The vectors built here are what vecdb's own ``qdrant/bm25`` documents give."""
        for j in range(0, len(self.texts), max(1, len(self.texts) // 50)):
            assert self.model.document(self.texts[j]) == self.docs[j], f"document {j}: tokens differ"


# --------------------------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------------------------

Hits = list[tuple[int, float]]


class Vecdb:
    name = "vecdb embedded"

    def __init__(self, path: Path, corpus: Corpus) -> None:
        import vecdb

        self.client = vecdb.Client(path=str(path))
        self.corpus = corpus
        self.client.create_collection(COLLECTION, {}, sparse_vectors_config={"bm25": {"modifier": "idf"}})
        self.client.create_payload_index(COLLECTION, "bucket", "integer")

    def ingest(self, batch: int = 1000) -> float:
        c = self.corpus
        t0 = time.perf_counter()
        for lo in range(0, len(c.docs), batch):
            points = [
                {
                    "id": i,
                    "vector": {"bm25": {"indices": c.docs[i][0], "values": c.docs[i][1]}},
                    "payload": {"bucket": int(c.buckets[i])},
                }
                for i in range(lo, min(lo + batch, len(c.docs)))
            ]
            self.client.upsert(COLLECTION, points)
        return time.perf_counter() - t0

    def settle(self, timeout: float = 300) -> float:
        """Seconds until the optimizer has caught up (status green: the inverted index compacted into
        one segment by its checkpoint), as Edge's ``optimize()`` is waited for."""
        t0 = time.perf_counter()
        while self.client.get_collection(COLLECTION).status != "green" and time.perf_counter() - t0 < timeout:
            time.sleep(0.05)
        return time.perf_counter() - t0

    def filter(self, allowed: float) -> dict[str, Any]:
        return {"must": [{"key": "bucket", "range": {"lt": int(round(allowed * BUCKETS))}}]}

    def search(self, q: int, flt: Optional[dict[str, Any]] = None) -> Hits:
        ids, values = self.corpus.queries[q]
        res = self.client.query_points(
            COLLECTION,
            query={"indices": ids, "values": values},
            using="bm25",
            query_filter=flt,
            limit=K,
            with_payload=False,
        )
        return [(int(p.id), float(p.score)) for p in res.points]

    def batch(self, qs: list[int], flt: Optional[dict[str, Any]] = None) -> list[Hits]:
        reqs = []
        for q in qs:
            ids, values = self.corpus.queries[q]
            req: dict[str, Any] = {"query": {"indices": ids, "values": values}, "using": "bm25", "limit": K}
            if flt is not None:
                req["filter"] = flt
            reqs.append(req)
        out = self.client.query_batch_points(COLLECTION, reqs)
        return [[(int(p.id), float(p.score)) for p in r.points] for r in out]


class Bm25s:
    name = "bm25s"

    def __init__(self, corpus: Corpus) -> None:
        import bm25s

        self.corpus = corpus
        t0 = time.perf_counter()
        self.retriever = bm25s.BM25(k1=corpus.k1, b=corpus.b, method="lucene")
        self.retriever.index(corpus.doc_tokens, show_progress=False)
        self.index_s = time.perf_counter() - t0
        vocab = self.retriever.vocab_dict
        self.queries = [[t for t in toks if t in vocab] for toks in corpus.query_tokens]
        self.scale = corpus.k1 + 1  # Lucene's BM25 leaves out the (k1 + 1) factor of the tf part

    def mask(self, allowed: float) -> np.ndarray:
        return (self.corpus.buckets < int(round(allowed * BUCKETS))).astype(np.float32)

    def _hits(self, docs: np.ndarray, scores: np.ndarray) -> Hits:
        return [(int(d), float(s) * self.scale) for d, s in zip(docs, scores, strict=True) if s > 0]

    def search(self, q: int, mask: Optional[np.ndarray] = None) -> Hits:
        if not self.queries[q]:
            return []
        docs, scores = self.retriever.retrieve([self.queries[q]], k=K, show_progress=False, weight_mask=mask)
        return self._hits(docs[0], scores[0])

    def batch(self, qs: list[int], mask: Optional[np.ndarray] = None) -> list[Hits]:
        asked = [self.queries[q] or ["\0"] for q in qs]  # bm25s wants at least one token per query
        docs, scores = self.retriever.retrieve(asked, k=K, show_progress=False, weight_mask=mask)
        return [self._hits(d, s) for d, s in zip(docs, scores, strict=True)]


class Edge:
    def __init__(self, path: Path, corpus: Corpus, threads: Optional[int]) -> None:
        import qdrant_edge as qe

        self.qe, self.corpus, self.path = qe, corpus, path
        self.name = "Qdrant Edge, 1 search thread" if threads == 1 else "Qdrant Edge, default threads"
        config = qe.EdgeConfig(
            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}, max_search_threads=threads
        )
        self.shard = qe.EdgeShard.load(str(path), config) if path.exists() else qe.EdgeShard.create(str(path), config)
        self.queries = [qe.SparseVector(ids, values) for ids, values in corpus.queries]

    def ingest(self, batch: int = 1000) -> float:
        qe, c = self.qe, self.corpus
        t0 = time.perf_counter()
        self.shard.update(qe.UpdateOperation.create_field_index("bucket", qe.PayloadSchemaType.Integer))
        for lo in range(0, len(c.docs), batch):
            points = [
                qe.Point(i, {"bm25": qe.SparseVector(*c.docs[i])}, {"bucket": int(c.buckets[i])})
                for i in range(lo, min(lo + batch, len(c.docs)))
            ]
            self.shard.update(qe.UpdateOperation.upsert_points(points))
        self.shard.flush()
        self.shard.optimize()
        return time.perf_counter() - t0

    def filter(self, allowed: float) -> Any:
        qe = self.qe
        return qe.Filter(must=[qe.FieldCondition("bucket", range=qe.RangeFloat(lt=int(round(allowed * BUCKETS))))])

    def _request(self, q: int, flt: Any) -> Any:
        qe = self.qe
        return qe.QueryRequest(
            limit=K, query=qe.Query.Nearest(self.queries[q], using="bm25"), with_payload=False, filter=flt
        )

    def search(self, q: int, flt: Any = None) -> Hits:
        return [(int(p.id), float(p.score)) for p in self.shard.query(self._request(q, flt))]

    def batch(self, qs: list[int], flt: Any = None) -> list[Hits]:
        out = self.shard.query_batch(self.qe.QueryBatchRequest([self._request(q, flt) for q in qs]))
        return [[(int(p.id), float(p.score)) for p in r] for r in out]

    def close(self) -> None:
        self.shard.close()


class LocalMode:
    name = "qdrant-client local mode"

    def __init__(self, corpus: Corpus, n: int) -> None:
        from qdrant_client import QdrantClient, models

        self.m, self.corpus = models, corpus
        self.client = QdrantClient(":memory:")
        self.client.create_collection(
            COLLECTION,
            vectors_config={},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        t0 = time.perf_counter()
        for lo in range(0, n, 1000):
            self.client.upsert(
                COLLECTION,
                [
                    models.PointStruct(
                        id=i,
                        vector={"bm25": models.SparseVector(indices=corpus.docs[i][0], values=corpus.docs[i][1])},
                        payload={"bucket": int(corpus.buckets[i])},
                    )
                    for i in range(lo, min(lo + 1000, n))
                ],
            )
        self.ingest_s = time.perf_counter() - t0

    def filter(self, allowed: float) -> Any:
        m = self.m
        return m.Filter(must=[m.FieldCondition(key="bucket", range=m.Range(lt=int(round(allowed * BUCKETS))))])

    def search(self, q: int, flt: Any = None) -> Hits:
        ids, values = self.corpus.queries[q]
        res = self.client.query_points(
            COLLECTION,
            query=self.m.SparseVector(indices=ids, values=values),
            using="bm25",
            query_filter=flt,
            limit=K,
            with_payload=False,
        )
        return [(int(p.id), float(p.score)) for p in res.points]


# --------------------------------------------------------------------------------------------
# agreement
# --------------------------------------------------------------------------------------------


def _same(a: Hits, b: Hits, rel: float) -> bool:
    """Same scores in order (relative ``rel``) and the same ids wherever a score is not tied with another."""
    if len(a) != len(b):
        return False
    for (_, sa), (_, sb) in zip(a, b, strict=True):
        if not math.isclose(sa, sb, rel_tol=rel, abs_tol=1e-6):
            return False
    scores = [s for _, s in a]
    for j, ((ia, sa), (ib, _)) in enumerate(zip(a, b, strict=True)):
        tied = any(math.isclose(sa, scores[k], rel_tol=rel, abs_tol=1e-6) for k in range(len(a)) if k != j)
        last = j == len(a) - 1  # the k-th place may hold any of a tie that runs past k
        if ia != ib and not tied and not last:
            return False
    return True


def _agreement(
    name: str, ours: Callable[[int], Hits], theirs: Callable[[int], Hits], qs: range, rel: float
) -> tuple[str, int, int]:
    bad = [q for q in qs if not _same(ours(q), theirs(q), rel)]
    if bad:
        q = bad[0]
        print(f"[sparse] {name}: query {q} differs\n  vecdb {ours(q)}\n  other {theirs(q)}", flush=True)
    return name, len(qs) - len(bad), len(qs)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _installed(module: str, flag: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"[sparse] {module} is not installed (pip install -e '.[bench]'): skipped, as {flag} would", flush=True)
        return False
    return True


def run(args: argparse.Namespace) -> Section:
    args.no_bm25s = args.no_bm25s or not _installed("bm25s", "--no-bm25s")
    args.no_edge = args.no_edge or not _installed("qdrant_edge", "--no-edge")
    n, nq = args.n, args.queries
    print(f"[sparse] building {n:,} documents and {nq:,} queries", flush=True)
    corpus = Corpus(n, nq, args.seed, tuple(args.sentences))
    corpus.check_model()
    print(
        f"[sparse] tokenised in {corpus.tokenise_s:.1f} s; {corpus.postings / n:.1f} distinct terms per document, "
        f"{corpus.avg_len:.1f} tokens; {np.mean([len(q) for q in corpus.query_tokens]):.1f} terms per query",
        flush=True,
    )
    md: list[str] = []
    ingest_rows: list[list[Any]] = []
    with scratch_dir(args.tmp, "sparse") as tmp:
        rss0 = rss_mib(settle=True).get("VmRSS", float("nan"))
        db = Vecdb(tmp / "vecdb", corpus)
        secs = db.ingest()
        settle = db.settle()
        rss1 = rss_mib(settle=True).get("VmRSS", float("nan"))
        disk = sum(f.stat().st_size for f in (tmp / "vecdb").rglob("*") if f.is_file())
        ingest_rows.append(
            [
                f"vecdb, sparse vectors (batches of 1,000); then {settle:.1f} s until compacted (status green)",
                n / secs,
                (rss1 - rss0) * 2**20 / n,
                disk / n,
            ]
        )
        print(f"[sparse] vecdb ingest {n / secs:,.0f} docs/s", flush=True)

        engines: list[Any] = [db]
        if not args.no_bm25s:
            b25 = Bm25s(corpus)
            engines.append(b25)
            ingest_rows.append(["bm25s, index the token lists (in memory only)", n / b25.index_s, None, None])
        edge: Optional[Edge] = None
        if not args.no_edge:
            edge = Edge(tmp / "edge", corpus, threads=1)
            secs = edge.ingest()
            edge_disk = sum(f.stat().st_size for f in (tmp / "edge").rglob("*") if f.is_file())
            ingest_rows.append(
                ["Qdrant Edge, sparse vectors (batches of 1,000), flush + optimize", n / secs, None, edge_disk / n]
            )
            engines.append(edge)

        # --- agreement ---
        agree: list[tuple[str, int, int]] = []
        flt_v = db.filter(args.allowed)
        every = range(nq)
        if not args.no_bm25s:
            mask = b25.mask(args.allowed)
            agree.append(_agreement("bm25s, unfiltered", db.search, b25.search, every, 1e-4))
            agree.append(
                _agreement("bm25s, filtered", lambda q: db.search(q, flt_v), lambda q: b25.search(q, mask), every, 1e-4)
            )
        if edge is not None:
            flt_e = edge.filter(args.allowed)
            agree.append(_agreement("Qdrant Edge, unfiltered", db.search, edge.search, every, 1e-4))
            agree.append(
                _agreement(
                    "Qdrant Edge, filtered", lambda q: db.search(q, flt_v), lambda q: edge.search(q, flt_e), every, 1e-4
                )
            )
        local_rows: list[list[Any]] = []
        if not args.no_local:
            on = args.oracle_n or n
            print(f"[sparse] local mode: {on:,} documents", flush=True)
            local = LocalMode(corpus, on)
            ingest_rows.append(["qdrant-client local mode", on / local.ingest_s, None, None])
            oq = range(args.oracle_queries)
            if on == n:
                flt_l = local.filter(args.allowed)
                agree.append(_agreement("local mode (oracle), unfiltered", db.search, local.search, oq, 1e-5))
                agree.append(
                    _agreement(
                        "local mode (oracle), filtered",
                        lambda q: db.search(q, flt_v),
                        lambda q: local.search(q, flt_l),
                        oq,
                        1e-5,
                    )
                )
            stats = interleaved({"local": local.search, "vecdb": db.search}, len(oq), warmup=1, seed=args.seed)
            local_rows.append(
                [
                    f"single query, {on:,} documents",
                    stats["local"].p50_ms,
                    stats["vecdb"].p50_ms,
                    stats["local"].p50_ms / stats["vecdb"].p50_ms,
                ]
            )
            del local
            gc.collect()
        gc.collect()
        gc.freeze()  # the corpus' millions of Python objects are the benchmark's: keep them out of every GC pass
        md.append(
            "Agreement (vecdb's top 10 against each engine's: the same scores in order, and the same ids where "
            "a score is not tied; bm25s' scores times k1 + 1):\n\n"
            + markdown_table(["against", "queries that agree", "queries"], agree)
        )

        # --- single queries, interleaved ---
        rows: list[list[Any]] = []
        plot: dict[str, dict[str, float]] = {}
        for label, flt_of in (("unfiltered", None), (f"filtered, {args.allowed:.0%} allowed", args.allowed)):
            methods: dict[str, Callable[[int], Any]] = {}
            for e in engines:
                if flt_of is None:
                    methods[e.name] = e.search
                elif isinstance(e, Bm25s):
                    m = e.mask(flt_of)
                    methods[e.name] = lambda q, e=e, m=m: e.search(q, m)
                else:
                    f = e.filter(flt_of)
                    methods[e.name] = lambda q, e=e, f=f: e.search(q, f)
            print(f"[sparse] timing single queries, {label}", flush=True)
            stats = interleaved(methods, nq, warmup=20, seed=args.seed, block=BLOCK)
            base = stats[db.name]
            for name, st in stats.items():
                qps = 1e3 / st.mean_ms
                rows.append([label, name, st.p50_ms, st.p99_ms, qps, (1e3 / base.mean_ms) / qps])
                plot.setdefault(name, {})[label] = qps
        md.append(
            f"Single queries, {K} results, {nq:,} queries each, interleaved in blocks of {BLOCK} per engine "
            "(QPS = 1 / mean latency; the last column is vecdb's QPS over the engine's):\n\n"
            + markdown_table(["queries", "engine", "p50 ms", "p99 ms", "QPS", "vecdb / engine"], rows)
        )

        # --- batches ---
        brows: list[list[Any]] = []
        size = min(100, nq)
        batches = [list(range(lo, lo + size)) for lo in range(0, nq - size + 1, size)]
        for e in engines:
            for label, allowed in (("unfiltered", None), ("filtered", args.allowed)):
                if allowed is None:
                    arg = None
                elif isinstance(e, Bm25s):
                    arg = e.mask(allowed)
                else:
                    arg = e.filter(allowed)
                e.batch(batches[0], arg)
                t0 = time.perf_counter()
                for qs in batches:
                    e.batch(qs, arg)
                brows.append([label, e.name, len(batches) * size / (time.perf_counter() - t0)])
        md.append(
            f"Batches of {size} queries (one call each):\n\n" + markdown_table(["queries", "engine", "QPS"], brows)
        )

        # --- Edge at its default threading, as users run it ---
        if edge is not None:
            edge.close()
            edge_default = Edge(tmp / "edge", corpus, threads=None)
            stats = interleaved(
                {db.name: db.search, edge_default.name: edge_default.search},
                nq,
                warmup=20,
                seed=args.seed + 1,
                block=BLOCK,
            )
            md.append(
                f"Qdrant Edge at its default search threads ({os.cpu_count()} CPUs), unfiltered, beside vecdb "
                "in the same loop:\n\n"
                + markdown_table(
                    ["engine", "p50 ms", "p99 ms", "QPS"],
                    [[name, st.p50_ms, st.p99_ms, 1e3 / st.mean_ms] for name, st in stats.items()],
                )
            )
            edge_default.close()
        if local_rows:
            md.append(
                "qdrant-client local mode (pure Python; few queries, it takes seconds each), interleaved with "
                "vecdb:\n\n"
                + markdown_table(["queries", "local mode p50 ms", "vecdb p50 ms", "vecdb speed-up"], local_rows)
            )

        # --- text ingest: server-side qdrant/bm25 documents ---
        tn = min(args.text_ingest, n)
        if tn:
            text_db = Vecdb(tmp / "vecdb-text", corpus)
            t0 = time.perf_counter()
            for lo in range(0, tn, 1000):
                text_db.client.upsert(
                    COLLECTION,
                    [
                        {
                            "id": i,
                            "vector": {
                                "bm25": {"text": corpus.texts[i], "model": "qdrant/bm25", "options": corpus.options}
                            },
                        }
                        for i in range(lo, min(lo + 1000, tn))
                    ],
                )
            ingest_rows.insert(
                1,
                [
                    f"vecdb, raw text as qdrant/bm25 documents ({tn:,} documents)",
                    tn / (time.perf_counter() - t0),
                    None,
                    None,
                ],
            )
            text_db.client.close()
        db.client.close()

    md.insert(
        0,
        f"{n:,} documents ({corpus.avg_len:.1f} tokens, {corpus.postings / n:.1f} distinct terms each on average; "
        f"{corpus.postings:,} postings), queries of {np.mean([len(q) for q in corpus.query_tokens]):.1f} distinct "
        f"terms. Tokenising the corpus once (vecdb's qdrant/bm25 model, pure Python): {corpus.tokenise_s:.1f} s.\n\n"
        "Ingest (resident memory: this process' RSS growth over the ingest, so the inverted index, the LMDB "
        "pages it keeps mapped and the write path's buffers; disk: the data directory):\n\n"
        + markdown_table(["what", "documents/s", "RSS bytes per document", "disk bytes per document"], ingest_rows),
    )
    md.append(f"Peak RSS of the benchmark process: {peak_rss_mib():,.0f} MiB.")
    section = Section(f"Sparse BM25 search, {n:,} documents", "\n\n".join(md))
    section.plot = [(f"{name} ({label})", qps) for name, d in plot.items() for label, qps in d.items()]
    return section


def plot_qps(section: Section, path: Path) -> bool:
    return plot_bars(section, path, "single-query QPS (higher is better)", highlight="vecdb", digits=0)
