"""The REST API's service over a cluster: collections of shards and replicas, placed on nodes.

:class:`ClusterService` implements :class:`~vecdb.service.VectorService`, so ``vecdb serve --ray`` puts the
same API in front of it. Each collection is a :class:`~vecdb.cluster.router.ShardRouter` over
:class:`~vecdb.cluster.replicas.ReplicaSet` s; each replica is a one-shard collection in its own data
directory, started by a *placement* on a node (:class:`~vecdb.cluster.actors.RayPlacement`: a Ray actor
pinned to the node; :class:`~vecdb.cluster.placement.LocalPlacement`: in this process, for tests and one
machine). The shard map and every collection's settings live in the coordinator's
:class:`~vecdb.cluster.shard_map.ShardMapStore`, written before a change is acknowledged; a restarted
server opens every replica again from it.

What it adds to routing: collection creation with ``shard_number`` (default: one per node, as Qdrant),
``replication_factor``, ``write_consistency_factor`` and ``sharding_method`` (``auto``/``custom``);
shard keys; the cluster report and Qdrant's ``move_shard`` / ``replicate_shard`` / ``drop_replica``; and
:meth:`ClusterService.heal`, which refills every replica that failed and answers again (run every few
seconds by :meth:`ClusterService.start_healing`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Optional, Protocol

from vecdb import __version__
from vecdb.cluster.replicas import ACTIVE, DEAD, PARTIAL, Replica, ReplicaSet
from vecdb.cluster.router import ShardRouter, per_shard_create
from vecdb.cluster.transfer import stream_shard
from vecdb.engine.database import changed_aliases
from vecdb.engine.settings import collection_config, raise_missing_collection, settings_from_create
from vecdb.errors import AlreadyExists, InvalidInput, NotFound, ShardUnavailable, Unsupported
from vecdb.ids import PointId
from vecdb.limits import NO_LIMITS, Limits
from vecdb.models.cluster import (
    ClusterOperation,
    CollectionClusterInfo,
    CreateShardKey,
    DeleteShardKey,
    LocalShardInfo,
    MoveShard,
    RemoteShardInfo,
    ShardKeyDescription,
    ShardKeysResponse,
    ShardTransferInfo,
)
from vecdb.models.collections import (
    AliasDescription,
    ChangeAliasesOperation,
    CollectionDescription,
    CollectionExistence,
    CollectionInfo,
    CollectionsAliasesResponse,
    CollectionsResponse,
    CollectionStatus,
    CreateCollection,
    CreateFieldIndex,
    CreateVectorName,
    UpdateCollection,
)
from vecdb.models.points import (
    CountRequest,
    CountResult,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    PointInsertOperations,
    PointRequest,
    PointsList,
    PointsSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    SetPayload,
    UpdateOperations,
    UpdateResult,
    UpdateVectors,
    UpsertOperation,
)
from vecdb.models.query import (
    GroupsResult,
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    QueryResponse,
    ScoredPoint,
    SearchMatrixOffsetsResponse,
    SearchMatrixPairsResponse,
    SearchMatrixRequest,
    SearchRequest,
    SearchRequestBatch,
)
from vecdb.models.snapshots import SnapshotDescription, SnapshotRecover
from vecdb.names import check_name
from vecdb.service import (
    QDRANT_COMPAT_VERSION,
    VectorService,
    look_up_groups,
    matrix_offsets,
    matrix_pairs,
    search_as_query,
)

log = logging.getLogger(__name__)


class Placement(Protocol):
    """Where replicas run: the nodes there are, and a replica started (or found) on one of them."""

    def nodes(self) -> list[str]: ...
    def self_node(self) -> str: ...
    def start(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str) -> Any: ...
    def discard(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str, handle: Any) -> None: ...
    def close(self) -> None: ...


class Store(Protocol):
    def snapshot(self) -> dict[str, Any]: ...
    def put(self, name: str, entry: Optional[dict[str, Any]]) -> None: ...
    def set_state(self, name: str, shard_id: int, replica_id: str, state: str, fresh: bool = False) -> None: ...
    def aliases(self) -> dict[str, str]: ...
    def set_aliases(self, aliases: dict[str, str]) -> None: ...


def peer_id(node: str) -> int:
    """A node's peer number (Qdrant names peers by numbers): 48 bits of its id's hash, exact in JSON."""
    return int.from_bytes(hashlib.blake2b(node.encode(), digest_size=6).digest(), "big")


_SETUP_MODELS: dict[str, Any] = {"create_field_index": CreateFieldIndex, "update_collection": UpdateCollection}


class ClusterService(VectorService):
    """Sharded, replicated collections (see the module's docstring)."""

    def __init__(
        self, placement: Placement, store: Store, timeout: Optional[float] = 60.0, limits: Limits = NO_LIMITS
    ) -> None:
        self.placement = placement
        self.store = store
        self.limits = limits
        """The server's request limits: the points per request checked here, before a request is cut by
        shard (each replica checks payload sizes and result depths itself)."""
        self.timeout = timeout
        """Seconds a replica may take to answer before it counts as down."""
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, Any]] = store.snapshot()
        self._aliases: dict[str, str] = store.aliases()
        self._routers: dict[str, ShardRouter] = {}
        self._transfers: dict[str, list[ShardTransferInfo]] = {}
        self._healer: Optional[threading.Thread] = None
        self._stop = threading.Event()
        for name, entry in self._entries.items():
            for shard in entry["shards"]:
                for replica in shard["replicas"]:
                    if replica["state"] == PARTIAL:  # a transfer the last server did not finish
                        replica["state"] = DEAD
            self._routers[name] = self._open(name, entry)

    # --- replicas ---------------------------------------------------------------------------------

    def _open(self, name: str, entry: dict[str, Any]) -> ShardRouter:
        shards = [self._replica_set(name, entry, shard) for shard in entry["shards"]]
        return ShardRouter(shards, _keys_of(entry) if entry["sharding_method"] == "custom" else None)

    def _replica_set(self, name: str, entry: dict[str, Any], shard: dict[str, Any]) -> ReplicaSet:
        replicas = [self._replica(name, entry, shard["id"], r) for r in shard["replicas"]]
        return ReplicaSet(
            shard["id"],
            replicas,
            entry["write_consistency_factor"],
            name,
            on_state=functools.partial(self._state_changed, name),
            timeout=self.timeout,
        )

    def _replica(self, name: str, entry: dict[str, Any], shard_id: int, r: dict[str, Any]) -> Replica:
        handle = self.placement.start(name, entry["uid"], shard_id, r["id"], r["node"])
        return Replica(r["id"], handle, r["node"], r["state"], fresh=r.get("fresh", False))

    def _state_changed(self, name: str, shard_id: int, replica_id: str, state: str, fresh: bool) -> None:
        with self._lock:
            for shard in self._entries.get(name, {}).get("shards", []):
                for replica in shard["replicas"] if shard["id"] == shard_id else []:
                    if replica["id"] == replica_id:
                        replica["state"], replica["fresh"] = state, fresh
        self.store.set_state(name, shard_id, replica_id, state, fresh)

    def _new_replicas(
        self, entry: dict[str, Any], shard_id: int, count: int, nodes: Sequence[str]
    ) -> list[dict[str, Any]]:
        """``count`` replica entries on distinct nodes where there are enough (shard ``s`` starts at node
        ``s mod nodes``, so that shards spread)."""
        out = []
        for r in range(count):
            out.append({"id": f"r{entry['next_replica']}", "node": nodes[(shard_id + r) % len(nodes)], "state": ACTIVE})
            entry["next_replica"] += 1
        return out

    def _setup(self, name: str, entry: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls that make the collection on an empty replica as its peers have it."""
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("create_collection", (name, per_shard_create(CreateCollection.model_validate(entry["create"]))))
        ]
        for step in entry["setup"]:
            method, body = step["method"], step["body"]
            if method == "create_vector_name":
                calls.append((method, (name, body["vector_name"], CreateVectorName.model_validate(body["req"]))))
            elif method == "delete_vector_name":
                calls.append((method, (name, body["vector_name"])))
            else:
                model = _SETUP_MODELS.get(method)
                calls.append((method, (name, model.model_validate(body) if model else body)))
        return calls

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            raise raise_missing_collection(name)
        return entry

    def _real(self, name: str) -> str:
        """A collection's name, or the collection an alias names."""
        return name if name in self._entries else self._aliases.get(name, name)

    def _go(self, name: str, method: str, *args: Any) -> Any:
        """``method`` of the collection's router (``name`` may be an alias), called with its real name."""
        real = self._real(name)
        return getattr(self._router(real), method)(real, *args)

    def _router(self, name: str) -> ShardRouter:
        router = self._routers.get(name)
        if router is None:
            raise raise_missing_collection(name)
        return router

    def _save(self, name: str) -> None:
        self.store.put(name, self._entries[name])

    # --- healing ------------------------------------------------------------------------------------

    def heal(self) -> int:
        """Refill every dead replica that answers again from an active peer of its shard; with none left,
        take back the ``fresh`` one (the last to take writes: its directory holds every acknowledged write)
        as it is, and leave the others dead until it is back (serving them would lose writes). The replicas
        healed. A replica another transfer is filling (``busy``) is left to it."""
        healed = 0
        for name in list(self._routers):
            router = self._routers.get(name)
            for shard in router.shards if router else []:
                for replica in [r for r in shard.replicas if r.state == DEAD and not r.busy]:
                    if not replica.handle.alive(timeout=min(self.timeout or 5.0, 5.0)):
                        continue
                    with self._lock:
                        if replica.busy or name not in self._entries:
                            continue
                        replica.busy = True
                    try:
                        peers = shard.active()
                        if peers:
                            stream_shard(shard, peers[0], replica, name, self._setup(name, self._entries[name]))
                        elif replica.fresh:
                            shard.set_state(replica, ACTIVE)
                        else:  # it missed writes that only a replica still down holds: wait for that one
                            continue
                        healed += 1
                    except Exception as exc:  # noqa: BLE001 (a node that dies again: tried at the next round)
                        log.warning(
                            "collection %s shard %d: refilling replica %s failed: %s",
                            name,
                            shard.shard_id,
                            replica.replica_id,
                            exc,
                        )
                    finally:
                        replica.busy = False
        return healed

    def start_healing(self, every_s: float = 2.0) -> None:
        """Run :meth:`heal` every ``every_s`` seconds in a background thread until :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.heal()
                except Exception:  # noqa: BLE001
                    log.exception("healing round failed")

        self._healer = threading.Thread(target=loop, name="vecdb-heal", daemon=True)
        self._healer.start()

    def close(self) -> None:
        self._stop.set()
        if self._healer is not None:
            self._healer.join(timeout=10)
        self.placement.close()

    # --- collections ------------------------------------------------------------------------------

    def root_info(self) -> dict[str, Any]:
        return {
            "title": "qdrant - vector search engine",
            "version": QDRANT_COMPAT_VERSION,
            "commit": "0" * 40,
            "vecdb_version": __version__,
            "vecdb_cluster": {"nodes": len(self.placement.nodes())},
        }

    def get_collections(self) -> CollectionsResponse:
        return CollectionsResponse(collections=[CollectionDescription(name=n) for n in sorted(self._entries)])

    def collection_exists(self, name: str) -> CollectionExistence:
        return CollectionExistence(exists=self._real(name) in self._entries)

    def create_collection(self, name: str, req: CreateCollection) -> bool:
        check_name(name)
        method = req.sharding_method or "auto"
        if method not in ("auto", "custom"):
            raise InvalidInput(f"sharding_method: 'auto' or 'custom', not {method!r}")
        settings_from_create(per_shard_create(req))  # every setting checked before any replica starts
        rf = req.replication_factor or 1
        wcf = req.write_consistency_factor or 1
        if wcf > rf:
            raise InvalidInput(
                f"write_consistency_factor: {wcf} is more than replication_factor {rf}: no write could succeed"
            )
        nodes = self.placement.nodes()
        with self._lock:
            if name in self._entries or name in self._aliases:
                raise AlreadyExists(f"Collection `{name}` already exists!")
            entry: dict[str, Any] = {
                "uid": uuid.uuid4().hex[:12],
                "create": req.model_dump(mode="json", exclude_unset=True, by_alias=True),
                "setup": [],
                "sharding_method": method,
                "shard_number": req.shard_number or (1 if method == "custom" else len(nodes)),
                "replication_factor": rf,
                "write_consistency_factor": wcf,
                "next_replica": 0,
                "shards": [],
                "shard_keys": [],
            }
            if method == "auto":
                for s in range(entry["shard_number"]):
                    entry["shards"].append({"id": s, "key": None, "replicas": self._new_replicas(entry, s, rf, nodes)})
            router = self._open(name, entry)
            try:
                self._make_everywhere(name, router.shards, self._setup(name, entry))
            except BaseException:
                self._discard(name, entry, router.shards)
                raise
            self._entries[name] = entry
            self._routers[name] = router
            self._save(name)
        return True

    def _make_everywhere(
        self, name: str, shards: Sequence[ReplicaSet], calls: list[tuple[str, tuple[Any, ...]]]
    ) -> None:
        """Run the setup calls on every replica of ``shards``; every replica must take them."""
        for method, args in calls:
            for shard in shards:
                shard.write(method, *args)
        for shard in shards:
            dead = [r.replica_id for r in shard.replicas if r.state != ACTIVE]
            if dead:
                raise ShardUnavailable(f"shard {shard.shard_id} of collection {name!r}: replicas {dead} did not start")

    def _discard(self, name: str, entry: dict[str, Any], shards: Sequence[ReplicaSet]) -> None:
        for shard in shards:
            for replica in shard.replicas:
                try:
                    self.placement.discard(
                        name, entry["uid"], shard.shard_id, replica.replica_id, replica.node, replica.handle
                    )
                except Exception as exc:  # noqa: BLE001 (a replica on a node that left: its files stay there)
                    log.warning("collection %s: replica %s not removed: %s", name, replica.replica_id, exc)

    def delete_collection(self, name: str) -> bool:
        name = self._real(name)
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return False
            router = self._routers[name]
            router.delete_collection(name)
            self._discard(name, entry, router.shards)
            del self._entries[name], self._routers[name]
            self.store.put(name, None)
            if name in self._aliases.values():
                self._aliases = {a: c for a, c in self._aliases.items() if c != name}
                self.store.set_aliases(self._aliases)
        return True

    def get_collection(self, name: str) -> CollectionInfo:
        name = self._real(name)
        entry, router = self._entry(name), self._router(name)
        infos = router._all("get_collection", name)
        if infos:
            info = infos[0].model_copy(deep=True)
            info.points_count = sum(i.points_count for i in infos)
            info.indexed_vectors_count = sum(i.indexed_vectors_count for i in infos)
            info.segments_count = sum(i.segments_count for i in infos)
            info.status = max((i.status for i in infos), key=_STATUS_ORDER.index)  # (the least ready shard's)
        else:  # custom sharding before its first shard key: the settings, no points
            settings = settings_from_create(per_shard_create(CreateCollection.model_validate(entry["create"])))
            info = CollectionInfo(status="green", points_count=0, config=collection_config(settings))
        params = info.config.params
        params.shard_number = entry["shard_number"]
        params.replication_factor = entry["replication_factor"]
        params.write_consistency_factor = entry["write_consistency_factor"]
        params.sharding_method = entry["sharding_method"]
        return info

    def update_collection(self, name: str, req: UpdateCollection) -> bool:
        name = self._real(name)
        with self._lock:
            entry, router = self._entry(name), self._router(name)
            if req.params is not None and req.params.write_consistency_factor is not None:
                if req.params.write_consistency_factor > entry["replication_factor"]:
                    raise InvalidInput(
                        f"params.write_consistency_factor: {req.params.write_consistency_factor} is more than "
                        f"replication_factor {entry['replication_factor']}"
                    )
                entry["write_consistency_factor"] = req.params.write_consistency_factor
                for shard in router.shards:
                    shard.write_consistency_factor = entry["write_consistency_factor"]
            if req.params is not None and req.params.replication_factor is not None:
                entry["replication_factor"] = req.params.replication_factor  # (for new shards: replicate_shard adds)
            per_shard = req
            if req.params is not None:
                params = req.params.model_copy(update={"replication_factor": None, "write_consistency_factor": None})
                per_shard = req.model_copy(update={"params": params})
            router.update_collection(name, per_shard)
            entry["setup"].append(
                {"method": "update_collection", "body": per_shard.model_dump(mode="json", exclude_unset=True)}
            )
            self._save(name)
        return True

    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult:
        name = self._real(name)
        with self._lock:
            result = self._go(name, "create_field_index", req)
            self._entries[name]["setup"].append(
                {"method": "create_field_index", "body": req.model_dump(mode="json", exclude_unset=True, by_alias=True)}
            )
            self._save(name)
        return result

    def delete_field_index(self, name: str, field_name: str) -> UpdateResult:
        name = self._real(name)
        with self._lock:
            result = self._go(name, "delete_field_index", field_name)
            self._entries[name]["setup"].append({"method": "delete_field_index", "body": field_name})
            self._save(name)
        return result

    def create_vector_name(self, name: str, vector_name: str, req: CreateVectorName) -> UpdateResult:
        """The vector added on every replica (one node's rules), remembered for replicas made later."""
        body = {"vector_name": vector_name, "req": req.model_dump(mode="json", exclude_unset=True, by_alias=True)}
        return self._everywhere(name, "create_vector_name", (vector_name, req), body)

    def delete_vector_name(self, name: str, vector_name: str) -> UpdateResult:
        return self._everywhere(name, "delete_vector_name", (vector_name,), {"vector_name": vector_name})

    def _everywhere(self, name: str, method: str, args: tuple[Any, ...], body: Any) -> UpdateResult:
        """A collection-wide change on every replica of every shard, added to the setup replayed on new ones."""
        with self._lock:
            name = self._real(name)
            entry, router = self._entry(name), self._router(name)
            result = router._write_all(range(router.shard_number), method, name, *args)  # type: ignore[arg-type]
            entry["setup"].append({"method": method, "body": body})
            self._save(name)
        return result

    def update_aliases(self, req: ChangeAliasesOperation) -> bool:
        """One node's alias rules (:func:`vecdb.engine.database.changed_aliases`), kept in the shard map."""
        with self._lock:
            aliases = changed_aliases(self._aliases, self._entries, req)
            self.store.set_aliases(aliases)
            self._aliases = aliases
        return True

    def get_aliases(self) -> CollectionsAliasesResponse:
        return CollectionsAliasesResponse(
            aliases=[AliasDescription(alias_name=a, collection_name=c) for a, c in sorted(self._aliases.items())]
        )

    def get_collection_aliases(self, name: str) -> CollectionsAliasesResponse:
        real = self._real(name)
        self._entry(real)
        return CollectionsAliasesResponse(
            aliases=[
                AliasDescription(alias_name=a, collection_name=c) for a, c in sorted(self._aliases.items()) if c == real
            ]
        )

    # --- points -----------------------------------------------------------------------------------

    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult:
        self.limits.check_points(_count(req), "points")
        return self._go(name, "upsert_points", req)

    def get_points(self, name: str, req: PointRequest) -> list[Record]:
        return self._go(name, "get_points", req)

    def get_point(self, name: str, point_id: PointId) -> Record:
        return self._go(name, "get_point", point_id)

    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult:
        return self._go(name, "delete_points", req)

    def set_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._go(name, "set_payload", req)

    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._go(name, "overwrite_payload", req)

    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult:
        return self._go(name, "delete_payload", req)

    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult:
        return self._go(name, "clear_payload", req)

    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult:
        return self._go(name, "update_vectors", req)

    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult:
        return self._go(name, "delete_vectors", req)

    def batch_update(self, name: str, req: UpdateOperations) -> list[UpdateResult]:
        """Each operation in turn (one transaction per shard each, not one for the whole batch)."""
        upserts = [op.upsert for op in req.operations if isinstance(op, UpsertOperation)]
        self.limits.check_points(sum(_count(u) for u in upserts), "operations")
        name = self._real(name)
        router = self._router(name)
        return [getattr(router, method)(name, body) for op in req.operations for method, body in op.__dict__.items()]

    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult:
        return self._go(name, "scroll_points", req)

    def count_points(self, name: str, req: CountRequest) -> CountResult:
        return self._go(name, "count_points", req)

    def facet(self, name: str, req: FacetRequest) -> FacetResponse:
        return self._go(name, "facet", req)

    # --- search -----------------------------------------------------------------------------------

    def query_points(self, name: str, req: QueryRequest) -> QueryResponse:
        return self._go(name, "query_points", req)

    def query_batch_points(self, name: str, req: QueryRequestBatch) -> list[QueryResponse]:
        return self._go(name, "query_batch_points", req.searches) if req.searches else []

    def query_groups(self, name: str, req: QueryGroupsRequest) -> GroupsResult:
        found = self._go(name, "query_groups", req.model_copy(update={"with_lookup": None}))
        if req.with_lookup is not None and found.groups:
            look_up_groups(found.groups, req.with_lookup, self.get_points)
        return found

    def search_points(self, name: str, req: SearchRequest) -> list[ScoredPoint]:
        return self.query_points(name, _with_key(search_as_query(req), req.shard_key)).points

    def search_batch_points(self, name: str, req: SearchRequestBatch) -> list[list[ScoredPoint]]:
        queries = [_with_key(search_as_query(s), s.shard_key) for s in req.searches]
        return [r.points for r in self.query_batch_points(name, QueryRequestBatch(searches=queries))]

    def search_matrix_pairs(self, name: str, req: SearchMatrixRequest) -> SearchMatrixPairsResponse:
        return matrix_pairs(*self._go(name, "distance_matrix", req))

    def search_matrix_offsets(self, name: str, req: SearchMatrixRequest) -> SearchMatrixOffsetsResponse:
        return matrix_offsets(*self._go(name, "distance_matrix", req))

    # --- snapshots --------------------------------------------------------------------------------

    def create_snapshot(self, name: str, wait: bool = True) -> Optional[SnapshotDescription]:
        raise Unsupported(
            "snapshots: snapshots of a sharded collection are not supported yet (replicas are its copies)"
        )

    def list_snapshots(self, name: str) -> list[SnapshotDescription]:
        name = self._real(name)
        self._entry(name)
        return []

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        raise Unsupported("snapshots: snapshots of a sharded collection are not supported yet")

    def recover_snapshot(self, name: str, req: SnapshotRecover, wait: bool = True) -> Optional[bool]:
        raise Unsupported("snapshots: snapshots of a sharded collection are not supported yet")

    def upload_snapshot(
        self, name: str, source: BinaryIO, checksum: Optional[str] = None, wait: bool = True
    ) -> Optional[bool]:
        raise Unsupported("snapshots: snapshots of a sharded collection are not supported yet")

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        raise Unsupported("snapshots: snapshots of a sharded collection are not supported yet")

    # --- cluster ----------------------------------------------------------------------------------

    def collection_cluster_info(self, name: str) -> CollectionClusterInfo:
        name = self._real(name)
        entry, router = self._entry(name), self._router(name)
        here = self.placement.self_node()
        local: list[LocalShardInfo] = []
        remote: list[RemoteShardInfo] = []
        keys = {shard["id"]: shard["key"] for shard in entry["shards"]}
        for shard in router.shards:
            for replica in shard.replicas:
                key = keys.get(shard.shard_id)
                if replica.node == here and replica.state == ACTIVE:
                    count = replica.handle.result(
                        replica.handle.submit("count_points", name, CountRequest()), self.timeout
                    )
                    local.append(
                        LocalShardInfo(
                            shard_id=shard.shard_id, shard_key=key, points_count=count.count, state=replica.state
                        )
                    )
                else:
                    remote.append(
                        RemoteShardInfo(
                            shard_id=shard.shard_id, shard_key=key, peer_id=peer_id(replica.node), state=replica.state
                        )
                    )
        return CollectionClusterInfo(
            peer_id=peer_id(here),
            shard_count=len(router.shards),
            local_shards=local,
            remote_shards=remote,
            shard_transfers=list(self._transfers.get(name, [])),
        )

    def update_collection_cluster(self, name: str, op: ClusterOperation) -> bool:
        name = self._real(name)
        self._entry(name)
        if op.move_shard is not None or op.replicate_shard is not None:
            move = op.move_shard is not None
            self._copy_replica(name, op.move_shard if move else op.replicate_shard, drop_source=move)  # type: ignore[arg-type]
            return True
        if op.drop_replica is not None:
            self._drop_replica(name, op.drop_replica.shard_id, op.drop_replica.peer_id)
            return True
        asked = next(k for k, v in op.__dict__.items() if v is not None)
        if asked == "create_sharding_key":
            return self.create_shard_key(name, CreateShardKey.model_validate(op.create_sharding_key))
        if asked == "drop_sharding_key":
            return self.delete_shard_key(name, DeleteShardKey.model_validate(op.drop_sharding_key))
        raise Unsupported(f"{asked}: this cluster operation is not supported yet")

    def _node(self, peer: int, field: str) -> str:
        for node in self.placement.nodes():
            if peer_id(node) == peer:
                return node
        raise NotFound(f"{field}: no live peer {peer}")

    def _shard(self, name: str, shard_id: int, field: str) -> ReplicaSet:
        for shard in self._router(name).shards:
            if shard.shard_id == shard_id:
                return shard
        raise NotFound(f"{field}: collection {name!r} has no shard {shard_id}")

    def _copy_replica(self, name: str, move: MoveShard, drop_source: bool) -> None:
        """A new replica of the shard on ``to_peer_id``, filled from the one on ``from_peer_id`` while the shard
        keeps serving; with ``drop_source`` the source replica is dropped once the copy is active. Runs in
        the background, reported in the cluster info's ``shard_transfers`` until done."""
        what = "move_shard" if drop_source else "replicate_shard"
        with self._lock:
            entry = self._entry(name)
            shard = self._shard(name, move.shard_id, f"{what}.shard_id")
            to_node = self._node(move.to_peer_id, f"{what}.to_peer_id")
            sources = [r for r in shard.replicas if peer_id(r.node) == move.from_peer_id and r.state == ACTIVE]
            if not sources:
                raise InvalidInput(
                    f"{what}.from_peer_id: peer {move.from_peer_id} holds no active replica of shard {move.shard_id}"
                )
            if any(r.node == to_node for r in shard.replicas):
                raise InvalidInput(
                    f"{what}.to_peer_id: peer {move.to_peer_id} already holds a replica of shard {move.shard_id}"
                )
            record = {"id": f"r{entry['next_replica']}", "node": to_node, "state": DEAD}
            entry["next_replica"] += 1
            shard_entry = next(s for s in entry["shards"] if s["id"] == move.shard_id)
            shard_entry["replicas"].append(record)
            target = self._replica(name, entry, move.shard_id, record)
            target.busy = True  # (healing must not fill it too)
            with shard.write_lock:
                shard.replicas.append(target)
            self._save(name)
            info = ShardTransferInfo.model_validate(
                {
                    "shard_id": move.shard_id,
                    "from": move.from_peer_id,
                    "to": move.to_peer_id,
                    "sync": True,
                    "method": "stream_records",
                }
            )
            self._transfers.setdefault(name, []).append(info)

        def run() -> None:
            try:
                stream_shard(shard, sources[0], target, name, self._setup(name, entry))
                if drop_source:
                    self._drop_replica(name, move.shard_id, move.from_peer_id)
            except Exception as exc:  # noqa: BLE001 (reported in the log; the replica stays dead, healing retries)
                log.warning("collection %s: %s of shard %d failed: %s", name, what, move.shard_id, exc)
            finally:
                target.busy = False
                with self._lock:
                    self._transfers[name] = [t for t in self._transfers.get(name, []) if t is not info]

        threading.Thread(target=run, name=f"vecdb-{what}", daemon=True).start()

    def _drop_replica(self, name: str, shard_id: int, peer: int) -> None:
        with self._lock:
            entry = self._entry(name)
            shard = self._shard(name, shard_id, "drop_replica.shard_id")
            found = [r for r in shard.replicas if peer_id(r.node) == peer]
            if not found:
                raise NotFound(f"drop_replica.peer_id: peer {peer} holds no replica of shard {shard_id}")
            replica = found[0]
            if replica.state == ACTIVE and len(shard.active()) == 1:
                raise InvalidInput(
                    f"drop_replica: the replica on peer {peer} is the last active one of shard {shard_id}"
                )
            with shard.write_lock:
                shard.replicas.remove(replica)
            shard_entry = next(s for s in entry["shards"] if s["id"] == shard_id)
            shard_entry["replicas"] = [r for r in shard_entry["replicas"] if r["id"] != replica.replica_id]
            if replica.fresh and not shard.active():
                # the operator gives up the only copy holding every acknowledged write (its node is lost): the
                # dead replicas left are all there is, each may serve again once it answers
                log.warning(
                    "collection %s shard %d: writes only replica %s held are lost", name, shard_id, replica.replica_id
                )
                for other in shard.replicas:
                    other.fresh = True
                for record in shard_entry["replicas"]:
                    record["fresh"] = True
            self._save(name)
        try:
            self.placement.discard(name, entry["uid"], shard_id, replica.replica_id, replica.node, replica.handle)
        except Exception as exc:  # noqa: BLE001
            log.warning("collection %s: dropped replica %s not removed: %s", name, replica.replica_id, exc)

    def list_shard_keys(self, name: str) -> ShardKeysResponse:
        entry = self._entry(self._real(name))
        return ShardKeysResponse(shard_keys=[ShardKeyDescription(key=k) for k in entry.get("shard_keys", [])])

    def create_shard_key(self, name: str, req: CreateShardKey) -> bool:
        name = self._real(name)
        with self._lock:
            entry = self._entry(name)
            if entry["sharding_method"] != "custom":
                raise InvalidInput("shard_key: shard keys need a collection created with sharding_method custom")
            key = req.shard_key
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise InvalidInput(f"shard_key: a shard key is a string or an integer, not {key!r}")
            if key in entry["shard_keys"]:
                raise AlreadyExists(f"shard_key: shard key {key!r} already exists")
            nodes = [self._node(p, "placement") for p in req.placement] if req.placement else self.placement.nodes()
            rf = req.replication_factor or entry["replication_factor"]
            first = max((s["id"] for s in entry["shards"]), default=-1) + 1
            new = [
                {"id": first + j, "key": key, "replicas": self._new_replicas(entry, first + j, rf, nodes)}
                for j in range(req.shards_number or entry["shard_number"])
            ]
            shards = [self._replica_set(name, entry, shard) for shard in new]
            try:
                self._make_everywhere(name, shards, self._setup(name, entry))
            except BaseException:
                self._discard(name, entry, shards)
                raise
            router = self._router(name)
            assert router.shard_keys is not None
            router.shard_keys[key] = [len(router.shards) + j for j in range(len(shards))]
            router.shards.extend(shards)
            entry["shards"].extend(new)
            entry["shard_keys"].append(key)
            self._save(name)
        return True

    def delete_shard_key(self, name: str, req: DeleteShardKey) -> bool:
        name = self._real(name)
        with self._lock:
            entry = self._entry(name)
            if entry["sharding_method"] != "custom" or req.shard_key not in entry["shard_keys"]:
                raise NotFound(f"shard_key: shard key {req.shard_key!r} does not exist in collection {name!r}")
            router = self._router(name)
            gone = [router.shards[p] for p in (router.shard_keys or {}).get(req.shard_key, [])]
            entry["shards"] = [s for s in entry["shards"] if s["key"] != req.shard_key]
            entry["shard_keys"].remove(req.shard_key)
            self._save(name)
            for shard in gone:
                for replica in shard.replicas:
                    if replica.state in (ACTIVE, PARTIAL):
                        try:
                            replica.handle.result(replica.handle.submit("delete_collection", name), self.timeout)
                        except Exception as exc:  # noqa: BLE001
                            log.warning("collection %s: replica %s not emptied: %s", name, replica.replica_id, exc)
            self._discard(name, entry, gone)
            kept = [s for s in router.shards if s not in gone]
            self._routers[name] = ShardRouter(kept, _keys_of(entry))
        return True


_STATUS_ORDER = [CollectionStatus.GREEN, CollectionStatus.GREY, CollectionStatus.YELLOW, CollectionStatus.RED]


def _count(req: PointInsertOperations) -> int:
    return len(req.points) if isinstance(req, PointsList) else len(req.batch.ids)


def _keys_of(entry: dict[str, Any]) -> dict[Any, list[int]]:
    keys: dict[Any, list[int]] = {key: [] for key in entry["shard_keys"]}
    for position, shard in enumerate(entry["shards"]):
        keys.setdefault(shard["key"], []).append(position)
    return keys


def _with_key(req: QueryRequest, shard_key: Any) -> QueryRequest:
    return req if shard_key is None else req.model_copy(update={"shard_key": shard_key})


__all__ = ["ClusterService", "Placement", "Store", "peer_id"]
