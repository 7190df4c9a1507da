"""The cluster service (issue 18, ``vecdb/cluster/service.py``) with its replicas in this process
(``LocalPlacement``: three simulated nodes, a data directory per replica): sharded and replicated
collections answer as one collection after the same writes; a replica that stops answering is failed
over on reads, left out of writes (a 503 naming the shard when fewer than ``write_consistency_factor``
replicas remain) and refilled from a peer before it serves again; the shard map survives a restart;
custom sharding with shard keys; the cluster report; replicate / move / drop a replica; refusals.
The same service on Ray actors and simulated Ray nodes: ``tests/system/test_ray_cluster.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecdb
from tests.engine.test_shard_router import UUIDS, _write
from vecdb.cluster.placement import LocalPlacement
from vecdb.cluster.replicas import ACTIVE, DEAD
from vecdb.cluster.service import ClusterService, peer_id
from vecdb.cluster.shard_map import ShardMapStore
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService
from vecdb.errors import AlreadyExists, InvalidInput, NotFound, ShardUnavailable, Unsupported
from vecdb.models.cluster import ClusterOperation, CreateShardKey, DeleteShardKey
from vecdb.models.collections import CreateCollection, UpdateCollection
from vecdb.models.points import CountRequest, PointIdsList, PointRequest, PointsList, ScrollRequest
from vecdb.models.query import QueryRequest, QueryRequestBatch

NODES = ["node-a", "node-b", "node-c"]


def open_cluster(root: Path) -> ClusterService:
    return ClusterService(LocalPlacement(root, NODES), ShardMapStore(str(root / "cluster.json")))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterService]:
    service = open_cluster(tmp_path / "cluster")
    yield service
    service.close()


@pytest.fixture
def one(tmp_path: Path) -> Iterator[LocalService]:
    service = LocalService(Database(tmp_path / "one"))
    yield service
    service.db.close()


def answers(service: Any, name: str = "c") -> list[Any]:
    """What a user reads back: count, every id in scroll order, records with payloads and vectors, queries."""
    out: list[Any] = [service.count_points(name, CountRequest()).count]
    out.append([p.id for p in service.scroll_points(name, ScrollRequest(limit=500)).points])
    records = service.get_points(name, PointRequest(ids=[1, 2, 5, 150, UUIDS[3]], with_vector=True))
    out.append([(r.id, r.payload, r.vector) for r in records])
    for q in np.random.default_rng(71).normal(size=(3, 6)).astype(np.float32):
        req = QueryRequest.model_validate({"query": q.tolist(), "limit": 8, "offset": 2})
        out.append([p.id for p in service.query_points(name, req).points])
    return out


def _create(service: Any, **extra: Any) -> None:
    body = {"vectors": {"size": 6, "distance": "Cosine"}, **extra}
    service.create_collection("c", CreateCollection.model_validate(body))


def _points(ids: list[int], seed: int = 5) -> PointsList:
    vectors = np.random.default_rng(seed).normal(size=(len(ids), 6))
    return PointsList.model_validate(
        {"points": [{"id": i, "vector": v.tolist(), "payload": {"n": i}} for i, v in zip(ids, vectors, strict=True)]}
    )


def test_sharded_replicated_collection_answers_as_one(cluster: ClusterService, one: LocalService) -> None:
    _write(cluster, np.random.default_rng(61), "Cosine", shard_number=3, replication_factor=2)
    _write(one, np.random.default_rng(61), "Cosine")
    assert answers(cluster) == answers(one)
    # a batch of plain queries: one call per shard, merged query by query (offsets, filters, Euclid's order)
    queries = np.random.default_rng(8).normal(size=(6, 6)).tolist()
    flt = {"must": [{"key": "g", "match": {"any": [0, 2]}}]}
    batch = QueryRequestBatch.model_validate(
        {
            "searches": [
                {"query": q, "limit": 4, "offset": j % 3, **({"filter": flt} if j % 2 else {})}
                for j, q in enumerate(queries)
            ]
        }
    )
    got, want = cluster.query_batch_points("c", batch), one.query_batch_points("c", batch)
    assert [[p.id for p in r.points] for r in got] == [[p.id for p in r.points] for r in want]
    info = cluster.get_collection("c")
    assert info.points_count == one.get_collection("c").points_count
    params = info.config.params
    assert (params.shard_number, params.replication_factor, params.sharding_method) == (3, 2, "auto")
    assert set(info.payload_schema) == {"g", "tag"}
    # every replica of a shard holds the same points
    for shard in cluster._routers["c"].shards:
        copies = [
            r.handle.service.scroll_points("c", ScrollRequest(limit=500, with_vector=True)).points
            for r in shard.replicas
        ]
        assert len(copies) == 2 and copies[0] == copies[1] and copies[0]


def test_failover_consistency_factor_and_catch_up(cluster: ClusterService) -> None:
    _create(cluster, shard_number=2, replication_factor=2, write_consistency_factor=2)
    cluster.upsert_points("c", _points(list(range(100))))
    shards = cluster._routers["c"].shards
    victim = shards[0].replicas[0]
    victim.handle.down = True
    # reads fail over to the other replica of the shard
    assert cluster.count_points("c", CountRequest()).count == 100
    assert victim.state == DEAD
    # write_consistency_factor 2 with one replica of shard 0 left: a 503 naming the shard
    with pytest.raises(ShardUnavailable, match="shard 0 of collection 'c': 1 of 2 replicas committed"):
        cluster.upsert_points("c", _points(list(range(100, 160))))
    cluster.update_collection("c", UpdateCollection.model_validate({"params": {"write_consistency_factor": 1}}))
    cluster.upsert_points("c", _points(list(range(100, 200))))
    cluster.delete_points("c", PointIdsList(points=[0, 1, 2, 150]))
    assert cluster.count_points("c", CountRequest()).count == 196
    # the replica answers again: healing refills it from its peer before it serves
    assert cluster.heal() == 0  # (still down: nothing to do)
    victim.handle.down = False
    assert cluster.heal() == 1 and victim.state == ACTIVE
    peer = shards[0].replicas[1]
    dump = ScrollRequest(limit=500, with_vector=True)
    assert victim.handle.service.scroll_points("c", dump) == peer.handle.service.scroll_points("c", dump)
    # with every replica of a shard gone, reads of that shard are a 503 naming it
    for replica in shards[1].replicas:
        replica.handle.down = True
    with pytest.raises(ShardUnavailable, match="shard 1 of collection 'c': no active replica"):
        cluster.count_points("c", CountRequest())


def test_shard_map_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    first = open_cluster(root)
    _create(first, shard_number=3, replication_factor=2)
    first.upsert_points("c", _points(list(range(300))))
    first._routers["c"].shards[1].replicas[1].handle.down = True
    first.upsert_points("c", _points(list(range(300, 320))))  # (marks the downed replica dead, if it got points)
    first.count_points("c", CountRequest())
    states = [[r.state for r in s.replicas] for s in first._routers["c"].shards]
    want = answers(first)
    first.close()
    second = open_cluster(root)
    assert [[r.state for r in s.replicas] for s in second._routers["c"].shards] == states
    assert answers(second) == want
    second.heal()
    assert all(r.state == ACTIVE for s in second._routers["c"].shards for r in s.replicas)
    assert answers(second) == want
    second.close()


def test_custom_sharding_with_shard_keys(cluster: ClusterService, one: LocalService) -> None:
    _create(cluster, sharding_method="custom", replication_factor=2)
    assert cluster.get_collection("c").points_count == 0
    with pytest.raises(InvalidInput, match="shard_key: a collection with custom sharding needs a shard key"):
        cluster.upsert_points("c", _points([1]))
    with pytest.raises(NotFound, match="shard key 'x' does not exist"):
        cluster.upsert_points("c", _points([1]).model_copy(update={"shard_key": "x"}))
    cluster.create_shard_key("c", CreateShardKey(shard_key="x"))
    cluster.create_shard_key("c", CreateShardKey(shard_key=7, shards_number=2))
    with pytest.raises(AlreadyExists):
        cluster.create_shard_key("c", CreateShardKey(shard_key="x"))
    _create(one)
    cluster.upsert_points("c", _points(list(range(50)), seed=1).model_copy(update={"shard_key": "x"}))
    cluster.upsert_points("c", _points(list(range(50, 120)), seed=2).model_copy(update={"shard_key": 7}))
    one.upsert_points("c", _points(list(range(50)), seed=1))
    one.upsert_points("c", _points(list(range(50, 120)), seed=2))
    assert cluster.count_points("c", CountRequest()).count == 120
    assert cluster.count_points("c", CountRequest(shard_key="x")).count == 50
    assert cluster.count_points("c", CountRequest(shard_key=[7, "x"])).count == 120
    q = np.random.default_rng(3).normal(size=6).tolist()
    both = QueryRequest.model_validate({"query": q, "limit": 10})
    assert [p.id for p in cluster.query_points("c", both).points] == [p.id for p in one.query_points("c", both).points]
    only7 = cluster.query_points("c", QueryRequest.model_validate({"query": q, "limit": 200, "shard_key": 7})).points
    assert sorted(p.id for p in only7) == list(range(50, 120))
    assert [r.id for r in cluster.get_points("c", PointRequest(ids=[3, 60, 500]))] == [3, 60]
    assert cluster.get_points("c", PointRequest(ids=[3, 60], shard_key=7))[0].id == 60
    info = cluster.collection_cluster_info("c")
    keyed = {(s.shard_id, s.shard_key) for s in [*info.local_shards, *info.remote_shards]}
    assert keyed == {(0, "x"), (1, 7), (2, 7)} and info.shard_count == 3
    cluster.delete_shard_key("c", DeleteShardKey(shard_key="x"))
    assert cluster.count_points("c", CountRequest()).count == 70
    with pytest.raises(NotFound):
        cluster.count_points("c", CountRequest(shard_key="x"))


def test_cluster_report_and_replica_moves(cluster: ClusterService) -> None:
    _create(cluster, shard_number=2, replication_factor=1)
    cluster.upsert_points("c", _points(list(range(400))))
    want = answers_simple(cluster)
    info = cluster.collection_cluster_info("c")
    assert info.peer_id == peer_id("node-a") and info.shard_count == 2
    placed = {s.shard_id: s.peer_id for s in info.remote_shards} | {s.shard_id: info.peer_id for s in info.local_shards}
    assert placed == {0: peer_id("node-a"), 1: peer_id("node-b")}
    assert (
        sum(s.points_count for s in info.local_shards)
        == cluster._routers["c"].shards[0].read("count_points", "c", CountRequest()).count
    )
    # replicate shard 0 to node-c, then move shard 1 from node-b to node-c, writing all the while
    replicate = {"shard_id": 0, "from_peer_id": peer_id("node-a"), "to_peer_id": peer_id("node-c")}
    cluster.update_collection_cluster("c", ClusterOperation.model_validate({"replicate_shard": replicate}))
    cluster.upsert_points("c", _points(list(range(400, 450))))
    _settle(cluster)
    move = {"shard_id": 1, "from_peer_id": peer_id("node-b"), "to_peer_id": peer_id("node-c")}
    cluster.update_collection_cluster("c", ClusterOperation.model_validate({"move_shard": move}))
    cluster.upsert_points("c", _points(list(range(450, 500))))
    _settle(cluster)
    nodes = [[(r.node, r.state) for r in s.replicas] for s in cluster._routers["c"].shards]
    assert nodes == [[("node-a", ACTIVE), ("node-c", ACTIVE)], [("node-c", ACTIVE)]]
    assert cluster.count_points("c", CountRequest()).count == 500
    shard0 = cluster._routers["c"].shards[0]
    dump = ScrollRequest(limit=1000, with_vector=True)
    assert shard0.replicas[0].handle.service.scroll_points("c", dump) == shard0.replicas[
        1
    ].handle.service.scroll_points("c", dump)
    assert answers_simple(cluster)[0] == want[0] + 100
    # drop a replica; the last active one of a shard cannot go
    cluster.update_collection_cluster(
        "c", ClusterOperation.model_validate({"drop_replica": {"shard_id": 0, "peer_id": peer_id("node-a")}})
    )
    with pytest.raises(InvalidInput, match="last active one of shard 1"):
        cluster.update_collection_cluster(
            "c", ClusterOperation.model_validate({"drop_replica": {"shard_id": 1, "peer_id": peer_id("node-c")}})
        )
    assert cluster.count_points("c", CountRequest()).count == 500
    with pytest.raises(InvalidInput, match="already holds a replica of shard 1"):
        again = {"shard_id": 1, "from_peer_id": peer_id("node-c"), "to_peer_id": peer_id("node-c")}
        cluster.update_collection_cluster("c", ClusterOperation.model_validate({"replicate_shard": again}))
    with pytest.raises(NotFound, match="to_peer_id: no live peer 12"):
        lost = {"shard_id": 1, "from_peer_id": peer_id("node-c"), "to_peer_id": 12}
        cluster.update_collection_cluster("c", ClusterOperation.model_validate({"move_shard": lost}))
    with pytest.raises(Unsupported, match="start_resharding"):
        cluster.update_collection_cluster("c", ClusterOperation.model_validate({"start_resharding": {}}))


def answers_simple(service: Any) -> list[Any]:
    return [service.count_points("c", CountRequest()).count]


def _settle(cluster: ClusterService) -> None:
    deadline = time.monotonic() + 30
    while cluster.collection_cluster_info("c").shard_transfers:
        assert time.monotonic() < deadline, "the transfer did not finish"
        time.sleep(0.05)


def test_refusals(cluster: ClusterService) -> None:
    with pytest.raises(InvalidInput, match="write_consistency_factor: 3 is more than replication_factor 2"):
        _create(cluster, replication_factor=2, write_consistency_factor=3)
    with pytest.raises(InvalidInput, match="sharding_method: 'auto' or 'custom'"):
        _create(cluster, sharding_method="range")
    with pytest.raises(InvalidInput, match="vectors"):
        cluster.create_collection(
            "c", CreateCollection.model_validate({"vectors": {"size": 6, "distance": "Cosine", "datatype": "int4"}})
        )
    assert not cluster.collection_exists("c").exists
    _create(cluster)
    with pytest.raises(AlreadyExists):
        _create(cluster)
    assert cluster.get_collection("c").config.params.shard_number == 3  # (one shard per node by default)
    with pytest.raises(InvalidInput, match="shard_key: this collection is sharded by point id"):
        cluster.count_points("c", CountRequest(shard_key="x"))
    with pytest.raises(InvalidInput, match="shard keys need a collection created with sharding_method custom"):
        cluster.create_shard_key("c", CreateShardKey(shard_key="x"))
    with pytest.raises(NotFound, match="Collection `nope` doesn't exist"):
        cluster.count_points("nope", CountRequest())
    assert cluster.delete_collection("c") and not cluster.delete_collection("c")
    assert not any((cluster.placement.root / "nodes").rglob("data.mdb"))  # type: ignore[attr-defined]


def test_a_copied_replica_holds_every_vector_kind(cluster: ClusterService) -> None:
    """Catch-up copies named dense, sparse and multivectors and payloads alike, points lacking a vector too
    (point by point where the records are not all one dense shape, in float32 columns where they are)."""
    body = {
        "vectors": {
            "d": {"size": 3, "distance": "Euclid"},
            "m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
        },
        "sparse_vectors": {"s": {}},
        "shard_number": 1,
        "replication_factor": 2,
    }
    cluster.create_collection("v", CreateCollection.model_validate(body))
    rng = np.random.default_rng(4)
    points = []
    for i in range(700):
        vector: dict[str, Any] = {"d": rng.normal(size=3).tolist()}
        if i % 3:
            vector["s"] = {"indices": [i % 11, 20 + i % 7], "values": [0.5, 1.5]}
        if i % 4:
            vector["m"] = rng.normal(size=(1 + i % 3, 2)).tolist()
        points.append({"id": i, "vector": vector, "payload": {"i": i, "tags": ["a", str(i % 5)]}})
    cluster.upsert_points("v", PointsList.model_validate({"points": points}))
    dense_only = [{"id": 1000 + i, "vector": {"d": [float(i), 1.0, 2.0]}} for i in range(600)]
    cluster.upsert_points("v", PointsList.model_validate({"points": dense_only}))
    shard = cluster._routers["v"].shards[0]
    stale = shard.replicas[1]
    stale.handle.down = True
    cluster.delete_points("v", PointIdsList(points=[1, 2, 3]))
    cluster.count_points("v", CountRequest())  # (a read may land on either: make sure the stale one is known)
    shard.set_state(stale, DEAD)
    stale.handle.down = False
    assert cluster.heal() == 1
    dump = ScrollRequest(limit=5000, with_vector=True)
    copies = [r.handle.service.scroll_points("v", dump).points for r in shard.replicas]
    assert len(copies[0]) == 1297 and copies[0] == copies[1]


def test_a_stale_replica_never_serves_in_place_of_the_fresh_one(cluster: ClusterService) -> None:
    """Two faults in a row: replica A misses writes its peer B took, then B fails too. A answers first:
    it stays dead (serving it would lose B's writes: reads are a 503) until B is back; B serves, A is
    refilled from it. If B's node is lost for good, dropping B is the operator accepting that loss."""
    _create(cluster, shard_number=1, replication_factor=2)
    shard = cluster._routers["c"].shards[0]
    a, b = shard.replicas
    cluster.upsert_points("c", _points(list(range(10))))
    a.handle.down = True
    cluster.upsert_points("c", _points(list(range(10, 20))))  # acknowledged by B alone
    assert (a.state, a.fresh) == (DEAD, False)
    b.handle.down = True
    with pytest.raises(ShardUnavailable):
        cluster.count_points("c", CountRequest())
    assert (b.state, b.fresh) == (DEAD, True)
    a.handle.down = False
    assert cluster.heal() == 0 and a.state == DEAD  # (stale: not taken back)
    with pytest.raises(ShardUnavailable):
        cluster.count_points("c", CountRequest())
    saved = ShardMapStore(str(cluster.placement.root / "cluster.json")).snapshot()  # type: ignore[attr-defined]
    assert [(r["state"], r["fresh"]) for r in saved["c"]["shards"][0]["replicas"]] == [(DEAD, False), (DEAD, True)]
    b.handle.down = False
    assert cluster.heal() == 1 and b.state == ACTIVE  # the fresh one, as it is
    assert cluster.heal() == 1 and a.state == ACTIVE  # then the stale one, refilled from it
    assert cluster.count_points("c", CountRequest()).count == 20
    # the fresh replica lost for good: dropping it lets the stale one serve (its missed writes are gone)
    a.handle.down = True
    cluster.upsert_points("c", _points(list(range(20, 30))))
    b.handle.down = True
    with pytest.raises(ShardUnavailable):
        cluster.count_points("c", CountRequest())
    a.handle.down = False
    drop = {"drop_replica": {"shard_id": 0, "peer_id": peer_id(b.node)}}
    cluster.update_collection_cluster("c", ClusterOperation.model_validate(drop))
    assert cluster.heal() == 1 and a.state == ACTIVE
    assert cluster.count_points("c", CountRequest()).count == 20


def test_graph_plans_keep_the_recall_floor(tmp_path: Path) -> None:
    """Each shard searches its own HNSW graph: the merged top 10 keeps one node's recall floor (exact plans
    are identical: the differential tests)."""
    from tests.brute import reference_top
    from tests.helpers import FORCE_INDEX, clustered, sharded_client, wait_green

    base = clustered(12_000, 32, seed=3)
    rng = np.random.default_rng(4)
    queries = base[rng.choice(len(base), 60, replace=False)] + rng.normal(scale=0.3, size=(60, 32)).astype(np.float32)
    client = sharded_client(tmp_path / "cluster")
    one = vecdb.Client(path=tmp_path / "one")
    try:
        for c in (client, one):
            c.create_collection("g", vectors_config={"size": 32, "distance": "Cosine"}, optimizers_config=FORCE_INDEX)
            c.upload_collection("g", vectors=base, ids=list(range(len(base))))
            wait_green(c, "g")
        assert client.get_collection("g").config.params.shard_number == 3
        for c in (client, one):
            found = [[p.id for p in c.query_points("g", query=q, limit=10).points] for q in queries]
            ids = list(range(len(base)))
            truth = [[i for i, _ in reference_top(base, ids, q, "Cosine", 10)] for q in queries]
            recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
            assert recall >= 0.95, (c, recall)  # (measured: 1.0 sharded and on one node)
            plan = c.query_points("g", query=queries[0], limit=10, explain=True).explain
            plans = [s["plan"] for s in plan["stage"]["shards"]] if plan["plan"] == "sharded" else [plan["plan"]]
            assert set(plans) == {"hnsw"}, plans
    finally:
        client.close()
        one.close()


def test_the_points_per_request_limit_holds_before_a_request_is_cut(tmp_path: Path) -> None:
    """``--max-batch-points`` counts the whole request at the router (each shard alone would see a part)."""
    from vecdb.limits import Limits
    from vecdb.models.points import UpdateOperations

    service = ClusterService(
        LocalPlacement(tmp_path, NODES), ShardMapStore(str(tmp_path / "cluster.json")), limits=Limits(max_points=10)
    )
    try:
        _create(service, shard_number=3)
        with pytest.raises(InvalidInput, match="points: 12 points in one request; the limit is 10"):
            service.upsert_points("c", _points(list(range(12))))
        ops = {"operations": [{"upsert": _points([1, 2, 3, 4, 5, 6]).model_dump()}] * 2}
        with pytest.raises(InvalidInput, match="operations: 12 points"):
            service.batch_update("c", UpdateOperations.model_validate(ops))
        assert service.count_points("c", CountRequest()).count == 0
        service.upsert_points("c", _points(list(range(10))))
        assert service.count_points("c", CountRequest()).count == 10
    finally:
        service.close()
