"""LangChain's and LlamaIndex's Qdrant vector stores, unchanged, against a live vecdb server.

The embeddings are a deterministic bag of hashed words, so that "similar" means
"shares words" and every expected answer can be worked out by brute force here.
"""

from __future__ import annotations

import uuid
import zlib

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.harness import ServerProcess

langchain_qdrant = pytest.importorskip("langchain_qdrant")
llama_qdrant = pytest.importorskip("llama_index.vector_stores.qdrant")

from langchain_core.embeddings import Embeddings  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

DIM = 64


def embed(text: str) -> list[float]:
    """Hashed bag of words, unit length: texts sharing words are close."""
    vector = np.zeros(DIM, dtype=np.float64)
    for word in text.lower().split():
        vector[zlib.crc32(word.encode()) % DIM] += 1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).tolist()


class WordEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


TOPICS = {
    "cats": "cats purr and cats sleep on warm windows",
    "dogs": "dogs bark and dogs fetch sticks in parks",
    "rust": "rust borrow checker ownership lifetimes compile",
    "python": "python interpreter indentation imports packages",
    "coffee": "coffee espresso beans roast grind brew",
}


def _corpus() -> tuple[list[str], list[dict]]:
    texts, metadatas = [], []
    for topic, words in TOPICS.items():
        for i in range(6):
            texts.append(f"{words} note {i}")
            metadatas.append({"topic": topic, "n": i, "user": "ann" if i % 2 else "bob"})
    return texts, metadatas


def _similarity(texts: list[str], query: str) -> np.ndarray:
    return np.asarray([embed(t) for t in texts]) @ np.asarray(embed(query))


def _assert_top_k(texts: list[str], query: str, keep: list[bool], k: int, got: list[str]) -> None:
    """``got`` is a brute-force top-k of the kept texts: the same scores rank by rank (any order
    among equal scores), every text a kept one, no text twice."""
    scores = _similarity(texts, query)
    want = np.sort(scores[np.asarray(keep)])[::-1][:k]
    allowed = {t for t, kept in zip(texts, keep, strict=True) if kept}
    assert len(got) == len(want) and len(set(got)) == len(got)
    assert set(got) <= allowed
    np.testing.assert_allclose(_similarity(got, query), want, atol=1e-6)


def test_langchain_memory(server: ServerProcess) -> None:
    store_cls = langchain_qdrant.QdrantVectorStore
    texts, metadatas = _corpus()
    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(texts))]
    name = "lc_" + uuid.uuid4().hex[:8]
    store = store_cls.from_texts(
        texts, WordEmbeddings(), metadatas=metadatas, ids=ids, url=server.url, collection_name=name
    )
    client = QdrantClient(url=server.url)
    assert client.count(name).count == len(texts)

    # similarity search, plain and with metadata filters, equal brute force over the corpus
    query = "why do cats purr"
    got = store.similarity_search(query, k=4)
    _assert_top_k(texts, query, [True] * len(texts), 4, [d.page_content for d in got])
    assert all(d.metadata["topic"] == "cats" for d in got)
    assert got[0].metadata["_id"] in ids and got[0].metadata["_collection_name"] == name
    flt = models.Filter(
        must=[
            models.FieldCondition(key="metadata.user", match=models.MatchValue(value="ann")),
            models.FieldCondition(key="metadata.n", range=models.Range(gte=3)),
        ]
    )
    got = store.similarity_search("dogs fetch", k=5, filter=flt)
    keep = [m["user"] == "ann" and m["n"] >= 3 for m in metadatas]
    _assert_top_k(texts, "dogs fetch", keep, 5, [d.page_content for d in got])
    scored = store.similarity_search_with_score("espresso beans", k=3)
    assert [round(s, 5) for _, s in scored] == sorted((round(s, 5) for _, s in scored), reverse=True)

    # MMR: plain top-5 for "cats" is five near-identical cat notes; MMR reaches other topics
    plain = store.similarity_search("cats purr note", k=5)
    assert {d.metadata["topic"] for d in plain} == {"cats"}
    varied = store.max_marginal_relevance_search("cats purr note", k=5, fetch_k=30, lambda_mult=0.9)
    assert varied[0].page_content == plain[0].page_content
    assert len({d.metadata["topic"] for d in varied}) >= 3
    filtered = store.max_marginal_relevance_search(
        "cats purr note",
        k=3,
        fetch_k=30,
        lambda_mult=0.9,
        filter=models.Filter(must=[models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="rust"))]),
    )
    assert [d.metadata["topic"] for d in filtered] == ["rust"] * 3

    # get_by_ids and delete
    docs = store.get_by_ids([ids[0], ids[7]])
    assert sorted(d.page_content for d in docs) == sorted([texts[0], texts[7]])
    assert store.delete([ids[0], ids[1]]) is True
    assert client.count(name).count == len(texts) - 2
    assert store.get_by_ids([ids[0], ids[1]]) == []

    # a second process reopens the same memory: from_existing_collection validates the config
    again = store_cls.from_existing_collection(collection_name=name, embedding=WordEmbeddings(), url=server.url)
    assert again.similarity_search(query, k=1)[0].metadata["topic"] == "cats"
    added = again.add_texts(["cats again"], metadatas=[{"topic": "cats", "n": 99, "user": "ann"}])
    assert len(added) == 1 and client.count(name).count == len(texts) - 1
    client.delete_collection(name)


def _nodes() -> list[TextNode]:
    texts, metadatas = _corpus()
    nodes = []
    for i, (text, meta) in enumerate(zip(texts, metadatas, strict=True)):
        node = TextNode(id_=str(uuid.UUID(int=1000 + i)), text=text, metadata=meta, embedding=embed(text))
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"doc-{meta['topic']}")
        nodes.append(node)
    return nodes


def test_llamaindex_memory(server: ServerProcess) -> None:
    name = "li_" + uuid.uuid4().hex[:8]
    client = QdrantClient(url=server.url)
    store = llama_qdrant.QdrantVectorStore(collection_name=name, client=client)
    nodes = _nodes()
    texts = [n.text for n in nodes]
    assert store.add(nodes) == [n.node_id for n in nodes]
    assert client.count(name).count == len(nodes)
    assert "doc_id" in client.get_collection(name).payload_schema  # LlamaIndex indexes its ref_doc_id

    query = "rust ownership lifetimes"
    result = store.query(VectorStoreQuery(query_embedding=embed(query), similarity_top_k=4))
    _assert_top_k(texts, query, [True] * len(texts), 4, [n.get_content() for n in result.nodes])
    by_id = {n.node_id: n.text for n in nodes}
    assert [by_id[i] for i in result.ids] == [n.get_content() for n in result.nodes]
    np.testing.assert_allclose(result.similarities, sorted(result.similarities, reverse=True))

    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="user", value="bob"),
            MetadataFilter(key="n", value=2, operator=FilterOperator.GTE),
            MetadataFilter(key="topic", value=["coffee", "python"], operator=FilterOperator.IN),
        ]
    )
    result = store.query(
        VectorStoreQuery(query_embedding=embed("coffee espresso"), similarity_top_k=10, filters=filters)
    )
    keep = [
        n.metadata["user"] == "bob" and n.metadata["n"] >= 2 and n.metadata["topic"] in ("coffee", "python")
        for n in nodes
    ]
    _assert_top_k(texts, "coffee espresso", keep, 10, [by_id[i] for i in result.ids])
    assert len(result.ids) == 4

    # get_nodes: all, by id, by filter
    assert sorted(n.node_id for n in store.get_nodes()) == sorted(n.node_id for n in nodes)
    some = store.get_nodes(node_ids=[nodes[3].node_id, nodes[9].node_id])
    assert sorted(n.get_content() for n in some) == sorted([texts[3], texts[9]])
    dogs = store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="dogs")]))
    assert len(dogs) == 6 and {n.metadata["topic"] for n in dogs} == {"dogs"}

    # delete by ref_doc_id removes that document's nodes only; delete_nodes by id
    store.delete(ref_doc_id="doc-dogs")
    assert client.count(name).count == len(nodes) - 6
    assert store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="dogs")])) == []
    store.delete_nodes(node_ids=[nodes[0].node_id])
    assert client.count(name).count == len(nodes) - 7

    # a fresh store object over the same collection (an app restart) sees the memory
    again = llama_qdrant.QdrantVectorStore(collection_name=name, client=QdrantClient(url=server.url))
    result = again.query(VectorStoreQuery(query_embedding=embed("cats purr"), similarity_top_k=1))
    assert result.nodes[0].metadata["topic"] == "cats"

    store.clear()
    assert not client.collection_exists(name)
