"""Access control over real HTTP: API keys (full and read-only), open routes, CORS, the loopback bind.

Every route of the OpenAPI document is tried with no key, a wrong key, the
read-only key and the full key; a write made with the read-only key must
leave the data untouched.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.harness import start_server
from vecdb.api.middleware import OPEN_PATHS, is_read_only_request

FULL, READ = "full-key-7d1e", "read-key-93ab"
REPO = Path(__file__).resolve().parents[2]

READ_ROUTES = {
    ("GET", "/collections"),
    ("GET", "/collections/{collection_name}"),
    ("GET", "/collections/{collection_name}/exists"),
    ("GET", "/aliases"),
    ("GET", "/collections/{collection_name}/aliases"),
    ("GET", "/collections/{collection_name}/points/{point_id}"),
    ("POST", "/collections/{collection_name}/points"),
    ("POST", "/collections/{collection_name}/points/scroll"),
    ("POST", "/collections/{collection_name}/points/count"),
    ("POST", "/collections/{collection_name}/points/query"),
    ("POST", "/collections/{collection_name}/points/query/batch"),
    ("POST", "/collections/{collection_name}/points/search"),
    ("POST", "/collections/{collection_name}/points/search/batch"),
    ("POST", "/collections/{collection_name}/facet"),
    ("POST", "/collections/{collection_name}/points/query/groups"),
    ("POST", "/collections/{collection_name}/points/search/groups"),
    ("POST", "/collections/{collection_name}/points/search/matrix/pairs"),
    ("POST", "/collections/{collection_name}/points/search/matrix/offsets"),
    ("POST", "/collections/{collection_name}/points/recommend"),
    ("POST", "/collections/{collection_name}/points/recommend/batch"),
    ("POST", "/collections/{collection_name}/points/recommend/groups"),
    ("POST", "/collections/{collection_name}/points/discover"),
    ("POST", "/collections/{collection_name}/points/discover/batch"),
    ("GET", "/collections/{collection_name}/snapshots"),
    ("GET", "/collections/{collection_name}/snapshots/{snapshot_name}"),
    ("GET", "/collections/{collection_name}/cluster"),
    ("GET", "/collections/{collection_name}/shards"),
    ("GET", "/metrics"),
}
SNAPSHOT: dict[str, str] = {}
"""The name of the snapshot ``keyed`` makes, so that its download route has something to serve."""


def _routes() -> list[tuple[str, str]]:
    spec = json.loads((REPO / "openapi.json").read_text())
    return [(m.upper(), p) for p, item in spec["paths"].items() for m in item if p not in OPEN_PATHS]


def test_every_route_is_classified_as_read_or_write():
    """A new route must be placed on purpose: the read-only key may call exactly READ_ROUTES."""
    routes = _routes()
    assert READ_ROUTES <= set(routes)
    for method, path in routes:
        concrete = path.replace("{collection_name}", "c").replace("{point_id}", "1").replace("{field_name}", "f")
        concrete = concrete.replace("{vector_name}", "v")
        assert is_read_only_request(method, concrete) == ((method, path) in READ_ROUTES), (method, path)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A server with both keys, given by environment variables, logging at debug level."""
    path = tmp_path_factory.mktemp("keyed") / "data"
    srv = start_server(path, env={"VECDB_API_KEY": FULL, "VECDB_READ_ONLY_API_KEY": READ}, log_level="debug")
    with httpx.Client(base_url=srv.url, headers={"api-key": FULL}) as admin:
        assert admin.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
        admin.put("/collections/c/points", json={"points": [{"id": 1, "vector": [1, 0], "payload": {"a": 1}}]})
        assert admin.put("/collections/c/index", json={"field_name": "a", "field_schema": "integer"}).status_code == 200
        SNAPSHOT["name"] = admin.post("/collections/c/snapshots").json()["result"]["name"]
    yield srv
    srv.stop()


BODIES = {
    ("PUT", "/collections/c"): {"vectors": {"size": 2, "distance": "Dot"}},
    ("PUT", "/collections/c/points"): {"points": [{"id": 2, "vector": [0, 1]}]},
    ("POST", "/collections/c/points"): {"ids": [1]},
    ("POST", "/collections/c/points/query"): {"query": [1, 0]},
    ("POST", "/collections/c/points/query/batch"): {"searches": [{"query": [1, 0]}]},
    ("POST", "/collections/c/points/search"): {"vector": [1, 0], "limit": 1},
    ("POST", "/collections/c/points/search/batch"): {"searches": [{"vector": [1, 0], "limit": 1}]},
    ("POST", "/collections/c/facet"): {"key": "a"},
    ("POST", "/collections/c/points/query/groups"): {"query": [1, 0], "group_by": "a"},
    ("POST", "/collections/c/points/search/groups"): {"vector": [1, 0], "group_by": "a", "group_size": 1, "limit": 1},
    ("POST", "/collections/c/points/recommend"): {"positive": [[1, 0]], "limit": 1},
    ("POST", "/collections/c/points/recommend/batch"): {"searches": [{"positive": [[1, 0]], "limit": 1}]},
    ("POST", "/collections/c/points/discover"): {"target": [1, 0], "limit": 1},
    ("POST", "/collections/c/points/recommend/groups"): {
        "positive": [[1, 0]],
        "group_by": "a",
        "group_size": 1,
        "limit": 1,
    },
    ("POST", "/collections/c/points/discover/batch"): {"searches": [{"target": [1, 0], "limit": 1}]},
    ("PUT", "/collections/c/vectors/v"): {"dense": {"size": 2, "distance": "Dot"}},
}


def _call(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    concrete = path.replace("{collection_name}", "c").replace("{point_id}", "1").replace("{field_name}", "a")
    concrete = concrete.replace("{snapshot_name}", SNAPSHOT.get("name", "s")).replace("{vector_name}", "v")
    body = BODIES.get((method, concrete), {})
    return client.request(method, concrete, json=body if method not in ("GET", "DELETE") else None, headers=headers)


def test_keys_gate_every_route(keyed):
    with httpx.Client(base_url=keyed.url) as http:
        for method, path in _routes():
            assert _call(http, method, path, {}).status_code == 401, (method, path)
            assert _call(http, method, path, {"api-key": "wrong"}).status_code == 401, (method, path)
            assert _call(http, method, path, {"Authorization": f"Bearer {READ}x"}).status_code == 401
        for path in OPEN_PATHS:
            assert http.get(path).status_code == 200


@pytest.mark.parametrize("how", ["header", "bearer"])
def test_read_only_key_reads_and_never_writes(keyed, how):
    headers = {"api-key": READ} if how == "header" else {"Authorization": f"Bearer {READ}"}
    with httpx.Client(base_url=keyed.url) as http:
        for method, path in _routes():
            r = _call(http, method, path, headers)
            if (method, path) in READ_ROUTES:
                assert r.status_code == 200, (method, path, r.text)
            else:
                assert r.status_code == 403, (method, path, r.text)
                assert "read-only API key" in r.json()["status"]["error"]
        # nothing was written by all those refused writes
        full = {"api-key": FULL}
        assert http.post("/collections/c/points/count", json={}, headers=full).json()["result"]["count"] == 1
        assert http.get("/collections/c/points/1", headers=full).json()["result"]["payload"] == {"a": 1}
        assert [c["name"] for c in http.get("/collections", headers=full).json()["result"]["collections"]] == ["c"]


def test_full_key_writes_and_keys_are_never_logged(keyed):
    with httpx.Client(base_url=keyed.url, headers={"Authorization": f"Bearer {FULL}"}) as http:
        r = http.put("/collections/c/points", json={"points": [{"id": 3, "vector": [1, 1]}]})
        assert r.status_code == 200
        assert http.post("/collections/c/points/delete", json={"points": [3]}).status_code == 200
    log = keyed.log.read_text()
    assert log  # debug logging did write
    assert FULL not in log and READ not in log


def test_read_only_key_alone_makes_a_read_only_server(tmp_path):
    srv = start_server(tmp_path / "d", "--read-only-api-key", READ)
    try:
        with httpx.Client(base_url=srv.url, headers={"api-key": READ}) as http:
            assert http.get("/collections").status_code == 200
            assert http.put("/collections/c", json=BODIES[("PUT", "/collections/c")]).status_code == 403
            assert http.get("/collections", headers={"api-key": "other"}).status_code == 401
    finally:
        srv.stop()


def test_cors_is_off_unless_configured(tmp_path, server):
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(server.url + "/collections/c/points/query", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = httpx.get(server.url + "/collections", headers={"Origin": "http://app.example"})
    assert "access-control-allow-origin" not in r.headers
    srv = start_server(tmp_path / "d", "--cors-origins", "http://app.example", "--api-key", FULL)
    try:
        r = httpx.options(srv.url + "/collections/c/points/query", headers=preflight)  # preflight needs no key
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://app.example"
        r = httpx.get(srv.url + "/collections", headers={"Origin": "http://app.example", "api-key": FULL})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://app.example"
        r = httpx.options(srv.url + "/collections", headers={**preflight, "Origin": "http://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "http://evil.example"
    finally:
        srv.stop()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP: picks the outgoing interface, sends nothing
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_server_binds_loopback_by_default(server):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(2)
        s.connect((address, port))


def test_keys_stay_out_of_the_lock_file_and_the_refusal(tmp_path: Path) -> None:
    """The lock file (world-readable) names its holder's command line: without the keys' values."""
    path = tmp_path / "data"
    first = start_server(path, "--api-key", FULL, f"--read-only-api-key={READ}")
    try:
        holder = (path / ".lock").read_text()
        assert "--api-key ***" in holder and "--read-only-api-key=***" in holder
        assert FULL not in holder and READ not in holder
        second = start_server(path, wait=False)
        assert second.proc.wait(timeout=30) != 0
        refusal = second.log.read_text()
        assert "in use" in refusal and FULL not in refusal and READ not in refusal
    finally:
        first.stop()
