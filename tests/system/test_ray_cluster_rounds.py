"""Kill rounds on simulated Ray nodes (issue 18; ``slow``: ``pytest -m slow tests/system/test_ray_cluster_rounds.py``,
about half a minute): a writer thread upserts and deletes without pause on a collection of 3 shards x 2
replicas while replica actors are SIGKILLed (``ray.kill``, Ray restarts them) round after round and, in the
last round, a whole node leaves (one fault at a time: each killed actor answers again before the next).
After each round healing refills every replica that failed; then every acknowledged write must be on
every active replica of its shard, and nothing unacknowledged may be half there (a write that failed is
either on no replica or on all of them after catch-up). Two faults at once are
``tests/engine/test_cluster_service.py::test_a_stale_replica_never_serves_in_place_of_the_fresh_one``."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_cluster_service import _points
from tests.helpers import simulated_ray_nodes
from vecdb.errors import VecdbError
from vecdb.models.collections import CreateCollection
from vecdb.models.points import PointIdsList, ScrollRequest

ray = pytest.importorskip("ray")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def ray_nodes() -> Iterator[Any]:
    with simulated_ray_nodes(4) as cluster:
        yield cluster


class Writer(threading.Thread):
    """Upserts of 20 new points and deletes of 5 old ones, back to back; what was acknowledged is kept."""

    def __init__(self, service: Any) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.alive: set[int] = set()
        self.unsure: set[int] = set()
        self.stop = threading.Event()
        self.next_id = 0

    def run(self) -> None:
        rng = random.Random(3)
        while not self.stop.is_set():
            ids = list(range(self.next_id, self.next_id + 20))
            self.next_id += 20
            try:
                self.service.upsert_points("c", _points(ids, seed=self.next_id))
                self.alive |= set(ids)
            except VecdbError:
                self.unsure |= set(ids)
            if len(self.alive) > 40:
                gone = rng.sample(sorted(self.alive), 5)
                try:
                    self.service.delete_points("c", PointIdsList(points=gone))
                    self.alive -= set(gone)
                except VecdbError:
                    self.unsure |= set(gone)


def _heal_all(service: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        service.heal()
        live_nodes = set(service.placement.nodes())
        waiting = [
            r for s in service._routers["c"].shards for r in s.replicas if r.state != "Active" and r.node in live_nodes
        ]
        if not waiting:
            return
        assert time.monotonic() < deadline, waiting
        time.sleep(0.2)


def _ids(replica: Any) -> set[Any]:
    page = replica.handle.result(replica.handle.submit("scroll_points", "c", ScrollRequest(limit=100_000)), 60)
    return {p.id for p in page.points}


def test_kill_rounds_lose_no_acknowledged_write(ray_nodes: Any, tmp_path: Path) -> None:
    from vecdb.cluster.actors import RayPlacement, start_coordinator
    from vecdb.cluster.service import ClusterService

    service = ClusterService(RayPlacement(tmp_path / "c"), start_coordinator(tmp_path / "c"), timeout=20)
    body = {"vectors": {"size": 6, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2}
    service.create_collection("c", CreateCollection.model_validate(body))
    writer = Writer(service)
    writer.start()
    rng = random.Random(11)
    here = ray.get_runtime_context().get_node_id()
    try:
        for round_ in range(6):
            time.sleep(1.0)
            if round_ < 5:
                replicas = [r for s in service._routers["c"].shards for r in s.replicas if r.state == "Active"]
                victim = rng.choice(replicas)
                ray.kill(victim.handle.actor, no_restart=False)
                time.sleep(0.5)
                deadline = time.monotonic() + 60
                while not victim.handle.alive(5.0):  # (one fault at a time: rf 2 survives one, not two)
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            else:
                others = [n for n in ray_nodes.list_all_nodes() if n.node_id != here and n is not ray_nodes.head_node]
                ray_nodes.remove_node(others[0])
            time.sleep(1.0)
            _heal_all(service)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    _heal_all(service)
    assert writer.next_id > 500  # (the writer kept going through the rounds)
    live_nodes = set(service.placement.nodes())
    for shard in service._routers["c"].shards:
        copies = [_ids(r) for r in shard.replicas if r.state == "Active" and r.node in live_nodes]
        assert copies and all(c == copies[0] for c in copies), shard
    everything = {p.id for p in service.scroll_points("c", ScrollRequest(limit=100_000)).points}
    assert writer.alive - writer.unsure <= everything  # every acknowledged, still-live point is there
    assert not (everything - writer.alive - writer.unsure)  # and nothing else but what may have landed
