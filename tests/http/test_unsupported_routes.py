"""Qdrant routes vecdb does not serve yet answer 400 "not supported yet" and name themselves; never 405.

``POST /collections/c/points/recommend`` used to answer 405, because its path matches ``GET
/collections/{collection_name}/points/{point_id}``; a client could not tell a missing feature from
its own mistake. The routes Qdrant's clients know are read from the installed qdrant-client (its
generated REST API), plus the legacy search routes newer clients no longer call.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import qdrant_client
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.harness import ServerProcess
from vecdb.api.middleware import is_read_only_request
from vecdb.api.routes_unsupported import UNSUPPORTED_ROUTES

REPO = Path(__file__).resolve().parents[2]
LEGACY = [
    ("POST", "/collections/{collection_name}/points/" + tail)
    for tail in ("recommend", "recommend/batch", "recommend/groups", "discover", "discover/batch", "search/groups")
]
"""Still registered by Qdrant's server; qdrant-client dropped their methods in 1.16."""
PARAMS = {"collection_name": "c", "id": "1", "point_id": "1", "field_name": "f", "shard_id": "0", "peer_id": "1"}
PARAMS |= {"snapshot_name": "s.snapshot", "vector_name": "v"}


def qdrant_routes() -> list[tuple[str, str]]:
    """Every (method, path template) of the installed qdrant-client's REST API, plus :data:`LEGACY`."""
    api = Path(qdrant_client.__file__).parent / "http" / "api"
    found = set(LEGACY)
    for source in api.glob("*.py"):
        found |= set(re.findall(r'method="([A-Z]+)",\s*url="([^"]+)"', source.read_text()))
    return sorted(found, key=lambda r: (r[1], r[0]))


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def served() -> set[tuple[str, str]]:
    spec = json.loads((REPO / "openapi.json").read_text())
    return {(m.upper(), _shape(p)) for p, item in spec["paths"].items() for m in item}


def concrete(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: PARAMS[m.group(1)], path)


@pytest.fixture(scope="module")
def http(server: ServerProcess):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _says_unsupported(r: httpx.Response, method: str, path: str) -> None:
    assert r.status_code == 400, (method, path, r.status_code, r.text)
    message = r.json()["status"]["error"]
    assert message.startswith(f"Bad request: {method} {path}: "), message
    assert message.endswith("not supported yet"), message


@pytest.mark.parametrize(("method", "template"), [r[:2] for r in UNSUPPORTED_ROUTES], ids=lambda v: v)
def test_unsupported_route_answers_400_naming_itself(http: httpx.Client, method: str, template: str):
    path = concrete(template)
    _says_unsupported(http.request(method, path, json={} if method in ("POST", "PUT") else None), method, path)


@pytest.mark.parametrize(("method", "template"), qdrant_routes(), ids=lambda v: v)
def test_no_qdrant_route_answers_405(http: httpx.Client, method: str, template: str):
    path = concrete(template)
    r = http.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
    assert r.status_code != 405, (method, path, r.text)
    if (method, _shape(template)) not in served():
        _says_unsupported(r, method, path)


def test_paths_qdrant_lacks_keep_the_plain_answers(http: httpx.Client):
    """404 for a path no route has; 405 where the URL exists with other methods (a point is GET only)."""
    assert http.post("/no/such/route", json={}).status_code == 404
    assert http.post("/collections/c/points/7", json={}).status_code == 405
    assert http.patch("/collections/c/points", json={}).status_code == 405


def test_unsupported_reads_are_open_to_the_read_only_key():
    """Recommend, discover, groups, matrix and facet only read: a read-only key gets "not supported", not 403."""
    for method, template, _ in UNSUPPORTED_ROUTES:
        if method == "POST" and (template.endswith("/facet") or "/points/" in template):
            assert is_read_only_request(method, concrete(template)), template
    assert not is_read_only_request("POST", "/collections/c/shards/delete")
    assert not is_read_only_request("POST", "/snapshots")


# --- through qdrant-client ----------------------------------------------------------------------


@pytest.fixture
def qc(server: ServerProcess, name: str):
    client = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False, timeout=30)
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(1, 4)])
    yield client
    client.delete_collection(name)
    client.close()


CALLS = {
    "create_shard_key": lambda c, n: c.create_shard_key(n, "k"),
    "move_shard": lambda c, n: c.cluster_collection_update(
        n, models.MoveShardOperation(move_shard=models.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2))
    ),
}


@pytest.mark.parametrize("call", CALLS)
def test_qdrant_client_call_says_not_supported(qc: QdrantClient, name: str, call: str):
    with pytest.raises(UnexpectedResponse) as err:
        CALLS[call](qc, name)
    assert err.value.status_code == 400  # (not 405; the body's "time" digits may well contain "405")
    assert "not supported yet" in str(err.value) or "need a cluster" in str(err.value)


def test_a_single_node_lists_no_shard_keys(qc: QdrantClient, name: str):
    assert not qc.list_shard_keys(name).shard_keys


def test_a_single_node_reports_one_peer_with_shard_0(qc: QdrantClient, name: str):
    info = qc.collection_cluster_info(name)
    assert info.shard_count == 1 and info.remote_shards == [] and info.shard_transfers == []
    assert [(s.shard_id, s.points_count, s.state) for s in info.local_shards] == [(0, 3, models.ReplicaState.ACTIVE)]
