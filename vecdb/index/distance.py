"""The one table of what each ``Distance`` means: direction, kernel, faiss metric, normalisation, scores.

Every caller that needs a metric's semantics reads them here (the exact scan,
the ANN kinds, the planner's re-scoring, MMR, the write path's normalisation),
so that "Euclid reports the root of what faiss ranks by" or "Cosine rows are
stored unit length" is stated once.

Qdrant's conventions, which vecdb follows:

* Cosine: rows and queries are normalised on the way in, so the score is a
  plain dot product (higher is better);
* Dot: the dot product (higher is better);
* Euclid: the L2 distance (lower is better); the kernels and faiss rank by its
  square, and Qdrant's core compares squared distances too (MMR);
* Manhattan: the L1 distance (lower is better); faiss has no such ANN metric,
  so Manhattan spaces are always scanned exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import faiss
import numpy as np

from vecdb.models.collections import Distance


class Kernel(enum.Enum):
    """What the arithmetic computes between a row and a query."""

    DOT = "dot"
    L2 = "l2"  # ranked by the squared distance, reported as its root
    L1 = "l1"


def _root(raw: np.ndarray) -> np.ndarray:
    """Qdrant's Euclid scores of squared distances (float32 rounding can leave a tiny negative), in
    float64 as ``math.sqrt`` computes them; one array call, not one Python call per hit."""
    return np.sqrt(np.maximum(raw.astype(np.float64), 0.0))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table."""

    distance: Distance
    kernel: Kernel
    higher_is_better: bool
    """Scores are similarities (best first: largest) rather than distances (best first: smallest)."""
    faiss_metric: Optional[int]
    """The faiss metric an ANN index of this distance uses; None: no ANN kind can index it."""
    normalised: bool
    """Rows and queries are scaled to unit length when they come in (Cosine)."""
    from_raw: Optional[Callable[[np.ndarray], np.ndarray]]
    """Qdrant's scores of an index's raw scores, array-wise (faiss's L2 is the squared distance); None: the same."""

    @property
    def indexable(self) -> bool:
        """Whether an ANN kind can index it (every ANN kind searches through faiss)."""
        return self.faiss_metric is not None

    def scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact Qdrant scores (float32) of a few ``rows`` against one ``query``: the re-scoring kernel."""
        if self.kernel is Kernel.L2:
            diff = rows - query[None, :]
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))  # type: ignore[no-any-return]
        if self.kernel is Kernel.L1:
            return np.abs(rows - query[None, :]).sum(axis=1)  # type: ignore[no-any-return]
        return rows @ query  # type: ignore[no-any-return]

    def similarity(self, rows: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Similarity (float64, higher is closer) of every row to one vector, as Qdrant's core ranks:
        the dot product, the negated *squared* L2 distance, or the negated L1 distance."""
        if self.kernel is Kernel.L2:
            diff = (rows - row[None, :]).astype(np.float64)
            return -np.einsum("ij,ij->i", diff, diff)  # type: ignore[no-any-return]
        if self.kernel is Kernel.L1:
            return -np.abs(rows - row[None, :]).sum(axis=1, dtype=np.float64)  # type: ignore[no-any-return]
        return (rows @ row).astype(np.float64)  # type: ignore[no-any-return]

    def similarity_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """The :meth:`similarity` behind reported scores (an Euclid score is the root of the squared distance)."""
        if self.kernel is Kernel.L2:
            return -np.square(scores, dtype=np.float64)  # type: ignore[no-any-return]
        if self.kernel is Kernel.L1:
            return -scores.astype(np.float64)  # type: ignore[no-any-return]
        return scores.astype(np.float64)  # type: ignore[no-any-return]


METRICS: dict[Distance, Metric] = {
    Distance.COSINE: Metric(Distance.COSINE, Kernel.DOT, True, faiss.METRIC_INNER_PRODUCT, True, None),
    Distance.DOT: Metric(Distance.DOT, Kernel.DOT, True, faiss.METRIC_INNER_PRODUCT, False, None),
    Distance.EUCLID: Metric(Distance.EUCLID, Kernel.L2, False, faiss.METRIC_L2, False, _root),
    Distance.MANHATTAN: Metric(Distance.MANHATTAN, Kernel.L1, False, None, False, None),
}


def metric_of(distance: Distance) -> Metric:
    return METRICS[distance]


def higher_is_better(distance: Distance) -> bool:
    return METRICS[distance].higher_is_better


UNIT_SLACK = 1e-6
"""A row whose length is within this of 1 counts as unit length and is kept as given: normalising is then
idempotent, so a copy of a stored row (a replica filled from a peer, an export imported again) is the
same bits as the original, not one more rounding of it."""


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero, rows of unit length within :data:`UNIT_SLACK` stay
    as they are), also rows whose squared norm overflows float32."""
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    huge = ~np.isfinite(norms[:, 0])
    if huge.any():  # finite rows (checked before) past ~1.8e19: scale by their largest component first
        matrix = matrix.copy()
        matrix[huge] /= np.abs(matrix[huge]).max(axis=1, keepdims=True)
        norms[huge] = np.linalg.norm(matrix[huge], axis=1, keepdims=True)
    norms[(norms == 0) | (np.abs(norms - 1.0) <= UNIT_SLACK)] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


__all__ = ["METRICS", "Kernel", "Metric", "higher_is_better", "metric_of", "normalise"]
