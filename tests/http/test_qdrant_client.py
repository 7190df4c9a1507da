"""The official qdrant-client (REST mode) against a real ``vecdb serve`` process.

Every result is checked against an exact brute force computed here with numpy
(float64), or against a Python evaluation of the filter, or against
qdrant-client's own in-memory mode (``QdrantClient(":memory:")``), which is a
reference implementation of Qdrant's semantics.
"""

from __future__ import annotations

import json
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient  # noqa: E402
from qdrant_client import models as m  # noqa: E402
from qdrant_client.http.exceptions import UnexpectedResponse  # noqa: E402
from qdrant_client.qdrant_remote import QdrantRemote  # noqa: E402

from tests.brute import reference_scores
from tests.harness import ServerProcess, start_server  # noqa: E402

HIGHER_IS_BETTER = {"Cosine": True, "Dot": True, "Euclid": False, "Manhattan": False}
DISTANCES = {
    "Cosine": m.Distance.COSINE,
    "Dot": m.Distance.DOT,
    "Euclid": m.Distance.EUCLID,
    "Manhattan": m.Distance.MANHATTAN,
}
TOL = 1e-4


# --------------------------------------------------------------------------- helpers


def new_name() -> str:
    return "qc_" + uuid.uuid4().hex[:12]


def make_client(url: str) -> QdrantClient:
    return QdrantClient(url=url, prefer_grpc=False, check_compatibility=True, timeout=30)


def brute_top(
    ids: list[Any],
    base: np.ndarray,
    query: np.ndarray,
    distance: str,
    k: int,
    allowed: np.ndarray | None = None,
    offset: int = 0,
) -> list[tuple[Any, float]]:
    """Exact top-k as (id, score); rows are in insertion order, so ties would go to the earlier row."""
    scores = reference_scores(base, query, distance)
    key = -scores if HIGHER_IS_BETTER[distance] else scores
    order = np.lexsort((np.arange(len(scores)), key))
    if allowed is not None:
        order = order[allowed[order]]
    return [(ids[i], float(scores[i])) for i in order[offset : offset + k]]


def assert_hits(points: list[Any], expected: list[tuple[Any, float]]) -> None:
    got = [(p.id, p.score) for p in points]
    assert [i for i, _ in got] == [i for i, _ in expected], (got[:5], expected[:5])
    for (gid, gs), (_, es) in zip(got, expected, strict=True):
        assert abs(gs - es) <= TOL, (gid, gs, es)


def id_order(pid: Any) -> tuple[int, int, str]:
    """Qdrant's default scroll order: integers ascending, then UUIDs as strings."""
    return (0, pid, "") if isinstance(pid, int) else (1, 0, pid)


def scroll_all(client: QdrantClient, coll: str, page: int, **kw: Any) -> tuple[list[Any], int]:
    """Walk every page; returns the records and the number of requests made."""
    out: list[Any] = []
    offset = None
    requests = 0
    while True:
        records, offset = client.scroll(coll, limit=page, offset=offset, **kw)
        requests += 1
        out.extend(records)
        if offset is None:
            return out, requests
        assert requests < 10_000


def assert_same_vectors(a: Any, b: Any) -> None:
    """Both a plain list (only the default vector) or both the same name -> vector map."""
    assert isinstance(a, list) == isinstance(b, list), (a, b)
    if isinstance(a, list):
        a, b = {"": a}, {"": b}
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def error_text(exc: UnexpectedResponse) -> str:
    return json.loads(exc.content)["status"]["error"]


def raw(url: str, method: str, path: str, body: Any = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.request(method, url + path, content=content, headers={"content-type": "application/json"})
    return httpx.request(method, url + path, json=body)


def assert_error(resp: httpx.Response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    text = resp.json()["status"]["error"]
    for word in words:
        assert word.lower() in text.lower(), text
    return text


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def qc(server: ServerProcess) -> Iterator[QdrantClient]:
    client = make_client(server.url)
    yield client
    client.close()


def make_payload(rng: np.random.Generator, i: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "i": i,
        "cat": ["red", "green", "blue", "black"][int(rng.integers(4))],
        "tags": sorted({"a", "b", "c", "d"} & set(rng.choice(list("abcdxyz"), size=int(rng.integers(0, 4))))),
        "num": round(float(rng.random()), 4),
        "nested": {"level": int(rng.integers(10)), "name": f"n{i % 7}"},
        "objs": [
            {"k": int(rng.integers(5)), "v": ["x", "y"][int(rng.integers(2))]} for _ in range(int(rng.integers(0, 4)))
        ],
        "date": (datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=int(rng.integers(0, 24 * 30)))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }
    kind = i % 5
    if kind == 1:
        payload["maybe"] = None
    elif kind == 2:
        payload["maybe"] = []
    elif kind == 3:
        payload["maybe"] = "val"
    elif kind == 4:
        payload["maybe"] = [7, 8]
    return payload


SPACES = {"": (8, "Cosine"), "dot": (33, "Dot"), "euc": (8, "Euclid"), "man": (33, "Manhattan")}


@dataclass
class Loaded:
    name: str
    ids: list[Any]
    vectors: dict[str, np.ndarray]  # name -> [n, dim], rows in insertion order
    has: dict[str, np.ndarray]  # name -> bool [n]: the point has that vector
    payloads: list[dict[str, Any]]

    def index(self, pid: Any) -> int:
        return self.ids.index(pid)


@pytest.fixture(scope="module")
def loaded(qc: QdrantClient) -> Iterator[Loaded]:
    """400 points (350 int ids, 50 UUIDs, inserted in random order), four named vectors incl. ``""``.

    Every 10th point has no ``man`` vector.
    """
    rng = np.random.default_rng(1234)
    n = 400
    int_ids = [int(x) for x in rng.choice(1_000_000, size=350, replace=False)]
    uuid_ids = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(50)]
    ids: list[Any] = int_ids + uuid_ids
    order = rng.permutation(n)
    ids = [ids[i] for i in order]
    vectors = {name: rng.normal(size=(n, dim)).astype(np.float32) for name, (dim, _) in SPACES.items()}
    has = {name: np.ones(n, dtype=bool) for name in SPACES}
    has["man"][::10] = False
    payloads = [make_payload(rng, i) for i in range(n)]
    name = new_name()
    qc.create_collection(
        name, vectors_config={k: m.VectorParams(size=dim, distance=DISTANCES[d]) for k, (dim, d) in SPACES.items()}
    )
    points = []
    for i in range(n):
        vec = {k: vectors[k][i].tolist() for k in SPACES if has[k][i]}
        points.append(m.PointStruct(id=ids[i], vector=vec, payload=payloads[i]))
    for start in range(0, n, 150):
        qc.upsert(name, points=points[start : start + 150], wait=True)
    yield Loaded(name, ids, vectors, has, payloads)
    qc.delete_collection(name)


# --------------------------------------------------------------------------- connection


def test_version_check_raises_no_warning(server: ServerProcess) -> None:
    """The compatibility check (GET / in a daemon thread) finds a compatible version: no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        QdrantRemote._check_compatibility(server.url, {}, None, 5)
        before = set(threading.enumerate())
        client = make_client(server.url)
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=10)
        client.close()
    assert [str(w.message) for w in caught] == []
    root = httpx.get(server.url + "/").json()
    assert root["title"] == "qdrant - vector search engine"
    major, minor, _ = root["version"].split(".")
    assert (int(major), int(minor)) >= (1, 18)


# --------------------------------------------------------------------------- collections


def test_collection_lifecycle(qc: QdrantClient) -> None:
    name = new_name()
    params = m.VectorParams(size=8, distance=m.Distance.COSINE)
    assert qc.collection_exists(name) is False
    assert qc.create_collection(name, vectors_config=params) is True
    assert qc.collection_exists(name) is True
    assert name in {c.name for c in qc.get_collections().collections}
    info = qc.get_collection(name)
    assert info.config.params.vectors == params
    assert info.points_count == 0
    assert info.status == m.CollectionStatus.GREEN
    assert info.payload_schema == {}

    rng = np.random.default_rng(0)
    qc.upsert(name, points=m.Batch(ids=list(range(37)), vectors=rng.normal(size=(37, 8)).tolist()), wait=True)
    assert qc.get_collection(name).points_count == 37
    qc.delete(name, points_selector=m.PointIdsList(points=[0, 1, 2]), wait=True)
    assert qc.get_collection(name).points_count == 34

    assert qc.delete_collection(name) is True
    assert qc.delete_collection(name) is False
    assert qc.collection_exists(name) is False
    assert name not in {c.name for c in qc.get_collections().collections}


def test_named_vectors_config_is_echoed_exactly(qc: QdrantClient) -> None:
    name = new_name()
    config = {
        "": m.VectorParams(size=8, distance=m.Distance.COSINE),
        "dot": m.VectorParams(size=33, distance=m.Distance.DOT, on_disk=True),
        "euc": m.VectorParams(size=4, distance=m.Distance.EUCLID, hnsw_config=m.HnswConfigDiff(m=32)),
        "man": m.VectorParams(size=5, distance=m.Distance.MANHATTAN),
    }
    qc.create_collection(name, vectors_config=config)
    try:
        vectors = qc.get_collection(name).config.params.vectors
        assert vectors == config
        # and the raw JSON adds no defaults inside VectorParams
        body = httpx.get(f"{qc._client.rest_uri}/collections/{name}").json()["result"]
        assert body["config"]["params"]["vectors"] == {
            "": {"size": 8, "distance": "Cosine"},
            "dot": {"size": 33, "distance": "Dot", "on_disk": True},
            "euc": {"size": 4, "distance": "Euclid", "hnsw_config": {"m": 32}},
            "man": {"size": 5, "distance": "Manhattan"},
        }
    finally:
        qc.delete_collection(name)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
def test_unnamed_vector_every_distance(qc: QdrantClient, distance: str) -> None:
    name = new_name()
    params = m.VectorParams(size=33, distance=DISTANCES[distance])
    qc.create_collection(name, vectors_config=params)
    try:
        assert qc.get_collection(name).config.params.vectors == params
        rng = np.random.default_rng(hash(distance) % 2**32)
        n = 300
        ids = [int(x) for x in rng.permutation(n) * 3 + 1]
        base = rng.normal(size=(n, 33)).astype(np.float32)
        qc.upsert(name, points=m.Batch(ids=ids, vectors=base.tolist(), payloads=[{"n": i} for i in ids]), wait=True)
        assert qc.get_collection(name).points_count == n
        assert qc.count(name).count == n
        for _ in range(3):
            q = rng.normal(size=33).astype(np.float32)
            res = qc.query_points(name, query=q.tolist(), limit=10)
            assert_hits(res.points, brute_top(ids, base, q, distance, 10))
            assert all(p.payload == {"n": p.id} for p in res.points)
        # stored vector: normalised for Cosine, as sent otherwise; unnamed -> a plain list
        (rec,) = qc.retrieve(name, [ids[5]], with_vectors=True)
        expected = base[5] / np.linalg.norm(base[5]) if distance == "Cosine" else base[5]
        assert isinstance(rec.vector, list)
        np.testing.assert_allclose(rec.vector, expected, atol=1e-6)
    finally:
        qc.delete_collection(name)


def test_recreate_collection(qc: QdrantClient) -> None:
    name = new_name()
    qc.create_collection(name, vectors_config=m.VectorParams(size=4, distance=m.Distance.DOT))
    qc.upsert(name, points=[m.PointStruct(id=1, vector=[1, 2, 3, 4])], wait=True)
    with pytest.warns(DeprecationWarning, match="recreate_collection"):
        assert qc.recreate_collection(name, vectors_config=m.VectorParams(size=3, distance=m.Distance.EUCLID))
    try:
        info = qc.get_collection(name)
        assert info.points_count == 0
        assert info.config.params.vectors == m.VectorParams(size=3, distance=m.Distance.EUCLID)
    finally:
        qc.delete_collection(name)


def test_update_collection(qc: QdrantClient) -> None:
    name = new_name()
    params = m.VectorParams(size=4, distance=m.Distance.COSINE)
    qc.create_collection(name, vectors_config=params, metadata={"owner": "a"})
    try:
        before = qc.get_collection(name).config
        assert before.hnsw_config.m == 16 and before.metadata == {"owner": "a"}
        assert (
            qc.update_collection(
                name, hnsw_config=m.HnswConfigDiff(m=32, ef_construct=200), metadata={"team": "search"}
            )
            is True
        )
        after = qc.get_collection(name).config
        assert after.hnsw_config.m == 32 and after.hnsw_config.ef_construct == 200
        assert after.hnsw_config.full_scan_threshold == before.hnsw_config.full_scan_threshold
        assert after.metadata == {"owner": "a", "team": "search"}
        assert after.params.vectors == params
        with pytest.raises(UnexpectedResponse) as err:
            qc.update_collection(name + "_missing", hnsw_config=m.HnswConfigDiff(m=8))
        assert err.value.status_code == 404
    finally:
        qc.delete_collection(name)


def test_aliases(qc: QdrantClient, loaded: Loaded) -> None:
    alias, renamed = new_name(), new_name()
    qc.update_collection_aliases(
        [m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=loaded.name, alias_name=alias))]
    )
    try:
        assert m.AliasDescription(alias_name=alias, collection_name=loaded.name) in qc.get_aliases().aliases
        assert [a.alias_name for a in qc.get_collection_aliases(loaded.name).aliases] == [alias]
        q = loaded.vectors["dot"][3] + 0.1
        direct = qc.query_points(loaded.name, query=q.tolist(), using="dot", limit=7)
        via = qc.query_points(alias, query=q.tolist(), using="dot", limit=7)
        assert [(p.id, p.score) for p in via.points] == [(p.id, p.score) for p in direct.points]
        assert qc.count(alias).count == len(loaded.ids)
        assert qc.collection_exists(alias) is True

        qc.update_collection_aliases(
            [m.RenameAliasOperation(rename_alias=m.RenameAlias(old_alias_name=alias, new_alias_name=renamed))]
        )
        assert qc.count(renamed).count == len(loaded.ids)
        with pytest.raises(UnexpectedResponse) as err:
            qc.count(alias)
        assert err.value.status_code == 404 and "doesn't exist" in error_text(err.value)
        assert [a.alias_name for a in qc.get_collection_aliases(loaded.name).aliases] == [renamed]

        qc.update_collection_aliases([m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=renamed))])
        assert qc.get_collection_aliases(loaded.name).aliases == []
        with pytest.raises(UnexpectedResponse) as err:
            qc.query_points(renamed, query=q.tolist(), using="dot")
        assert err.value.status_code == 404
        assert qc.count(loaded.name).count == len(loaded.ids)  # the collection itself is untouched
    finally:
        for a in (alias, renamed):
            try:
                qc.update_collection_aliases([m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=a))])
            except UnexpectedResponse:
                pass


@pytest.mark.parametrize("bad", ["bad*name", "with space", "-ok-but/slash", "x" * 256, ".hidden"])
def test_invalid_collection_name(qc: QdrantClient, bad: str) -> None:
    with pytest.raises(UnexpectedResponse) as err:
        qc.create_collection(bad, vectors_config=m.VectorParams(size=4, distance=m.Distance.DOT))
    assert err.value.status_code in (400, 404)  # a '/' may not even reach the route
    if "/" not in bad:
        assert err.value.status_code == 400
        assert "name" in error_text(err.value)
    assert bad not in {c.name for c in qc.get_collections().collections}


def test_create_existing_collection_is_409(qc: QdrantClient) -> None:
    name = new_name()
    qc.create_collection(name, vectors_config=m.VectorParams(size=4, distance=m.Distance.DOT))
    try:
        with pytest.raises(UnexpectedResponse) as err:
            qc.create_collection(name, vectors_config=m.VectorParams(size=8, distance=m.Distance.COSINE))
        assert err.value.status_code == 409
        assert "already exists" in error_text(err.value)
        assert "already exists" in str(err.value)  # LlamaIndex searches str(exc)
        # the original is untouched
        assert qc.get_collection(name).config.params.vectors == m.VectorParams(size=4, distance=m.Distance.DOT)
    finally:
        qc.delete_collection(name)


# --------------------------------------------------------------------------- points


@pytest.fixture
def small(qc: QdrantClient) -> Iterator[str]:
    """An empty collection with two named vectors ``a`` (4, Dot) and ``b`` (3, Euclid)."""
    name = new_name()
    qc.create_collection(
        name,
        vectors_config={
            "a": m.VectorParams(size=4, distance=m.Distance.DOT),
            "b": m.VectorParams(size=3, distance=m.Distance.EUCLID),
        },
    )
    yield name
    qc.delete_collection(name)


UUID_HEX = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


def test_uuid_spellings_are_normalised(qc: QdrantClient, small: str) -> None:
    canonical = [str(uuid.UUID(int=k * 0x1111_1111_1111_1111_1111_1111_1111_1111 // 16 + k)) for k in range(1, 6)]
    spellings = [
        uuid.UUID(canonical[0]).hex,  # 32 hex, no dashes
        canonical[1],  # hyphenated
        "{" + canonical[2] + "}",  # braced
        "urn:uuid:" + canonical[3],  # urn
        canonical[4].upper(),  # uppercase
    ]
    qc.upsert(
        small,
        points=[
            m.PointStruct(id=s, vector={"a": [1, 0, 0, float(i)]}, payload={"spelling": i})
            for i, s in enumerate(spellings)
        ],
        wait=True,
    )
    assert qc.count(small).count == 5
    records = qc.retrieve(small, spellings)
    assert sorted(r.id for r in records) == sorted(canonical)
    assert {r.id: r.payload["spelling"] for r in records} == {c: i for i, c in enumerate(canonical)}
    # another spelling of the same id replaces the point, never duplicates it
    qc.upsert(
        small,
        points=[m.PointStruct(id=canonical[0].upper(), vector={"a": [0, 1, 0, 0]}, payload={"spelling": "again"})],
        wait=True,
    )
    assert qc.count(small).count == 5
    assert qc.retrieve(small, ["{" + canonical[0] + "}"])[0].payload == {"spelling": "again"}
    # search, scroll and has_id return the canonical form too
    hits = qc.query_points(small, query=[1, 0, 0, 0], using="a", limit=10).points
    assert {p.id for p in hits} == set(canonical)
    assert qc.count(small, count_filter=m.Filter(must=[m.HasIdCondition(has_id=[spellings[3]])])).count == 1
    qc.delete(small, points_selector=m.PointIdsList(points=[spellings[2]]), wait=True)
    assert sorted(r.id for r in qc.scroll(small, limit=100)[0]) == sorted(set(canonical) - {canonical[2]})


def test_upsert_list_and_batch_forms(qc: QdrantClient, small: str) -> None:
    qc.upsert(
        small,
        points=m.Batch(
            ids=[1, 2, 3],
            vectors={"a": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], "b": [[1, 1, 1], [2, 2, 2], [3, 3, 3]]},
            payloads=[{"x": 1}, {"x": 2}, {}],
        ),
        wait=True,
    )
    qc.upsert(
        small,
        points=[
            m.PointStruct(id=4, vector={"a": [0, 0, 0, 1]}, payload={"x": 4}),  # a point may omit a named vector
            m.PointStruct(id=2, vector={"b": [9, 9, 9]}, payload={"x": 22}),  # replaces point 2 entirely
        ],
        wait=True,
    )
    recs = {r.id: r for r in qc.retrieve(small, [1, 2, 3, 4, 5], with_vectors=True)}
    assert sorted(recs) == [1, 2, 3, 4]  # missing 5 is skipped
    assert recs[1].payload == {"x": 1} and recs[1].vector == {"a": [1, 0, 0, 0], "b": [1, 1, 1]}
    assert recs[2].payload == {"x": 22} and recs[2].vector == {"b": [9, 9, 9]}
    assert recs[3].payload == {}
    assert recs[4].vector == {"a": [0, 0, 0, 1]}
    assert qc.count(small).count == 4


def test_retrieve_variants(qc: QdrantClient, loaded: Loaded) -> None:
    pick = [loaded.ids[i] for i in (0, 10, 77, 399)]
    missing = [1_000_001, "00000000-0000-0000-0000-0000000000ff"]
    recs = qc.retrieve(loaded.name, pick + missing)
    assert sorted(map(id_order, (r.id for r in recs))) == sorted(map(id_order, pick))
    for r in recs:
        i = loaded.index(r.id)
        assert r.payload == loaded.payloads[i]
        assert r.vector is None
    recs = qc.retrieve(loaded.name, pick, with_payload=False, with_vectors=True)
    for r in recs:
        i = loaded.index(r.id)
        assert r.payload is None
        assert set(r.vector) == {k for k in SPACES if loaded.has[k][i]}
        np.testing.assert_allclose(r.vector["dot"], loaded.vectors["dot"][i], rtol=1e-6)
        cos = loaded.vectors[""][i] / np.linalg.norm(loaded.vectors[""][i])
        np.testing.assert_allclose(r.vector[""], cos, atol=1e-6)
    recs = qc.retrieve(loaded.name, pick, with_payload=["cat", "nested.level"], with_vectors=["euc", "man"])
    for r in recs:
        i = loaded.index(r.id)
        p = loaded.payloads[i]
        assert r.payload == {"cat": p["cat"], "nested": {"level": p["nested"]["level"]}}
        assert set(r.vector) == ({"euc", "man"} if loaded.has["man"][i] else {"euc"})
    recs = qc.retrieve(loaded.name, pick, with_payload=m.PayloadSelectorExclude(exclude=["objs", "nested", "date"]))
    for r in recs:
        p = dict(loaded.payloads[loaded.index(r.id)])
        for k in ("objs", "nested", "date"):
            p.pop(k)
        assert r.payload == p


def test_get_point_by_id_over_http(qc: QdrantClient, loaded: Loaded) -> None:
    url = qc._client.rest_uri
    int_id = next(i for i in loaded.ids if isinstance(i, int))
    uuid_id = next(i for i in loaded.ids if isinstance(i, str))
    for pid, spelled in ((int_id, str(int_id)), (uuid_id, uuid.UUID(uuid_id).hex), (uuid_id, uuid_id.upper())):
        r = httpx.get(f"{url}/collections/{loaded.name}/points/{spelled}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok"
        rec = body["result"]
        assert rec["id"] == pid
        i = loaded.index(pid)
        assert rec["payload"] == loaded.payloads[i]
        np.testing.assert_allclose(rec["vector"]["dot"], loaded.vectors["dot"][i], rtol=1e-6)
    assert_error(httpx.get(f"{url}/collections/{loaded.name}/points/1000001"), 404, "1000001")
    assert_error(httpx.get(f"{url}/collections/{loaded.name}/points/{uuid.uuid4()}"), 404, "no point")
    assert_error(httpx.get(f"{url}/collections/{loaded.name}/points/not-an-id"), 400, "not-an-id")
    assert_error(httpx.get(f"{url}/collections/{new_name()}/points/1"), 404, "doesn't exist")


def test_delete_by_ids_and_by_filter(qc: QdrantClient, small: str) -> None:
    qc.upsert(
        small,
        points=[m.PointStruct(id=i, vector={"a": [i, 1, 0, 0]}, payload={"g": i % 3}) for i in range(30)],
        wait=True,
    )
    qc.delete(small, points_selector=m.PointIdsList(points=[0, 1, 2, 999]), wait=True)
    assert qc.count(small).count == 27
    assert qc.retrieve(small, [0, 1, 2, 3]) and [r.id for r in qc.retrieve(small, [0, 1, 2, 3])] == [3]
    qc.delete(
        small,
        points_selector=m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="g", match=m.MatchValue(value=0))])
        ),
        wait=True,
    )
    left = sorted(r.id for r in qc.scroll(small, limit=100)[0])
    assert left == [i for i in range(3, 30) if i % 3 != 0]
    # a bare Filter is accepted as selector too
    qc.delete(small, points_selector=m.Filter(must=[m.FieldCondition(key="g", match=m.MatchValue(value=1))]), wait=True)
    assert sorted(r.id for r in qc.scroll(small, limit=100)[0]) == [i for i in range(3, 30) if i % 3 == 2]
    hits = qc.query_points(small, query=[1, 0, 0, 0], using="a", limit=100).points
    assert sorted(p.id for p in hits) == [i for i in range(3, 30) if i % 3 == 2]


def test_payload_operations(qc: QdrantClient, small: str) -> None:
    base = {"a": 1, "nested": {"x": 1, "y": {"z": 2}}, "list": [1, 2], "s": "keep"}
    qc.upsert(
        small,
        points=[m.PointStruct(id=i, vector={"a": [1, 0, 0, 0]}, payload={**base, "i": i}) for i in range(10)],
        wait=True,
    )

    def payload(pid: int) -> dict[str, Any]:
        return qc.retrieve(small, [pid])[0].payload

    # merge
    qc.set_payload(small, payload={"a": 10, "new": [1, {"q": 1}]}, points=[0, 1], wait=True)
    assert payload(0) == {**base, "i": 0, "a": 10, "new": [1, {"q": 1}]}
    assert payload(2) == {**base, "i": 2}
    # merge at a nested key
    qc.set_payload(small, payload={"w": 5}, key="nested", points=[3], wait=True)
    assert payload(3)["nested"] == {"x": 1, "y": {"z": 2}, "w": 5}
    qc.set_payload(small, payload={"k": True}, key="nested.y", points=[3], wait=True)
    assert payload(3)["nested"] == {"x": 1, "y": {"z": 2, "k": True}, "w": 5}
    # by filter
    qc.set_payload(
        small, payload={"tag": "hi"}, points=m.Filter(must=[m.FieldCondition(key="i", range=m.Range(gte=8))]), wait=True
    )
    assert [payload(i).get("tag") for i in (7, 8, 9)] == [None, "hi", "hi"]
    # overwrite
    qc.overwrite_payload(small, payload={"only": 1}, points=[4], wait=True)
    assert payload(4) == {"only": 1}
    # delete keys, including a nested one
    qc.delete_payload(small, keys=["a", "nested.y"], points=[5], wait=True)
    assert payload(5) == {"nested": {"x": 1}, "list": [1, 2], "s": "keep", "i": 5}
    qc.delete_payload(small, keys=["list"], points=m.Filter(must=[m.HasIdCondition(has_id=[6, 7])]), wait=True)
    assert "list" not in payload(6) and "list" not in payload(7) and "list" in payload(8)
    # clear by ids and by filter
    qc.clear_payload(small, points_selector=[0], wait=True)
    assert payload(0) == {}
    qc.clear_payload(
        small,
        points_selector=m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="tag", match=m.MatchValue(value="hi"))])
        ),
        wait=True,
    )
    assert payload(8) == {} and payload(9) == {} and payload(7) != {}
    # payload edits keep the vector
    (rec,) = qc.retrieve(small, [8], with_vectors=True)
    assert rec.vector == {"a": [1, 0, 0, 0]}
    # a payload edit on a missing point is 404 and changes nothing
    with pytest.raises(UnexpectedResponse) as err:
        qc.set_payload(small, payload={"zzz": 1}, points=[1, 12345], wait=True)
    assert err.value.status_code == 404 and "12345" in error_text(err.value)
    assert "zzz" not in payload(1)


def test_update_and_delete_named_vectors(qc: QdrantClient, small: str) -> None:
    qc.upsert(
        small,
        points=[m.PointStruct(id=i, vector={"a": [i, 1, 0, 0], "b": [i, 0, 0]}, payload={"i": i}) for i in range(1, 6)],
        wait=True,
    )
    qc.update_vectors(small, points=[m.PointVectors(id=2, vector={"b": [100, 0, 0]})], wait=True)
    (rec,) = qc.retrieve(small, [2], with_vectors=True)
    assert rec.vector == {"a": [2, 1, 0, 0], "b": [100, 0, 0]}
    assert rec.payload == {"i": 2}
    hits = qc.query_points(small, query=[100, 0, 0], using="b", limit=1).points
    assert hits[0].id == 2 and hits[0].score == pytest.approx(0.0, abs=1e-6)

    qc.delete_vectors(small, vectors=["b"], points=[2, 3], wait=True)
    recs = {r.id: r.vector for r in qc.retrieve(small, [2, 3, 4], with_vectors=True)}
    assert recs == {2: {"a": [2, 1, 0, 0]}, 3: {"a": [3, 1, 0, 0]}, 4: {"a": [4, 1, 0, 0], "b": [4, 0, 0]}}
    hits = qc.query_points(small, query=[0, 0, 0], using="b", limit=10).points
    assert [p.id for p in hits] == [1, 4, 5]  # points without "b" are not candidates
    # "a" is untouched for every point (rewritten points keep it)
    assert [p.id for p in qc.query_points(small, query=[1, 0, 0, 0], using="a", limit=10).points] == [5, 4, 3, 2, 1]
    assert qc.count(small).count == 5

    with pytest.raises(UnexpectedResponse) as err:
        qc.delete_vectors(small, vectors=["nope"], points=[1], wait=True)
    assert err.value.status_code == 400 and "nope" in error_text(err.value)
    with pytest.raises(UnexpectedResponse) as err:
        qc.update_vectors(small, points=[m.PointVectors(id=1, vector={"b": [1, 2]})], wait=True)
    assert err.value.status_code == 400 and "dimension" in error_text(err.value).lower()


def test_batch_update_points(qc: QdrantClient, small: str) -> None:
    ops = [
        m.UpsertOperation(
            upsert=m.PointsList(
                points=[
                    m.PointStruct(id=i, vector={"a": [i, 0, 0, 1], "b": [0, 0, i]}, payload={"i": i}) for i in range(10)
                ]
            )
        ),
        m.UpsertOperation(
            upsert=m.PointsBatch(
                batch=m.Batch(
                    ids=[10, 11], vectors={"a": [[1, 1, 1, 1], [2, 2, 2, 2]]}, payloads=[{"i": 10}, {"i": 11}]
                )
            )
        ),
        m.DeleteOperation(delete=m.PointIdsList(points=[0])),
        m.SetPayloadOperation(set_payload=m.SetPayload(payload={"s": 1}, points=[1, 2])),
        m.OverwritePayloadOperation(overwrite_payload=m.SetPayload(payload={"o": 1}, points=[3])),
        m.DeletePayloadOperation(delete_payload=m.DeletePayload(keys=["i"], points=[4])),
        m.ClearPayloadOperation(clear_payload=m.PointIdsList(points=[5])),
        m.UpdateVectorsOperation(
            update_vectors=m.UpdateVectors(points=[m.PointVectors(id=6, vector={"b": [6, 6, 6]})])
        ),
        m.DeleteVectorsOperation(delete_vectors=m.DeleteVectors(points=[7], vector=["b"])),
        m.DeleteOperation(
            delete=m.FilterSelector(filter=m.Filter(must=[m.FieldCondition(key="i", match=m.MatchValue(value=9))]))
        ),
    ]
    results = qc.batch_update_points(small, update_operations=ops, wait=True)
    assert len(results) == len(ops)
    assert all(r.status == m.UpdateStatus.COMPLETED for r in results)
    recs = {r.id: r for r in qc.retrieve(small, list(range(12)), with_vectors=True)}
    assert sorted(recs) == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]
    assert recs[1].payload == {"i": 1, "s": 1}
    assert recs[3].payload == {"o": 1}
    assert recs[4].payload == {}
    assert recs[5].payload == {}
    assert recs[6].vector == {"a": [6, 0, 0, 1], "b": [6, 6, 6]}
    assert recs[7].vector == {"a": [7, 0, 0, 1]}
    assert recs[11].vector == {"a": [2, 2, 2, 2]}

    # a failing operation anywhere in the batch writes nothing
    count = qc.count(small).count
    with pytest.raises(UnexpectedResponse) as err:
        qc.batch_update_points(
            small,
            update_operations=[
                m.UpsertOperation(upsert=m.PointsList(points=[m.PointStruct(id=50, vector={"a": [1, 2, 3, 4]})])),
                m.DeleteOperation(delete=m.PointIdsList(points=[1])),
                m.SetPayloadOperation(set_payload=m.SetPayload(payload={"s": 2}, points=[424242])),
            ],
            wait=True,
        )
    assert err.value.status_code == 404
    assert qc.count(small).count == count
    assert qc.retrieve(small, [50]) == [] and len(qc.retrieve(small, [1])) == 1


def test_scroll(qc: QdrantClient, loaded: Loaded) -> None:
    ordered = sorted(loaded.ids, key=id_order)
    records, requests = scroll_all(qc, loaded.name, page=37)
    assert [r.id for r in records] == ordered
    assert requests == -(-len(ordered) // 37)
    assert all(r.payload == loaded.payloads[loaded.index(r.id)] for r in records[:20])  # payload by default
    # next_page_offset is the first id of the next page; offset is inclusive
    first, nxt = qc.scroll(loaded.name, limit=10)
    assert [r.id for r in first] == ordered[:10] and nxt == ordered[10]
    page, nxt2 = qc.scroll(loaded.name, limit=5, offset=ordered[10])
    assert [r.id for r in page] == ordered[10:15] and nxt2 == ordered[15]
    # an offset id that does not exist starts at the next id after it
    first_int = ordered[0]
    page, _ = qc.scroll(loaded.name, limit=3, offset=first_int + 1)
    assert [r.id for r in page] == ordered[1:4]
    # last page: null offset
    uuids = [i for i in ordered if isinstance(i, str)]
    page, nxt = qc.scroll(loaded.name, limit=100, offset=uuids[-3])
    assert [r.id for r in page] == uuids[-3:] and nxt is None
    # filter + vectors, payload off
    flt = m.Filter(must=[m.FieldCondition(key="cat", match=m.MatchValue(value="red"))])
    records, _ = scroll_all(qc, loaded.name, page=16, scroll_filter=flt, with_payload=False, with_vectors=["euc"])
    expected = sorted(
        (pid for pid, p in zip(loaded.ids, loaded.payloads, strict=True) if p["cat"] == "red"), key=id_order
    )
    assert [r.id for r in records] == expected
    assert all(r.payload is None and set(r.vector) == {"euc"} for r in records)
    # default limit is 10
    assert len(qc.scroll(loaded.name)[0]) == 10


def test_count(qc: QdrantClient, loaded: Loaded) -> None:
    assert qc.count(loaded.name).count == len(loaded.ids)
    assert qc.count(loaded.name, exact=True).count == len(loaded.ids)
    flt = m.Filter(must=[m.FieldCondition(key="nested.level", range=m.Range(lt=3))])
    expected = sum(1 for p in loaded.payloads if p["nested"]["level"] < 3)
    assert 0 < expected < len(loaded.ids)
    assert qc.count(loaded.name, count_filter=flt).count == expected


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("using", ["", "dot", "euc", "man"])
def test_query_matches_brute_force(qc: QdrantClient, loaded: Loaded, using: str) -> None:
    dim, distance = SPACES[using]
    rng = np.random.default_rng(99)
    has = loaded.has[using]
    for k in (1, 10, 25):
        q = rng.normal(size=dim).astype(np.float32)
        res = qc.query_points(loaded.name, query=q.tolist(), using=using, limit=k, with_payload=False)
        assert_hits(res.points, brute_top(loaded.ids, loaded.vectors[using], q, distance, k, allowed=has))
        assert all(p.payload is None and p.vector is None for p in res.points)
        assert all(p.version >= 0 for p in res.points)
    # offset
    q = rng.normal(size=dim).astype(np.float32)
    res = qc.query_points(loaded.name, query=q.tolist(), using=using, limit=7, offset=5)
    assert_hits(res.points, brute_top(loaded.ids, loaded.vectors[using], q, distance, 7, allowed=has, offset=5))
    # numpy query input works too
    res2 = qc.query_points(loaded.name, query=q, using=using, limit=12)
    assert [p.id for p in res2.points][5:] == [p.id for p in res.points]


def test_query_default_vector_without_using(qc: QdrantClient, loaded: Loaded) -> None:
    q = np.random.default_rng(5).normal(size=8).astype(np.float32)
    a = qc.query_points(loaded.name, query=q.tolist(), limit=10)
    b = qc.query_points(loaded.name, query=q.tolist(), using="", limit=10)
    assert_hits(a.points, brute_top(loaded.ids, loaded.vectors[""], q, "Cosine", 10))
    assert [(p.id, p.score) for p in a.points] == [(p.id, p.score) for p in b.points]


def test_query_by_point_id_excludes_itself(qc: QdrantClient, loaded: Loaded) -> None:
    for using in ("", "euc"):
        _, distance = SPACES[using]
        for pid in (loaded.ids[0], next(i for i in loaded.ids if isinstance(i, str))):
            i = loaded.index(pid)
            res = qc.query_points(loaded.name, query=pid, using=using, limit=10)
            allowed = np.ones(len(loaded.ids), dtype=bool)
            allowed[i] = False
            assert_hits(
                res.points,
                brute_top(loaded.ids, loaded.vectors[using], loaded.vectors[using][i], distance, 10, allowed=allowed),
            )
            assert pid not in [p.id for p in res.points]
    # a UUID id in another spelling is the same point (and excluded as well)
    pid = next(i for i in loaded.ids if isinstance(i, str))
    res = qc.query_points(loaded.name, query=m.NearestQuery(nearest=uuid.UUID(pid).hex), using="euc", limit=5)
    assert pid not in [p.id for p in res.points] and len(res.points) == 5
    with pytest.raises(UnexpectedResponse) as err:
        qc.query_points(loaded.name, query=1_000_001, limit=3)
    assert err.value.status_code == 404


def test_query_with_filter(qc: QdrantClient, loaded: Loaded) -> None:
    flt = m.Filter(
        must=[m.FieldCondition(key="cat", match=m.MatchAny(any=["red", "blue"]))],
        must_not=[m.FieldCondition(key="nested.level", range=m.Range(gte=7))],
    )
    allowed = np.array([p["cat"] in ("red", "blue") and p["nested"]["level"] < 7 for p in loaded.payloads])
    rng = np.random.default_rng(7)
    for using in ("dot", "man"):
        dim, distance = SPACES[using]
        q = rng.normal(size=dim).astype(np.float32)
        res = qc.query_points(loaded.name, query=q.tolist(), using=using, query_filter=flt, limit=15)
        assert_hits(
            res.points,
            brute_top(loaded.ids, loaded.vectors[using], q, distance, 15, allowed=allowed & loaded.has[using]),
        )
    # a filter matching fewer points than limit returns just those
    few = m.Filter(must=[m.HasIdCondition(has_id=loaded.ids[:3])])
    res = qc.query_points(loaded.name, query=rng.normal(size=8).tolist(), limit=10, query_filter=few)
    assert sorted(map(id_order, (p.id for p in res.points))) == sorted(map(id_order, loaded.ids[:3]))


@pytest.mark.parametrize("using", ["", "euc"])
def test_score_threshold_is_strict(qc: QdrantClient, loaded: Loaded, using: str) -> None:
    dim, distance = SPACES[using]
    q = np.random.default_rng(11).normal(size=dim).astype(np.float32)
    full = qc.query_points(loaded.name, query=q.tolist(), using=using, limit=50).points
    scores = [p.score for p in full]
    # exactly the 10th score as threshold: strict comparison drops it
    cut = qc.query_points(loaded.name, query=q.tolist(), using=using, limit=50, score_threshold=scores[9]).points
    assert [p.id for p in cut] == [p.id for p in full[:9]]
    # a threshold between two scores, checked against brute force
    mid = (scores[19] + scores[20]) / 2
    cut = qc.query_points(loaded.name, query=q.tolist(), using=using, limit=50, score_threshold=mid).points
    ref = brute_top(loaded.ids, loaded.vectors[using], q, distance, 50)
    keep = [(i, s) for i, s in ref if (s > mid if HIGHER_IS_BETTER[distance] else s < mid)]
    assert len(keep) == 20
    assert_hits(cut, keep)


def test_with_payload_and_with_vectors_variants(qc: QdrantClient, loaded: Loaded) -> None:
    q = loaded.vectors["dot"][1].tolist()

    def run(**kw: Any) -> list[Any]:
        pts = qc.query_points(loaded.name, query=q, using="dot", limit=5, **kw).points
        assert len(pts) == 5
        return pts

    for p in run(with_payload=True):
        assert p.payload == loaded.payloads[loaded.index(p.id)]
    for p in run(with_payload=False):
        assert p.payload is None
    for p in run(with_payload=["cat", "objs[].k", "absent"]):
        src = loaded.payloads[loaded.index(p.id)]
        assert p.payload == {"cat": src["cat"], "objs": [{"k": o["k"]} for o in src["objs"]]}
    for p in run(with_payload=m.PayloadSelectorInclude(include=["nested.name", "i"])):
        src = loaded.payloads[loaded.index(p.id)]
        assert p.payload == {"nested": {"name": src["nested"]["name"]}, "i": src["i"]}
    for p in run(with_payload=m.PayloadSelectorExclude(exclude=["objs", "nested.level"])):
        src = loaded.payloads[loaded.index(p.id)]
        expected = {k: v for k, v in src.items() if k != "objs"}
        expected["nested"] = {"name": src["nested"]["name"]}
        assert p.payload == expected
    for p in run(with_vectors=True):
        i = loaded.index(p.id)
        assert set(p.vector) == {k for k in SPACES if loaded.has[k][i]}
        np.testing.assert_allclose(
            p.vector["man"] if "man" in p.vector else p.vector["euc"],
            loaded.vectors["man" if "man" in p.vector else "euc"][i],
            rtol=1e-6,
        )
    for p in run(with_vectors=["dot"], with_payload=False):
        i = loaded.index(p.id)
        assert list(p.vector) == ["dot"]
        np.testing.assert_allclose(p.vector["dot"], loaded.vectors["dot"][i], rtol=1e-6)


def test_query_batch_points(qc: QdrantClient, loaded: Loaded) -> None:
    rng = np.random.default_rng(3)
    qs = {u: rng.normal(size=SPACES[u][0]).astype(np.float32) for u in SPACES}
    flt = m.Filter(must=[m.FieldCondition(key="tags", match=m.MatchValue(value="a"))])
    allowed = np.array(["a" in p["tags"] for p in loaded.payloads])
    reqs = [m.QueryRequest(query=qs[u], using=u, limit=6, with_payload=True) for u in SPACES]
    reqs.append(m.QueryRequest(query=qs["dot"], using="dot", filter=flt, limit=8))
    results = qc.query_batch_points(loaded.name, requests=reqs)
    assert len(results) == len(reqs)
    for u, res in zip(SPACES, results[: len(SPACES)], strict=True):
        assert_hits(res.points, brute_top(loaded.ids, loaded.vectors[u], qs[u], SPACES[u][1], 6, allowed=loaded.has[u]))
        assert all(p.payload == loaded.payloads[loaded.index(p.id)] for p in res.points)
    assert_hits(results[-1].points, brute_top(loaded.ids, loaded.vectors["dot"], qs["dot"], "Dot", 8, allowed=allowed))


def test_legacy_search_endpoints(qc: QdrantClient, loaded: Loaded) -> None:
    url = f"{qc._client.rest_uri}/collections/{loaded.name}/points/search"
    rng = np.random.default_rng(13)
    q_default = rng.normal(size=8).astype(np.float32)
    q_man = rng.normal(size=33).astype(np.float32)
    r = httpx.post(url, json={"vector": q_default.tolist(), "limit": 5, "with_payload": True})
    assert r.status_code == 200, r.text
    hits = [m.ScoredPoint(**h) for h in r.json()["result"]]
    assert_hits(hits, brute_top(loaded.ids, loaded.vectors[""], q_default, "Cosine", 5))
    assert all(h.payload == loaded.payloads[loaded.index(h.id)] for h in hits)

    flt = {"must": [{"key": "nested.level", "range": {"gte": 5}}]}
    allowed = np.array([p["nested"]["level"] >= 5 for p in loaded.payloads]) & loaded.has["man"]
    body = {"vector": {"name": "man", "vector": q_man.tolist()}, "limit": 4, "offset": 2, "filter": flt}
    r = httpx.post(url, json=body)
    assert r.status_code == 200, r.text
    hits = [m.ScoredPoint(**h) for h in r.json()["result"]]
    assert_hits(hits, brute_top(loaded.ids, loaded.vectors["man"], q_man, "Manhattan", 4, allowed=allowed, offset=2))

    r = httpx.post(
        url + "/batch",
        json={
            "searches": [
                {"vector": q_default.tolist(), "limit": 3},
                {"vector": {"name": "man", "vector": q_man.tolist()}, "limit": 3, "score_threshold": 1e9},
                {"vector": {"name": "euc", "vector": q_default.tolist()}, "limit": 3},
            ]
        },
    )
    assert r.status_code == 200, r.text
    batch = [[m.ScoredPoint(**h) for h in hits] for hits in r.json()["result"]]
    assert len(batch) == 3
    assert_hits(batch[0], brute_top(loaded.ids, loaded.vectors[""], q_default, "Cosine", 3))
    assert_hits(
        batch[1], brute_top(loaded.ids, loaded.vectors["man"], q_man, "Manhattan", 3, allowed=loaded.has["man"])
    )
    assert_hits(batch[2], brute_top(loaded.ids, loaded.vectors["euc"], q_default, "Euclid", 3))
    # limit is required in the legacy body
    assert_error(httpx.post(url, json={"vector": q_default.tolist()}), (400, 422), "limit")


# --------------------------------------------------------------------------- filters


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


FILTER_CASES: list[tuple[str, m.Filter, Callable[[Any, dict[str, Any]], bool]]] = [
    (
        "match value",
        m.Filter(must=[m.FieldCondition(key="cat", match=m.MatchValue(value="red"))]),
        lambda i, p: p["cat"] == "red",
    ),
    (
        "match int",
        m.Filter(must=[m.FieldCondition(key="nested.level", match=m.MatchValue(value=4))]),
        lambda i, p: p["nested"]["level"] == 4,
    ),
    (
        "match any on array",
        m.Filter(must=[m.FieldCondition(key="tags", match=m.MatchAny(any=["a", "d"]))]),
        lambda i, p: bool({"a", "d"} & set(p["tags"])),
    ),
    (
        "match except",
        m.Filter(must=[m.FieldCondition(key="cat", match=m.MatchExcept(**{"except": ["red", "blue"]}))]),
        lambda i, p: p["cat"] not in ("red", "blue"),
    ),
    (
        "range",
        m.Filter(must=[m.FieldCondition(key="num", range=m.Range(gte=0.25, lt=0.6))]),
        lambda i, p: 0.25 <= p["num"] < 0.6,
    ),
    (
        "datetime range",
        m.Filter(
            must=[
                m.FieldCondition(
                    key="date",
                    range=m.DatetimeRange(gte=datetime(2024, 1, 5), lt=datetime(2024, 1, 12, 12, tzinfo=timezone.utc)),
                )
            ]
        ),
        lambda i, p: (
            datetime(2024, 1, 5, tzinfo=timezone.utc) <= _dt(p["date"]) < datetime(2024, 1, 12, 12, tzinfo=timezone.utc)
        ),
    ),
    (
        "nested key path in array",
        m.Filter(must=[m.FieldCondition(key="objs[].k", match=m.MatchValue(value=3))]),
        lambda i, p: any(o["k"] == 3 for o in p["objs"]),
    ),
    (
        "is_empty",
        m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="maybe"))]),
        lambda i, p: p.get("maybe") in (None, []),
    ),
    (
        "is_null",
        m.Filter(must=[m.IsNullCondition(is_null=m.PayloadField(key="maybe"))]),
        lambda i, p: "maybe" in p and p["maybe"] is None,
    ),
    (
        "values_count",
        m.Filter(must=[m.FieldCondition(key="tags", values_count=m.ValuesCount(gte=2))]),
        lambda i, p: len(p["tags"]) >= 2,
    ),
    (
        "nested condition",
        m.Filter(
            must=[
                m.NestedCondition(
                    nested=m.Nested(
                        key="objs",
                        filter=m.Filter(
                            must=[
                                m.FieldCondition(key="k", match=m.MatchValue(value=2)),
                                m.FieldCondition(key="v", match=m.MatchValue(value="x")),
                            ]
                        ),
                    )
                )
            ]
        ),
        lambda i, p: any(o["k"] == 2 and o["v"] == "x" for o in p["objs"]),
    ),
    (
        "should",
        m.Filter(
            should=[
                m.FieldCondition(key="cat", match=m.MatchValue(value="black")),
                m.FieldCondition(key="nested.level", range=m.Range(gt=8)),
            ]
        ),
        lambda i, p: p["cat"] == "black" or p["nested"]["level"] > 8,
    ),
    (
        "must_not",
        m.Filter(
            must_not=[
                m.FieldCondition(key="tags", match=m.MatchValue(value="b")),
                m.IsEmptyCondition(is_empty=m.PayloadField(key="objs")),
            ]
        ),
        lambda i, p: "b" not in p["tags"] and bool(p["objs"]),
    ),
    (
        "min_should",
        m.Filter(
            min_should=m.MinShould(
                min_count=2,
                conditions=[
                    m.FieldCondition(key="cat", match=m.MatchValue(value="green")),
                    m.FieldCondition(key="tags", match=m.MatchValue(value="c")),
                    m.FieldCondition(key="num", range=m.Range(lt=0.5)),
                ],
            )
        ),
        lambda i, p: (p["cat"] == "green") + ("c" in p["tags"]) + (p["num"] < 0.5) >= 2,
    ),
    (
        "nested filters",
        m.Filter(
            must=[
                m.Filter(
                    should=[
                        m.FieldCondition(key="maybe", match=m.MatchValue(value="val")),
                        m.FieldCondition(key="maybe", match=m.MatchAny(any=[8])),
                    ]
                )
            ],
            must_not=[m.Filter(must=[m.FieldCondition(key="cat", match=m.MatchValue(value="red"))])],
            should=[],
        ),
        lambda i, p: p.get("maybe") in ("val", [7, 8]) and p["cat"] != "red",
    ),
    (
        "missing key",
        m.Filter(must=[m.FieldCondition(key="no.such.key", match=m.MatchValue(value=1))]),
        lambda i, p: False,
    ),
    (
        "missing key under must_not",
        m.Filter(must_not=[m.FieldCondition(key="nope", match=m.MatchValue(value=1))]),
        lambda i, p: True,
    ),
]


def test_filters_end_to_end(qc: QdrantClient, loaded: Loaded) -> None:
    some_ids = loaded.ids[5:40:3]
    cases = [*FILTER_CASES, ("has_id", m.Filter(must=[m.HasIdCondition(has_id=some_ids)]), lambda i, p: i in some_ids)]
    q = np.random.default_rng(17).normal(size=33).astype(np.float32)
    for label, flt, pred in cases:
        mask = np.array([bool(pred(i, p)) for i, p in zip(loaded.ids, loaded.payloads, strict=True)])
        expected_ids = sorted((i for i, ok in zip(loaded.ids, mask, strict=True) if ok), key=id_order)
        assert qc.count(loaded.name, count_filter=flt).count == len(expected_ids), label
        records, _ = scroll_all(qc, loaded.name, page=500, scroll_filter=flt, with_payload=False)
        assert [r.id for r in records] == expected_ids, label
        res = qc.query_points(loaded.name, query=q.tolist(), using="dot", query_filter=flt, limit=5)
        assert_hits(res.points, brute_top(loaded.ids, loaded.vectors["dot"], q, "Dot", 5, allowed=mask))
    # sanity: the cases are not trivially empty or full
    pairs = list(zip(loaded.ids, loaded.payloads, strict=True))
    nontrivial = [label for label, _, pred in FILTER_CASES if 0 < sum(bool(pred(i, p)) for i, p in pairs) < len(pairs)]
    assert len(nontrivial) >= len(FILTER_CASES) - 2


# --------------------------------------------------------------------------- bad input


def test_bad_input_through_the_client(qc: QdrantClient, small: str) -> None:
    qc.upsert(small, points=[m.PointStruct(id=1, vector={"a": [1, 2, 3, 4]})], wait=True)

    def fails(status: int, call: Callable[[], Any], *words: str) -> None:
        with pytest.raises(UnexpectedResponse) as err:
            call()
        assert err.value.status_code == status, (err.value.status_code, err.value.content)
        text = error_text(err.value)
        for word in words:
            assert word.lower() in text.lower(), text

    fails(400, lambda: qc.upsert(small, points=[m.PointStruct(id=2, vector={"a": [1, 2, 3]})]), "dimension")
    fails(400, lambda: qc.query_points(small, query=[1, 2, 3], using="a"), "dimension")
    fails(400, lambda: qc.upsert(small, points=[m.PointStruct(id=2, vector={"zzz": [1, 2, 3]})]), "zzz")
    fails(400, lambda: qc.query_points(small, query=[1, 2, 3, 4], using="zzz"), "zzz")
    fails(400, lambda: qc.query_points(small, query=[1, 2, 3, 4]), "vector name")  # no default vector here
    missing = new_name()
    fails(404, lambda: qc.get_collection(missing), "doesn't exist", missing)
    fails(404, lambda: qc.upsert(missing, points=[m.PointStruct(id=1, vector=[1.0])]), "doesn't exist")
    fails(404, lambda: qc.query_points(missing, query=[1.0]), "doesn't exist")
    fails(404, lambda: qc.scroll(missing), "doesn't exist")
    fails(404, lambda: qc.count(missing), "doesn't exist")
    fails(
        409,
        lambda: qc.create_collection(small, vectors_config=m.VectorParams(size=2, distance=m.Distance.DOT)),
        "already exists",
    )
    fails(
        400, lambda: qc.upsert(small, points=[m.PointStruct(id="not-a-uuid", vector={"a": [1, 2, 3, 4]})]), "not-a-uuid"
    )
    fails(400, lambda: qc.retrieve(small, ids=["12345"]), "12345")
    # a rejected write changes nothing, even when only its last point is bad
    count = qc.count(small).count
    fails(
        400,
        lambda: qc.upsert(
            small,
            points=[
                *[m.PointStruct(id=100 + i, vector={"a": [1, 2, 3, 4]}) for i in range(20)],
                m.PointStruct(id=200, vector={"a": [1, 2, 3, 4, 5]}),
            ],
        ),
        "dimension",
    )
    fails(
        400,
        lambda: qc.upsert(
            small, points=m.Batch(ids=[300, 301, 302], vectors={"a": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2]]})
        ),
        "dimension",
    )
    assert qc.count(small).count == count
    assert qc.retrieve(small, [100, 200, 300]) == []


def test_bad_input_raw_http(qc: QdrantClient, small: str) -> None:
    url = qc._client.rest_uri
    base = f"/collections/{small}"
    qc.upsert(small, points=[m.PointStruct(id=1, vector={"a": [1, 2, 3, 4]})], wait=True)
    # malformed filters
    for flt in (
        {"must": [{"foo": "bar"}]},
        {"must": [{"key": "a", "match": {"value": 1.5}}]},
        {"must": [{"key": "a", "range": {"gt": "not a date"}}]},
        "x",
        {"must": [{"key": "a", "match": {"unknown_kind": 1}}]},
        {"should": 5},
    ):
        assert_error(raw(url, "POST", base + "/points/count", {"filter": flt}), 400, "filter")
        assert_error(raw(url, "POST", base + "/points/scroll", {"filter": flt}), 400)
    assert_error(
        raw(
            url,
            "POST",
            base + "/points/query",
            {"query": [1, 2, 3, 4], "using": "a", "filter": {"must": [{"key": "a"}]}},
        ),
        400,
    )
    # limit 0 / negative
    for limit in (0, -1):
        assert_error(
            raw(url, "POST", base + "/points/query", {"query": [1, 2, 3, 4], "using": "a", "limit": limit}),
            (400, 422),
            "limit",
        )
        assert_error(raw(url, "POST", base + "/points/scroll", {"limit": limit}), (400, 422), "limit")
        assert_error(
            raw(
                url, "POST", base + "/points/search", {"vector": {"name": "a", "vector": [1, 2, 3, 4]}, "limit": limit}
            ),
            (400, 422),
            "limit",
        )
    # NaN / Infinity as raw JSON tokens: 4xx, never 500
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        r = raw(url, "PUT", base + "/points", content=b'{"points":[{"id":7,"vector":{"a":[' + token + b",1,2,3]}}]}")
        assert 400 <= r.status_code < 500, (token, r.status_code, r.text)
        r = raw(url, "POST", base + "/points/query", content=b'{"using":"a","query":[' + token + b",1,2,3]}")
        assert 400 <= r.status_code < 500, (token, r.status_code, r.text)
    # invalid JSON
    assert_error(raw(url, "PUT", base + "/points", content=b'{"points":[{"id":7,'), 400, "json")
    # non-object payloads
    for payload in ([1, 2], "text", 5):
        r = raw(
            url, "PUT", base + "/points", {"points": [{"id": 8, "vector": {"a": [1, 2, 3, 4]}, "payload": payload}]}
        )
        assert_error(r, (400, 422), "payload")
        r = raw(url, "POST", base + "/points/payload", {"payload": payload, "points": [1]})
        assert_error(r, (400, 422), "payload")
    # malformed ids
    for bad in ("12345", "xyz", -1, 2**64, 1.5, True):
        r = raw(url, "PUT", base + "/points", {"points": [{"id": bad, "vector": {"a": [1, 2, 3, 4]}}]})
        assert_error(r, 400, "id")
    assert_error(raw(url, "POST", base + "/points/delete", {"points": ["nope"]}), 400, "nope")
    # unknown fields are rejected, not ignored
    assert_error(raw(url, "POST", base + "/points/scroll", {"limt": 5}), 400, "limt")
    assert qc.count(small).count == 1
    assert raw(url, "GET", base).status_code == 200  # the server is fine


def test_body_too_large_is_413(tmp_path: Any) -> None:
    srv = start_server(tmp_path / "d", "--max-request-bytes", "10000")
    try:
        client = make_client(srv.url)
        client.create_collection("big", vectors_config=m.VectorParams(size=64, distance=m.Distance.DOT))
        rng = np.random.default_rng(0)
        small_points = [m.PointStruct(id=i, vector=rng.normal(size=64).round(3).tolist()) for i in range(5)]
        client.upsert("big", points=small_points, wait=True)  # ~2.5 kB: fine
        big_points = [m.PointStruct(id=100 + i, vector=rng.normal(size=64).tolist()) for i in range(60)]
        with pytest.raises(UnexpectedResponse) as err:
            client.upsert("big", points=big_points, wait=True)
        assert err.value.status_code == 413
        assert "10000" in error_text(err.value)
        # streamed without a content-length (chunked) is cut off too
        body = json.dumps({"points": [p.model_dump() for p in big_points]}).encode()
        assert len(body) > 10000
        r = httpx.put(
            srv.url + "/collections/big/points",
            content=iter([body[i : i + 4096] for i in range(0, len(body), 4096)]),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        assert client.count("big").count == 5
        client.close()
    finally:
        srv.stop()


# --------------------------------------------------------------------------- congruence with local mode


def test_congruence_with_local_mode(server: ServerProcess) -> None:
    """The same operations through vecdb and through qdrant-client's in-memory mode give the same answers."""
    remote = make_client(server.url)
    local = QdrantClient(":memory:")
    name = new_name()
    rng = np.random.default_rng(2024)
    n = 250
    ids: list[Any] = [int(x) for x in rng.choice(100_000, size=200, replace=False)]
    ids += [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(50)]
    ids = [ids[i] for i in rng.permutation(n)]
    vec_a = rng.normal(size=(n, 8)).astype(np.float32)
    vec_e = rng.normal(size=(n, 5)).astype(np.float32)
    payloads = [make_payload(rng, i) for i in range(n)]
    config = {
        "": m.VectorParams(size=8, distance=m.Distance.COSINE),
        "e": m.VectorParams(size=5, distance=m.Distance.EUCLID),
    }
    try:
        for c in (remote, local):
            c.create_collection(name, vectors_config=config)
            c.upsert(
                name,
                points=[
                    m.PointStruct(
                        id=ids[i], vector={"": vec_a[i].tolist(), "e": vec_e[i].tolist()}, payload=payloads[i]
                    )
                    for i in range(200)
                ],
                wait=True,
            )
            c.upsert(
                name,
                points=m.Batch(
                    ids=ids[200:],
                    vectors={"": vec_a[200:].tolist(), "e": vec_e[200:].tolist()},
                    payloads=payloads[200:],
                ),
                wait=True,
            )
            c.set_payload(name, payload={"extra": {"deep": 1}}, points=ids[:20], wait=True)
            c.set_payload(name, payload={"more": 2}, key="nested", points=ids[10:30], wait=True)
            c.overwrite_payload(name, payload={"fresh": True}, points=ids[30:35], wait=True)
            c.delete_payload(name, keys=["tags", "nested.name"], points=ids[35:60], wait=True)
            c.clear_payload(
                name,
                points_selector=m.FilterSelector(
                    filter=m.Filter(
                        must=[
                            m.FieldCondition(key="cat", match=m.MatchValue(value="black")),
                            m.FieldCondition(key="num", range=m.Range(lt=0.3)),
                        ]
                    )
                ),
                wait=True,
            )
            c.update_vectors(
                name, points=[m.PointVectors(id=ids[k], vector={"e": [float(k)] * 5}) for k in range(70, 80)], wait=True
            )
            c.delete_vectors(name, vectors=["e"], points=ids[80:90], wait=True)
            c.delete(name, points_selector=ids[60:70], wait=True)
            c.delete(
                name,
                points_selector=m.FilterSelector(
                    filter=m.Filter(must=[m.FieldCondition(key="nested.level", match=m.MatchValue(value=9))])
                ),
                wait=True,
            )
            c.upsert(
                name,
                points=[
                    m.PointStruct(id=ids[k], vector={"": vec_e[k].tolist() + [1, 2, 3]}, payload={"replaced": k})
                    for k in range(90, 95)
                ],
                wait=True,
            )

        assert remote.count(name).count == local.count(name).count
        filters = [
            None,
            *(f for _, f, _ in FILTER_CASES),
            m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="tags"))]),
            m.Filter(must=[m.HasVectorCondition(has_vector="e")]),
            m.Filter(must=[m.FieldCondition(key="nested.more", match=m.MatchValue(value=2))]),
        ]
        queries = [rng.normal(size=8).astype(np.float32) for _ in range(2)]
        for flt in filters:
            assert remote.count(name, count_filter=flt).count == local.count(name, count_filter=flt).count, flt
            r_pages, _ = scroll_all(remote, name, page=23, scroll_filter=flt)
            l_pages, _ = scroll_all(local, name, page=23, scroll_filter=flt)
            assert [(r.id, r.payload) for r in r_pages] == [(r.id, r.payload) for r in l_pages], flt
            for q in queries:
                for using, query in (("", q), ("e", q[:5])):
                    rr = remote.query_points(name, query=query.tolist(), using=using, query_filter=flt, limit=12)
                    lr = local.query_points(name, query=query.tolist(), using=using, query_filter=flt, limit=12)
                    assert [p.id for p in rr.points] == [p.id for p in lr.points], (flt, using)
                    for a, b in zip(rr.points, lr.points, strict=True):
                        assert abs(a.score - b.score) <= TOL
                        assert a.payload == b.payload
        # first pages and next_page_offset agree exactly
        for limit in (1, 7, 50):
            r_recs, r_next = remote.scroll(name, limit=limit, with_vectors=True)
            l_recs, l_next = local.scroll(name, limit=limit, with_vectors=True)
            assert r_next == l_next
            assert [r.id for r in r_recs] == [r.id for r in l_recs]
            for a, b in zip(r_recs, l_recs, strict=True):
                assert_same_vectors(a.vector, b.vector)
        # retrieve, including missing and deleted ids
        some = ids[::7] + [999_999_999]
        r_ret = {r.id: r for r in remote.retrieve(name, some, with_vectors=True)}
        l_ret = {r.id: r for r in local.retrieve(name, some, with_vectors=True)}
        assert sorted(r_ret, key=id_order) == sorted(l_ret, key=id_order)
        for pid in r_ret:
            assert r_ret[pid].payload == l_ret[pid].payload
            assert_same_vectors(r_ret[pid].vector, l_ret[pid].vector)
        # search by point id
        for pid in (ids[100], ids[75]):
            for using in ("", "e"):
                rr = remote.query_points(name, query=pid, using=using, limit=8)
                lr = local.query_points(name, query=pid, using=using, limit=8)
                assert [p.id for p in rr.points] == [p.id for p in lr.points]
                assert all(abs(a.score - b.score) <= TOL for a, b in zip(rr.points, lr.points, strict=True))
        # score thresholds
        for using, query in (("", queries[0]), ("e", queries[0][:5])):
            full = local.query_points(name, query=query.tolist(), using=using, limit=30).points
            t = (full[14].score + full[15].score) / 2  # exact ties differ by an ulp between implementations
            rr = remote.query_points(name, query=query.tolist(), using=using, limit=30, score_threshold=t).points
            lr = local.query_points(name, query=query.tolist(), using=using, limit=30, score_threshold=t).points
            assert [p.id for p in rr] == [p.id for p in lr] and len(rr) == 15
        assert remote.get_collection(name).config.params.vectors == local.get_collection(name).config.params.vectors
        assert remote.get_collection(name).points_count == local.get_collection(name).points_count
    finally:
        remote.delete_collection(name)
        remote.close()
        local.close()
