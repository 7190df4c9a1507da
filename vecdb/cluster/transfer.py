"""Filling a replica from a peer while the shard keeps serving: catch-up, ``replicate_shard``, ``move_shard``.

The target's collection is made anew (dropped, created with the collection's settings, its payload
indexes and updates replayed), then marked ``Partial``: from that moment it takes every write to the
shard, and serves no reads. The source's points are then copied in pages (id order, payloads and every
vector), each page read and written under the shard's write lock, so that no write lands between the
read of a point and its copy: a write that comes after a page reaches the target itself, one that came
before is in the page. Reads go on from the active replicas throughout; a write waits at most one page.
The target is marked ``Active`` once the last page is in.

Why whole copies rather than replaying missed writes: vecdb keeps no operation log per shard (each write
is a committed LMDB transaction, nothing more), so a replica that missed writes cannot tell which; a copy
is always right, and costs a read of the shard (documented in docs/cluster.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from vecdb.cluster.replicas import ACTIVE, DEAD, PARTIAL, Replica, ReplicaSet
from vecdb.errors import NotFound
from vecdb.ids import PointId
from vecdb.models.points import Batch, PointInsertOperations, PointsBatch, PointsList, PointStruct, ScrollRequest

log = logging.getLogger(__name__)

PAGE_POINTS = 256
"""Points copied per page (one write-lock hold)."""


def _call(replica: Replica, method: str, *args: Any, timeout: Optional[float] = None) -> Any:
    return replica.handle.result(replica.handle.submit(method, *args), timeout)


def stream_shard(
    shard: ReplicaSet,
    source: Replica,
    target: Replica,
    collection: str,
    setup: Sequence[tuple[str, tuple[Any, ...]]],
    page_points: int = PAGE_POINTS,
) -> int:
    """Copy ``source``'s shard into ``target`` (see the module's docstring); the points copied. ``setup`` is
    the calls that make the collection on an empty replica (``create_collection`` first). On failure the
    target is left ``Dead`` and the error raised."""
    try:
        with shard.write_lock:
            try:
                _call(target, "delete_collection", collection, timeout=shard.timeout)
            except NotFound:
                pass
            for method, args in setup:
                _call(target, method, *args, timeout=shard.timeout)
            shard.set_state(target, PARTIAL)
        copied = 0
        offset: Optional[PointId] = None
        while True:
            with shard.write_lock:
                page = _call(
                    source,
                    "scroll_points",
                    collection,
                    ScrollRequest(limit=page_points, offset=offset, with_payload=True, with_vector=True),
                    timeout=shard.timeout,
                )
                if page.points:
                    _call(target, "upsert_points", collection, _as_upsert(page.points), timeout=shard.timeout)
            copied += len(page.points)
            offset = page.next_page_offset
            if offset is None:
                break
        shard.set_state(target, ACTIVE)
        log.info(
            "collection %s shard %d: %d points copied from replica %s to %s",
            collection,
            shard.shard_id,
            copied,
            source.replica_id,
            target.replica_id,
        )
        return copied
    except BaseException:
        shard.set_state(target, DEAD)
        raise


def _as_upsert(records: Sequence[Any]) -> PointInsertOperations:
    """Scrolled records as the upsert that writes them again (every vector kind, the payload): one batch of
    float32 columns where every record holds the same dense vectors (no validation again: they were stored
    valid), else point by point."""
    columns = _dense_columns(records)
    payloads = [r.payload for r in records]
    if columns is not None:
        batch = Batch.model_construct(ids=[r.id for r in records], vectors=columns, payloads=payloads)
        return PointsBatch.model_construct(batch=batch, shard_key=None, update_filter=None, update_mode=None)
    points = []
    for record in records:
        vector = record.model_dump(mode="json", include={"vector"}).get("vector")
        body = {"id": record.id, "vector": {} if vector is None else vector, "payload": record.payload}
        points.append(PointStruct.model_validate(body))
    return PointsList(points=points)


def _dense_columns(records: Sequence[Any]) -> Optional[Any]:
    """The records' vectors as float32 matrices (one, or one per name), or None when any record has a
    vector of another kind, or not the same names."""
    first = records[0].vector
    if isinstance(first, list) and all(isinstance(r.vector, list) for r in records):
        if not all(first) or isinstance(first[0], list):
            return None
        return np.asarray([r.vector for r in records], dtype=np.float32)
    if not isinstance(first, dict) or not first:
        return None
    names = list(first)
    for r in records:
        v = r.vector
        if not isinstance(v, dict) or list(v) != names:
            return None
        if any(not isinstance(v[n], list) or not v[n] or isinstance(v[n][0], list) for n in names):
            return None
    return {n: np.asarray([r.vector[n] for r in records], dtype=np.float32) for n in names}


__all__ = ["PAGE_POINTS", "stream_shard"]
