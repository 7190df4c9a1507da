"""``update_filter`` on vector updates (and upserts, already served) against qdrant-client's local mode,
embedded and over HTTP: only points passing the filter change; a missing point fails the whole request."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from vecdb.errors import NotFound


def test_update_vectors_with_update_filter(client: Any, name: str) -> None:
    local = QdrantClient(":memory:")
    points = [models.PointStruct(id=i, vector=[1.0, float(i)], payload={"keep": i % 2 == 0}) for i in range(8)]
    for c in (client, local):
        c.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
        c.upsert(name, points)
    only_kept = models.Filter(must=[models.FieldCondition(key="keep", match=models.MatchValue(value=True))])
    new = [models.PointVectors(id=i, vector=[0.0, -1.0]) for i in range(8)]
    for c in (client, local):
        c.update_vectors(name, new, update_filter=only_kept)
    got = {p.id: p.vector for p in client.retrieve(name, list(range(8)), with_vectors=True)}
    want = {p.id: p.vector for p in local.retrieve(name, list(range(8)), with_vectors=True)}
    assert got == want and got[0] == [0.0, -1.0] and got[1] == [1.0, 1.0]
    with pytest.raises(NotFound):
        client.update_vectors(
            name, [models.PointVectors(id=2, vector=[5.0, 5.0]), models.PointVectors(id=99, vector=[1.0, 1.0])]
        )
    assert client.retrieve(name, [2], with_vectors=True)[0].vector == [0.0, -1.0]  # nothing written
