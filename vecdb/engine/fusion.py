"""Rank fusion of several stages' results: reciprocal rank (RRF) and distribution-based score (DBSF).

The formulas, score values and tie order are qdrant-client local mode's
(``qdrant_client/hybrid/fusion.py``), the reference vecdb is tested against:

* RRF: a point at rank ``pos`` (0-based) of source ``i`` earns ``1 / ((pos + 1) / w_i + k - 1)``
  (``k`` defaults to 2, a weight ``w_i <= 0`` earns nothing); its score is the sum over sources.
* DBSF: each non-empty source's scores are mapped through ``(s - (mean - 3 sd)) / (6 sd)`` (sample
  standard deviation; a source of one point, or of equal scores, gives 0.5 each); summed per point.
* Best first; equal scores keep the order in which the points were first seen, source by source.

A source is a list of ``(score, key)`` best first, where ``key`` identifies a point (vecdb passes
internal ids). Plain dicts and floats, in the same operation order as the reference, so the scores
agree to the last bit; a fusion stage handles a few hundred candidates, far below a search's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Optional

from vecdb.errors import InvalidInput

Hits = list[tuple[float, int]]
"""``(score, key)``, best first."""

DEFAULT_RRF_K = 2
"""qdrant-client's ``DEFAULT_RANKING_CONSTANT_K``."""

_SCORE = itemgetter(1)


def rrf(
    sources: Sequence[Hits], limit: int, k: Optional[int] = None, weights: Optional[Sequence[float]] = None
) -> Hits:
    """Reciprocal rank fusion of ``sources``: the best ``limit``."""
    if weights is not None and len(weights) != len(sources):
        raise InvalidInput(
            f"query.rrf.weights: one weight per prefetch is needed ({len(weights)} weights, {len(sources)} prefetches)"
        )
    constant = DEFAULT_RRF_K if k is None else k
    fused: dict[int, float] = {}
    for source, hits in enumerate(sources):
        weight = 1.0 if weights is None else weights[source]
        for pos, (_, key) in enumerate(hits):
            score = 0.0 if weight <= 0 else 1 / ((pos + 1.0) / weight + constant - 1.0)
            if key in fused:
                fused[key] += score
            else:
                fused[key] = score
    return _best(fused, limit)


def fuse(query: Any, sources: Sequence[Hits], limit: int) -> Hits:
    """A fusion query over ``sources``: ``{"rrf": {"k", "weights"}}`` or ``{"fusion": "rrf" | "dbsf"}``
    (the query models, read by their fields: one node's stages and the cluster's router call this)."""
    params = getattr(query, "rrf", None)
    if params is not None:
        return rrf(sources, limit, params.k, params.weights)
    return rrf(sources, limit) if query.fusion.value == "rrf" else dbsf(sources, limit)


def normalised(scores: list[float]) -> list[float]:
    """One source's scores as DBSF sees them: mean +- 3 standard deviations mapped onto 0..1."""
    if len(scores) == 1:
        return [0.5]
    mean = sum(scores) / len(scores)
    variance = sum([(s - mean) ** 2 for s in scores]) / (len(scores) - 1)
    if variance == 0:
        return [0.5] * len(scores)
    sd = variance**0.5
    low = mean - 3 * sd
    high = mean + 3 * sd
    return [(s - low) / (high - low) for s in scores]


def dbsf(sources: Sequence[Hits], limit: int) -> Hits:
    """Distribution-based score fusion of ``sources``: the best ``limit``."""
    fused: dict[int, float] = {}
    for hits in sources:
        if not hits:
            continue
        for score, (_, key) in zip(normalised([s for s, _ in hits]), hits, strict=True):
            if key in fused:
                fused[key] += score
            else:
                fused[key] = score
    return _best(fused, limit)


def _best(fused: dict[int, float], limit: int) -> Hits:
    """Highest first; ``sorted`` is stable, so ties stay in first-seen order (as the reference)."""
    ranked = sorted(fused.items(), key=_SCORE, reverse=True)[:limit]
    return [(score, key) for key, score in ranked]
