"""The LLM-memory stacks' hybrid (dense + sparse) paths, unchanged, against a live vecdb server.

mem0 ``Memory`` on the Qdrant store (a ``bm25`` sparse vector with ``modifier: idf`` in every
collection it creates), LangChain ``RetrievalMode.SPARSE``/``HYBRID`` (server-side RRF and DBSF
over two prefetches), LlamaIndex ``enable_hybrid=True`` (a batch of a dense and a sparse query,
fused on the client), sync and async, and Haystack's sparse and hybrid retrievers. Every embedder
is deterministic and local (``tests/hybrid_words.py``; mem0 gets fastembed's real BM25, run from a
local folder), so each expected answer is worked out here by brute force, and fusion by the
oracle's own functions (qdrant-client local mode).
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.hybrid.fusion import distribution_based_score_fusion

from tests.harness import ServerProcess
from tests.hybrid_words import (
    DIM,
    assert_ranked,
    cosine,
    dense,
    fused_determined,
    indices_values,
    rrf,
    sparse_doc,
    sparse_query,
    sparse_scores,
)

# mem0 reads these at import: no telemetry (PostHog, and a "mem0migrations" collection in a local
# Qdrant under ~/.mem0) and no writes to the home directory.
os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "vecdb-tests-mem0"))

# ---------------------------------------------------------------- the corpus (LangChain, LlamaIndex, Haystack)

VOCAB = {
    "cats": "cats purr sleep whiskers kitten windows warm fur",
    "dogs": "dogs bark fetch sticks parks leash puppy tail",
    "rust": "rust borrow checker ownership lifetimes compile cargo traits",
    "python": "python interpreter indentation imports packages pip typing asyncio",
    "coffee": "coffee espresso beans roast grind brew crema latte",
}


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    meta: dict[str, Any]


def _corpus() -> list[Doc]:
    """30 notes, six a topic, of 4-9 words drawn from the topic (so term frequencies vary) plus
    words every topic shares, so that dense and sparse rankings differ and rarely tie."""
    rng = random.Random(15)
    docs: list[Doc] = []
    for topic, vocab in VOCAB.items():
        words = vocab.split()
        for i in range(6):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
            text = f"{body} {rng.choice(['note', 'memo', 'today'])} {i}"
            meta = {"topic": topic, "n": i, "user": "ann" if i % 2 else "bob"}
            docs.append(Doc(str(uuid.UUID(int=len(docs) + 1)), text, meta))
    return docs


DOCS = _corpus()
BY_ID = {d.id: d for d in DOCS}


def _dense_scores(query: str, keep: Callable[[Doc], bool] = lambda d: True) -> dict[str, float]:
    q = dense(query)
    return {d.id: cosine(dense(d.text), q) for d in DOCS if keep(d)}


def _sparse_scores(query: str, keep: Callable[[Doc], bool] = lambda d: True, *, use_idf: bool = False) -> dict:
    """Brute-force sparse scores of the kept docs; IDF, when on, is over every live doc (Qdrant's
    collection-wide statistics), not only the kept ones."""
    scores = sparse_scores({d.id: sparse_doc(d.text) for d in DOCS}, sparse_query(query), use_idf=use_idf)
    return {k: v for k, v in scores.items() if keep(BY_ID[str(k)])}


def _is_ann(d: Doc) -> bool:
    return d.meta["user"] == "ann"


# ---------------------------------------------------------------- LangChain

langchain_qdrant = pytest.importorskip("langchain_qdrant")

from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_qdrant import RetrievalMode, SparseEmbeddings, SparseVector  # noqa: E402


class WordEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [dense(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return dense(text)


class WordSparse(SparseEmbeddings):
    """Term share per word for documents, hashed weights for queries (``tests.hybrid_words``)."""

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [SparseVector(indices=i, values=v) for i, v in (indices_values(sparse_doc(t)) for t in texts)]

    def embed_query(self, text: str) -> SparseVector:
        indices, values = indices_values(sparse_query(text))
        return SparseVector(indices=indices, values=values)


def _lc_pairs(scored: list) -> list[tuple[str, float]]:
    return [(doc.metadata["_id"], score) for doc, score in scored]


def _lc_store(server: ServerProcess, mode: RetrievalMode, name: str) -> Any:
    return langchain_qdrant.QdrantVectorStore.from_texts(
        [d.text for d in DOCS],
        WordEmbeddings() if mode != RetrievalMode.SPARSE else None,
        metadatas=[d.meta for d in DOCS],
        ids=[d.id for d in DOCS],
        url=server.url,
        collection_name=name,
        retrieval_mode=mode,
        sparse_embedding=WordSparse(),
    )


ANN = models.Filter(must=[models.FieldCondition(key="metadata.user", match=models.MatchValue(value="ann"))])


def _dbsf(scores: list[dict[str, float]], rankings: list[list[str]]) -> dict[str, float]:
    """Distribution-based score fusion of ranked lists, by qdrant-client's local mode (the oracle)."""
    responses = [
        [models.ScoredPoint(id=i, version=0, score=s[i]) for i in ranking]
        for s, ranking in zip(scores, rankings, strict=True)
    ]
    return {str(p.id): p.score for p in distribution_based_score_fusion(responses, limit=10**6)}


def test_langchain_sparse(server: ServerProcess) -> None:
    name = "lcs_" + uuid.uuid4().hex[:8]
    store = _lc_store(server, RetrievalMode.SPARSE, name)
    client = QdrantClient(url=server.url, check_compatibility=False)
    info = client.get_collection(name)
    assert info.points_count == len(DOCS)
    assert not info.config.params.vectors  # sparse only: no dense vector at all
    assert set(info.config.params.sparse_vectors or {}) == {store.sparse_vector_name}

    for query in ["cats purr warm", "espresso beans roast grind", "borrow checker"]:
        want = _sparse_scores(query)
        assert_ranked(_lc_pairs(store.similarity_search_with_score(query, k=5)), want, 5)
    query = "dogs fetch sticks"
    want = _sparse_scores(query, _is_ann)
    assert_ranked(_lc_pairs(store.similarity_search_with_score(query, k=4, filter=ANN)), want, 4)
    assert store.similarity_search("zebra giraffe", k=3) == []  # no shared term, no hit

    # a second process reopens the memory (from_existing_collection validates the sparse config), deletes, adds
    again = langchain_qdrant.QdrantVectorStore.from_existing_collection(
        collection_name=name, url=server.url, retrieval_mode=RetrievalMode.SPARSE, sparse_embedding=WordSparse()
    )
    best = again.similarity_search("cats purr warm", k=1)[0]
    assert again.delete([best.metadata["_id"]]) is True
    assert best.metadata["_id"] not in [d.metadata["_id"] for d in again.similarity_search("cats purr warm", k=30)]
    added = again.add_texts(["zebra giraffe savanna"], metadatas=[{"topic": "zoo", "n": 0, "user": "ann"}])
    assert [uuid.UUID(d.metadata["_id"]) for d in again.similarity_search("zebra", k=3)] == [
        uuid.UUID(i) for i in added
    ]
    client.delete_collection(name)


def test_langchain_hybrid(server: ServerProcess) -> None:
    name = "lch_" + uuid.uuid4().hex[:8]
    store = _lc_store(server, RetrievalMode.HYBRID, name)
    client = QdrantClient(url=server.url, check_compatibility=False)
    info = client.get_collection(name)
    assert isinstance(info.config.params.vectors, dict) and set(info.config.params.vectors) == {store.vector_name}
    assert set(info.config.params.sparse_vectors or {}) == {store.sparse_vector_name}

    k = 4
    for query, keep, flt in [
        ("cats purr warm windows", lambda d: True, None),
        ("espresso roast python packages", lambda d: True, None),
        ("dogs fetch sticks puppy", _is_ann, ANN),
    ]:
        halves = [_dense_scores(query, keep), _sparse_scores(query, keep)]
        # RRF (the default): each prefetch is a top-k of its own, with the filter
        want = fused_determined(halves, k, rrf, k)
        assert_ranked(_lc_pairs(store.similarity_search_with_score(query, k=k, filter=flt)), want, k)
        # DBSF over the same two prefetches, by the oracle's own normalisation
        dbsf = fused_determined(halves, k, functools.partial(_dbsf, halves), k)
        got = store.similarity_search_with_score(
            query, k=k, filter=flt, hybrid_fusion=models.FusionQuery(fusion=models.Fusion.DBSF)
        )
        assert_ranked(_lc_pairs(got), dbsf, k)

    again = langchain_qdrant.QdrantVectorStore.from_existing_collection(
        collection_name=name,
        embedding=WordEmbeddings(),
        url=server.url,
        retrieval_mode=RetrievalMode.HYBRID,
        sparse_embedding=WordSparse(),
    )
    query = "rust ownership lifetimes compile"
    want = fused_determined([_dense_scores(query), _sparse_scores(query)], 3, rrf, 3)
    assert_ranked(_lc_pairs(again.similarity_search_with_score(query, k=3)), want, 3)
    mmr = again.max_marginal_relevance_search("cats purr note", k=3, fetch_k=20)  # dense MMR in a hybrid store
    assert len(mmr) == 3
    client.delete_collection(name)


# ---------------------------------------------------------------- LlamaIndex

llama_qdrant = pytest.importorskip("llama_index.vector_stores.qdrant")

from llama_index.core.schema import MetadataMode, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.vector_stores.qdrant.utils import relative_score_fusion  # noqa: E402


def _sparse_doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    pairs = [indices_values(sparse_doc(t)) for t in texts]
    return [i for i, _ in pairs], [v for _, v in pairs]


def _sparse_query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    pairs = [indices_values(sparse_query(t)) for t in texts]
    return [i for i, _ in pairs], [v for _, v in pairs]


def _li_nodes() -> list[TextNode]:
    return [TextNode(id_=d.id, text=d.text, metadata=d.meta, embedding=dense(d.text)) for d in DOCS]


def _li_sparse_scores(query: str, keep: Callable[[Doc], bool]) -> dict[str, float]:
    """LlamaIndex encodes a node's text *with its metadata* (``MetadataMode.EMBED``) for the sparse half."""
    docs = {n.node_id: sparse_doc(n.get_content(metadata_mode=MetadataMode.EMBED)) for n in _li_nodes()}
    return {str(i): v for i, v in sparse_scores(docs, sparse_query(query)).items() if keep(BY_ID[str(i)])}


def _li_fuse(halves: list[dict[str, float]], rankings: list[list[str]]) -> dict[str, float]:
    """LlamaIndex's own client-side fusion (relative score, alpha 0.5) of the dense and sparse answers."""
    dense_result, sparse_result = (
        VectorStoreQueryResult(
            nodes=[TextNode(id_=i, text=BY_ID[i].text) for i in ranking],
            similarities=[scores[i] for i in ranking],
            ids=list(ranking),
        )
        for scores, ranking in zip(halves, rankings, strict=True)
    )
    fused = relative_score_fusion(dense_result, sparse_result, alpha=0.5, top_k=10**6)
    return dict(zip(fused.ids or [], fused.similarities or [], strict=True))


def _li_pairs(result: VectorStoreQueryResult) -> list[tuple[str, float]]:
    return list(zip(result.ids or [], result.similarities or [], strict=True))


BOB = MetadataFilters(filters=[MetadataFilter(key="user", value="bob")])

LI_QUERIES = [
    ("cats purr warm windows", None, lambda d: True),
    ("coffee espresso crema", None, lambda d: True),
    ("python typing asyncio imports", BOB, lambda d: d.meta["user"] == "bob"),
]


def _li_check(query_fn: Callable[[VectorStoreQuery], VectorStoreQueryResult]) -> None:
    """Sparse, dense and hybrid queries through one store's ``query``/``aquery``, against brute force."""
    k = 4
    for text, filters, keep in LI_QUERIES:
        dense_scores, sparse = _dense_scores(text, keep), _li_sparse_scores(text, keep)
        base: dict[str, Any] = {
            "query_embedding": dense(text),
            "query_str": text,
            "similarity_top_k": k,
            "filters": filters,
        }

        got = query_fn(VectorStoreQuery(**base, mode=VectorStoreQueryMode.SPARSE, sparse_top_k=k))
        assert_ranked(_li_pairs(got), sparse, k)
        got = query_fn(VectorStoreQuery(**base))  # default mode in a hybrid store: the dense half alone
        assert_ranked(_li_pairs(got), dense_scores, k)
        # hybrid: the server answers both halves (one batch), LlamaIndex fuses them (relative score)
        got = query_fn(VectorStoreQuery(**base, mode=VectorStoreQueryMode.HYBRID, sparse_top_k=k, alpha=0.5))
        want = fused_determined([dense_scores, sparse], k, functools.partial(_li_fuse, [dense_scores, sparse]), k)
        assert_ranked(_li_pairs(got), want, k)


def test_llamaindex_hybrid_sync(server: ServerProcess) -> None:
    name = "lih_" + uuid.uuid4().hex[:8]
    client = QdrantClient(url=server.url, check_compatibility=False)
    store = llama_qdrant.QdrantVectorStore(
        collection_name=name,
        client=client,
        enable_hybrid=True,
        sparse_doc_fn=_sparse_doc_fn,
        sparse_query_fn=_sparse_query_fn,
    )
    nodes = _li_nodes()
    assert store.add(nodes) == [n.node_id for n in nodes]
    info = client.get_collection(name)
    assert info.points_count == len(nodes)
    assert set(info.config.params.sparse_vectors or {}) == {store.sparse_vector_name}
    _li_check(store.query)

    # a fresh store over the same collection (an app restart) finds the sparse vectors by name
    again = llama_qdrant.QdrantVectorStore(
        collection_name=name,
        client=QdrantClient(url=server.url, check_compatibility=False),
        enable_hybrid=True,
        sparse_doc_fn=_sparse_doc_fn,
        sparse_query_fn=_sparse_query_fn,
    )
    got = again.query(
        VectorStoreQuery(query_str="borrow checker", similarity_top_k=2, mode=VectorStoreQueryMode.SPARSE)
    )
    assert [BY_ID[i].meta["topic"] for i in got.ids or []] == ["rust", "rust"]
    store.delete_nodes(node_ids=[got.ids[0]])  # type: ignore[index]
    after = again.query(
        VectorStoreQuery(query_str="borrow checker", similarity_top_k=30, mode=VectorStoreQueryMode.SPARSE)
    )
    assert got.ids[0] not in (after.ids or [])  # type: ignore[index]
    store.clear()
    assert not client.collection_exists(name)


def test_llamaindex_hybrid_async(server: ServerProcess) -> None:
    name = "lia_" + uuid.uuid4().hex[:8]

    async def scenario() -> None:
        aclient = AsyncQdrantClient(url=server.url, check_compatibility=False)
        store = llama_qdrant.QdrantVectorStore(
            collection_name=name,
            aclient=aclient,
            enable_hybrid=True,
            sparse_doc_fn=_sparse_doc_fn,
            sparse_query_fn=_sparse_query_fn,
        )
        nodes = _li_nodes()
        assert await store.async_add(nodes) == [n.node_id for n in nodes]
        assert (await aclient.count(name)).count == len(nodes)
        queries = []
        k = 4
        for text, filters, _ in LI_QUERIES:
            base: dict[str, Any] = {
                "query_embedding": dense(text),
                "query_str": text,
                "similarity_top_k": k,
                "filters": filters,
            }
            queries += [
                VectorStoreQuery(**base, mode=VectorStoreQueryMode.SPARSE, sparse_top_k=k),
                VectorStoreQuery(**base),
                VectorStoreQuery(**base, mode=VectorStoreQueryMode.HYBRID, sparse_top_k=k, alpha=0.5),
            ]
        answers = [await store.aquery(q) for q in queries]
        # the same brute-force checks as the sync test, fed with the async answers in the same order
        replay = iter(answers)
        _li_check(lambda q: next(replay))
        await store.aclear()
        assert not await aclient.collection_exists(name)
        await aclient.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- Haystack

pytest.importorskip("haystack_integrations.document_stores.qdrant")

from haystack import Document  # noqa: E402
from haystack.dataclasses import SparseEmbedding  # noqa: E402
from haystack_integrations.components.retrievers.qdrant import (  # noqa: E402
    QdrantEmbeddingRetriever,
    QdrantHybridRetriever,
    QdrantSparseEmbeddingRetriever,
)
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore  # noqa: E402


def _hs_documents() -> list[Document]:
    documents = []
    for d in DOCS:
        indices, values = indices_values(sparse_doc(d.text))
        documents.append(
            Document(
                id=d.id,
                content=d.text,
                meta=d.meta,
                embedding=dense(d.text),
                sparse_embedding=SparseEmbedding(indices=indices, values=values),
            )
        )
    return documents


def _hs_query(text: str) -> SparseEmbedding:
    indices, values = indices_values(sparse_query(text))
    return SparseEmbedding(indices=indices, values=values)


def _hs_pairs(result: dict) -> list[tuple[str, float]]:
    return [(doc.id, doc.score) for doc in result["documents"]]


HS_PREFETCH_LIMIT = 10  # Haystack's hybrid prefetches carry no limit: Qdrant's default (10) applies


def test_haystack_sparse_and_hybrid(server: ServerProcess) -> None:
    name = "hs_" + uuid.uuid4().hex[:8]
    store = QdrantDocumentStore(
        url=server.url,
        index=name,
        embedding_dim=DIM,
        use_sparse_embeddings=True,
        sparse_idf=True,
        similarity="cosine",
        recreate_index=True,
        progress_bar=False,
    )
    assert store.write_documents(_hs_documents()) == len(DOCS)
    assert store.count_documents() == len(DOCS)
    client = QdrantClient(url=server.url, check_compatibility=False)
    sparse_config = (client.get_collection(name).config.params.sparse_vectors or {})["text-sparse"]
    assert sparse_config.modifier == models.Modifier.IDF

    sparse_retriever = QdrantSparseEmbeddingRetriever(document_store=store, top_k=5)
    dense_retriever = QdrantEmbeddingRetriever(document_store=store, top_k=5)
    hybrid = QdrantHybridRetriever(document_store=store, top_k=5)
    cats_or_dogs = {"field": "meta.topic", "operator": "in", "value": ["cats", "dogs"]}
    for query, filters, keep in [
        ("cats purr warm fur", None, lambda d: True),
        ("grind beans brew latte", None, lambda d: True),
        ("puppy kitten sleep", cats_or_dogs, lambda d: d.meta["topic"] in ("cats", "dogs")),
    ]:
        sparse = _sparse_scores(query, keep, use_idf=True)  # IDF over the whole collection, the filter after
        dense_scores = _dense_scores(query, keep)
        got = sparse_retriever.run(query_sparse_embedding=_hs_query(query), filters=filters)
        assert_ranked(_hs_pairs(got), sparse, 5)
        got = dense_retriever.run(query_embedding=dense(query), filters=filters)
        assert_ranked(_hs_pairs(got), dense_scores, 5)

        want = fused_determined([sparse, dense_scores], HS_PREFETCH_LIMIT, rrf, 5)
        got = hybrid.run(query_embedding=dense(query), query_sparse_embedding=_hs_query(query), filters=filters)
        assert_ranked(_hs_pairs(got), want, 5)

    # a second store object opens the existing collection (validating its sparse config)
    again = QdrantDocumentStore(
        url=server.url, index=name, embedding_dim=DIM, use_sparse_embeddings=True, sparse_idf=True, progress_bar=False
    )
    assert again.count_documents() == len(DOCS)
    store.delete_documents([DOCS[0].id])
    assert again.count_documents() == len(DOCS) - 1

    # delete_all_documents sends a filter with an empty `must`: it matches every point
    store.delete_all_documents()
    assert store.count_documents() == 0
    assert client.collection_exists(name)
    assert store.write_documents(_hs_documents()[:3]) == 3
    got = QdrantSparseEmbeddingRetriever(document_store=store, top_k=3).run(query_sparse_embedding=_hs_query("note"))
    assert {doc.id for doc in got["documents"]} <= {d.id for d in DOCS[:3]}
    client.delete_collection(name)


# ---------------------------------------------------------------- mem0

mem0 = pytest.importorskip("mem0")
fastembed = pytest.importorskip("fastembed")

from mem0.configs.llms.base import BaseLlmConfig  # noqa: E402
from mem0.utils.factory import EmbedderFactory, LlmFactory  # noqa: E402
from mem0.utils.scoring import get_bm25_params, normalize_bm25  # noqa: E402
from mem0.utils.spacy_models import get_nlp_lemma  # noqa: E402

# stopwords for fastembed's English BM25, read from the model folder (the real list is a download away)
BM25_STOPWORDS = ["a", "an", "and", "at", "every", "i", "in", "is", "my", "of", "on", "the", "to"]


@dataclass
class Rec:
    text: str
    user: str | None
    agent: str | None
    run: str | None
    meta: dict[str, Any] = field(default_factory=dict)

    def payload_view(self) -> dict[str, Any]:
        """The fields mem0's filters address, as mem0 stores them (ids and metadata top level)."""
        ids = {"user_id": self.user, "agent_id": self.agent, "run_id": self.run}
        return {**{k: v for k, v in ids.items() if v is not None}, **self.meta}


@dataclass
class Mem0Env:
    config: dict[str, Any]
    bm25: Any  # a fastembed Bm25 equal to the one mem0 builds: the brute force encodes with it too
    name: str

    def bm25_vector(self, text: str) -> dict[int, float]:
        """mem0 encodes queries with ``embed`` (document weights), not ``query_embed``: so do we."""
        emb = next(iter(self.bm25.embed([text])))
        return dict(zip(emb.indices.tolist(), emb.values.tolist(), strict=True))


@pytest.fixture
def mem0_env(server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mem0Env]:
    """mem0 offline: the test's embedder and a refusing LLM behind a listed provider name, and
    fastembed's BM25 from a local folder (``specific_model_path``) instead of the Hugging Face hub."""
    assert get_nlp_lemma() is None, "spaCy changes mem0's BM25 text (lemmas, entities): the brute force assumes none"
    monkeypatch.setitem(EmbedderFactory.provider_to_class, "langchain", "tests.mem0_offline.WordEmbedder")
    monkeypatch.setitem(LlmFactory.provider_to_class, "langchain", ("tests.mem0_offline.NoLLM", BaseLlmConfig))
    model_dir = tmp_path / "bm25"
    model_dir.mkdir()
    (model_dir / "english.txt").write_text("\n".join(BM25_STOPWORDS) + "\n")
    real = fastembed.SparseTextEmbedding

    class LocalSparseTextEmbedding(real):  # type: ignore[misc, valid-type]
        """fastembed's class with the model folder filled in (a subclass, not a partial: qdrant-client
        probes ``fastembed.SparseTextEmbedding.list_supported_models()`` when a client starts)."""

        def __init__(self, model_name: str, **kwargs: Any) -> None:
            super().__init__(model_name, specific_model_path=str(model_dir), **kwargs)

    monkeypatch.setattr(fastembed, "SparseTextEmbedding", LocalSparseTextEmbedding)
    name = "mem0_" + uuid.uuid4().hex[:8]
    config = {
        "vector_store": {
            "provider": "qdrant",
            "config": {"collection_name": name, "host": "127.0.0.1", "port": server.port, "embedding_model_dims": DIM},
        },
        "embedder": {"provider": "langchain", "config": {}},
        "llm": {"provider": "langchain", "config": {}},
        "history_db_path": str(tmp_path / "history.db"),
    }
    yield Mem0Env(config, real("Qdrant/bm25", specific_model_path=str(model_dir)), name)
    client = QdrantClient(url=server.url, check_compatibility=False)
    if client.collection_exists(name):
        client.delete_collection(name)


MEMORIES = [
    ("I drink espresso every morning before work", "alice", "helper", "trip", {"topic": "coffee", "n": 1}),
    ("My cat Miso purrs on the warm window sill", "alice", "helper", None, {"topic": "pets", "n": 2}),
    ("Alice prefers rust over python for systems work", "alice", None, None, {"topic": "code", "n": 3}),
    ("Alice roasts her own coffee beans on weekends", "alice", None, "trip", {"topic": "coffee", "n": 4}),
    ("Alice is allergic to peanuts and shellfish", "alice", "helper", None, {"topic": "health", "n": 5}),
    ("Bob walks his dog Rex in the park at dawn", "bob", None, None, {"topic": "pets", "n": 1}),
    ("Bob drinks green tea instead of coffee", "bob", "helper", None, {"topic": "coffee", "n": 2}),
    ("Bob writes python scripts for his espresso machine", "bob", None, "trip", {"topic": "code", "n": 3}),
    ("The helper agent answers in short friendly sentences", None, "helper", None, {"topic": "style", "n": 1}),
]


def _matches(rec: Rec, flt: Callable[[dict[str, Any]], bool]) -> bool:
    return flt(rec.payload_view())


def _mem0_expected(env: Mem0Env, live: dict[str, Rec], query: str, keep: Callable[[dict], bool]) -> dict:
    """mem0's hybrid score by brute force: cosine (>= 0.1 to count) plus the BM25 score (dot
    product with Qdrant's IDF over every live point) squashed by mem0's sigmoid, halved when the
    keyword half found anything (``mem0.utils.scoring.score_and_rank``)."""
    q = dense(query)
    semantic = {i: cosine(dense(r.text), q) for i, r in live.items() if _matches(r, keep)}
    raw = sparse_scores({i: env.bm25_vector(r.text) for i, r in live.items()}, env.bm25_vector(query), use_idf=True)
    midpoint, steepness = get_bm25_params(query, lemmatized=query)
    bm25 = {i: normalize_bm25(s, midpoint, steepness) for i, s in raw.items() if s > 0 and i in semantic}
    divisor = 2.0 if bm25 else 1.0
    combined = {i: min((s + bm25.get(i, 0.0)) / divisor, 1.0) for i, s in semantic.items() if s >= 0.1}
    return {"combined": combined, "semantic": semantic, "bm25": bm25, "raw": raw}


def _check_search(memory: Any, env: Mem0Env, live: dict[str, Rec], query: str, filters: dict, keep: Callable) -> None:
    want = _mem0_expected(env, live, query, keep)
    got = memory.search(query, filters=filters, top_k=5, explain=True)["results"]
    assert_ranked([(r["id"], r["score"]) for r in got], want["combined"], 5)
    for r in got:
        details = r["score_details"]
        assert details["semantic_score"] == pytest.approx(want["semantic"][r["id"]], abs=1e-5)
        assert details["bm25_score"] == pytest.approx(want["bm25"].get(r["id"], 0.0), abs=1e-5)
        assert r["memory"] == live[r["id"]].text
    # the keyword half straight from the store: mem0 swallows its errors (None), so ask it directly
    hits = memory.vector_store.keyword_search(query, top_k=10, filters=filters)
    assert hits is not None, "mem0's BM25 query failed (mem0 logs it at debug level and answers None)"
    raw = {i: s for i, s in want["raw"].items() if _matches(live[i], keep)}
    assert_ranked([(str(p.id), p.score) for p in hits], raw, 10)


def _add(memory: Any, live: dict[str, Rec], text: str, user: Any, agent: Any, run: Any, meta: dict) -> str:
    result = memory.add(text, user_id=user, agent_id=agent, run_id=run, metadata=meta, infer=False)["results"]
    assert [(r["memory"], r["event"]) for r in result] == [(text, "ADD")]
    live[result[0]["id"]] = Rec(text, user, agent, run, meta)
    return result[0]["id"]


def test_mem0_memory(server: ServerProcess, mem0_env: Mem0Env) -> None:
    memory = mem0.Memory.from_config(mem0_env.config)
    client = QdrantClient(url=server.url, check_compatibility=False)
    name = mem0_env.name

    def assert_mem0_collection() -> None:
        params = client.get_collection(name).config.params
        assert isinstance(params.vectors, models.VectorParams)
        assert params.vectors.size == DIM and params.vectors.distance == models.Distance.COSINE
        assert (params.sparse_vectors or {})["bm25"].modifier == models.Modifier.IDF

    assert_mem0_collection()
    schema = client.get_collection(name).payload_schema
    assert {"user_id", "agent_id", "run_id", "actor_id"} <= set(schema)
    assert memory.vector_store._get_bm25_encoder() is not None  # BM25 on: mem0 would silently go dense-only

    live: dict[str, Rec] = {}
    ids = [_add(memory, live, *m) for m in MEMORIES]
    assert client.count(name).count == len(MEMORIES)
    stored = client.retrieve(name, [ids[0]], with_vectors=True)[0]
    assert isinstance(stored.vector, dict) and set(stored.vector) == {
        "",
        "bm25",
    }  # mem0 names the default dense vector "" beside its sparse one

    def alice(p: dict) -> bool:
        return p.get("user_id") == "alice"

    def helper(p: dict) -> bool:
        return p.get("agent_id") == "helper"

    def bob(p: dict) -> bool:
        return p.get("user_id") == "bob"

    searches: list[tuple[str, dict, Callable[[dict], bool]]] = [
        ("espresso coffee", {"user_id": "alice"}, alice),
        ("coffee beans", {"user_id": "alice", "agent_id": "helper"}, lambda p: alice(p) and helper(p)),
        ("espresso python", {"run_id": "trip"}, lambda p: p.get("run_id") == "trip"),
        ("coffee", {"user_id": "bob", "topic": "coffee"}, lambda p: bob(p) and p["topic"] == "coffee"),
        ("coffee work", {"user_id": "alice", "n": {"gte": 3}}, lambda p: alice(p) and p["n"] >= 3),
        ("cat dog park", {"agent_id": "helper", "topic": {"in": ["pets", "style"]}},
         lambda p: helper(p) and p["topic"] in ("pets", "style")),
    ]  # fmt: skip
    for query, filters, keep in searches:
        _check_search(memory, mem0_env, live, query, filters, keep)

    listed = memory.get_all(filters={"user_id": "alice"})["results"]
    assert sorted(r["id"] for r in listed) == sorted(i for i, r in live.items() if r.user == "alice")
    listed = memory.get_all(filters={"agent_id": "helper"}, top_k=100)["results"]
    assert sorted(r["id"] for r in listed) == sorted(i for i, r in live.items() if r.agent == "helper")
    assert memory.get(ids[2])["memory"] == MEMORIES[2][0]

    # update: new text, new dense and BM25 vectors; the old words no longer find it by keyword
    memory.update(ids[0], text="Alice switched to matcha lattes in the morning")
    live[ids[0]].text = "Alice switched to matcha lattes in the morning"
    assert memory.get(ids[0])["memory"] == live[ids[0]].text
    _check_search(memory, mem0_env, live, "matcha lattes", {"user_id": "alice"}, alice)
    _check_search(memory, mem0_env, live, "espresso", {"user_id": "alice"}, alice)
    history = memory.history(ids[0])
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history] == [
        ("ADD", None, MEMORIES[0][0]),
        ("UPDATE", MEMORIES[0][0], live[ids[0]].text),
    ]

    # delete one; delete_all of a user (mem0 scrolls with the filter and deletes point by point)
    memory.delete(ids[1])
    del live[ids[1]]
    assert memory.get(ids[1]) is None
    assert [h["event"] for h in memory.history(ids[1])] == ["ADD", "DELETE"]
    _check_search(memory, mem0_env, live, "cat window", {"user_id": "alice"}, alice)
    memory.delete_all(user_id="bob")
    for i in [i for i, r in live.items() if r.user == "bob"]:
        del live[i]
    assert memory.get_all(filters={"user_id": "bob"})["results"] == []
    assert client.count(name).count == len(live)
    _check_search(
        memory,
        mem0_env,
        live,
        "python coffee espresso",
        {"agent_id": "helper"},
        lambda p: p.get("agent_id") == "helper",
    )

    # reset: the collection is dropped and created again (with its bm25 vector), history emptied
    memory.reset()
    assert_mem0_collection()
    assert client.count(name).count == 0
    assert memory.history(ids[0]) == []
    live.clear()
    new_id = _add(memory, live, "Carol keeps bees and sells honey", "carol", None, None, {"topic": "hobby", "n": 1})
    _check_search(memory, mem0_env, live, "honey bees", {"user_id": "carol"}, lambda p: p.get("user_id") == "carol")
    assert memory.search("honey", filters={"user_id": "alice"})["results"] == []
    assert memory.get(new_id)["memory"] == "Carol keeps bees and sells honey"

    # a second process opens the same memory: the bm25 slot is found, keyword search stays on
    again = mem0.Memory.from_config(mem0_env.config)
    assert again.vector_store._has_bm25_slot
    _check_search(again, mem0_env, live, "bees", {"user_id": "carol"}, lambda p: p.get("user_id") == "carol")
    again.close()
    memory.close()


def test_mem0_dense_half_matches_brute_force(server: ServerProcess, mem0_env: Mem0Env) -> None:
    """mem0's semantic half on its own (``vector_store.search``): cosine over the filtered memories."""
    memory = mem0.Memory.from_config(mem0_env.config)
    live: dict[str, Rec] = {}
    for m in MEMORIES:
        _add(memory, live, *m)
    query = "coffee espresso beans"
    hits = memory.vector_store.search(query, dense(query), top_k=4, filters={"user_id": "alice"})
    want = {i: cosine(dense(r.text), dense(query)) for i, r in live.items() if r.user == "alice"}
    assert_ranked([(str(p.id), p.score) for p in hits], want, 4)
    np.testing.assert_allclose([p.score for p in hits], sorted(want.values(), reverse=True)[:4], atol=1e-5)
    memory.close()
