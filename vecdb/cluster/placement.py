"""Replicas in this process: every "node" a folder under one root (tests, and a cluster on one machine
without Ray). The Ray placement (:class:`vecdb.cluster.actors.RayPlacement`) has the same shape."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecdb.cluster.replicas import LocalHandle
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService


def replica_dir(root: Path, node: str, collection: str, uid: str, shard_id: int, replica_id: str) -> Path:
    """Where a replica keeps its data directory on its node (the collection's uid keeps a collection made
    again under an old name out of the old one's files)."""
    return root / "nodes" / node[:16] / f"{collection}-{uid}" / f"shard{shard_id}-{replica_id}"


class LocalPlacement:
    """Replicas as :class:`LocalService` s in this process, one data directory each, on named simulated nodes."""

    def __init__(self, root: Path, nodes: Sequence[str] = ("node-0",)) -> None:
        self.root = Path(root)
        self.node_names = list(nodes)
        self._open: dict[Path, LocalHandle] = {}

    def nodes(self) -> list[str]:
        return list(self.node_names)

    def self_node(self) -> str:
        return self.node_names[0]

    def start(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str) -> Any:
        path = replica_dir(self.root, node, collection, uid, shard_id, replica_id)
        handle = self._open.get(path)
        if handle is None:
            handle = self._open[path] = LocalHandle(LocalService(Database(path)))
        return handle

    def discard(self, collection: str, uid: str, shard_id: int, replica_id: str, node: str, handle: Any) -> None:
        path = replica_dir(self.root, node, collection, uid, shard_id, replica_id)
        opened = self._open.pop(path, None)
        if opened is not None:
            opened.service.db.close()
        shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        for handle in self._open.values():
            handle.service.db.close()
        self._open.clear()


__all__ = ["LocalPlacement", "replica_dir"]
