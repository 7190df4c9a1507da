"""Snapshot models, shaped as Qdrant's REST API (qdrant-api.md, "Snapshots")."""

from __future__ import annotations

from enum import Enum
from typing import Optional

from vecdb.models.base import RequestModel, ResponseModel


class SnapshotDescription(ResponseModel):
    """One snapshot file: ``name`` and ``size`` are required by qdrant-client; ``checksum`` is its sha256."""

    name: str
    creation_time: Optional[str] = None
    size: int
    checksum: Optional[str] = None


class SnapshotPriority(str, Enum):
    """Which side wins in a cluster; vecdb has no replicas, so every value restores the snapshot as it is."""

    NO_SYNC = "no_sync"
    SNAPSHOT = "snapshot"
    REPLICA = "replica"


class SnapshotRecover(RequestModel):
    """Body of ``PUT /collections/{c}/snapshots/recover``.

    ``location`` is a ``file://`` URL of a snapshot file on the server's machine or
    the name of a snapshot the server holds; ``api_key`` is accepted because
    qdrant-client may send it, and unused because vecdb never fetches URLs.
    """

    location: str
    priority: Optional[SnapshotPriority] = None
    checksum: Optional[str] = None
    api_key: Optional[str] = None


__all__ = ["SnapshotDescription", "SnapshotPriority", "SnapshotRecover"]
