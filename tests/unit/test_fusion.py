"""``vecdb.engine.fusion`` against qdrant-client's own fusion functions (``qdrant_client/hybrid/fusion.py``).

Local mode fuses lists of ``ScoredPoint``; vecdb fuses ``(score, key)`` lists. Hypothesis generates
sources with repeated points across sources, ties, single-point and empty sources, equal scores, and
weights (including 0 and negative); order and score values must agree exactly (same float operations).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client.http import models as qm
from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

from vecdb.engine import fusion
from vecdb.errors import InvalidInput

scores = st.one_of(st.sampled_from([0.0, 0.5, 1.0, -1.0]), st.floats(-10, 10, allow_nan=False, width=32))


@st.composite
def sources(draw: st.DrawFn) -> list[list[tuple[float, int]]]:
    """1-4 sources, each best first (descending scores) over ids 0..29, a point at most once per source."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        ids = draw(st.lists(st.integers(0, 29), unique=True, max_size=12))
        values = sorted((draw(scores) for _ in ids), reverse=True)
        out.append(list(zip(values, ids, strict=True)))
    return out


def _reference(srcs: list[list[tuple[float, int]]]) -> list[list[qm.ScoredPoint]]:
    return [[qm.ScoredPoint(id=i, version=0, score=s) for s, i in hits] for hits in srcs]


def _pairs(points: list[qm.ScoredPoint]) -> list[tuple[float, int]]:
    return [(p.score, p.id) for p in points]  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(
    sources(),
    st.integers(1, 40),
    st.one_of(st.none(), st.integers(1, 100)),
    st.booleans(),
    st.data(),
)
def test_rrf_equals_local_mode(srcs, limit, k, weighted, data) -> None:  # type: ignore[no-untyped-def]
    weights = None
    if weighted:
        weights = data.draw(
            st.lists(st.sampled_from([0.0, -1.0, 0.5, 1.0, 2.0, 3.5]), min_size=len(srcs), max_size=len(srcs))
        )
    want = reciprocal_rank_fusion(_reference(srcs), limit=limit, ranking_constant_k=k, weights=weights)
    assert fusion.rrf(srcs, limit, k, weights) == _pairs(want)


@settings(max_examples=300, deadline=None)
@given(sources(), st.integers(1, 40))
def test_dbsf_equals_local_mode(srcs, limit) -> None:  # type: ignore[no-untyped-def]
    want = distribution_based_score_fusion(_reference(srcs), limit=limit)
    assert fusion.dbsf(srcs, limit) == _pairs(want)


def test_rrf_default_constant_and_first_seen_tie_order() -> None:
    a = [(0.9, 7), (0.8, 3)]
    b = [(5.0, 3), (4.0, 9)]
    # k = 2: 3 is at rank 1 of a and 0 of b, so 1/(2 + 1) + 1/(1 + 1)
    assert fusion.rrf([a, b], 10) == [(1 / 3 + 1 / 2, 3), (0.5, 7), (1 / 3, 9)]
    # equal scores keep the order in which the points were first seen, source by source
    assert fusion.rrf([[(1.0, 7)], [(1.0, 9)]], 10) == [(0.5, 7), (0.5, 9)]
    assert fusion.rrf([[(1.0, 9)], [(1.0, 7)]], 10) == [(0.5, 9), (0.5, 7)]


def test_dbsf_single_point_and_equal_scores_give_half() -> None:
    assert fusion.dbsf([[(3.0, 1)], [(2.0, 2), (2.0, 3)]], 10) == [(0.5, 1), (0.5, 2), (0.5, 3)]


def test_rrf_weights_must_match_the_prefetches() -> None:
    with pytest.raises(InvalidInput, match="query.rrf.weights"):
        fusion.rrf([[(1.0, 1)], [(1.0, 2)]], 10, None, [1.0])
