"""Where a point lives in a sharded collection, and how the shards' answers combine into one.

Placement (Qdrant's ``sharding_method: auto``): a point belongs to shard ``blake2b-64(key) mod
shard_number``, where ``key`` is the point id's canonical byte form (:func:`vecdb.ids.id_to_key`: an
integer and the same UUID in any spelling give one key). A keyed hash rather than Python's ``hash()``
(salted per process) so that every router process and every machine places a point alike.

Merging (the router's half of a fanned-out search): each shard answers the query with ``offset +
limit`` hits and offset 0; the router keeps the best ``offset + limit`` of their union and then drops
``offset``, which gives exactly the single-node answer whenever each shard's own ranking is exact (every
point of the global top ``offset + limit`` is within its shard's top ``offset + limit``). Equal scores
are ordered by shard, then by the shard's own order (a single node orders them by age, which shards do
not share).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from vecdb.errors import InvalidInput
from vecdb.ids import PointId, id_to_key

P = TypeVar("P")

MAX_SHARDS = 1 << 16


def shard_of(point_id: PointId, shard_number: int) -> int:
    """The shard (``0 .. shard_number - 1``) that holds ``point_id``."""
    if not 1 <= shard_number <= MAX_SHARDS:
        raise InvalidInput(f"shard_number: expected 1 to {MAX_SHARDS}, got {shard_number}")
    if shard_number == 1:
        return 0
    digest = hashlib.blake2b(id_to_key(point_id), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shard_number


def split_by_shard(ids: Sequence[PointId], shard_number: int) -> list[list[int]]:
    """Positions into ``ids`` grouped by shard (ascending within each): how a write is cut up."""
    out: list[list[int]] = [[] for _ in range(shard_number)]
    for pos, point_id in enumerate(ids):
        out[shard_of(point_id, shard_number)].append(pos)
    return out


def merge_ranked(
    per_shard: Sequence[Sequence[P]], offset: int, limit: int, score: Any, higher_is_better: bool = True
) -> list[P]:
    """The best ``offset + limit`` of the shards' ranked hits (each best first), then ``offset`` dropped.

    ``score(hit)`` gives a hit's score; ``higher_is_better`` False for distances (Euclid, Manhattan).
    Ties keep shard order, then each shard's own order.
    """
    sign = -1.0 if higher_is_better else 1.0

    def keyed(shard: int, hits: Iterable[P]) -> Iterable[tuple[float, int, int, P]]:
        return ((sign * float(score(h)), shard, rank, h) for rank, h in enumerate(hits))

    merged = heapq.merge(*(keyed(s, hits) for s, hits in enumerate(per_shard)), key=lambda t: t[:3])
    out: list[P] = []
    for _, _, _, hit in merged:
        if len(out) == offset + limit:
            break
        out.append(hit)
    return out[offset:]


__all__ = ["MAX_SHARDS", "merge_ranked", "shard_of", "split_by_shard"]
