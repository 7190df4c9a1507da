"""Shards as Ray actors (``pip install "vecdb[cluster]"``): each actor serves one shard's data directory
through an in-process :class:`~vecdb.engine.service.LocalService`, and :class:`RayShard` is the
router's handle on it (the :class:`~vecdb.service.VectorService` methods the router calls, forwarded).

Why this shape: the router (:mod:`vecdb.cluster.router`) already speaks to shards through the service
interface, so a shard in another process, or on another node, is the same service behind a remote
call. Ray restarts a dead actor (``max_restarts=-1``); the restarted actor opens the same data
directory, so it serves every acknowledged write again (LMDB is the source of truth, each write durable
before the call returns). Task retries stay off: a write is not sent twice behind the caller's back.

Ray is imported here only, on first use: ``vecdb serve`` without ``--ray`` never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vecdb.cluster.replicas import ReplicaDown
from vecdb.errors import VecdbError
from vecdb.limits import NO_LIMITS, Limits


class ShardServer:
    """The actor's body: one shard's data directory opened in the actor's process."""

    def __init__(self, path: str, max_map_size: Optional[int] = None, limits: Optional[dict[str, Any]] = None) -> None:
        """``max_map_size`` and ``limits`` (a :class:`~vecdb.limits.Limits` as a dict): the server's
        ``--max-collection-bytes`` and request limits, which every replica applies as one node does."""
        from vecdb.engine.database import Database
        from vecdb.engine.service import LocalService
        from vecdb.limits import NO_LIMITS, Limits
        from vecdb.storage.env import DEFAULT_MAX_MAP_SIZE

        self.path = path
        database = Database(
            Path(path),
            max_map_size=max_map_size or DEFAULT_MAX_MAP_SIZE,
            limits=Limits(**limits) if limits else NO_LIMITS,
        )
        self.service = LocalService(database)

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return getattr(self.service, method)(*args, **kwargs)

    def pid(self) -> int:
        import os

        return os.getpid()

    def pause(self, seconds: float) -> None:
        """Answer nothing for ``seconds`` (an actor runs one call at a time): a stalled node or a network
        partition, for fault drills and tests."""
        import time

        time.sleep(seconds)

    def close(self) -> None:
        self.service.db.close()

    def destroy(self) -> None:
        """Close the data directory and delete it (the replica is dropped)."""
        import shutil

        self.service.db.close()
        shutil.rmtree(self.path, ignore_errors=True)


class RayShard:
    """The router's handle on a shard actor: ``shard.count_points(name, req)`` runs in the actor. A vecdb
    error raised there comes back as itself (its class and message), not wrapped in Ray's."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def forwarded(*args: Any, **kwargs: Any) -> Any:
            return self.gather([self.submit(method, *args, **kwargs)])[0]

        return forwarded

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Send ``method`` to the actor without waiting: a reference for :meth:`gather`."""
        return self.actor.call.remote(method, args, kwargs)

    @staticmethod
    def gather(refs: list[Any]) -> list[Any]:
        """The answers of :meth:`submit`'s references (the shards worked at once), errors as in a call."""
        return [RayShard.result(ref) for ref in refs]

    @staticmethod
    def result(ref: Any, timeout: Optional[float] = None) -> Any:
        """The answer of one :meth:`submit`: a vecdb error raised in the actor as itself; an actor that died,
        is restarting past ``timeout``, or cannot be placed (any other Ray error) as
        :class:`~vecdb.cluster.replicas.ReplicaDown`."""
        import ray

        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VecdbError):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:  # died, restarting past the timeout, its node gone, ...
            raise ReplicaDown(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None

    def alive(self, timeout: float) -> bool:
        """Whether the actor answers within ``timeout`` seconds."""
        try:
            self.result(self.actor.pid.remote(), timeout)
            return True
        except ReplicaDown:
            return False

    def pid(self) -> int:
        import ray

        return int(ray.get(self.actor.pid.remote()))


def start_shards(paths: list[Path], options: Optional[dict[str, Any]] = None) -> list[RayShard]:
    """One restartable actor per data directory (Ray must be initialised: ``ray.init(...)``)."""
    import ray

    actor_class = ray.remote(ShardServer).options(max_restarts=-1, max_task_retries=0, **(options or {}))
    return [RayShard(actor_class.remote(str(path))) for path in paths]


NAMESPACE = "vecdb"
"""The Ray namespace of vecdb's named actors (the coordinator, every replica)."""


class RayPlacement:
    """Replicas as Ray actors, each pinned to its node (``NodeAffinitySchedulingStrategy``, not soft: a
    replica's files are on that node) and named after its collection, shard and replica, so that a
    router finds a running replica instead of starting a second one. Replicas (and the coordinator) are
    detached actors: they outlive the server process that started them, so several routers (``vecdb serve
    --ray`` processes) share them and a restarted router finds them running; ``delete_collection`` and
    ``drop_replica`` stop them, ``ray stop`` stops everything. Actors ask Ray for no CPU: they wait on LMDB
    and BLAS, and a node holds many of them."""

    def __init__(self, root: Path, max_map_size: Optional[int] = None, limits: Optional[dict[str, Any]] = None) -> None:
        self.root = Path(root)
        self.max_map_size = max_map_size
        self.limits = limits

    def nodes(self) -> list[str]:
        import ray

        return sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))

    def self_node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def start(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str) -> Any:
        from vecdb.cluster.placement import replica_dir

        path = replica_dir(self.root, node, collection, uid, shard_id, replica_id)
        name = f"{collection}-{uid}/{shard_id}/{replica_id}"
        return RayShard(_pinned(ShardServer, name, node, str(path), self.max_map_size, self.limits))

    def discard(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str, handle: Any) -> None:
        import ray

        try:
            handle.result(handle.actor.destroy.remote(), 30.0)
        finally:
            ray.kill(handle.actor, no_restart=True)

    def close(self) -> None:
        return None


class RemoteStore:
    """The coordinator actor's :class:`~vecdb.cluster.shard_map.ShardMapStore`, called as if local."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def snapshot(self) -> dict[str, Any]:
        return dict(RayShard.result(self.actor.snapshot.remote()))

    def put(self, name: str, entry: Optional[dict[str, Any]]) -> None:
        RayShard.result(self.actor.put.remote(name, entry))

    def set_state(self, name: str, shard_id: int, replica_id: str, state: str, fresh: bool = False) -> None:
        RayShard.result(self.actor.set_state.remote(name, shard_id, replica_id, state, fresh))

    def aliases(self) -> dict[str, str]:
        return dict(RayShard.result(self.actor.aliases.remote()))

    def set_aliases(self, aliases: dict[str, str]) -> None:
        RayShard.result(self.actor.set_aliases.remote(aliases))


def _pinned(body: type, name: str, node: str, *args: Any) -> Any:
    """The detached, restartable actor ``name`` (found if running, else started with ``args``) of class
    ``body`` on ``node`` (not soft: its files are there), asking Ray for no CPU."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return (
        ray.remote(body)
        .options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=0,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
        )
        .remote(*args)
    )


def start_coordinator(root: Path) -> RemoteStore:
    """The cluster's one coordinator (found if running): the shard map in ``root``/cluster.json, on this node."""
    import ray

    from vecdb.cluster.shard_map import ShardMapStore

    here = str(ray.get_runtime_context().get_node_id())
    return RemoteStore(_pinned(ShardMapStore, "coordinator", here, str(Path(root) / "cluster.json")))


def connect(address: str) -> None:
    """Join the Ray cluster at ``address``; ``auto`` joins the one this machine belongs to, or starts one."""
    import ray

    if ray.is_initialized():
        return
    options: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": "WARNING", "log_to_driver": False}
    if address != "auto":
        ray.init(address=address, **options)
        return
    try:
        ray.init(address="auto", **options)
    except ConnectionError:
        ray.init(include_dashboard=False, **options)


def open_cluster(
    root: Path,
    address: str = "auto",
    heal_every_s: float = 2.0,
    max_map_size: Optional[int] = None,
    limits: Optional[Limits] = None,
) -> Any:
    """``vecdb serve --ray``: join (or start) the Ray cluster, find or start the coordinator over
    ``root``/cluster.json, and serve every collection it lists, healing failed replicas every
    ``heal_every_s`` seconds. ``max_map_size`` and ``limits`` are the server's, applied by every replica
    (and the points-per-request limit by the router, before a request is cut by shard)."""
    import dataclasses

    from vecdb.cluster.service import ClusterService

    connect(address)
    as_dict = dataclasses.asdict(limits) if limits is not None else None
    placement = RayPlacement(root, max_map_size, as_dict)
    service = ClusterService(placement, start_coordinator(root), limits=limits or NO_LIMITS)
    service.start_healing(heal_every_s)
    return service


__all__ = [
    "NAMESPACE",
    "RayPlacement",
    "RayShard",
    "RemoteStore",
    "ShardServer",
    "connect",
    "open_cluster",
    "start_coordinator",
    "start_shards",
]
