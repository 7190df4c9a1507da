"""The cluster's metadata: every sharded collection's settings and shard map, kept in one JSON file.

One writer owns it (the coordinator: a Ray actor when clustered, :func:`vecdb.cluster.actors.start_coordinator`),
so routers never disagree about where a shard lives. Every change is written durably (temp file, fsync,
rename, directory fsync) before the call returns: a coordinator that restarts reads back exactly the map
it last acknowledged.

A collection's entry (plain JSON, so that any version of the code can read it)::

    {"create": <the CreateCollection body>, "setup": [{"method": ..., "body": ...}, ...],
     "sharding_method": "auto" | "custom", "shard_number": n, "replication_factor": r,
     "write_consistency_factor": w, "next_replica": k,
     "shards": [{"id": 0, "key": null,
                 "replicas": [{"id": "r0", "node": "<node id>", "state": "Active", "fresh": false}]}]}

``fresh`` marks the dead replica that was the last of its shard to take writes (see
:attr:`vecdb.cluster.replicas.Replica.fresh`). ``setup`` lists the collection-wide writes made after
creation (payload indexes, settings updates, named vectors added or removed), in order, so that a replica
created later (a move, a new shard key) is set up as its peers are.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any, Optional

from vecdb.durable import fsync_path, write_durably

FORMAT_VERSION = 1


class ShardMapStore:
    """The metadata file and its in-memory copy; every method is one durable change or one read."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.exists():
            doc = json.loads(self.path.read_text())
            if doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"{self.path}: shard map format {doc.get('version')!r}, expected {FORMAT_VERSION}")
            self._doc: dict[str, Any] = doc
        else:
            self._doc = {"version": FORMAT_VERSION, "collections": {}, "aliases": {}}

    def snapshot(self) -> dict[str, Any]:
        """Every collection's entry (a copy)."""
        with self._lock:
            return copy.deepcopy(self._doc["collections"])

    def put(self, name: str, entry: Optional[dict[str, Any]]) -> None:
        """Store ``name``'s whole entry (None removes it)."""
        with self._lock:
            if entry is None:
                self._doc["collections"].pop(name, None)
            else:
                self._doc["collections"][name] = copy.deepcopy(entry)
            self._save()

    def aliases(self) -> dict[str, str]:
        """Every alias and the collection it names."""
        with self._lock:
            return dict(self._doc.get("aliases", {}))

    def set_aliases(self, aliases: dict[str, str]) -> None:
        with self._lock:
            self._doc["aliases"] = dict(aliases)
            self._save()

    def set_state(self, name: str, shard_id: int, replica_id: str, state: str, fresh: bool = False) -> None:
        """One replica's state, and whether it is the ``fresh`` dead one (a no-op for a collection, shard or
        replica that is gone)."""
        with self._lock:
            entry = self._doc["collections"].get(name)
            for shard in entry["shards"] if entry else []:
                for replica in shard["replicas"] if shard["id"] == shard_id else []:
                    if replica["id"] == replica_id and (replica["state"], replica.get("fresh", False)) != (
                        state,
                        fresh,
                    ):
                        replica["state"], replica["fresh"] = state, fresh
                        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(self._doc, indent=1, sort_keys=True).encode()
        write_durably(self.path, lambda tmp: tmp.write_bytes(body))
        fsync_path(self.path.parent)


__all__ = ["FORMAT_VERSION", "ShardMapStore"]
