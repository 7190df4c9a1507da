"""The hot routes served from ASGI (``vecdb/api/fast_routes.py``) answer exactly as FastAPI's routes do.

Two apps over one service: the real one, and one with the fast layer taken out of its middleware, so
every request below reaches FastAPI's route. Status and body (all but the ``time`` field) must match,
for answers and for every kind of refusal. The real server's round trips (metrics, keys, limits) are
covered by the other tests in this folder, which now go through the fast layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

import vecdb
from vecdb.api.app import create_app
from vecdb.api.fast_routes import INLINE_BATCH, FastRoutes, _quick
from vecdb.api.settings import ServerSettings
from vecdb.models.query import QueryRequest, QueryRequestBatch, SearchRequest

DIM = 8


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient, TestClient]]:
    """(fast inline, fast in worker threads, FastAPI only) over one service holding collection ``c``."""
    db = vecdb.Client(path=Path(tmp_path_factory.mktemp("fast")) / "data")
    db.create_collection("c", {"size": DIM, "distance": "Cosine"})
    service = db.service
    rng = np.random.default_rng(5)
    points = [
        {"id": i, "vector": rng.normal(size=DIM).tolist(), "payload": {"i": i, "tag": f"t{i % 3}", "s": "é✓"}}
        for i in range(200)
    ]
    db.upsert("c", points)

    def app(fast: bool, inline: bool = True) -> TestClient:
        built = create_app(ServerSettings(access_log=False, inline_queries=inline), service=service)
        if not fast:
            built.user_middleware = [m for m in built.user_middleware if m.cls is not FastRoutes]
        return TestClient(built)

    yield app(True), app(True, inline=False), app(False)
    db.close()


def _answer(client: TestClient, path: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = client.post(path, content=raw, headers={"content-type": content_type})
    parsed = orjson.loads(resp.content)
    assert isinstance(parsed.pop("time"), float)
    return resp.status_code, parsed


Q = [0.1, -0.2, 0.3, 0.05, 0.5, -0.4, 0.2, 0.1]
CASES: list[tuple[str, Any]] = [
    ("query", {"query": Q, "limit": 5}),
    ("query", {"query": Q, "limit": 5, "with_payload": ["tag"], "with_vector": True, "offset": 2}),
    ("query", {"query": Q, "filter": {"must": [{"key": "tag", "match": {"value": "t1"}}]}, "score_threshold": 0.1}),
    ("query", {"query": 7, "limit": 3}),  # by point id
    ("query", {"query": Q, "params": {"hnsw_ef": 32, "exact": True}}),
    ("query", {"prefetch": [{"query": Q, "limit": 20}], "query": {"fusion": "rrf"}, "limit": 4}),
    ("query", {}),  # no query: a scroll in id order
    ("query", {"query": Q, "limit": 0}),  # 422, range
    ("query", {"query": Q, "limti": 3}),  # 400, unknown field
    ("query", {"query": "not a vector", "limit": 3}),  # 400
    ("query", {"query": [1.0, 2.0], "limit": 3}),  # wrong dimension: the engine's 400
    ("query", {"query": Q, "using": "nope"}),  # no such vector
    ("query", b'{"query": [1, 2'),  # invalid JSON
    ("query", b"NaN"),  # invalid JSON (orjson refuses non-finite literals)
    ("query", b""),  # no body
    ("query", b"[1, 2]"),  # not an object
    ("query/batch", {"searches": [{"query": Q, "limit": 2}, {"query": 3, "limit": 1}]}),
    ("query/batch", {"searches": [{"query": Q}, {"query": Q, "limit": -1}]}),
    ("search", {"vector": Q, "limit": 3, "with_payload": True}),
    ("search", {"vector": Q}),  # no limit: Qdrant requires one
    ("search/batch", {"searches": [{"vector": Q, "limit": 2}, {"vector": Q, "limit": 1, "offset": 1}]}),
    ("scroll", {"limit": 5, "with_payload": True}),
    ("scroll", {"filter": {"must": [{"key": "tag", "match": {"value": "t2"}}]}, "limit": 3, "offset": 10}),
    ("scroll", {"limit": 0}),
    ("scroll", {"limit": 2, "with_vector": True, "with_payload": {"exclude": ["s"]}}),
    ("scroll", {"filter": {"must": [{"key": "i", "range": {"gt": "x"}}]}}),
    ("count", {"filter": {"must": [{"key": "tag", "match": {"value": "t1"}}]}, "exact": True}),
    ("count", {}),
    ("count", {"exact": "sometimes"}),
    ("", {"ids": [1, 2, 999], "with_payload": True, "with_vector": True}),
    ("", {"ids": [3], "with_payload": ["tag"]}),
    ("", {"ids": ["not-an-id"]}),
    ("", {}),
]


@pytest.mark.parametrize("route,body", CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)])
def test_fast_routes_answer_as_fastapi_does(
    apps: tuple[TestClient, TestClient, TestClient], route: str, body: Any
) -> None:
    inline, threaded, plain = apps
    path = f"/collections/c/points/{route}" if route else "/collections/c/points"
    expected = _answer(plain, path, body)
    assert _answer(inline, path, body) == expected
    assert _answer(threaded, path, body) == expected


V = [[0.5] * DIM, [0.25] * DIM]
UPSERTS: list[Any] = [
    {"batch": {"ids": [1000, 1001], "vectors": V, "payloads": [{"a": 1}, None]}},
    {"points": [{"id": 1002, "vector": V[0], "payload": {"ok": True}}, {"id": 1003, "vector": V[1]}]},
    {"batch": {"ids": [1004], "vectors": [[1] * DIM]}},  # integers are numbers
    {"batch": {"ids": [1005], "vectors": [[True] + [0.5] * (DIM - 1)]}},  # booleans are not
    {"points": [{"id": 1006, "vector": [0.5] * (DIM - 1) + [False]}]},
    {"batch": {"ids": [1007, 1008], "vectors": [V[0], V[0][:3]]}},  # ragged
    {"batch": {"ids": [1009], "vectors": [[0.5] * (DIM + 1)]}},  # wrong dimension: the engine's 400
    {"points": [{"id": 1010, "vector": V[0]}, {"id": 1011, "vector": [0.5] * (DIM + 2)}]},  # names points[1]
    {"batch": {"ids": [1012, 1013], "vectors": [V[0]]}},  # fewer vectors than ids
    {"batch": {"ids": ["not-an-id"], "vectors": [V[0]]}},
    {"batch": {"ids": [1014], "vectors": [["0.5"] * DIM]}},  # strings are not numbers
    {"batch": {"ids": [1015], "vectors": [V[0]], "extra": 1}},  # unknown field
    {"points": [{"id": 1016, "vector": V[0], "vectors": 1}]},  # unknown field in a point
    {"batch": {"ids": [1017], "vectors": [V[0]], "payloads": ["not a dict"]}},
    {"points": [{"id": 1018, "vector": {"": V[0]}}]},  # a named vector the collection lacks
    {"batch": {"ids": [1019], "vectors": [V[0]]}, "update_filter": {"must": [{"key": "a", "match": {"value": 1}}]}},
    {"nothing": []},
    [1, 2],
    # shapes the simdjson decoder must leave to the model (it flattens nested arrays, keys may repeat)
    {"batch": {"ids": [1001], "vectors": [[[0.5]] + [0.5] * (DIM - 1)]}},
    {"points": [{"id": 1001, "vector": [0.5] * (DIM - 1) + [[0.5]]}]},
    {"batch": {"ids": [1001], "vectors": [[0.5] * DIM], "payloads": [{"s": "[[", "l": [[1], []]}]}},
    b'{"batch": {"ids": [1001], "vectors": [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]], "ids": [1002]}}',
    b'{"points": [{"id": 1001, "vector": [1, 2, 3, 4, 5, 6, 7, 8], "id": 1003}]}',
    {"batch": {"ids": [1001], "vectors": [[12345678901234567890] * DIM]}},
    {"batch": {"ids": [1001], "vectors": [[0.5] * DIM], "payloads": [{"n": None, "b": False, "u": "é✓ [x]"}]}},
    {"points": [{"id": 1001, "vector": [None] * DIM}]},
    {"points": [{"id": 1001, "vector": []}]},
    {"batch": {"ids": [1001], "vectors": [[1e39] * DIM]}},  # past float32: infinite, refused
    {"points": [{"id": 1001, "vector": [0.5] * (DIM - 1) + [-1e39]}]},
    {"batch": {"ids": [], "vectors": []}},
]


@pytest.mark.parametrize("body", UPSERTS, ids=[f"upsert-{i}" for i in range(len(UPSERTS))])
def test_fast_upserts_answer_and_store_as_fastapi_does(
    apps: tuple[TestClient, TestClient, TestClient], body: Any
) -> None:
    """Each upsert through FastAPI's route, then the same through the fast one: the same answer, and the
    same points stored (retrieved back with payloads and vectors)."""
    inline, _, plain = apps
    ids = list(range(1000, 1020))

    def stored(client: TestClient) -> Any:
        resp = client.post("/collections/c/points", json={"ids": ids, "with_payload": True, "with_vector": True})
        return sorted(orjson.loads(resp.content)["result"], key=lambda p: p["id"])

    def clear(client: TestClient) -> None:
        assert client.post("/collections/c/points/delete", json={"points": ids}).status_code == 200

    clear(plain)
    expected = _answer_put(plain, body)
    expected_points = stored(plain)
    clear(plain)
    assert _answer_put(inline, body) == expected
    assert stored(inline) == expected_points
    clear(plain)


def _answer_put(client: TestClient, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = client.put("/collections/c/points?wait=true", content=raw, headers={"content-type": "application/json"})
    parsed = orjson.loads(resp.content)
    parsed.pop("time")
    if resp.status_code == 200:
        parsed["result"].pop("operation_id")  # (each write counts up)
    return resp.status_code, parsed


def test_fast_routes_missing_collection_and_non_json_bodies(apps: tuple[TestClient, TestClient, TestClient]) -> None:
    inline, _, plain = apps
    body = {"query": Q}
    assert _answer(inline, "/collections/none/points/query", body) == _answer(
        plain, "/collections/none/points/query", body
    )
    assert _answer(inline, "/collections/none/points/query", body)[0] == 404
    # a body that is not JSON goes on to FastAPI's route (which answers it as it always did)
    resp = inline.post("/collections/c/points/query", content=b"query=1", headers={"content-type": "text/plain"})
    assert (
        resp.status_code
        == plain.post(
            "/collections/c/points/query", content=b"query=1", headers={"content-type": "text/plain"}
        ).status_code
    )
    assert resp.status_code in (400, 415, 422)


def test_fast_routes_keep_unicode_payloads_and_scores(apps: tuple[TestClient, TestClient, TestClient]) -> None:
    inline, _, _ = apps
    status, body = _answer(inline, "/collections/c/points/query", {"query": Q, "limit": 200, "with_payload": True})
    assert status == 200
    points = body["result"]["points"]
    assert len(points) == 200 and all(p["payload"]["s"] == "é✓" for p in points)
    scores = [p["score"] for p in points]
    assert scores == sorted(scores, reverse=True)


def test_quick_requests_are_the_cheap_ones() -> None:
    plain = QueryRequest.model_validate({"query": Q})
    assert _quick(plain)
    assert _quick(QueryRequest.model_validate({"query": Q, "filter": {"must": [{"key": "a", "match": {"value": 1}}]}}))
    assert not _quick(QueryRequest.model_validate({"query": Q, "params": {"exact": True}}))
    assert not _quick(QueryRequest.model_validate({"prefetch": [{"query": Q}], "query": {"fusion": "rrf"}}))
    assert not _quick(QueryRequest.model_validate({"query": {"text": "embed me", "model": "m"}}))
    assert _quick(QueryRequestBatch.model_validate({"searches": [{"query": Q}] * INLINE_BATCH}))
    assert not _quick(QueryRequestBatch.model_validate({"searches": [{"query": Q}] * (INLINE_BATCH + 1)}))
    assert _quick(SearchRequest.model_validate({"vector": Q, "limit": 1}))
    assert not _quick(SearchRequest.model_validate({"vector": Q, "limit": 1, "params": {"exact": True}}))


def test_large_upserts_decode_in_the_helper_while_queries_are_served(
    apps: tuple[TestClient, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large upsert right after a query goes to the helper process (``vecdb/api/decode_pool.py``) and
    stores what FastAPI's path stores; the same upsert with no query before it decodes in its thread."""
    from vecdb.api import decode_pool, fast_routes

    pooled: list[int] = []
    real = decode_pool.DecodePool.upsert_columns

    def counting(self: decode_pool.DecodePool, body: bytes) -> Any:
        pooled.append(len(body))
        return real(self, body)

    monkeypatch.setattr(decode_pool.DecodePool, "upsert_columns", counting)
    inline, _, plain = apps
    rng = np.random.default_rng(9)
    ids = list(range(5000, 8000))
    body = {
        "batch": {"ids": ids, "vectors": rng.normal(size=(len(ids), DIM)).tolist(), "payloads": [{"n": i} for i in ids]}
    }
    assert len(orjson.dumps(body)) >= decode_pool.POOLED_BYTES

    def stored(client: TestClient) -> Any:
        resp = client.post("/collections/c/points", json={"ids": ids[::97], "with_payload": True, "with_vector": True})
        return orjson.loads(resp.content)["result"]

    assert _answer_put(plain, body)[0] == 200
    expected = stored(plain)
    assert plain.post("/collections/c/points/delete", json={"points": ids}).status_code == 200
    assert _answer(inline, "/collections/c/points/query", {"query": Q, "limit": 3})[0] == 200
    assert _answer_put(inline, body)[0] == 200
    assert pooled and pooled[-1] >= decode_pool.POOLED_BYTES  # through the helper
    assert stored(inline) == expected
    assert plain.post("/collections/c/points/delete", json={"points": ids}).status_code == 200
    monkeypatch.setattr(fast_routes, "BUSY_WINDOW_S", 0.0)  # no query lately: decoded in the request's thread
    pooled.clear()
    assert _answer_put(inline, body)[0] == 200
    assert not pooled and stored(inline) == expected
    assert plain.post("/collections/c/points/delete", json={"points": ids}).status_code == 200


def test_a_slow_inline_query_sends_its_collection_to_the_worker_threads(
    apps: tuple[TestClient, TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inline queries run on the event loop's thread; one that took longer than INLINE_SLOW_S sends the
    collection's next queries to the worker threads (for SLOW_FOR_S)."""
    import asyncio

    from vecdb.api import fast_routes
    from vecdb.engine.service import LocalService

    on_loop: list[bool] = []
    real = LocalService.query_points

    def recording(self: LocalService, name: str, req: Any) -> Any:
        # inline: on the event loop's own thread (TestClient may run each request's loop in a new thread,
        # so thread ids are no evidence); a worker thread has no running loop
        on_loop.append(asyncio._get_running_loop() is not None)
        return real(self, name, req)

    monkeypatch.setattr(LocalService, "query_points", recording)
    inline = apps[0]
    service = inline.app.state.service  # type: ignore[attr-defined]
    fresh = TestClient(create_app(ServerSettings(access_log=False), service=service))
    path, body = "/collections/c/points/query", {"query": Q, "limit": 3}
    monkeypatch.setattr(fast_routes, "INLINE_SLOW_S", 3600.0)
    for _ in range(3):
        assert _answer(fresh, path, body)[0] == 200
    assert on_loop == [True, True, True]  # inline: all on the event loop's thread
    monkeypatch.setattr(fast_routes, "INLINE_SLOW_S", 0.0)  # every query now counts as slow
    assert _answer(fresh, path, body)[0] == 200  # inline, and found slow
    assert _answer(fresh, path, body)[0] == 200  # so this one runs in a worker thread
    assert on_loop[-2:] == [True, False]
