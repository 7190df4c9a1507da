"""The one interface every dense index kind implements, and the registry the engine finds kinds in.

The planner, the optimizer and the backup never test an index's type: they ask
the index (its search shape, its manifest, its side files) or look its kind up
here by the name the collection's ``index`` setting or a checkpoint manifest
gives. A kind registers itself with :func:`register` when its module is
imported; :func:`kind_of` imports the built-in kinds on first use, so a caller
need not know which modules those are.

The shapes are those the kinds already had:

* ids are vecdb's internal ids; ``labels`` are those an index holds, ascending;
* ``search(queries, k, breadth, allowed, device)`` returns ``(raw scores,
  internal ids)`` of shape ``[nq, k']`` with id -1 in empty slots; raw scores
  follow faiss (similarities, or *squared* L2 distances: the distance table's
  ``Metric.from_raw`` turns them into Qdrant's); ``breadth`` is the kind's
  search effort (HNSW's ``ef``, IVF-PQ's ``nprobe``); ``allowed`` is a bool
  mask over positions (``allows_by_position``: ``iid_mask[labels]``) or over
  internal ids;
* a published index is never changed: ``grown`` returns a new one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Optional, Protocol, TypeVar, runtime_checkable

import numpy as np

from vecdb.models.collections import Distance

LEGACY_KIND = "hnsw"
"""The kind of a manifest that names none (written when HNSW was the only kind)."""
_BUILTIN = ("vecdb.index.flat", "vecdb.index.hnsw", "vecdb.index.hnsw_sq", "vecdb.index.hnsw_bq", "vecdb.index.ivfpq")


class BuildInterrupted(Exception):
    """A build or growth was abandoned because its collection is closing."""


class Probe(NamedTuple):
    """How hard one search asks an index to look (see :meth:`DenseIndex.probe`). A tuple: one is made
    per query, and a frozen dataclass costs a few times more to build."""

    breadth: int
    """The first try's effort (``ef``, ``nprobe``)."""
    max_breadth: int
    """Widening, when an allow-list starves the index, stops here."""
    fetch: int
    """Candidates asked of the index per query (more than ``k`` when the planner re-ranks approximate scores)."""


class SearchParams(Protocol):
    """What a query asks of an ANN search (the planner's knobs satisfy it): Qdrant's ``params``."""

    @property
    def hnsw_ef(self) -> Optional[int]: ...
    @property
    def ef_default(self) -> int: ...
    @property
    def nprobe(self) -> Optional[int]: ...
    @property
    def oversampling(self) -> Optional[float]: ...
    @property
    def rescore(self) -> bool: ...


@runtime_checkable
class DenseIndex(Protocol):
    """A dense ANN index over internal ids (the class is the kind: its class attributes and class methods)."""

    kind: ClassVar[str]
    """Its name in the ``index`` setting, in manifests (``"kind"``) and in explain's ``plan``."""
    ann: ClassVar[bool]
    """False for ``flat``: no structure worth building, every search of such a collection is an exact scan."""
    quantized: ClassVar[bool]
    """It scores compressed codes: approximate scores that the planner re-ranks from the float32 rows, and that
    ``params.quantization.ignore`` turns off."""
    allows_by_position: ClassVar[bool]
    """Its allow-lists are over positions (``iid_mask[labels]``) rather than internal ids."""
    min_points: ClassVar[int]
    """Live vectors below which it is not worth building."""
    breadth_name: ClassVar[str]
    """The explain field reporting the breadth used (``ef``, ``nprobe``)."""
    search_stage: ClassVar[str]
    """The explain timing of its search."""
    file_suffix: ClassVar[str]
    """Ending of a checkpoint's main file name (``space<i>.<generation><suffix>``)."""
    SIDE_FILES: ClassVar[tuple[str, ...]]
    """Suffixes of the files :meth:`save` writes beside its path (a backup copies them along)."""

    labels: np.ndarray
    """Internal ids of the indexed vectors, ascending (by position for ``allows_by_position`` kinds)."""

    @property
    def ntotal(self) -> int: ...

    @classmethod
    def supports(cls, distance: Distance) -> bool:
        """Whether it can index vectors compared by ``distance``."""
        ...

    @classmethod
    def build(
        cls,
        distance: Distance,
        params: Mapping[str, Any],
        rows: np.ndarray,
        labels: np.ndarray,
        population: Optional[np.ndarray] = None,
        should_stop: Optional[Callable[[], bool]] = None,
        device: str = "cpu",
    ) -> DenseIndex:
        """An index of ``rows[labels]`` (``rows``: the space's matrix by internal id), off the write path.

        ``params``: the collection's index parameters (HNSW's ``m``, ``ef_construct``; IVF-PQ's ``nlist``,
        ``pq_m``, ...), each kind reading its own; ``population``: the live ids a trained kind learns from
        (``labels`` is a prefix of it; default ``labels``); ``should_stop`` is polled between slices of
        work (raising :class:`BuildInterrupted`); ``device``: where training may run.
        """
        ...

    def grown(
        self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None
    ) -> DenseIndex:
        """A new index holding this one's vectors plus ``vectors`` under ``labels`` (above every current one)."""
        ...

    def outdated(self, params: Mapping[str, Any], live: int) -> bool:
        """Whether it should be rebuilt: its parameters changed, or (trained kinds) the data outgrew it."""
        ...

    def probe(self, k: int, params: SearchParams, boost: float) -> Probe:
        """The search effort for a top-``k`` query, ``boost``-ed (>= 1) when a filter keeps few points."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        breadth: int,
        allowed: Optional[np.ndarray] = None,
        device: str = "cpu",
        /,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def memory_bytes(self) -> int: ...

    def describe(self) -> str:
        """What it is, for the optimizer's log (``HNSW (m=16, ef_construct=100)``)."""
        ...

    def manifest(self) -> dict[str, Any]:
        """What its checkpoint manifest records of it (``kind``, ``format``, parameters), for :meth:`load`."""
        ...

    def save(self, path: Path) -> None:
        """Write ``path`` and its ``SIDE_FILES`` durably (temp file, fsync, rename; the folder last)."""
        ...

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any], shared: bool = False) -> DenseIndex:
        """The index :meth:`save` wrote at ``path``, described by ``manifest`` (ValueError or
        :class:`vecdb.errors.Corruption` when the files do not fit it). ``shared``: map the file's
        pages rather than copy them where the kind can, so that processes share them; such an index
        is only searched, never grown."""
        ...


_KINDS: dict[str, type[DenseIndex]] = {}
_builtin_loaded = False

K = TypeVar("K", bound=type)


def register(cls: K) -> K:
    """Class decorator: make a kind findable by its ``kind`` name."""
    name = cls.kind  # type: ignore[attr-defined]
    known = _KINDS.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"index kind {name!r} is registered twice")  # (a reloaded module may register again)
    _KINDS[name] = cls
    return cls


def kinds() -> dict[str, type[DenseIndex]]:
    """Every registered kind by name (the built-in ones imported on first use)."""
    global _builtin_loaded
    if not _builtin_loaded:
        for module in _BUILTIN:
            importlib.import_module(module)
        _builtin_loaded = True
    return _KINDS


def kind_of(name: str) -> type[DenseIndex]:
    """The kind an ``index`` setting or a manifest names (ValueError for an unknown name)."""
    kind = _KINDS.get(name) if _builtin_loaded else kinds().get(name)
    if kind is None:
        raise ValueError(f"unknown index kind {name!r}")
    return kind


def kind_for_manifest(manifest: Mapping[str, Any]) -> type[DenseIndex]:
    """The kind of a checkpoint manifest (one that names none is HNSW's, from before there were others)."""
    return kind_of(str(manifest.get("kind", LEGACY_KIND)))


__all__ = [
    "BuildInterrupted",
    "DenseIndex",
    "LEGACY_KIND",
    "Probe",
    "SearchParams",
    "kind_for_manifest",
    "kind_of",
    "kinds",
    "register",
]
