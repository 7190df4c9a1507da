"""The cluster on Ray (issue 18): ``ray.cluster_utils.Cluster`` with three simulated nodes (each a raylet of
its own, replicas pinned to them), the cluster service over Ray actors and the coordinator actor.

* differential: the same workload on a collection of 3 shards x 2 replicas and on one collection;
* a kill round: a replica actor SIGKILLed (``ray.kill``) during mixed writes; every acknowledged write is
  on every replica once the replica is back and refilled;
* a node leaves: reads fail over, writes go on; a new node joins and a shard is replicated to it while
  writes keep coming, after which its replicas agree;
* ``vecdb serve --ray auto`` in a child process (it joins the running cluster), driven by qdrant-client over
  HTTP (sharded and custom sharded collections, the cluster report, LlamaIndex's shard keys);
* a replica stalled past the router's timeout (as behind a partition): marked dead, then refilled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engine.test_cluster_service import _points, answers
from tests.engine.test_shard_router import _write
from tests.harness import start_server
from tests.helpers import simulated_ray_nodes
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService
from vecdb.errors import VecdbError
from vecdb.models.cluster import ClusterOperation
from vecdb.models.collections import CreateCollection
from vecdb.models.points import CountRequest, PointIdsList, ScrollRequest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def ray_nodes() -> Iterator[Any]:
    """Three simulated nodes; the driver (this process) joins them."""
    with simulated_ray_nodes(3) as cluster:
        yield cluster


def _service(root: Path) -> Any:
    from vecdb.cluster.actors import RayPlacement, start_coordinator
    from vecdb.cluster.service import ClusterService

    return ClusterService(RayPlacement(root), start_coordinator(root), timeout=20)


def _wait_active(service: Any, name: str = "c", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        service.heal()
        states = [r.state for s in service._routers[name].shards for r in s.replicas]
        if all(state == "Active" for state in states):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def _replica_ids(replica: Any, name: str = "c") -> list[Any]:
    return [
        p.id
        for p in replica.handle.result(replica.handle.submit("scroll_points", name, ScrollRequest(limit=10_000))).points
    ]


def test_sharded_replicated_on_ray_answers_as_one_and_survives_a_kill(ray_nodes: Any, tmp_path: Path) -> None:
    service = _service(tmp_path / "cluster")
    one = LocalService(Database(tmp_path / "one"))
    try:
        assert len(service.placement.nodes()) == 3
        _write(service, np.random.default_rng(61), "Cosine", shard_number=3, replication_factor=2)
        _write(one, np.random.default_rng(61), "Cosine")
        assert answers(service) == answers(one)
        placed = {r.node for s in service._routers["c"].shards for r in s.replicas}
        assert len(placed) == 3  # replicas spread over every node
        # the kill round: mixed writes, one replica actor killed part way; track what was acknowledged
        service.delete_collection("c")
        service.create_collection(
            "c",
            CreateCollection.model_validate(
                {"vectors": {"size": 6, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2}
            ),
        )
        alive: set[int] = set()
        unsure: set[int] = set()
        victim = service._routers["c"].shards[0].replicas[1]
        for round_ in range(30):
            ids = list(range(round_ * 20, round_ * 20 + 20))
            try:
                service.upsert_points("c", _points(ids, seed=round_))
                alive |= set(ids)
            except VecdbError:
                unsure |= set(ids)
            if round_ % 3 == 2:
                gone = ids[:5]
                try:
                    service.delete_points("c", PointIdsList(points=gone))
                    alive -= set(gone)
                except VecdbError:
                    unsure |= set(gone)
            if round_ == 10:
                ray.kill(victim.handle.actor, no_restart=False)  # (a crash: Ray restarts it)
        assert not unsure  # (one replica of the shard stayed: every write was acknowledged)
        _wait_active(service)
        for shard in service._routers["c"].shards:
            copies = [_replica_ids(r) for r in shard.replicas]
            assert copies[0] == copies[1]
        assert sorted(p.id for p in service.scroll_points("c", ScrollRequest(limit=10_000)).points) == sorted(alive)
        # a new service over the same coordinator reads the same shard map and answers alike
        again = _service(tmp_path / "cluster")
        assert again.count_points("c", CountRequest()).count == len(alive)
    finally:
        one.db.close()
        service.delete_collection("c")


def test_node_leaves_and_a_shard_is_replicated_to_a_new_node_under_load(ray_nodes: Any, tmp_path: Path) -> None:
    from vecdb.cluster.service import peer_id

    service = _service(tmp_path / "cluster")
    body = {"vectors": {"size": 6, "distance": "Cosine"}, "shard_number": 2, "replication_factor": 2}
    service.create_collection("c", CreateCollection.model_validate(body))
    service.upsert_points("c", _points(list(range(2000))))
    here = ray.get_runtime_context().get_node_id()
    leaving = next(n for n in ray_nodes.list_all_nodes() if n.node_id != here and n is not ray_nodes.head_node)
    ray_nodes.remove_node(leaving)
    # reads fail over; writes go on with the replicas left (write_consistency_factor 1)
    assert service.count_points("c", CountRequest()).count == 2000
    service.upsert_points("c", _points(list(range(2000, 2200))))
    assert service.count_points("c", CountRequest()).count == 2200
    info = service.collection_cluster_info("c")
    dead = [s for s in info.remote_shards if s.state == "Dead"]
    assert dead and all(s.peer_id == peer_id(leaving.node_id) for s in dead)
    # a new node joins; the shard that lost a replica is replicated to it while writes keep coming
    joined = ray_nodes.add_node(num_cpus=1)
    ray_nodes.wait_for_nodes()
    shard_id = dead[0].shard_id
    source = next(r for r in service._shard("c", shard_id, "").replicas if r.state == "Active")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        next_id = 10_000
        while not stop.is_set():
            service.upsert_points("c", _points(list(range(next_id, next_id + 10))))
            written.extend(range(next_id, next_id + 10))
            next_id += 10

    load = threading.Thread(target=writer)
    load.start()
    try:
        op = {"shard_id": shard_id, "from_peer_id": peer_id(source.node), "to_peer_id": peer_id(joined.node_id)}
        service.update_collection_cluster("c", ClusterOperation.model_validate({"replicate_shard": op}))
        deadline = time.monotonic() + 60
        while service.collection_cluster_info("c").shard_transfers:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        load.join()
    assert written
    shard = service._shard("c", shard_id, "")
    deadline = time.monotonic() + 60
    while len([r for r in shard.replicas if r.state == "Active"]) < 2:  # (a copy that failed: healing retries it)
        assert time.monotonic() < deadline, shard
        service.heal()
        time.sleep(0.2)
    active = [r for r in shard.replicas if r.state == "Active"]
    assert len(active) == 2 and {r.node for r in active} == {source.node, joined.node_id}
    assert _replica_ids(active[0]) == _replica_ids(active[1])
    assert service.count_points("c", CountRequest()).count == 2200 + len(written)
    # the replica on the node that left is dropped from the map
    service.update_collection_cluster(
        "c",
        ClusterOperation.model_validate({"drop_replica": {"shard_id": shard_id, "peer_id": peer_id(leaving.node_id)}}),
    )
    assert all(
        s.state == "Active" for s in service.collection_cluster_info("c").remote_shards if s.shard_id == shard_id
    )


def test_vecdb_serve_ray_through_qdrant_client(ray_nodes: Any, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models
    from qdrant_client.http.exceptions import UnexpectedResponse

    # `--ray auto`: finds the cluster this machine runs (ray_nodes, the last one started here) and joins it
    server = start_server(tmp_path / "data", "--ray", "auto", "--max-batch-points", "100", timeout=90)
    client = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False, timeout=60)
    try:
        client.create_collection(
            "s",
            vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
            shard_number=3,
            replication_factor=2,
        )
        client.upsert("s", [models.PointStruct(id=i, vector=[1.0, i, 0.5, -i], payload={"i": i}) for i in range(60)])
        with pytest.raises(UnexpectedResponse, match="points: 150 points in one request; the limit is 100"):
            client.upsert("s", [models.PointStruct(id=i, vector=[1.0, 0, 0, 0]) for i in range(150)])
        hits = client.query_points("s", query=[0.0, 1.0, 0.0, 0.0], limit=3).points
        assert [h.id for h in hits] == [59, 58, 57]
        assert client.count("s").count == 60
        info = client.collection_cluster_info("s")
        assert info.shard_count == 3 and len(info.local_shards) + len(info.remote_shards) == 6
        params = client.get_collection("s").config.params
        assert (params.shard_number, params.replication_factor) == (3, 2)
        # custom sharding, as LlamaIndex's shard_keys uses it
        client.create_collection(
            "k",
            vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
            sharding_method=models.ShardingMethod.CUSTOM,
        )
        client.create_shard_key("k", "tenant-a")
        client.create_shard_key("k", "tenant-b")
        assert [d.key for d in client.list_shard_keys("k").shard_keys] == ["tenant-a", "tenant-b"]
        client.upsert("k", [models.PointStruct(id=1, vector=[1.0, 0.0])], shard_key_selector="tenant-a")
        client.upsert("k", [models.PointStruct(id=2, vector=[1.0, 1.0])], shard_key_selector="tenant-b")
        assert [p.id for p in client.query_points("k", query=[1.0, 1.0], limit=5).points] == [2, 1]
        only_a = client.query_points("k", query=[1.0, 1.0], limit=5, shard_key_selector="tenant-a").points
        assert [p.id for p in only_a] == [1]
        assert client.count("k", shard_key_selector=["tenant-a", "tenant-b"]).count == 2
        client.delete_shard_key("k", "tenant-b")
        assert client.count("k").count == 1
        _llamaindex_tenants(client)
        names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "vecdb"}
        assert sum(n.startswith("s-") for n in names) == 6  # (the server's replicas: actors of this cluster)
    finally:
        client.close()
        server.stop()


def _llamaindex_tenants(client: Any) -> None:
    """LlamaIndex's own custom sharding (``shard_keys``, ``shard_key_selector_fn``, ``shard_identifier``)."""
    llama_qdrant = pytest.importorskip("llama_index.vector_stores.qdrant")
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from qdrant_client import models

    from tests.http.test_frameworks import embed

    store = llama_qdrant.QdrantVectorStore(
        collection_name="tenants",
        client=client,
        sharding_method=models.ShardingMethod.CUSTOM,
        shard_keys=["alice", "bob"],
        shard_key_selector_fn=lambda tenant: tenant,
    )
    texts = {"alice": ["rust ownership rules", "espresso at noon"], "bob": ["rust borrow checker", "green tea"]}
    for tenant, lines in texts.items():
        nodes = [TextNode(text=t, embedding=embed(t), metadata={"tenant": tenant}) for t in lines]
        store.add(nodes, shard_identifier=tenant)
    assert [d.key for d in client.list_shard_keys("tenants").shard_keys] == ["alice", "bob"]
    for tenant, lines in texts.items():
        found = store.query(
            VectorStoreQuery(query_embedding=embed("rust"), similarity_top_k=5), shard_identifier=tenant
        )
        assert sorted(n.get_content() for n in found.nodes) == sorted(lines)  # its own shard only
        assert found.nodes[0].get_content().startswith("rust")
    both = client.query_points("tenants", query=embed("rust"), limit=2).points
    assert sorted(p.payload["tenant"] for p in both) == ["alice", "bob"]


def test_a_partitioned_replica_times_out_then_catches_up(ray_nodes: Any, tmp_path: Path) -> None:
    """A replica that stops answering (its actor stalled, as behind a partition) past the router's timeout is
    marked dead; writes go on to its peer; once it answers again, healing refills it before it serves."""
    service = _service(tmp_path / "cluster")
    service.timeout = 2.0
    body = {"vectors": {"size": 6, "distance": "Cosine"}, "shard_number": 1, "replication_factor": 2}
    service.create_collection("p", CreateCollection.model_validate(body))
    for shard in service._routers["p"].shards:
        shard.timeout = 2.0
    service.upsert_points("p", _points(list(range(100))))
    shard = service._routers["p"].shards[0]
    stalled = shard.replicas[1]
    stalled.handle.actor.pause.remote(6.0)  # (the actor answers nothing for 6 s)
    t0 = time.monotonic()
    service.upsert_points("p", _points(list(range(100, 150))))  # acknowledged by the peer after the timeout
    assert stalled.state == "Dead" and time.monotonic() - t0 < 5
    service.upsert_points("p", _points(list(range(150, 200))))
    service.delete_points("p", PointIdsList(points=[0, 1, 2]))
    assert service.count_points("p", CountRequest()).count == 197  # (reads from the peer)
    deadline = time.monotonic() + 60
    while stalled.state != "Active":
        assert time.monotonic() < deadline
        service.heal()
        time.sleep(0.2)
    assert _replica_ids(shard.replicas[0], "p") == _replica_ids(stalled, "p")
    assert len(_replica_ids(stalled, "p")) == 197
    service.delete_collection("p")
