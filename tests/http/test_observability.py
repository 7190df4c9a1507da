"""``/metrics``, ``/healthz``, ``/livez``, ``/readyz`` and the structured request log, on a real server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from vecdb_client import RemoteClient

import vecdb
from tests.harness import start_server
from tests.helpers import FORCE_INDEX, collection, wait_green
from vecdb.api.app import create_app
from vecdb.api.settings import ServerSettings

QUERY_ROUTE = "/collections/{collection_name}/points/query"
KEY = "s3cret-key-value"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page by (name, labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(page: dict, name: str, **labels: str) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(
        tmp_path_factory.mktemp("obs") / "data", "--log-format", "json", "--api-key", KEY, log_level="info"
    )
    yield srv
    srv.stop()


def test_metrics_count_requests_points_and_index(observed) -> None:
    headers = {"api-key": KEY}
    client = RemoteClient(observed.url, api_key=KEY)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(600, 16)).astype(np.float32)
    client.create_collection("m", {"size": 16, "distance": "Cosine"}, optimizers_config=FORCE_INDEX)
    client.upsert("m", points=[{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
    before = samples(httpx.get(observed.url + "/metrics", headers=headers).text)
    for q in vectors[:7]:
        assert (
            httpx.post(
                observed.url + "/collections/m/points/query", headers=headers, json={"query": q.tolist(), "limit": 3}
            ).status_code
            == 200
        )
    assert (
        httpx.post(
            observed.url + "/collections/nope/points/query", headers=headers, json={"query": [0.0] * 16}
        ).status_code
        == 404
    )
    assert httpx.get(observed.url + "/no/such/route", headers=headers).status_code == 404
    wait_green(client, "m")
    response = httpx.get(observed.url + "/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vecdb_http_requests_total", method="POST", route=QUERY_ROUTE, status="200") == 7
    assert delta("vecdb_http_requests_total", method="POST", route=QUERY_ROUTE, status="404") == 1
    assert delta("vecdb_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert delta("vecdb_http_request_duration_seconds_count", method="POST", route=QUERY_ROUTE) == 8
    assert value(after, "vecdb_http_request_duration_seconds_sum", method="POST", route=QUERY_ROUTE) > 0
    assert not any(name.startswith("vecdb_http") and "nope" in str(labels) for name, labels in after)  # no raw paths
    assert value(after, "vecdb_collection_points", collection="m") == 600
    assert value(after, "vecdb_collection_indexed_vectors", collection="m") == 600
    assert value(after, "vecdb_optimizer_backlog_vectors", collection="m") == 0
    assert value(after, "vecdb_collection_status", collection="m", status="green") == 1
    assert value(after, "vecdb_collection_status", collection="m", status="yellow") == 0
    assert value(after, "vecdb_collection_index_loaded", collection="m") == 1
    assert value(after, "vecdb_collections") >= 1
    client.delete("m", points_selector=list(range(100)))
    page = samples(httpx.get(observed.url + "/metrics", headers=headers).text)
    assert value(page, "vecdb_collection_points", collection="m") == 500
    client.close()


def test_health_routes_open_and_metrics_gated(observed) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        response = httpx.get(observed.url + path)  # no key: load balancers and kubelets probe without one
        assert response.status_code == 200, path
    assert httpx.get(observed.url + "/readyz").text == "all shards are ready"
    assert httpx.get(observed.url + "/metrics").status_code == 401


def test_request_log_is_structured_json_without_the_key(observed) -> None:
    headers = {"api-key": KEY, "x-request-id": "req-42"}
    client = RemoteClient(observed.url, api_key=KEY)
    client.create_collection("logged", {"size": 2, "distance": "Dot"})
    client.upsert("logged", points=[{"id": 1, "vector": [1.0, 0.0]}])
    httpx.post(observed.url + "/collections/logged/points/query", headers=headers, json={"query": [1.0, 0.0]})
    httpx.get(observed.url + "/collections/logged")  # no key: 401, logged too
    client.close()
    deadline = time.monotonic() + 5
    while True:
        text = observed.log.read_text()
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        access = [r for r in records if r["logger"] == "vecdb.access"]
        if (
            any(r["http_status"] == 401 and r["http_path"] == "/collections/logged" for r in access)
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    assert all(line.startswith("{") for line in text.splitlines() if line.strip()), "every line is one JSON object"
    query = next(r for r in access if r.get("request_id") == "req-42")
    assert query["http_method"] == "POST" and query["http_path"] == "/collections/logged/points/query"
    assert query["http_route"] == QUERY_ROUTE and query["http_status"] == 200
    assert query["collection"] == "logged" and query["duration_ms"] > 0 and query["level"] == "info"
    assert query["client"].startswith("127.0.0.1:")
    denied = next(r for r in access if r["http_status"] == 401 and r["http_path"] != "/metrics")
    assert denied["http_path"] == "/collections/logged" and denied["http_route"] is None
    assert KEY not in text
    assert any(r["logger"] == "vecdb.cli.main" for r in records)  # the server's own records share the format


def test_readyz_waits_for_saved_indexes_and_backlog_counts_unindexed(tmp_path: Path) -> None:
    """In process: a collection whose optimizer has not run yet (as right after an open)."""
    db_client = vecdb.Client(path=tmp_path / "d")
    db_client.create_collection("c", {"size": 8, "distance": "Euclid"}, optimizers_config=FORCE_INDEX)
    optimizer = collection(db_client, "c").optimizer  # acted on: frozen, then marked as still loading
    optimizer.stop()
    db_client.upsert("c", points=[{"id": i, "vector": [float(i)] * 8} for i in range(300)])
    app = create_app(ServerSettings(path=str(tmp_path / "d")), service=db_client._service)
    with TestClient(app) as http:
        page = samples(http.get("/metrics").text)
        assert value(page, "vecdb_optimizer_backlog_vectors", collection="c") == 300
        assert value(page, "vecdb_collection_indexed_vectors", collection="c") == 0
        assert value(page, "vecdb_collection_status", collection="c", status="yellow") == 1
        optimizer.loaded.clear()
        response = http.get("/readyz")
        assert response.status_code == 503 and "c" in response.text
        assert http.get("/livez").status_code == 200  # alive, only not ready
        optimizer.loaded.set()
        assert http.get("/readyz").status_code == 200


def test_bad_log_format_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vecdb.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--path", str(tmp_path / "x"), "--log-format", "xml"])
    assert result.exit_code == 2 and "--log-format" in result.output
