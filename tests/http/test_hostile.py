"""A catalogue of hostile requests against a real server: each gets a 4xx with a message that says
what was wrong, the server stays up, and nothing is written.

Concurrent create/delete of one collection is in ``tests/system/test_concurrency.py``; the property-based
fuzz over the OpenAPI schema is in ``tests/http/test_fuzz.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Optional

import httpx
import orjson
import pytest

from tests.harness import ServerProcess, start_server

DIM = 4
P = "/collections/probe"


class Hostile(NamedTuple):
    name: str
    method: str
    path: str
    body: Any = None  # JSON-encoded unless bytes
    status: tuple[int, ...] = (400,)
    says: Optional[str] = None  # a fragment the error message must hold (case-insensitive)
    headers: Optional[dict[str, str]] = None


def point(pid: Any = 1, vector: Any = None, payload: Any = None) -> dict[str, Any]:
    return {"id": pid, "vector": [0.5] * DIM if vector is None else vector, "payload": payload or {}}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def nested_filter(depth: int) -> bytes:
    return ('{"filter":' + '{"must":[' * depth + '{"key":"k","match":{"value":1}}' + "]}" * depth + "}").encode()


CASES = [
    # wrong types
    Hostile("vector is a string", "PUT", f"{P}/points", {"points": [point(vector="abc")]}, says="vector"),
    Hostile("id is a float", "PUT", f"{P}/points", {"points": [point(pid=1.5)]}, says="id"),
    Hostile("id is a list", "PUT", f"{P}/points", {"points": [point(pid=[1])]}, says="id"),
    Hostile("id is not a UUID", "PUT", f"{P}/points", {"points": [point(pid="not-a-uuid")]}, says="uuid"),
    Hostile(
        "payload is a list",
        "PUT",
        f"{P}/points",
        {"points": [{"id": 1, "vector": [0.5] * DIM, "payload": [1, 2]}]},
        says="payload",
    ),
    Hostile("points is an object", "PUT", f"{P}/points", {"points": {"id": 1}}, says="points"),
    Hostile("limit is a string", "POST", f"{P}/points/query", {"query": [0.5] * DIM, "limit": "ten"}, says="limit"),
    Hostile(
        "size is a string", "PUT", "/collections/bad", {"vectors": {"size": "four", "distance": "Cosine"}}, says="size"
    ),
    Hostile(
        "unknown distance",
        "PUT",
        "/collections/bad",
        {"vectors": {"size": 4, "distance": "Manhattan2"}},
        says="distance",
    ),
    Hostile(
        "match value is an object",
        "POST",
        f"{P}/points/scroll",
        {"filter": {"must": [{"key": "k", "match": {"value": {"x": 1}}}]}},
        says="match",
    ),
    Hostile(
        "range bound is a string",
        "POST",
        f"{P}/points/count",
        {"filter": {"must": [{"key": "k", "range": {"gt": "one"}}]}},
        says="range",
    ),
    Hostile("with_payload is a number", "POST", f"{P}/points/scroll", {"with_payload": 7}, says="with_payload"),
    # huge numbers
    Hostile("id beyond u64", "PUT", f"{P}/points", {"points": [point(pid=2**64)]}, says="id"),
    Hostile("negative id", "PUT", f"{P}/points", {"points": [point(pid=-1)]}, says="id"),
    Hostile(
        "vector overflows float32", "PUT", f"{P}/points", {"points": [point(vector=[1e39, 0, 0, 0])]}, says="finite"
    ),
    Hostile(
        "size beyond any vector",
        "PUT",
        "/collections/bad",
        {"vectors": {"size": 10**12, "distance": "Dot"}},
        status=(400, 422),
        says="size",
    ),
    Hostile(
        "limit 2**64",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "limit": 2**64},
        status=(400, 422),
        says="limit",
    ),
    Hostile(
        "hnsw_ef 10**12",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "params": {"hnsw_ef": 10**12}},
        status=(400, 422),
        says="hnsw_ef",
    ),
    Hostile(
        "offset 10**12",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "offset": 10**12},
        status=(400, 422),
        says="offset",
    ),
    # deep nesting
    Hostile(
        "payload nested 100000 deep",
        "PUT",
        f"{P}/points",
        ('{"points":[{"id":1,"vector":[0.5,0.5,0.5,0.5],"payload":' + nested(100_000) + "}]}").encode(),
        says="depth",
    ),
    Hostile(
        "payload nested 300 deep",
        "PUT",
        f"{P}/points",
        ('{"points":[{"id":1,"vector":[0.5,0.5,0.5,0.5],"payload":' + nested(300) + "}]}").encode(),
        says="payload",
    ),
    Hostile("filter nested 5000 deep", "POST", f"{P}/points/count", nested_filter(5000), says="depth"),
    Hostile("filter nested 300 deep", "POST", f"{P}/points/count", nested_filter(300), says="filter"),
    # enormous payloads and batches
    Hostile(
        "payload over the limit",
        "PUT",
        f"{P}/points",
        {"points": [point(payload={"t": "x" * (2 << 20)})]},
        says="max-payload-bytes",
    ),
    Hostile(
        "batch over the limit",
        "PUT",
        f"{P}/points",
        {"batch": {"ids": list(range(10_001)), "vectors": [[0.5] * DIM] * 10_001}},
        says="max-batch-points",
    ),
    Hostile(
        "body over the limit",
        "PUT",
        f"{P}/points",
        b'{"points":[' + b" " * (40 << 20) + b"]}",
        status=(413,),
        says="max-request-bytes",
    ),
    # bytes that are not JSON, or not UTF-8
    Hostile(
        "invalid UTF-8",
        "PUT",
        f"{P}/points",
        b'{"points":[{"id":1,"vector":[0.5,0.5,0.5,0.5],"payload":{"a":"\xff\xfe"}}]}',
        says="utf-8",
    ),
    Hostile("truncated JSON", "PUT", f"{P}/points", b'{"points":[{"id":1,', says="json"),
    Hostile("empty body", "PUT", f"{P}/points", b"", says="body"),
    Hostile("JSON null body", "PUT", f"{P}/points", b"null"),
    Hostile("JSON array body", "POST", f"{P}/points/query", b"[1,2,3]"),
    Hostile(
        "NaN in a payload",
        "PUT",
        f"{P}/points",
        b'{"points":[{"id":1,"vector":[0.5,0.5,0.5,0.5],"payload":{"a":NaN}}]}',
        says="json",
    ),
    Hostile(
        "Infinity in a payload",
        "PUT",
        f"{P}/points",
        b'{"points":[{"id":1,"vector":[0.5,0.5,0.5,0.5],"payload":{"a":1e400}}]}',
        says="json",
    ),
    Hostile("NaN in a vector", "PUT", f"{P}/points", b'{"points":[{"id":1,"vector":[NaN,0.5,0.5,0.5]}]}'),
    Hostile("Infinity in a query", "POST", f"{P}/points/query", b'{"query":[Infinity,0.5,0.5,0.5]}'),
    Hostile(
        "NaN in a filter bound", "POST", f"{P}/points/count", b'{"filter":{"must":[{"key":"k","range":{"gt":NaN}}]}}'
    ),
    Hostile("NaN score_threshold", "POST", f"{P}/points/query", b'{"query":[0.5,0.5,0.5,0.5],"score_threshold":NaN}'),
    # negative or oversize limits
    Hostile(
        "negative limit",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "limit": -1},
        status=(400, 422),
        says="limit",
    ),
    Hostile(
        "negative offset",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "offset": -5},
        status=(400, 422),
        says="offset",
    ),
    Hostile(
        "limit over max-results",
        "POST",
        f"{P}/points/query",
        {"query": [0.5] * DIM, "limit": 10_001},
        says="max-results",
    ),
    Hostile("scroll limit over max-results", "POST", f"{P}/points/scroll", {"limit": 50_000}, says="max-results"),
    Hostile(
        "zero size",
        "PUT",
        "/collections/bad",
        {"vectors": {"size": 0, "distance": "Dot"}},
        status=(400, 422),
        says="size",
    ),
    # unknown fields where forbidden
    Hostile("unknown field in a point", "PUT", f"{P}/points", {"points": [{**point(), "vectr": [1, 2]}]}, says="vectr"),
    Hostile("unknown field in a query", "POST", f"{P}/points/query", {"query": [0.5] * DIM, "limt": 5}, says="limt"),
    Hostile(
        "unknown condition in a filter",
        "POST",
        f"{P}/points/count",
        {"filter": {"must": [{"key": "k", "matches": {"value": 1}}]}},
        says="matches",
    ),
    # wrong shapes of vectors
    Hostile("wrong dimension", "PUT", f"{P}/points", {"points": [point(vector=[0.5] * (DIM + 1))]}, says="dim"),
    Hostile(
        "unknown vector name", "PUT", f"{P}/points", {"points": [point(vector={"other": [0.5] * DIM})]}, says="other"
    ),
    Hostile("query of wrong dimension", "POST", f"{P}/points/query", {"query": [0.5] * 3}, says="dim"),
    # path traversal and bad names
    Hostile(
        "dot-dot name", "PUT", "/collections/..", {"vectors": {"size": 4, "distance": "Dot"}}, status=(400, 404, 405)
    ),
    Hostile(
        "encoded traversal",
        "PUT",
        "/collections/..%2F..%2Fetc",
        {"vectors": {"size": 4, "distance": "Dot"}},
        status=(400, 404),
    ),
    Hostile(
        "encoded slash", "PUT", "/collections/a%2Fb", {"vectors": {"size": 4, "distance": "Dot"}}, status=(400, 404)
    ),
    Hostile("hidden name", "PUT", "/collections/.trash", {"vectors": {"size": 4, "distance": "Dot"}}, says="name"),
    Hostile("NUL in a name", "PUT", "/collections/a%00b", {"vectors": {"size": 4, "distance": "Dot"}}, says="name"),
    Hostile(
        "name of 300 characters",
        "PUT",
        "/collections/" + "n" * 300,
        {"vectors": {"size": 4, "distance": "Dot"}},
        says="name",
    ),
    Hostile(
        "alias onto a traversal",
        "POST",
        "/collections/aliases",
        {"actions": [{"create_alias": {"collection_name": "probe", "alias_name": "../x"}}]},
        says="alias",
    ),
    # wrong routes and targets
    Hostile(
        "missing collection",
        "POST",
        "/collections/nope/points/query",
        {"query": [0.5] * DIM},
        status=(404,),
        says="nope",
    ),
    Hostile("method not allowed", "PATCH", f"{P}/points", {"points": []}, status=(405,)),
    Hostile(
        "set_payload on missing ids",
        "POST",
        f"{P}/points/payload",
        {"payload": {"a": 1}, "points": [10**9]},
        status=(404,),
        says=str(10**9),
    ),
    Hostile(
        "create an existing collection",
        "PUT",
        P,
        {"vectors": {"size": 4, "distance": "Dot"}},
        status=(409,),
        says="already exists",
    ),
    Hostile(
        "batch with one bad operation",
        "POST",
        f"{P}/points/batch",
        {
            "operations": [
                {"upsert": {"points": [point(pid=500)]}},
                {"set_payload": {"payload": {"a": 1}, "points": [10**9]}},
            ]
        },
        status=(404,),
    ),
]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("hostile") / "data")
    with httpx.Client(base_url=srv.url, timeout=60) as http:
        r = http.put(
            P, json={"vectors": {"size": DIM, "distance": "Cosine"}, "optimizers_config": {"indexing_threshold": 1}}
        )
        assert r.status_code == 200, r.text
        assert (
            http.put(
                f"{P}/index", params={"wait": "true"}, json={"field_name": "k", "field_schema": "integer"}
            ).status_code
            == 200
        )
        pts = [
            {"id": i, "vector": [float(i % 7) + 1, 1.0, float(i % 3), 0.5], "payload": {"k": i % 5}} for i in range(200)
        ]
        assert http.put(f"{P}/points", params={"wait": "true"}, json={"points": pts}).status_code == 200
    yield srv
    srv.stop()


def fingerprint(srv: ServerProcess) -> str:
    """Everything a hostile request could have written: collections, aliases, points, files."""
    with httpx.Client(base_url=srv.url, timeout=60) as http:
        parts = [
            orjson.dumps(r.json()["result"])
            for r in (
                http.get("/collections"),
                http.get("/aliases"),
                http.post(f"{P}/points/scroll", json={"limit": 1000, "with_vector": True}),
            )
        ]
    root = srv.path
    files = sorted(
        str(p.relative_to(root.parent))
        for p in root.parent.rglob("*")
        if "index" not in p.parts and p.suffix not in (".log", ".lock")
    )
    return hashlib.sha256(b"".join(parts) + "\n".join(files).encode()).hexdigest()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(case: Hostile, hostile_server: ServerProcess) -> None:
    before = fingerprint(hostile_server)
    log_at = len(hostile_server.log.read_text())
    content = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    headers = {"content-type": "application/json", **(case.headers or {})}
    r = httpx.request(case.method, hostile_server.url + case.path, content=content, headers=headers, timeout=60)
    assert r.status_code in case.status, f"{r.status_code}: {r.text[:500]}"
    message = r.json()["status"]["error"]
    assert len(message) > 10, message
    if case.says:
        assert case.says.lower() in message.lower(), message
    assert httpx.get(hostile_server.url + "/healthz", timeout=10).status_code == 200
    assert fingerprint(hostile_server) == before, "a refused request changed the stored state"
    assert hostile_server.proc.poll() is None
    assert "Traceback" not in hostile_server.log.read_text()[log_at:]


def test_nothing_outside_the_data_directory(hostile_server: ServerProcess, tmp_path: Path) -> None:
    """After the whole catalogue (module order): the data directory's parent holds only what it did."""
    names = sorted(p.name for p in hostile_server.path.parent.iterdir())
    assert all(n == "data" or n.startswith("server-") for n in names), names
    assert sorted(p.name for p in (hostile_server.path / "collections").iterdir()) == ["probe"]
