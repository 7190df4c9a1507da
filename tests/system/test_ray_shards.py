"""Shards as Ray actors (issue 18, ``vecdb/cluster/actors.py``): the router over three shard actors answers
as one collection; a shard actor killed mid-run is restarted by Ray, reopens its data directory and
answers again with every acknowledged write; vecdb errors raised in an actor come back as themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engine.test_shard_router import UUIDS, _write
from vecdb.cluster.router import ShardRouter
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService
from vecdb.errors import NotFound
from vecdb.models.points import CountRequest, PointRequest, ScrollRequest
from vecdb.models.query import QueryRequest

ray = pytest.importorskip("ray")
# Ray's driver leaves its helper processes' Popen objects to the garbage collector while they run
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _answers(service: Any) -> list[Any]:
    out: list[Any] = [service.count_points("c", CountRequest()).count]
    out.append([p.id for p in service.scroll_points("c", ScrollRequest(limit=500)).points])
    records = service.get_points("c", PointRequest(ids=[1, 2, 5, 150, UUIDS[3]], with_vector=True))
    out.append([(r.id, r.payload, r.vector) for r in records])
    for q in np.random.default_rng(71).normal(size=(3, 6)).astype(np.float32):
        req = QueryRequest.model_validate({"query": q.tolist(), "limit": 8, "offset": 2})
        out.append([p.id for p in service.query_points("c", req).points])
    return out


def test_router_over_shard_actors_survives_a_killed_actor(tmp_path: Path, ray_local: None) -> None:
    from vecdb.cluster.actors import start_shards

    shards = start_shards([tmp_path / f"shard{s}" for s in range(3)])
    router = ShardRouter(shards)
    one = LocalService(Database(tmp_path / "one"))
    _write(router, np.random.default_rng(61), "Cosine")
    _write(one, np.random.default_rng(61), "Cosine")
    want = _answers(one)
    assert _answers(router) == want
    with pytest.raises(NotFound):  # raised in the actor, come back as vecdb's own error
        router.count_points("missing", CountRequest())
    victim = shards[1]
    before = victim.pid()
    ray.kill(victim.actor, no_restart=False)  # (as a crash: Ray restarts it, it reopens its directory)
    deadline = time.monotonic() + 60
    while True:
        try:
            if victim.pid() != before:
                break
        except ray.exceptions.RayActorError:
            pass  # (restarting)
        assert time.monotonic() < deadline, "the shard actor was not restarted"
        time.sleep(0.2)
    assert _answers(router) == want  # every acknowledged write is served again
    one.db.close()
