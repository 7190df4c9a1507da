"""HNSW over one-bit codes (faiss ``IndexBinaryHNSW``): Qdrant's ``quantization_config.binary``.

Each dimension keeps one bit, set where the value is above zero (Qdrant's ``one_bit`` encoding):
32 times less than the float32 copy an ``hnsw`` graph keeps, so a 1536-d vector costs 192 bytes in
the graph. The beam walks by Hamming distance, a coarse stand-in for the metric; the planner then
re-ranks the candidates from vecdb's float32 rows (``quantized``), which is what makes binary
quantization usable at all. Qdrant advises it for high-dimensional, centred embeddings (OpenAI,
Cohere: 1024 dimensions and up); on low-dimensional data the bits separate little and recall needs a
wide beam (``hnsw_ef``) or ``oversampling``.

Without re-ranking (``params.quantization.rescore: false``) the scores are the codes' estimate:
``1 - 2 * hamming / dim`` for Cosine and Dot (the share of agreeing signs, scaled to [-1, 1]), and
``sqrt(4 * hamming / dim)`` for Euclid (the distance of unit vectors with that many differing signs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np

from vecdb.durable import fsync_path, write_durably
from vecdb.index.base import register
from vecdb.index.hnsw import HnswIndex
from vecdb.models.collections import Distance

FORMAT = 1


def encode(rows: np.ndarray, bits: int) -> np.ndarray:
    """One bit per dimension (value above zero), packed little-endian, padded to ``bits`` (a multiple of 8)."""
    signs = np.asarray(rows) > 0
    if signs.shape[1] < bits:
        signs = np.pad(signs, ((0, 0), (0, bits - signs.shape[1])))
    return np.packbits(signs, axis=1, bitorder="little")


@register
class HnswBqIndex(HnswIndex):
    """:class:`HnswIndex`'s interface over a graph of one-bit codes; candidates re-ranked by the planner."""

    kind = "hnsw_bq"
    quantized = True
    file_suffix = ".hnswbq"

    def __init__(self, index: Any, labels: np.ndarray, m: int, ef_construct: int, dim: int, distance: Distance):
        super().__init__(index, labels, m, ef_construct)
        self.dim = dim  # the vectors' size (the graph's codes are padded to whole bytes)
        self.bits = int(index.d)
        self.distance = distance

    @classmethod
    def supports(cls, distance: Distance) -> bool:
        return distance in (Distance.COSINE, Distance.DOT, Distance.EUCLID)

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
    ) -> HnswBqIndex:
        if not cls.supports(distance):
            raise ValueError(f"binary quantization cannot index {distance.value} vectors")
        m, ef_construct = int(params["m"]), int(params["ef_construct"])
        dim = rows.shape[1]
        index = faiss.IndexBinaryHNSW(8 * math.ceil(dim / 8), m)
        index.hnsw.efConstruction = ef_construct
        out = cls(index, np.zeros(0, dtype=np.int64), m, ef_construct, dim, distance)
        out._add(labels, rows[labels], should_stop)
        return out

    def grown(
        self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None
    ) -> HnswBqIndex:
        source = self.index
        clone = faiss.deserialize_index_binary(faiss.serialize_index_binary(source))  # (owned memory, mapped or not)
        clone.hnsw.efConstruction = self.ef_construct
        out = HnswBqIndex(clone, self.labels, self.m, self.ef_construct, self.dim, self.distance)
        out._add(labels, vectors, should_stop)
        return out

    def _encoded(self, rows: np.ndarray) -> np.ndarray:
        return encode(rows, self.bits)

    def search(
        self, queries: np.ndarray, k: int, ef: int, allowed: Optional[np.ndarray] = None, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per query by Hamming distance, as ``(estimated faiss scores, internal ids)`` (see the
        module's note); ``allowed`` over positions, as :meth:`HnswIndex.search`."""
        k = min(k, self.ntotal)
        n = len(queries)
        if k <= 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got {queries.shape}")
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef, k)
        keep = selector = None
        if allowed is not None:
            keep = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(keep))
            params.sel = selector
        codes = np.ascontiguousarray(encode(queries, self.bits))
        hamming = np.empty((n, k), dtype=np.int32)
        pos = np.empty((n, k), dtype=np.int64)
        self.index.search_c(n, faiss.swig_ptr(codes), k, faiss.swig_ptr(hamming), faiss.swig_ptr(pos), params)
        del keep, selector
        ids = self.labels[pos]
        if pos.min() < 0:
            ids[pos < 0] = -1
        share = hamming.astype(np.float32) / self.dim
        estimate = 4.0 * share if self.distance == Distance.EUCLID else 1.0 - 2.0 * share  # (faiss's convention)
        return estimate, ids

    def memory_bytes(self) -> int:
        """Codes (one bit a dimension), graph links and the label map."""
        links = int(self.index.hnsw.neighbors.size()) * 4
        return int(self.ntotal * (self.bits // 8 + 4 + 8 + 8) + links)

    def describe(self) -> str:
        return f"HNSW over one-bit codes (m={self.m}, ef_construct={self.ef_construct})"

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": FORMAT,
            "m": self.m,
            "ef_construct": self.ef_construct,
            "dim": self.dim,
            "distance": self.distance.value,
        }

    def save(self, path: Path) -> None:
        write_durably(path, lambda tmp: faiss.write_index_binary(self.index, str(tmp)))
        write_durably(path.with_name(path.name + self.SIDE_FILES[0]), self._save_labels)
        fsync_path(path.parent)

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any], shared: bool = False) -> HnswBqIndex:
        if manifest.get("format") != FORMAT:
            raise ValueError(f"index format {manifest.get('format')} is not {FORMAT}")
        index = faiss.read_index_binary(str(path))
        labels = np.load(path.with_name(path.name + cls.SIDE_FILES[0]))
        if len(labels) != index.ntotal:
            raise ValueError(f"{path}: {index.ntotal} vectors but {len(labels)} labels")
        index.hnsw.efConstruction = int(manifest["ef_construct"])
        return cls(
            index,
            labels.astype(np.int64, copy=False),
            int(manifest["m"]),
            int(manifest["ef_construct"]),
            int(manifest["dim"]),
            Distance(manifest["distance"]),
        )


__all__ = ["HnswBqIndex", "encode"]
