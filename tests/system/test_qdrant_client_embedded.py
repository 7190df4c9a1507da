"""``vecdb.QdrantClient(path=...)``: qdrant-client's own class over the in-process engine.

Its answers are qdrant-client's models and equal those of qdrant-client's local mode; errors are both
what code written against a server catches and what code written against local mode catches;
LangChain, LlamaIndex (sync and async), mem0 and Haystack run on it unchanged; then the same data
directory is served by ``vecdb serve`` and answers the same over HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

import vecdb
from tests.harness import start_server
from tests.http import test_frameworks_hybrid as hybrid
from tests.http.test_frameworks import DIM, WordEmbeddings, _assert_top_k, _corpus, _nodes, embed
from tests.http.test_frameworks_hybrid import MEMORIES, Rec, _add, _check_search

mem0_env = hybrid.mem0_env  # the server tests' offline mem0: a word embedder, no LLM, BM25 from a local folder
langchain_qdrant = pytest.importorskip("langchain_qdrant")
llama_qdrant = pytest.importorskip("llama_index.vector_stores.qdrant")

from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)


def _dump(value: Any) -> Any:
    if isinstance(value, models.BaseModel):
        return value.model_dump()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _scores_rounded(value: Any) -> Any:
    """Floats (scores, normalised vectors) to 5 digits; versions left out (local mode says 0, vecdb the
    write that set the point, as a server)."""
    if isinstance(value, dict):
        return {k: _scores_rounded(v) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [_scores_rounded(v) for v in value]
    return round(value, 5) if isinstance(value, float) else value


def test_answers_are_qdrant_clients_models_equal_to_local_mode(tmp_path: Path) -> None:
    ours = vecdb.QdrantClient(path=tmp_path / "data")
    local = QdrantClient(":memory:")
    assert isinstance(ours, QdrantClient)
    rng = np.random.default_rng(2)
    points = [
        models.PointStruct(
            id=i if i % 4 else str(uuid.UUID(int=i + 1)),
            vector={"": rng.normal(size=6).tolist(), "small": rng.normal(size=2).tolist()},
            payload={
                "user": f"u{i % 5}",
                "n": i,
                "tags": ["a", "b"][: i % 3],
                "at": f"2024-05-{i % 28 + 1:02d}T00:00:00Z",
            },
        )
        for i in range(120)
    ]
    answers: list[tuple[Any, Any]] = []
    for c in (ours, local):
        c.create_collection(
            "mem",
            vectors_config={
                "": models.VectorParams(size=6, distance=models.Distance.COSINE),
                "small": models.VectorParams(size=2, distance=models.Distance.EUCLID),
            },
        )
        if c is ours:  # (local mode warns that its indexes do nothing; vecdb's facet and order_by need them)
            c.create_payload_index("mem", "user", models.PayloadSchemaType.KEYWORD)
            c.create_payload_index("mem", "n", models.PayloadSchemaType.INTEGER)
        c.upsert("mem", points)
        c.delete("mem", models.PointIdsList(points=[5, 6, 7]))
        c.set_payload("mem", {"seen": True}, points=[1, 2])
    flt = models.Filter(must=[models.FieldCondition(key="user", match=models.MatchAny(any=["u1", "u3"]))])
    q = rng.normal(size=6).tolist()
    calls = [
        lambda c: c.query_points("mem", query=q, limit=7),
        lambda c: c.query_points("mem", query=q, query_filter=flt, limit=5, with_vectors=True),
        lambda c: c.query_points("mem", query=[0.5, -1.0], using="small", limit=4, with_payload=["n"]),
        lambda c: c.query_points(
            "mem",
            prefetch=[models.Prefetch(query=q, limit=20), models.Prefetch(query=[1.0, 0.0], using="small", limit=20)],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=6,
        ),
        lambda c: c.query_batch_points(
            "mem", [models.QueryRequest(query=q, limit=3), models.QueryRequest(query=q, limit=2, filter=flt)]
        ),
        lambda c: c.query_points_groups("mem", "user", query=q, limit=3, group_size=2),
        lambda c: c.scroll("mem", limit=5, with_payload=True),
        lambda c: c.scroll(
            "mem", scroll_filter=flt, limit=50, order_by=models.OrderBy(key="n", direction=models.Direction.DESC)
        ),
        lambda c: c.retrieve("mem", [1, 2, 3, str(uuid.UUID(int=9))], with_vectors=["small"]),
        lambda c: c.count("mem", count_filter=flt),
        lambda c: c.facet("mem", "user", limit=3),
        lambda c: c.collection_exists("mem"),
        lambda c: c.collection_exists("other"),
    ]
    for call in calls:
        answers.append((call(ours), call(local)))
    for got, want in answers:
        assert type(got) is type(want)
        assert _scores_rounded(_dump(got)) == _scores_rounded(_dump(want))
    info = ours.get_collection("mem")
    assert isinstance(info, models.CollectionInfo)
    assert info.config.params.vectors["small"].size == 2 and info.points_count == 117
    assert isinstance(ours.get_collections(), models.CollectionsResponse)
    ours.close()


def test_errors_read_as_a_servers_and_as_local_modes(tmp_path: Path) -> None:
    c = vecdb.QdrantClient(path=tmp_path / "data")
    with pytest.raises(UnexpectedResponse) as info:
        c.get_collection("missing")
    assert info.value.status_code == 404 and isinstance(info.value, ValueError)
    assert "Collection `missing` doesn't exist" in info.value.structured()["status"]["error"]
    c.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    with pytest.raises(ValueError, match="dimension"):
        c.upsert("c", [models.PointStruct(id=1, vector=[1.0, 2.0, 3.0])])
    with pytest.raises(vecdb.client.qdrant.NotSupported) as refused:
        c.list_shard_keys("c")
    assert refused.value.status_code == 400 and "list_shard_keys" in str(refused.value)
    assert isinstance(c.search_matrix_pairs("c"), models.SearchMatrixPairsResponse)
    assert vecdb.QdrantClient(":memory:").get_collections().collections == []  # without path: qdrant-client's own
    c.close()


def test_frameworks_run_in_process_then_the_directory_is_served(tmp_path: Path) -> None:
    data = tmp_path / "data"
    client = vecdb.QdrantClient(path=data)

    # LangChain: the store takes the client as it is (its constructor checks the collection's config)
    client.create_collection("lc", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    store = langchain_qdrant.QdrantVectorStore(client=client, collection_name="lc", embedding=WordEmbeddings())
    texts, metadatas = _corpus()
    ids = [str(uuid.UUID(int=i + 1)) for i in range(len(texts))]
    store.add_texts(texts, metadatas=metadatas, ids=ids)
    query = "why do cats purr"
    _assert_top_k(texts, query, [True] * len(texts), 4, [d.page_content for d in store.similarity_search(query, k=4)])
    flt = models.Filter(must=[models.FieldCondition(key="metadata.user", match=models.MatchValue(value="ann"))])
    keep = [m["user"] == "ann" for m in metadatas]
    _assert_top_k(
        texts, "dogs fetch", keep, 5, [d.page_content for d in store.similarity_search("dogs fetch", k=5, filter=flt)]
    )
    varied = store.max_marginal_relevance_search("cats purr note", k=5, fetch_k=30, lambda_mult=0.9)
    assert len({d.metadata["topic"] for d in varied}) >= 3
    assert store.delete([ids[0]]) is True

    # LlamaIndex: detects the vector layout from get_collection's models
    li = llama_qdrant.QdrantVectorStore(collection_name="li", client=client)
    nodes = _nodes()
    assert li.add(nodes) == [n.node_id for n in nodes]
    node_texts = [n.text for n in nodes]
    result = li.query(VectorStoreQuery(query_embedding=embed("rust ownership lifetimes"), similarity_top_k=4))
    _assert_top_k(
        node_texts, "rust ownership lifetimes", [True] * len(nodes), 4, [n.get_content() for n in result.nodes]
    )
    filters = MetadataFilters(filters=[MetadataFilter(key="n", value=2, operator=FilterOperator.GTE)])
    result = li.query(VectorStoreQuery(query_embedding=embed("coffee espresso"), similarity_top_k=6, filters=filters))
    by_id = {n.node_id: n.text for n in nodes}
    _assert_top_k(
        node_texts, "coffee espresso", [n.metadata["n"] >= 2 for n in nodes], 6, [by_id[i] for i in result.ids]
    )
    li.delete(ref_doc_id="doc-dogs")
    client.close()

    # the same directory under `vecdb serve`: the same answers over HTTP
    server = start_server(data)
    try:
        remote = QdrantClient(url=server.url, check_compatibility=False)
        served = langchain_qdrant.QdrantVectorStore(client=remote, collection_name="lc", embedding=WordEmbeddings())
        keep_all = [i != 0 for i in range(len(texts))]
        _assert_top_k(texts, query, keep_all, 4, [d.page_content for d in served.similarity_search(query, k=4)])
        assert remote.count("lc").count == len(texts) - 1
        assert remote.count("li").count == len(nodes) - 6
        remote.close()
    finally:
        server.stop()


def test_llamaindex_async_on_the_async_client(tmp_path: Path) -> None:
    async def run() -> None:
        aclient = vecdb.AsyncQdrantClient(path=tmp_path / "data")
        assert isinstance(aclient, AsyncQdrantClient)
        store = llama_qdrant.QdrantVectorStore(collection_name="li", aclient=aclient)
        nodes = _nodes()
        assert await store.async_add(nodes) == [n.node_id for n in nodes]
        result = await store.aquery(VectorStoreQuery(query_embedding=embed("python imports"), similarity_top_k=3))
        texts = [n.text for n in nodes]
        _assert_top_k(texts, "python imports", [True] * len(nodes), 3, [n.get_content() for n in result.nodes])
        await store.adelete(ref_doc_id="doc-python")
        assert (await aclient.count("li")).count == len(nodes) - 6
        await aclient.close()

    asyncio.run(run())


def test_haystack_builds_its_own_client_inside_qdrant_paths(tmp_path: Path) -> None:
    haystack_qdrant = pytest.importorskip("haystack_integrations.document_stores.qdrant")
    from haystack import Document
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever

    texts, metadatas = _corpus()
    with vecdb.qdrant_paths():
        store = haystack_qdrant.QdrantDocumentStore(
            path=str(tmp_path / "data"), index="hs", embedding_dim=DIM, similarity="cosine"
        )
        store.write_documents(
            [Document(content=t, meta=m, embedding=embed(t)) for t, m in zip(texts, metadatas, strict=True)]
        )
        assert isinstance(store._client, vecdb.QdrantClient)
        retriever = QdrantEmbeddingRetriever(document_store=store, top_k=4)
        got = retriever.run(query_embedding=embed("espresso beans"))["documents"]
        _assert_top_k(texts, "espresso beans", [True] * len(texts), 4, [d.content for d in got])
        flt = {"field": "meta.topic", "operator": "==", "value": "dogs"}
        got = retriever.run(query_embedding=embed("espresso beans"), filters=flt, top_k=3)["documents"]
        _assert_top_k(texts, "espresso beans", [m["topic"] == "dogs" for m in metadatas], 3, [d.content for d in got])
        assert store.count_documents() == len(texts)
        store.close()
    assert not isinstance(QdrantClient(":memory:"), vecdb.QdrantClient)  # the block restored qdrant-client's classes


def test_mem0_on_the_in_process_client(tmp_path: Path, mem0_env: Any) -> None:
    """mem0 handed ``vecdb.QdrantClient`` (its ``client`` option): hybrid search (dense + BM25) equals the
    brute force of the server test, filters, update and delete included."""
    import mem0

    client = vecdb.QdrantClient(path=tmp_path / "mem")
    config = dict(mem0_env.config)
    config["vector_store"] = {
        "provider": "qdrant",
        "config": {"collection_name": mem0_env.name, "client": client, "embedding_model_dims": DIM},
    }
    memory = mem0.Memory.from_config(config)
    assert memory.vector_store._get_bm25_encoder() is not None
    live: dict[str, Rec] = {}
    ids = [_add(memory, live, *m) for m in MEMORIES]

    def alice(p: dict) -> bool:
        return p.get("user_id") == "alice"

    _check_search(memory, mem0_env, live, "espresso coffee", {"user_id": "alice"}, alice)
    _check_search(
        memory, mem0_env, live, "coffee work", {"user_id": "alice", "n": {"gte": 3}}, lambda p: alice(p) and p["n"] >= 3
    )
    memory.update(ids[0], text="Alice switched to matcha lattes in the morning")
    live[ids[0]].text = "Alice switched to matcha lattes in the morning"
    _check_search(memory, mem0_env, live, "matcha lattes", {"user_id": "alice"}, alice)
    memory.delete(ids[1])
    del live[ids[1]]
    assert client.count(mem0_env.name).count == len(live)
    memory.close()
    client.close()
