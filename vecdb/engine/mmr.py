"""Maximal marginal relevance: re-rank nearest candidates so the answer is relevant *and* varied.

LLM retrieval asks for it (LangChain's ``max_marginal_relevance_search``) because
the plain top-k of a memory store is often k near-copies of one passage. Qdrant's
rule (``{"nearest": .., "mmr": {"diversity", "candidates_limit"}}``), reproduced here:

* the candidates are the ``candidates_limit`` nearest points (default: the query's
  ``limit``), after the filter and ``score_threshold``;
* the most relevant candidate is taken first; then, repeatedly, the candidate with
  the largest ``(1 - diversity) * sim(query, c) - diversity * max(sim(c, s) for s taken)``;
* each point keeps its similarity to the query as its score; ``offset`` is applied
  to the re-ranked list, not to the candidate search.

Similarity is the metric Qdrant's core ranks by, turned "higher is better": the dot
product for Cosine (rows are stored normalised) and Dot, the negated *squared*
distance for Euclid, the negated distance for Manhattan (the distance table's
``Metric.similarity``, :mod:`vecdb.index.distance`).
"""

from __future__ import annotations

import numpy as np

from vecdb.index.distance import metric_of
from vecdb.models.collections import Distance

DEFAULT_DIVERSITY = 0.5
MAX_CANDIDATES = 16384
"""Qdrant's bound on ``candidates_limit``: the re-ranking is quadratic in the candidates."""


def relevance_of(scores: np.ndarray, distance: Distance) -> np.ndarray:
    """The similarity to the query behind each reported score (Euclid reports the root)."""
    return metric_of(distance).similarity_of_scores(scores)


def select(rows: np.ndarray, relevance: np.ndarray, distance: Distance, diversity: float, limit: int) -> list[int]:
    """Positions of the chosen candidates in the order MMR takes them.

    ``rows``: the candidates' vectors; ``relevance[i]``: similarity of candidate ``i``
    to the query (higher is better). Only the chosen candidates' similarity rows are
    computed (``limit x candidates``, never the full square). Ties go to the earlier
    candidate (candidates arrive best first, ties already broken by id).
    """
    count = len(relevance)
    if count == 0 or limit <= 0:
        return []
    lam = 1.0 - diversity
    similarity_to = metric_of(distance).similarity
    relevance = relevance.astype(np.float64)
    first = int(np.argmax(relevance))
    chosen = [first]
    pending = np.ones(count, dtype=bool)
    pending[first] = False
    closest = similarity_to(rows, rows[first])  # max similarity of each candidate to the chosen ones
    while len(chosen) < min(limit, count):
        score = lam * relevance - (1.0 - lam) * closest
        score[~pending] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        pending[best] = False
        np.maximum(closest, similarity_to(rows, rows[best]), out=closest)
    return chosen
