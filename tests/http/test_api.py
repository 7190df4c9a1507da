"""HTTP surface: error shape, root/health routes, API key, body limit, OpenAPI snapshot."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness import start_server
from vecdb.api.openapi import render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http(server, name):
    """Plain HTTP against the session server; ``/collections/c`` is rewritten to a fresh collection."""

    class Rewriting(httpx.Client):
        def request(self, method, url, **kw):  # type: ignore[override]
            return super().request(method, str(url).replace("/collections/c", f"/collections/{name}", 1), **kw)

    with Rewriting(base_url=server.url) as c:
        yield c


def test_error_shape_is_qdrants(http):
    r = http.get("/collections/nope")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == {"status", "time"}
    assert body["status"] == {"error": "Not found: Collection `nope` doesn't exist!"}
    assert isinstance(body["time"], float)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("put", "/collections/c", {"vectors": {"size": 0, "distance": "Cosine"}}, 422, "vectors.size"),
        ("put", "/collections/c", {"vectors": {"size": 4, "distance": "cosine"}}, 400, "distance"),
        ("put", "/collections/c", {"vectors": {"size": 4, "distance": "Cosine", "bogus": 1}}, 400, "bogus"),
        ("put", "/collections/c/points", {"points": [{"id": 1, "vector": [1, 2]}]}, 400, "dimension"),
        ("put", "/collections/c/points", {"points": [{"id": -1, "vector": [1, 2, 3, 4]}]}, 400, "id"),
        ("put", "/collections/c/points", {"points": [{"id": "x-y", "vector": [1, 2, 3, 4]}]}, 400, "x-y"),
        (
            "put",
            "/collections/c/points",
            {"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": [1]}]},
            400,
            "payload",
        ),
        ("post", "/collections/c/points/query", {"query": [1, 2, 3, 4], "limit": 0}, 422, "limit"),
        ("post", "/collections/c/points/query", {"query": [1, 2, 3, 4], "using": "zz"}, 400, "zz"),
        (
            "post",
            "/collections/c/points/query",
            {"query": [1, 2, 3, 4], "filter": {"must": [{"key": "a"}]}},
            400,
            "filter",
        ),
        ("post", "/collections/c/points/query", {"query": {"recommend": {"positive": [[1, 2]]}}}, 400, "recommend"),
        ("post", "/collections/c/points/query", {"query": {"recommend": {"positive": [7]}}}, 404, "No point with id 7"),
        ("post", "/collections/c/points/scroll", {"limit": -5}, 422, "limit"),
    ],
)
def test_client_mistakes_are_4xx_naming_the_problem(http, method, path, body, status, fragment):
    http.put("/collections/c", json={"vectors": {"size": 4, "distance": "Cosine"}})
    r = getattr(http, method)(path, json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["status"]["error"]
    assert http.post("/collections/c/points/count", json={}).json()["result"] == {"count": 0}


def test_invalid_json_and_nan(http):
    http.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    r = http.put("/collections/c/points", content=b'{"points": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["status"]["error"]
    r = http.put(
        "/collections/c/points",
        content=b'{"points": [{"id": 1, "vector": [NaN, 1]}]}',
        headers={"content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500


def test_body_too_large_is_413_and_key_required(tmp_path):
    srv = start_server(tmp_path / "d", "--max-request-bytes", "20000", "--api-key", "s3cret")
    try:
        with httpx.Client(base_url=srv.url) as c:
            key = {"api-key": "s3cret"}
            assert c.get("/collections").status_code == 401
            assert c.get("/collections", headers={"api-key": "wrong"}).status_code == 401
            assert c.get("/collections", headers=key).status_code == 200
            assert c.get("/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200
            assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
            c.put("/collections/c", json={"vectors": {"size": 8, "distance": "Dot"}}, headers=key)
            big = {"points": [{"id": i, "vector": [0.5] * 8} for i in range(500)]}
            r = c.put("/collections/c/points", json=big, headers=key)
            assert r.status_code == 413
            assert "exceeds" in r.json()["status"]["error"]
            assert c.post("/collections/c/points/count", json={}, headers=key).json()["result"]["count"] == 0
            assert "s3cret" not in srv.log.read_text()
    finally:
        srv.stop()


def test_root_and_health(http):
    root = http.get("/").json()
    assert root["title"] == "qdrant - vector search engine" and root["version"].count(".") == 2
    assert len(root["commit"]) == 40
    for path in ("/healthz", "/livez"):
        r = http.get(path)
        assert r.status_code == 200 and "check passed" in r.text
    r = http.get("/readyz")
    assert r.status_code == 200 and r.text == "all shards are ready"  # Qdrant's words


def test_success_envelope(http):
    r = http.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert r.json()["result"] is True and r.json()["status"] == "ok"
    r = http.put("/collections/c/points?wait=true", json={"points": [{"id": 1, "vector": [1, 2]}]})
    assert r.json()["result"]["status"] == "completed" and isinstance(r.json()["result"]["operation_id"], int)
    r = http.post("/collections/c/points/scroll", json={})
    assert r.json()["result"] == {"points": [{"id": 1, "payload": {}}], "next_page_offset": None}


def test_openapi_is_committed():
    committed = (ROOT / "openapi.json").read_text()
    assert committed == render(), "API changed: regenerate with `python -m vecdb.api.openapi > openapi.json`"
