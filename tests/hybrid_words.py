"""Deterministic dense and sparse text embedders, and the brute-force rankings hybrid tests check against.

The framework tests (``tests/http/test_frameworks_hybrid.py``) need embedders that run with no model
and no network, and whose answers can be worked out here exactly: "similar" means "shares words".
Dense is a hashed bag of words of unit length (cosine = dot product); sparse is one term per word,
keyed by the word's CRC-32 (so indices use the whole unsigned 32-bit range, as Qdrant's and
fastembed's BM25 do), valued by its share of the document, and, on the query side, by a fixed
per-word weight, so that sparse scores rarely tie. Fusion is qdrant-client's own RRF (local mode,
the semantics oracle); IDF is Qdrant's formula.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from qdrant_client.http import models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

DIM = 64
Sparse = dict[int, float]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def term(word: str) -> int:
    """The sparse index of a word: its CRC-32, an unsigned 32-bit number like fastembed's BM25 ids."""
    return zlib.crc32(word.encode())


def dense(text: str) -> list[float]:
    """Hashed bag of words, unit length: texts sharing words are close."""
    vector = np.zeros(DIM, dtype=np.float64)
    for word in words(text):
        vector[term(word) % DIM] += 1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).tolist()


def sparse_doc(text: str) -> Sparse:
    """Each word's share of the document (term frequency over length)."""
    counts = Counter(term(w) for w in words(text))
    total = sum(counts.values())
    return {index: count / total for index, count in counts.items()}


def sparse_query(text: str) -> Sparse:
    """Each query word weighted 1.00-1.88 by its hash, so that two documents rarely score the same."""
    weights: Sparse = {}
    for word in words(text):
        index = term(word)
        weights[index] = weights.get(index, 0.0) + 1.0 + (index % 89) / 100
    return weights


def indices_values(vector: Mapping[int, float]) -> tuple[list[int], list[float]]:
    """A sparse vector as Qdrant's two parallel lists, sorted by index."""
    pairs = sorted(vector.items())
    return [i for i, _ in pairs], [v for _, v in pairs]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def idf(df: int, n: int) -> float:
    """Qdrant's IDF (``modifier: idf``): ln((n - df + 0.5) / (df + 0.5) + 1)."""
    return math.log((n - df + 0.5) / (df + 0.5) + 1)


def sparse_scores(
    docs: Mapping[str, Mapping[int, float]], query: Mapping[int, float], *, use_idf: bool = False
) -> dict[str, float]:
    """Dot product over shared terms, IDF-weighted over ``docs`` (the live points) when asked.

    Like Qdrant, a document sharing no term with the query is not a hit at all (no 0.0 scores).
    """
    weights = dict(query)
    if use_idf:
        n = len(docs)
        for index in weights:
            df = sum(1 for d in docs.values() if index in d)
            weights[index] *= idf(df, n)
    scores = {}
    for key, doc in docs.items():
        shared = [weights[i] * v for i, v in doc.items() if i in weights]
        if shared:
            scores[key] = float(sum(shared))
    return scores


def top(scores: Mapping[str, float], limit: int, *, ties_descending: bool = False) -> list[str]:
    """The ``limit`` best keys, equal scores by key (ascending, or descending when asked)."""
    by_key = sorted(scores, reverse=ties_descending)
    return sorted(by_key, key=lambda k: -scores[k])[:limit]


def fused_determined(
    scores: Sequence[Mapping[str, float]],
    limit: int,
    fuse: Callable[[list[list[str]]], dict[str, float]],
    top_k: int,
) -> dict[str, float]:
    """``fuse`` over the top-``limit`` of each score list, checked to be one answer: a tie inside
    a list (or at its cut) lets the server rank either way, so the test's own data must be such that
    both extreme tie orders give the same fused top ``top_k``. Returns the fused scores."""
    answers = [fuse([top(s, limit, ties_descending=d) for s in scores]) for d in (False, True)]
    best = [sorted(a.items(), key=lambda kv: -kv[1])[:top_k] for a in answers]
    np.testing.assert_allclose([v for _, v in best[0]], [v for _, v in best[1]], atol=1e-9)
    for key, score in best[0]:
        assert math.isclose(answers[1].get(key, -1.0), score, abs_tol=1e-9), ("ties decide the answer", key)
    return answers[0]


def rrf(rankings: Iterable[Sequence[str]], k: int | None = None) -> dict[str, float]:
    """Reciprocal rank fusion of ranked id lists, by qdrant-client's local mode (the oracle)."""
    responses = [[models.ScoredPoint(id=str(key), version=0, score=0.0) for key in ranking] for ranking in rankings]
    fused = reciprocal_rank_fusion(responses, limit=10**9, ranking_constant_k=k)
    return {str(point.id): point.score for point in fused}


def assert_ranked(got: Sequence[tuple[str, float]], want: Mapping[str, float], limit: int) -> None:
    """``got`` is a top-``limit`` of ``want``: the same scores rank by rank, each id with its own
    score, no id twice (ids tied at one score may come in any order, or be cut at the limit)."""
    expected = sorted(want.values(), reverse=True)[:limit]
    ids = [key for key, _ in got]
    assert len(ids) == len(set(ids)), ids
    assert len(got) == len(expected), (got, expected)
    np.testing.assert_allclose([score for _, score in got], expected, rtol=1e-5, atol=1e-6)
    for key, score in got:
        assert key in want, (key, sorted(want))
        assert math.isclose(want[key], score, rel_tol=1e-5, abs_tol=1e-6), (key, want[key], score)
