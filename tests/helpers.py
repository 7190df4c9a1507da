"""Helpers that tests in several folders share, so that no test module imports another.

Seeded clustered data, a collection filled and forced to index, a wait for the optimizer, a
read-only look inside an embedded collection, and a minimal point view for evaluating filters
without a store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vecdb.ids import PointId

if TYPE_CHECKING:
    from vecdb.engine.collection import Collection, Inspection

DIM = 24
"""The dimension of ``clustered`` data unless a test asks for another."""

FORCE_INDEX = {"indexing_threshold": 1}  # KB: index however small the collection is


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` float32 points around 32 seeded centres: real data clusters, and graph recall depends on it."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(32, dim)) * 4
    return (centers[rng.integers(0, 32, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def wait_green(client: Any, name: str, timeout: float = 60) -> None:
    """Wait until the optimizer has indexed everything (status green); fail at once on red."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get_collection(name)
        if info.status == "green":
            return
        assert info.status != "red", info.optimizer_status
        time.sleep(0.05)
    raise AssertionError(f"collection {name} still {client.get_collection(name).status} after {timeout}s")


def collection(client: Any, name: str) -> Collection:
    """The embedded client's collection object, for the few tests that act on internals on purpose
    (stopping the optimizer, rewriting LMDB): tests that only read go through ``inspection``."""
    return client.service.db.get(name)  # type: ignore[no-any-return]


def inspection(client: Any, name: str) -> Inspection:
    """What tests read of a collection's internals: ``Collection.inspect()``, values and copies only."""
    return collection(client, name).inspect()


def wait_loaded(client: Any, name: str, timeout: float = 30) -> Inspection:
    """Wait until the saved indexes were read back after the open; returns the first inspection that says so."""
    deadline = time.monotonic() + timeout
    while True:
        seen = inspection(client, name)
        if seen.index_loaded:
            return seen
        assert time.monotonic() < deadline, f"collection {name}: saved indexes not loaded after {timeout}s"
        time.sleep(0.02)


def fill(
    client: Any, name: str, base: np.ndarray, distance: str = "Cosine", payloads: Any = None, **create: Any
) -> None:
    """Create ``name`` with ``FORCE_INDEX`` and upsert ``base`` as ids ``0..n-1`` in batches of 1000."""
    client.create_collection(
        name, {"size": base.shape[1], "distance": distance}, optimizers_config=FORCE_INDEX, **create
    )
    for lo in range(0, len(base), 1000):
        hi = min(lo + 1000, len(base))
        client.upsert(
            name,
            {
                "ids": list(range(lo, hi)),
                "vectors": base[lo:hi],
                "payloads": None if payloads is None else payloads[lo:hi],
            },
        )


@dataclass
class FakePoint:
    """A minimal PointView: what a compiled filter reads, without a collection behind it."""

    id: PointId
    payload: dict[str, Any]
    vectors: frozenset[str] = field(default_factory=frozenset)

    def has_vector(self, name: str) -> bool:
        return name in self.vectors


def fill_quantized(client: Any, name: str, base: np.ndarray, distance: str, quantization: Any) -> None:
    """A collection of ``base`` with ``quantization_config`` (None: float32), indexed from the first point."""
    client.create_collection(
        name,
        {"size": base.shape[1], "distance": distance},
        optimizers_config=FORCE_INDEX,
        quantization_config=quantization,
    )
    for lo in range(0, len(base), 1000):
        client.upsert(name, {"ids": list(range(lo, min(lo + 1000, len(base)))), "vectors": base[lo : lo + 1000]})


SIMULATED_NODES = ("node-a", "node-b", "node-c")


def sharded_client(root: Any, nodes: tuple[str, ...] = SIMULATED_NODES) -> Any:
    """The embedded client's API over a cluster in this process: collections get one shard per simulated
    node (``vecdb.cluster.placement.LocalPlacement``), so a test written for ``vecdb.Client`` runs sharded."""
    from pathlib import Path

    from vecdb.client.base import ClientBase
    from vecdb.cluster.placement import LocalPlacement
    from vecdb.cluster.service import ClusterService
    from vecdb.cluster.shard_map import ShardMapStore

    class ShardedClient(ClientBase):
        def __init__(self) -> None:
            self._service = ClusterService(
                LocalPlacement(Path(root), nodes), ShardMapStore(str(Path(root) / "cluster.json"))
            )

    return ShardedClient()


def client_for(transport: str, tmp_path: Any, request: Any) -> Any:
    """A differential test's vecdb side: ``embedded`` (vecdb.Client), ``sharded`` (the same API over three
    simulated nodes) or ``http`` (qdrant-client against the session server). Close it unless ``http``."""
    import vecdb

    if transport == "embedded":
        return vecdb.Client(path=tmp_path / "data")
    if transport == "sharded":
        return sharded_client(tmp_path / "cluster")
    return request.getfixturevalue("http_client")


@contextmanager
def simulated_ray_nodes(count: int) -> Iterator[Any]:
    """``count`` simulated Ray nodes on this machine (``ray.cluster_utils.Cluster``: a raylet each, one
    logical CPU each), this process joined to them as the driver; shut down on exit."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # (another test's local Ray)
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(count - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, namespace="vecdb", log_to_driver=False, logging_level="ERROR")
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
