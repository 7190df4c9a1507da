"""What ``Collection.inspect()`` returns: a read-only look inside, for tests and diagnostics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecdb.engine.planner import AnnState


@dataclass(frozen=True)
class Inspection:
    """A read-only look inside a collection, for tests and diagnostics (never for request handling)."""

    points: int
    """Live points in the read view."""
    view_rows: int
    """Internal ids allotted so far (live, deleted and overwritten)."""
    indexes: dict[int, AnnState]
    """The published ANN index of each vector space that has one, and the internal-id watermark it covers."""
    manifests: dict[int, Any]
    """The index checkpoint manifest each space has in LMDB (what an open would load)."""
    index_loaded: bool
    """The saved indexes were read back after the open."""
    pending: bool
    """Some space's index lags behind the stored points."""
    on_disk_rows: dict[int, bool]
    """Per space: whether its float32 rows are a view of a memory-mapped file."""
