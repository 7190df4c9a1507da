"""The ``k`` best of scored ids, as every ranked stage returns them: best first, ties by lower id."""

from __future__ import annotations

import numpy as np


def best(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[float, int]]:
    """The ``k`` best of ``ids`` by their ``scores``, best first, ties by lower id.

    Sorts rather than partitions: numpy's partition takes quadratic time on arrays of many equal
    values (duplicated documents tie by the thousand; 2 ms for 20k), its SIMD sort does not."""
    if len(ids) > k:
        kth = np.sort(scores)[len(scores) - k]
        above = scores > kth
        tied = ids[scores == kth]
        need = k - int(np.count_nonzero(above))
        if len(tied) > need:
            tied = np.sort(tied)[:need]
        ids = np.concatenate((ids[above], tied))
        scores = np.concatenate((scores[above], np.full(len(tied), kth, dtype=scores.dtype)))
    order = np.lexsort((ids, -scores))[:k]
    return list(zip(scores[order].tolist(), ids[order].tolist(), strict=True))


__all__ = ["best"]
