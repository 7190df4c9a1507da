"""Brute-force reference search used by the tests: float64, no shortcuts."""

from __future__ import annotations

import numpy as np


def reference_scores(base: np.ndarray, query: np.ndarray, distance: str) -> np.ndarray:
    b = base.astype(np.float64)
    q = query.astype(np.float64)
    if distance == "Cosine":
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
        q = q / max(np.linalg.norm(q), 1e-30)
        return b @ q
    if distance == "Dot":
        return b @ q
    if distance == "Euclid":
        return np.sqrt(((b - q) ** 2).sum(axis=1))
    if distance == "Manhattan":
        return np.abs(b - q).sum(axis=1)
    raise ValueError(distance)


def reference_top(
    base: np.ndarray, ids: list, query: np.ndarray, distance: str, k: int, allowed: np.ndarray | None = None
) -> list[tuple[object, float]]:
    scores = reference_scores(base, query, distance)
    order = np.argsort(-scores if distance in ("Cosine", "Dot") else scores, kind="stable")
    if allowed is not None:
        order = [i for i in order if allowed[i]]
    return [(ids[i], float(scores[i])) for i in order[:k]]
