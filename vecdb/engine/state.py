"""What one collection holds, typed in one place.

The writer, the reader and the optimizer's host (the collection) share one
``CollectionState`` instead of each restating, as mixins did, the attributes it
expects of the others. Nothing here does work: it is the record they agree on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from vecdb.engine.mvcc import Mvcc
from vecdb.engine.planner import AnnState
from vecdb.engine.settings import (
    MultiSpace,
    SparseSpace,
    VectorSpace,
    index_config,
    multi_spaces,
    sparse_spaces,
    vector_spaces,
)
from vecdb.engine.views import ReadView
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.index.device import gpu_available
from vecdb.index.sparse import InvertedIndex
from vecdb.limits import Limits
from vecdb.storage.env import Environment
from vecdb.storage.points import PointsTables

log = logging.getLogger(__name__)


@dataclass(eq=False)
class CollectionState:
    name: str
    path: Path
    env: Environment
    tables: PointsTables
    limits: Limits
    mvcc: Mvcc
    settings: dict[str, Any] = field(default_factory=dict)
    """The stored settings document (replaced whole on every change, never edited in place)."""
    spaces: list[VectorSpace] = field(default_factory=list)
    sparse_spaces: list[SparseSpace] = field(default_factory=list)
    multi_spaces: list[MultiSpace] = field(default_factory=list)
    """Multivector spaces: rows in LMDB's ``multi`` table, nothing in memory (``engine/multi_search.py``)."""
    sparse: dict[int, InvertedIndex] = field(default_factory=dict)
    """The inverted index of each sparse space, replaced whole (published before the view of the same write)."""
    sparse_loaded: dict[int, dict[str, int]] = field(default_factory=dict)
    """Per sparse space, how the last open got its index: ``{"checkpoint": covered ids, "replayed": rows}``."""
    search_device: str = "cpu"
    ann: dict[int, AnnState] = field(default_factory=dict)
    """Published ANN indexes by vector-space index; replaced whole, never changed in place."""
    payload_index: PayloadIndex = field(default_factory=lambda: PayloadIndex({}))
    last_write: float = 0.0
    """``time.monotonic()`` of the last committed write (the optimizer saves once writes pause)."""

    @property
    def view(self) -> ReadView:
        """The current read view (the last published commit)."""
        return self.mvcc.view

    def use_settings(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.spaces = vector_spaces(settings)
        self.sparse_spaces = sparse_spaces(settings)
        self.multi_spaces = multi_spaces(settings)
        for space in self.sparse_spaces:
            self.sparse.setdefault(space.index, InvertedIndex.empty())
        self.search_device = index_device(self.name, index_config(settings))

    def publish_ann(self, space_index: int, state: Optional[AnnState]) -> None:
        ann = {k: v for k, v in self.ann.items() if k != space_index}
        if state is not None:
            ann[space_index] = state
        self.ann = ann


def index_device(name: str, cfg: dict[str, Any]) -> str:
    """Where IVF-PQ trains and searches: the GPU when asked for (or ``auto``) and CuPy sees one.

    A collection created with ``device: cuda`` and opened where no GPU is
    usable still opens, on the CPU, with a warning: its data must stay reachable.
    """
    if cfg.get("type") != "ivf_pq" or cfg.get("device", "auto") == "cpu":
        return "cpu"
    if gpu_available():
        return "cuda"
    if cfg.get("device") == "cuda":
        log.warning("collection %s asks for index device cuda, but no GPU is usable here: using the CPU", name)
    return "cpu"
