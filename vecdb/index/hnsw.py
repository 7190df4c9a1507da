"""HNSW graph on faiss (``IndexHNSWFlat``: SIMD distance code), over internal ids.

faiss numbers the vectors of an HNSW index by insertion order ("positions");
``labels`` maps a position to vecdb's internal id. Positions are appended in
ascending internal-id order, so ``labels`` is sorted and an allow-list over
internal ids becomes one over positions by a single gather.

An index object is never changed while searches may use it: faiss's ``add``
reallocates the graph's arrays, so a concurrent search could read freed
memory. Growth goes through :meth:`HnswIndex.grown`, which clones the graph
(a memory copy, far cheaper than the insertions) and adds to the clone; the
caller publishes the clone with one attribute assignment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np

from vecdb.durable import fsync_path, write_durably
from vecdb.index.base import BuildInterrupted, Probe, SearchParams, register
from vecdb.index.distance import metric_of
from vecdb.models.collections import Distance

FORMAT = 1
ADD_SLICE = 16384
"""Vectors per faiss ``add`` call; the build checks for a stop request between slices."""
MAX_EF = 4096
"""Widening stops here; past it the planner falls back to the exact scan."""


def allow_list(allowed: np.ndarray) -> tuple[Any, np.ndarray]:
    """A faiss selector admitting the ids where ``allowed`` is true, and the bitmap it reads:
    keep that alive until the search returns (faiss holds only a pointer)."""
    keep = np.packbits(allowed, bitorder="little")
    return faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(keep)), keep  # size in bytes


@register
class HnswIndex:
    """An immutable-once-published HNSW graph plus its position -> internal id map."""

    kind = "hnsw"
    ann = True
    quantized = False
    """It stores the float32 vectors: its scores are exact for the vectors it returns."""
    allows_by_position = True
    """Its allow-lists are over graph positions (``allowed_iids[labels]``), not internal ids."""
    min_points = 0
    breadth_name = "ef"
    search_stage = "graph_search"
    file_suffix = ".hnsw"
    SIDE_FILES = (".labels.npy",)
    """Suffixes of the files :meth:`save` writes beside ``path`` (a snapshot copies them along)."""

    def __init__(self, index: faiss.IndexHNSWFlat, labels: np.ndarray, m: int, ef_construct: int) -> None:
        self.index = index
        self.labels = labels
        self.m = m
        self.ef_construct = ef_construct
        self.dim = int(index.d)  # (read once: a SWIG attribute costs a call per query)
        self._plain_params: dict[int, faiss.SearchParametersHNSW] = {}
        self._selectors: dict[int, tuple[np.ndarray, Any, np.ndarray]] = {}
        """Bitmap selectors of read-only allow-lists, by the list's identity (faiss only reads them)."""
        self.mapped = False
        """Its vectors and links are views of a checkpoint file's pages (:meth:`load` ``shared``): faiss
        aborts the process on any attempt to resize them, so :meth:`grown` copies them first."""

    @classmethod
    def supports(cls, distance: Distance) -> bool:
        """Manhattan has no faiss HNSW metric; such spaces stay exact."""
        return metric_of(distance).indexable

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
    ) -> HnswIndex:
        """A graph of ``rows[labels]`` with ``params``' ``m`` and ``ef_construct`` (faiss builds on the CPU)."""
        m, ef_construct = int(params["m"]), int(params["ef_construct"])
        metric = metric_of(distance).faiss_metric
        if metric is None:
            raise ValueError(f"HNSW cannot index {distance.value} vectors")
        index = faiss.IndexHNSWFlat(rows.shape[1], m, metric)
        index.hnsw.efConstruction = ef_construct
        out = cls(index, np.zeros(0, dtype=np.int64), m, ef_construct)
        out._add(labels, rows[labels], should_stop)
        return out

    @property
    def ntotal(self) -> int:
        return len(self.labels)  # one label per stored vector; cheaper than asking faiss

    def grown(
        self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None
    ) -> HnswIndex:
        """A new index holding this one's vectors plus ``vectors`` (labels above every current one)."""
        if self.mapped:  # (a clone would still view the file: serialising copies it into owned memory)
            clone = faiss.deserialize_index(faiss.serialize_index(self.index))
        else:
            clone = faiss.clone_index(self.index)  # already the concrete class; downcasting again would free it
        clone.hnsw.efConstruction = self.ef_construct
        out = HnswIndex(clone, self.labels, self.m, self.ef_construct)
        out._add(labels, vectors, should_stop)
        return out

    def _add(self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None) -> None:
        """Insert in slices, so that a closing collection need not wait for a whole build."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) and len(labels) and labels[0] <= self.labels[-1]:
            raise ValueError("HNSW labels must be appended in ascending order")
        for lo in range(0, len(labels), ADD_SLICE):
            if should_stop is not None and should_stop():
                raise BuildInterrupted("index build stopped: the collection is closing")
            hi = min(lo + ADD_SLICE, len(labels))
            self.index.add(self._encoded(vectors[lo:hi]))
            self.labels = np.concatenate([self.labels, labels[lo:hi]])

    def _encoded(self, rows: np.ndarray) -> np.ndarray:
        """Rows as the graph stores them (float32; a graph over codes encodes them, ``hnsw_bq``)."""
        return np.ascontiguousarray(rows, dtype=np.float32)

    def outdated(self, params: Mapping[str, Any], live: int) -> bool:
        """``m`` or ``ef_construct`` changed since it was built."""
        return self.m != int(params["m"]) or self.ef_construct != int(params["ef_construct"])

    def probe(self, k: int, params: SearchParams, boost: float) -> Probe:
        """``ef``: the query's ``hnsw_ef`` or the collection's default, at least ``k``, boosted. A graph over
        quantized codes (``hnsw_sq``, ``hnsw_bq``) whose candidates are re-ranked (``rescore``, the default)
        hands on every candidate the beam found (``ef`` of them: exact scores for the cost of a small
        gather), or ``oversampling x k`` when the query sets it; without re-ranking, ``k`` by the codes."""
        ef = math.ceil(max(params.hnsw_ef or params.ef_default, k) * boost)  # (hnsw_ef is validated >= 1)
        ef = min(ef, max(self.ntotal, k, 1))  # a beam wider than the graph visits nothing more
        if not self.quantized or not params.rescore:
            return Probe(ef, MAX_EF, k)
        if params.oversampling is not None:
            fetch = math.ceil(k * params.oversampling)
            return Probe(max(ef, fetch), MAX_EF, fetch)
        return Probe(ef, MAX_EF, max(k, ef))

    def search(
        self, queries: np.ndarray, k: int, ef: int, allowed: Optional[np.ndarray] = None, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per query as ``(faiss distances, internal ids)``; missing slots hold id -1.

        ``allowed``: bool mask over positions (not internal ids); faiss still
        walks through disallowed nodes but never returns them. The graph is
        searched on the CPU whatever ``device`` says.
        """
        k = min(k, self.ntotal)
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        ef = max(ef, k)
        keep = selector = None
        if allowed is None:
            params = self._plain_params.get(ef)
            if params is None:  # faiss only reads it during a search, so concurrent searches may share it
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                if len(self._plain_params) < 64:
                    self._plain_params[ef] = params
        else:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            kept = self._selectors.get(id(allowed))
            if kept is not None and kept[0] is allowed:
                selector, keep = kept[1], kept[2]
            else:
                selector, keep = allow_list(allowed)
                if not allowed.flags.writeable:  # a kept allow-list (engine/planner.py): its bitmap is kept too
                    if len(self._selectors) >= 8:
                        self._selectors.clear()
                    # (the selector object itself: the proxy params.sel gives back does not own it)
                    self._selectors[id(allowed)] = (allowed, selector, keep)
            params.sel = selector
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(queries)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got {queries.shape}")
        dist = np.empty((n, k), dtype=np.float32)
        pos = np.empty((n, k), dtype=np.int64)
        # faiss's own search wrapper, minus its checks (a few microseconds of a sub-millisecond query)
        self.index.search_c(n, faiss.swig_ptr(queries), k, faiss.swig_ptr(dist), faiss.swig_ptr(pos), params)
        del keep, selector  # the bitmap and its selector had to outlive the search
        ids = self.labels[pos]
        if pos.min() < 0:  # (one pass where none is missing, the common case)
            ids[pos < 0] = -1
        return dist, ids

    def positions_of(self, iid_mask: np.ndarray) -> np.ndarray:
        """An allow-list over internal ids (bool, indexed by iid) as one over positions."""
        return iid_mask[self.labels]

    def memory_bytes(self) -> int:
        """Vectors, graph links and the label map (faiss's own accounting plus ours)."""
        hnsw = self.index.hnsw
        links = int(hnsw.neighbors.size()) * 4
        per_vector = 4 + 8 + 8  # level, offset and (ours) label
        return int(self.ntotal * (self.index.d * 4 + per_vector) + links)

    def describe(self) -> str:
        return f"HNSW (m={self.m}, ef_construct={self.ef_construct})"

    # --- persistence ------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """A manifest without ``"kind"``: they were written so when HNSW was the only kind."""
        return {"format": FORMAT, "m": self.m, "ef_construct": self.ef_construct}

    def save(self, path: Path) -> None:
        """Write ``path`` (faiss graph) and ``path.labels.npy`` durably: temp file, fsync, rename."""
        write_durably(path, lambda tmp: faiss.write_index(self.index, str(tmp)))
        write_durably(path.with_name(path.name + self.SIDE_FILES[0]), self._save_labels)
        fsync_path(path.parent)

    def _save_labels(self, tmp: Path) -> None:
        with open(tmp, "wb") as f:  # np.save on a path would append ".npy" to the temp name
            np.save(f, self.labels)

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any], shared: bool = False) -> HnswIndex:
        if manifest.get("format") != FORMAT:
            raise ValueError(f"index format {manifest.get('format')} is not {FORMAT}")
        m, ef_construct = int(manifest["m"]), int(manifest["ef_construct"])
        # shared: faiss maps the stored vectors and links in place (zero copy) instead of reading them
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if shared else 0)
        labels = np.load(path.with_name(path.name + cls.SIDE_FILES[0]), mmap_mode="r" if shared else None)
        labels = labels.view(np.ndarray)  # (np.memmap's Python-level indexing is slow)
        if len(labels) != index.ntotal:
            raise ValueError(f"{path}: {index.ntotal} vectors but {len(labels)} labels")
        index.hnsw.efConstruction = ef_construct
        out = cls(index, labels.astype(np.int64, copy=False), m, ef_construct)
        out.mapped = shared
        return out


__all__ = ["ADD_SLICE", "FORMAT", "MAX_EF", "BuildInterrupted", "HnswIndex", "allow_list"]
