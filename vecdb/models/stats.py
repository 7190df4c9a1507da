"""Figures a service reports per collection (``/metrics``, ``/readyz``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CollectionStats:
    """One collection's figures for ``/metrics`` and ``/readyz``."""

    name: str
    points: int
    indexed_vectors: int
    status: str  # green, yellow or red, as CollectionInfo.status
    index_backlog: int  # stored vectors no index holds yet
    index_loaded: bool  # the saved index was read back after the open (False: searches scan exactly meanwhile)
    payload_indexes: int
