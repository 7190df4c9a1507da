"""A collection whose LMDB map reaches its limit: 507 with a clear message, nothing half-written,
the store readable and the server up; once the limit is raised, writes succeed again."""

from __future__ import annotations

import httpx
import numpy as np

import vecdb
from tests.harness import start_server
from vecdb.errors import StorageFull

DIM = 64


def _batch(lo: int, n: int, rng: np.random.Generator) -> dict:
    return {
        "points": [
            {
                "id": lo + i,
                "vector": rng.standard_normal(DIM).round(4).tolist(),
                "payload": {"text": "x" * 200, "n": lo + i},
            }
            for i in range(n)
        ]
    }


def test_full_map_is_507_and_recoverable(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    srv = start_server(data, "--max-collection-bytes", str(4 << 20))
    acknowledged = 0
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            http.put(
                "/collections/c",
                json={"vectors": {"size": DIM, "distance": "Cosine"}, "optimizers_config": {"indexing_threshold": 0}},
            )
            for _ in range(200):
                r = http.put("/collections/c/points", json=_batch(acknowledged, 200, rng))
                if r.status_code != 200:
                    break
                acknowledged += 200
            assert r.status_code == 507, r.text
            assert "full" in r.json()["status"]["error"] and "readable" in r.json()["status"]["error"]
            assert acknowledged >= 1000  # the map did grow up to its limit first
            # nothing of the refused batch was applied, and everything acknowledged reads back
            assert http.post("/collections/c/points/count", json={}).json()["result"]["count"] == acknowledged
            last = http.get(f"/collections/c/points/{acknowledged - 1}").json()["result"]
            assert last["payload"]["n"] == acknowledged - 1
            assert http.get(f"/collections/c/points/{acknowledged}").status_code == 404
            hits = http.post("/collections/c/points/query", json={"query": last["vector"], "limit": 1}).json()
            assert hits["result"]["points"][0]["id"] == acknowledged - 1
            assert http.get("/healthz").status_code == 200
    finally:
        srv.stop()
    srv = start_server(data, "--max-collection-bytes", str(64 << 20))  # room again
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            assert http.put("/collections/c/points", json=_batch(acknowledged, 200, rng)).status_code == 200
            count = http.post("/collections/c/points/count", json={}).json()["result"]["count"]
            assert count == acknowledged + 200
    finally:
        srv.stop()


def test_embedded_storage_full_keeps_the_transaction_whole(tmp_path):
    client = vecdb.Client(path=tmp_path, max_collection_bytes=2 << 20)
    rng = np.random.default_rng(1)
    try:
        client.create_collection("c", vectors_config={"size": DIM, "distance": "Dot"})
        stored = 0
        try:
            while True:
                client.upsert("c", points=_batch(stored, 100, rng)["points"])
                stored += 100
        except StorageFull as exc:
            assert "is full" in str(exc)
        assert client.count("c").count == stored and stored > 0
    finally:
        client.close()
