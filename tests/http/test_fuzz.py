"""Property-based fuzzing of the live server from its own OpenAPI schema (schemathesis).

For every operation, schemathesis generates requests from the schema: valid ones
(positive) and ones that break it (negative). No response may be a 5xx, and every
response must match the schema documented for it. Half of the requests that name a
collection are pointed at one that exists, so bodies reach the point and search code
rather than stopping at "not found". The default run is short; ``-m slow`` runs many
more cases per operation and mode.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.harness import ServerProcess, start_server

TARGET = "fuzz"


@pytest.fixture
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    yield srv
    log = srv.log.read_text()
    srv.stop()
    assert "Traceback" not in log, log[-3000:]


def ensure_target(url: str) -> None:
    """The collection half the cases aim at; a fuzzed delete may have dropped it."""
    if httpx.get(f"{url}/collections/{TARGET}/exists").json()["result"]["exists"]:
        return
    httpx.put(f"{url}/collections/{TARGET}", json={"vectors": {"size": 4, "distance": "Cosine"}})
    httpx.put(
        f"{url}/collections/{TARGET}/points?wait=true",
        json={
            "points": [
                {"id": i, "vector": [1.0, float(i), 0.5, -1.0], "payload": {"k": i, "tag": ["a", "b"][i % 2]}}
                for i in range(20)
            ]
        },
    )


def run_fuzz(url: str, examples: int) -> dict[str, int]:
    """``examples`` cases per operation and generation mode; returns cases run by mode."""
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    runs = {mode.value: 0 for mode in schemathesis.GenerationMode}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                params = case.path_parameters or {}
                if "collection_name" in params and zlib.crc32(repr(case.body).encode()) % 2:
                    ensure_target(url)
                    params["collection_name"] = TARGET
                case.call_and_validate(base_url=url, checks=[not_a_server_error, response_schema_conformance])
                runs[mode.value] += 1  # noqa: B023 - runs is the one dict of the whole loop

            try:
                check()
            except Unsatisfiable:  # an operation without inputs has no invalid request
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert httpx.get(url + "/healthz").status_code == 200
    return runs


def test_fuzz_openapi(fuzz_server: ServerProcess) -> None:
    runs = run_fuzz(fuzz_server.url, examples=10)
    assert runs["positive"] > 100 and runs["negative"] > 100, runs


@pytest.mark.slow
def test_fuzz_openapi_long(fuzz_server: ServerProcess) -> None:
    runs = run_fuzz(fuzz_server.url, examples=100)
    print("fuzz cases run:", runs)
