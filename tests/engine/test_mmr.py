"""Maximal marginal relevance (``{"nearest": .., "mmr": ..}``) against qdrant-client's own local mode.

qdrant-client's ``:memory:`` mode implements Qdrant's MMR independently of vecdb, so
it is the reference: same candidates, same greedy order, same scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from vecdb_client import RemoteClient

import vecdb
from tests.helpers import client_for


def _clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Tight clusters of near-duplicates: where plain top-k repeats itself and MMR must not."""
    centres = rng.normal(size=(6, dim)).astype(np.float32)
    return (centres[rng.integers(0, 6, n)] + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def _load(c: object, name: str, vectors: np.ndarray, distance: models.Distance) -> None:
    c.create_collection(name, vectors_config=models.VectorParams(size=vectors.shape[1], distance=distance))
    c.upsert(
        name,
        points=[models.PointStruct(id=i, vector=v.tolist(), payload={"group": i % 3}) for i, v in enumerate(vectors)],
    )


@pytest.mark.parametrize(
    "distance", [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID, models.Distance.MANHATTAN]
)
@pytest.mark.parametrize("transport", ["embedded", "http", "sharded"])
def test_mmr_equals_qdrant_local_mode(
    transport: str, tmp_path: Path, request: pytest.FixtureRequest, name: str, distance: models.Distance
) -> None:
    client = client_for(transport, tmp_path, request)
    rng = np.random.default_rng(7)
    vectors = _clustered(rng, 300, 16)
    reference = QdrantClient(":memory:")
    _load(reference, name, vectors, distance)
    _load(client, name, vectors, distance)
    cases = [
        dict(diversity=0.5, candidates_limit=40, limit=8, offset=0, flt=None),
        dict(diversity=0.9, candidates_limit=100, limit=10, offset=3, flt=None),
        dict(diversity=0.0, candidates_limit=30, limit=5, offset=0, flt=None),
        dict(diversity=1.0, candidates_limit=50, limit=6, offset=0, flt=None),
        dict(diversity=None, candidates_limit=None, limit=7, offset=0, flt=None),
        dict(
            diversity=0.7,
            candidates_limit=60,
            limit=9,
            offset=1,
            flt=models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))]),
        ),
    ]
    for q in range(6):
        query = (vectors[q * 40] + 0.02 * rng.normal(size=16)).astype(np.float32).tolist()
        for case in cases:
            nearest = models.NearestQuery(
                nearest=query, mmr=models.Mmr(diversity=case["diversity"], candidates_limit=case["candidates_limit"])
            )
            args = dict(query=nearest, limit=case["limit"], offset=case["offset"], query_filter=case["flt"])
            want = reference.query_points(name, **args).points
            got = client.query_points(name, **args).points
            assert [p.id for p in got] == [p.id for p in want], (distance, case)
            np.testing.assert_allclose([p.score for p in got], [p.score for p in want], rtol=1e-4, atol=1e-4)


def test_mmr_spreads_over_clusters_and_zero_diversity_is_plain_search(
    client: vecdb.Client | RemoteClient,
    name: str,
) -> None:
    rng = np.random.default_rng(3)
    vectors = _clustered(rng, 300, 16)
    _load(client, name, vectors, models.Distance.COSINE)
    query = vectors[0].tolist()
    plain = client.query_points(name, query=query, limit=6).points
    same = client.query_points(
        name, query=models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=0.0, candidates_limit=50)), limit=6
    ).points
    assert [p.id for p in same] == [p.id for p in plain]
    varied = client.query_points(
        name,
        query=models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=0.8, candidates_limit=300)),
        limit=6,
        with_vectors=True,
    ).points
    assert varied[0].id == plain[0].id  # the most relevant point is always taken first
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def least_alike(points: list[models.ScoredPoint]) -> float:
        rows = normed[[p.id for p in points]]
        return float((rows @ rows.T)[np.triu_indices(len(points), 1)].min())

    assert least_alike(plain) > 0.9  # plain top-6: near-copies from the query's own cluster
    assert least_alike(varied) < 0.5  # MMR reached beyond it
    assert all(p.vector is not None for p in varied)


def test_mmr_bounds_and_threshold(client: vecdb.Client | RemoteClient, name: str) -> None:
    rng = np.random.default_rng(5)
    vectors = _clustered(rng, 100, 8)
    _load(client, name, vectors, models.Distance.COSINE)
    query = vectors[1].tolist()
    none = client.query_points(
        name, query=models.NearestQuery(nearest=query, mmr=models.Mmr(candidates_limit=0)), limit=5
    ).points
    assert none == []
    few = client.query_points(
        name, query=models.NearestQuery(nearest=query, mmr=models.Mmr(candidates_limit=3)), limit=5
    ).points
    assert len(few) == 3  # never more than the candidates
    kept = client.query_points(
        name,
        query=models.NearestQuery(nearest=query, mmr=models.Mmr(diversity=0.9, candidates_limit=100)),
        limit=10,
        score_threshold=0.9,
    ).points
    assert kept and all(p.score > 0.9 for p in kept)
