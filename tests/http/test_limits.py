"""Request limits of the server (points per write, payload bytes, results per query): a request over
one is refused whole with a 400 naming the field and the option, and nothing of it is written."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import start_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    srv = start_server(
        tmp_path_factory.mktemp("limits") / "data",
        "--max-batch-points",
        "50",
        "--max-payload-bytes",
        "100",
        "--max-results",
        "20",
    )
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        http.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
        yield http
    srv.stop()


def _points(lo: int, n: int, payload: dict | None = None) -> list[dict]:
    return [{"id": lo + i, "vector": [1.0, float(i)], "payload": payload or {}} for i in range(n)]


def _count(http: httpx.Client) -> int:
    return http.post("/collections/c/points/count", json={}).json()["result"]["count"]


def test_points_per_request(limited):
    assert limited.put("/collections/c/points", json={"points": _points(0, 50)}).status_code == 200
    r = limited.put("/collections/c/points", json={"points": _points(100, 51)})
    assert r.status_code == 400 and "51 points" in r.json()["status"]["error"]
    assert "--max-batch-points" in r.json()["status"]["error"]
    r = limited.put(
        "/collections/c/points", json={"batch": {"ids": list(range(100, 160)), "vectors": [[1.0, 0.0]] * 60}}
    )
    assert r.status_code == 400
    ops = [{"upsert": {"points": _points(200 + 30 * k, 30)}} for k in range(2)]  # 60 in one transaction
    r = limited.post("/collections/c/points/batch", json={"operations": ops})
    assert r.status_code == 400 and "operations" in r.json()["status"]["error"]
    assert _count(limited) == 50


def test_payload_bytes(limited):
    before = _count(limited)
    r = limited.put("/collections/c/points", json={"points": _points(500, 3, {"text": "y" * 200})})
    assert r.status_code == 400 and "points.payload[0]" in r.json()["status"]["error"]
    r = limited.post("/collections/c/points/payload", json={"payload": {"text": "y" * 200}, "points": [0]})
    assert r.status_code == 400 and "--max-payload-bytes" in r.json()["status"]["error"]
    assert _count(limited) == before
    assert limited.get("/collections/c/points/0").json()["result"]["payload"] == {}


def test_results_per_query(limited):
    assert limited.post("/collections/c/points/query", json={"query": [1, 0], "limit": 20}).status_code == 200
    for body in ({"query": [1, 0], "limit": 21}, {"query": [1, 0], "limit": 15, "offset": 10}):
        r = limited.post("/collections/c/points/query", json=body)
        assert r.status_code == 400 and "--max-results" in r.json()["status"]["error"]
    r = limited.post("/collections/c/points/search", json={"vector": [1, 0], "limit": 30})
    assert r.status_code == 400
    r = limited.post(
        "/collections/c/points/query/batch",
        json={"searches": [{"query": [1, 0], "limit": 5}, {"query": [1, 0], "limit": 25}]},
    )
    assert r.status_code == 400 and "searches[1].limit" in r.json()["status"]["error"]
    assert limited.post("/collections/c/points/scroll", json={"limit": 21}).status_code == 400
    assert len(limited.post("/collections/c/points/scroll", json={"limit": 20}).json()["result"]["points"]) == 20
