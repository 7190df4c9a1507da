"""HNSW over int8 scalar-quantized codes (faiss ``IndexHNSWSQ``): Qdrant's ``quantization_config.scalar``.

The graph stores one byte per dimension instead of four (its float32 copy of the rows is what an
``hnsw`` index spends most of its memory on), and walks the graph with approximate distances. The
planner then re-ranks the candidates from vecdb's float32 rows (``quantized``: ``rescore`` and
``oversampling`` of the query's ``params.quantization`` apply; ``ignore`` scans exactly), so the
scores returned are exact for the points returned. The codes' range per dimension is learned from
the rows at build time: the central ``quantile`` of the values (default 1: min..max, as Qdrant),
and values outside it are clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np

from vecdb.index.base import register
from vecdb.index.distance import metric_of
from vecdb.index.hnsw import HnswIndex
from vecdb.models.collections import Distance

FORMAT = 1
TRAIN_ROWS = 100_000
"""Rows the quantizer's ranges are learned from (a uniform sample beyond that)."""
DEFAULT_QUANTILE = 1.0


@register
class HnswSqIndex(HnswIndex):
    """:class:`HnswIndex` whose graph holds int8 codes; candidates are re-ranked by the planner."""

    kind = "hnsw_sq"
    quantized = True
    file_suffix = ".hnswsq"

    def __init__(self, index: Any, labels: np.ndarray, m: int, ef_construct: int, quantile: float) -> None:
        super().__init__(index, labels, m, ef_construct)
        self.quantile = quantile

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
    ) -> HnswSqIndex:
        m, ef_construct = int(params["m"]), int(params["ef_construct"])
        quantile = float(params.get("quantile") or DEFAULT_QUANTILE)
        metric = metric_of(distance).faiss_metric
        if metric is None:
            raise ValueError(f"HNSW cannot index {distance.value} vectors")
        index = faiss.IndexHNSWSQ(rows.shape[1], faiss.ScalarQuantizer.QT_8bit, m, metric)
        index.hnsw.efConstruction = ef_construct
        storage = faiss.downcast_index(index.storage)
        if quantile < 1.0:  # the central `quantile` of each dimension's values
            storage.sq.rangestat = faiss.ScalarQuantizer.RS_quantiles
            storage.sq.rangestat_arg = (1.0 - quantile) / 2
        train = (
            labels
            if len(labels) <= TRAIN_ROWS
            else np.sort(np.random.default_rng(0).choice(labels, TRAIN_ROWS, replace=False))
        )
        index.train(np.ascontiguousarray(rows[train], dtype=np.float32))
        out = cls(index, np.zeros(0, dtype=np.int64), m, ef_construct, quantile)
        out._add(labels, rows[labels], should_stop)
        return out

    def grown(
        self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None
    ) -> HnswSqIndex:
        grown = super().grown(labels, vectors, should_stop)
        out = HnswSqIndex(grown.index, grown.labels, self.m, self.ef_construct, self.quantile)
        return out

    def outdated(self, params: Mapping[str, Any], live: int) -> bool:
        return super().outdated(params, live) or self.quantile != float(params.get("quantile") or DEFAULT_QUANTILE)

    def memory_bytes(self) -> int:
        """Codes (one byte a dimension), graph links and the label map."""
        links = int(self.index.hnsw.neighbors.size()) * 4
        return int(self.ntotal * (self.dim + 4 + 8 + 8) + links)

    def describe(self) -> str:
        return f"HNSW over int8 codes (m={self.m}, ef_construct={self.ef_construct}, quantile={self.quantile})"

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": FORMAT,
            "m": self.m,
            "ef_construct": self.ef_construct,
            "quantile": self.quantile,
        }

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any], shared: bool = False) -> HnswSqIndex:
        if manifest.get("format") != FORMAT:
            raise ValueError(f"index format {manifest.get('format')} is not {FORMAT}")
        plain = HnswIndex.load(path, {**manifest, "format": 1}, shared)  # (the same files as a float32 graph's)
        out = cls(plain.index, plain.labels, plain.m, plain.ef_construct, float(manifest["quantile"]))
        out.mapped = plain.mapped
        return out


__all__ = ["DEFAULT_QUANTILE", "HnswSqIndex"]
