"""A collection's shards and replicas, and the operations that move them (Qdrant's cluster API shapes).

``GET /collections/{c}/cluster`` answers :class:`CollectionClusterInfo`; ``POST /collections/{c}/cluster``
takes one :class:`ClusterOperation`; ``PUT /collections/{c}/shards`` and ``POST .../shards/delete`` take
:class:`CreateShardKey` / :class:`DeleteShardKey`. Peers are the nodes holding replicas, named by a
number as Qdrant names its peers.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, model_serializer, model_validator

from vecdb.models.base import RequestModel, ResponseModel


class LocalShardInfo(ResponseModel):
    shard_id: int
    shard_key: Optional[Any] = None
    points_count: int
    state: str


class RemoteShardInfo(ResponseModel):
    shard_id: int
    shard_key: Optional[Any] = None
    peer_id: int
    state: str


class ShardTransferInfo(ResponseModel):
    shard_id: int
    to_shard_id: Optional[int] = None
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    sync: bool
    method: Optional[str] = None
    comment: Optional[str] = None

    @model_serializer(mode="wrap")
    def _from(self, handler: Any) -> dict[str, Any]:  # Qdrant's field is "from", a Python keyword
        out = dict(handler(self))
        out["from"] = out.pop("from_", self.from_)
        return out


class CollectionClusterInfo(ResponseModel):
    peer_id: int
    shard_count: int
    local_shards: list[LocalShardInfo] = Field(default_factory=list)
    remote_shards: list[RemoteShardInfo] = Field(default_factory=list)
    shard_transfers: list[ShardTransferInfo] = Field(default_factory=list)


class MoveShard(RequestModel):
    shard_id: int = Field(ge=0)
    from_peer_id: int
    to_peer_id: int
    method: Optional[str] = None
    to_shard_id: Optional[int] = None


class Replica(RequestModel):
    shard_id: int = Field(ge=0)
    peer_id: int


class ClusterOperation(RequestModel):
    """Exactly one of Qdrant's operations; those vecdb does not run are refused by name at the service."""

    move_shard: Optional[MoveShard] = None
    replicate_shard: Optional[MoveShard] = None
    drop_replica: Optional[Replica] = None
    abort_transfer: Optional[dict[str, Any]] = None
    create_sharding_key: Optional[dict[str, Any]] = None
    drop_sharding_key: Optional[dict[str, Any]] = None
    restart_transfer: Optional[dict[str, Any]] = None
    start_resharding: Optional[dict[str, Any]] = None
    abort_resharding: Optional[dict[str, Any]] = None
    replicate_points: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _one(self) -> ClusterOperation:
        given = [k for k, v in self.__dict__.items() if v is not None]
        if len(given) != 1:
            raise ValueError(f"name exactly one operation, not {len(given)} ({', '.join(given) or 'none'})")
        return self


class CreateShardKey(RequestModel):
    shard_key: Any
    shards_number: Optional[int] = Field(None, ge=1)
    replication_factor: Optional[int] = Field(None, ge=1)
    placement: Optional[list[int]] = None
    initial_state: Optional[str] = None


class DeleteShardKey(RequestModel):
    shard_key: Any


class ShardKeyDescription(ResponseModel):
    key: Any


class ShardKeysResponse(ResponseModel):
    """``GET /collections/{c}/shards``: the shard keys of a custom-sharded collection (none otherwise)."""

    shard_keys: list[ShardKeyDescription] = Field(default_factory=list)


__all__ = [
    "ClusterOperation",
    "CollectionClusterInfo",
    "CreateShardKey",
    "DeleteShardKey",
    "LocalShardInfo",
    "MoveShard",
    "RemoteShardInfo",
    "Replica",
    "ShardKeyDescription",
    "ShardKeysResponse",
    "ShardTransferInfo",
]
