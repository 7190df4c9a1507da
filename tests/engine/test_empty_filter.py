"""An empty filter (``{}`` or ``{"must": []}``) selects every point in deletes and payload edits.

Qdrant (and vecdb's own count and scroll) read an empty filter as "all points"; the write path
used to refuse it with "either points or filter must be given", which broke Haystack's
``delete_all_documents``. Checked embedded and over HTTP, and through qdrant-client.
"""

from __future__ import annotations

import pytest
from qdrant_client import QdrantClient, models

from vecdb.errors import InvalidInput
from vecdb.models.points import SetPayload

EMPTY_FILTERS = [{}, {"must": []}, {"must": [], "should": [], "must_not": []}]


def _fill(client, name: str) -> None:
    client.create_collection(name, {"size": 2, "distance": "Dot"})
    client.upsert(
        name,
        {
            "ids": [1, 2, 3, 4],
            "vectors": [[1, 0], [0, 1], [1, 1], [2, 1]],
            "payloads": [{"a": i, "b": "x"} for i in range(4)],
        },
    )


@pytest.mark.parametrize("flt", EMPTY_FILTERS)
def test_delete_with_an_empty_filter_deletes_every_point(client, name, flt) -> None:
    _fill(client, name)
    client.delete(name, {"filter": flt})
    assert client.count(name).count == 0
    assert client.scroll(name)[0] == []


@pytest.mark.parametrize("flt", EMPTY_FILTERS)
def test_payload_edits_with_an_empty_filter_reach_every_point(client, name, flt) -> None:
    _fill(client, name)
    client.set_payload(name, {"c": True}, points={"filter": flt})
    assert [p.payload["c"] for p in client.scroll(name)[0]] == [True] * 4
    client.delete_payload(name, ["b"], points={"filter": flt})
    assert all("b" not in p.payload for p in client.scroll(name)[0])
    client.clear_payload(name, {"filter": flt})
    assert [p.payload for p in client.scroll(name)[0]] == [{}] * 4


def test_no_points_and_no_filter_is_still_refused(client, name) -> None:
    _fill(client, name)
    with pytest.raises(InvalidInput, match="either points or filter"):
        client._service.set_payload(name, SetPayload(payload={"c": 1}))
    assert client.count(name).count == 4


def test_qdrant_client_delete_all_with_an_empty_filter(server, name) -> None:
    qc = QdrantClient(url=server.url, check_compatibility=False)
    qc.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    qc.upsert(name, [models.PointStruct(id=i, vector=[1.0, float(i)], payload={"i": i}) for i in range(5)])
    qc.delete(name, points_selector=models.FilterSelector(filter=models.Filter(must=[])))
    assert qc.count(name).count == 0
    qc.upsert(name, [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(3)])
    qc.set_payload(name, {"k": "v"}, points=models.Filter())
    assert {p.payload["k"] for p in qc.scroll(name, limit=10)[0]} == {"v"}
    qc.close()
