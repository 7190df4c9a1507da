"""LangGraph's Qdrant store (``langgraph-store-qdrant``), unchanged, on vecdb: in-process through
``vecdb.QdrantClient(path=...)`` and over HTTP against ``vecdb serve``. put, get, search (namespace
prefixes, filters, newest first through an ``order_by`` query), list_namespaces (exact and approximate
facets), delete; and its semantic search (an ``index`` config: MaxSim over each item's embedded fields)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vecdb
from tests.harness import ServerProcess

store_module = pytest.importorskip("langgraph.store.qdrant")
from qdrant_client import QdrantClient  # noqa: E402

ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("users", "ann"), "prefs", {"theme": "dark", "n": 1}),
    (("users", "ann"), "food", {"likes": "pizza", "n": 2}),
    (("users", "bob"), "prefs", {"theme": "light", "n": 3}),
    (("users", "bob", "trips"), "rome", {"days": 4, "n": 4}),
    (("agents", "helper"), "style", {"tone": "short", "n": 5}),
]


@pytest.fixture(params=["in-process", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "in-process":
        c: Any = vecdb.QdrantClient(path=tmp_path / "data")
    else:
        server: ServerProcess = request.getfixturevalue("server")
        c = QdrantClient(url=server.url, check_compatibility=False)
    yield c
    c.close()


def test_langgraph_store(client: Any, name: str) -> None:
    store = store_module.QdrantStore(client, collection_name=name)
    store.setup()
    for namespace, key, value in ITEMS:
        store.put(namespace, key, value)
        time.sleep(0.002)  # (distinct updated_at: the newest-first order is then certain)
    got = store.get(("users", "ann"), "prefs")
    assert got is not None and got.value == {"theme": "dark", "n": 1}
    assert store.get(("users", "ann"), "missing") is None

    # search: a namespace prefix, newest first; then a filter on the value
    found = store.search(("users",), limit=10)
    assert [(tuple(i.namespace), i.key) for i in found] == [
        (("users", "bob", "trips"), "rome"),
        (("users", "bob"), "prefs"),
        (("users", "ann"), "food"),
        (("users", "ann"), "prefs"),
    ]
    assert [i.key for i in store.search(("users",), limit=2, offset=1)] == ["prefs", "food"]
    assert [i.key for i in store.search(("users",), filter={"n": {"$gte": 2, "$lt": 4}})] == ["prefs", "food"]
    assert [i.key for i in store.search(("users", "ann"), filter={"theme": "dark"})] == ["prefs"]

    # list_namespaces: every namespace, by prefix, cut at a depth
    assert store.list_namespaces() == [
        ("agents", "helper"),
        ("users", "ann"),
        ("users", "bob"),
        ("users", "bob", "trips"),
    ]
    assert store.list_namespaces(prefix=("users", "bob")) == [("users", "bob"), ("users", "bob", "trips")]
    assert store.list_namespaces(max_depth=1) == [("agents",), ("users",)]

    # an overwrite moves the item to the front; a delete removes it (and an emptied namespace)
    store.put(("users", "ann"), "prefs", {"theme": "blue", "n": 6})
    assert [i.key for i in store.search(("users", "ann"))] == ["prefs", "food"]
    store.delete(("agents", "helper"), "style")
    assert store.get(("agents", "helper"), "style") is None
    assert ("agents", "helper") not in store.list_namespaces()
    client.delete_collection(name)


def _embed(texts: list[str]) -> list[list[float]]:
    """A fixed 8-d embedding of a text: its letters counted into eight buckets (deterministic, no model)."""
    out = []
    for text in texts:
        counts = [0.0] * 8
        for ch in text.lower():
            if ch.isalpha():
                counts[(ord(ch) * 7) % 8] += 1.0
        counts[0] += 0.01  # (never the zero vector)
        out.append(counts)
    return out


DOCS: list[tuple[str, dict[str, Any]]] = [
    ("a", {"title": "pasta recipes", "text": "tomato basil garlic"}),
    ("b", {"title": "mountain trips", "text": "alps hiking boots"}),
    ("c", {"title": "tax forms", "text": "deadline april receipts"}),
    ("d", {"title": "garden", "text": "basil tomato seedlings"}),
    ("e", {"title": "music", "text": "jazz piano evenings"}),
]


def test_langgraph_store_semantic_search(client: Any, name: str) -> None:
    """Its semantic search: each item's fields embedded as the rows of one MaxSim multivector, so an item
    scores its best-matching field's cosine; ranked as a brute force over the same embedding ranks them."""
    import numpy as np

    index = {"dims": 8, "embed": _embed, "fields": ["title", "text"]}
    store = store_module.QdrantStore(client, collection_name=name, index=index)
    store.setup()
    for key, value in DOCS:
        store.put(("docs",), key, value)
    store.put(("docs",), "z", {"title": "not embedded", "text": "tomato"}, index=False)

    def unit(v: list[float]) -> Any:
        a = np.asarray(v, dtype=np.float64)
        return a / np.linalg.norm(a)

    for query in ("tomato basil", "hiking in the alps", "piano"):
        q = unit(_embed([query])[0])
        brute = {
            key: max(float(unit(row) @ q) for row in _embed([value["title"], value["text"]])) for key, value in DOCS
        }
        want = sorted(brute, key=lambda k: -brute[k])[:3]
        found = store.search(("docs",), query=query, limit=3)
        assert [i.key for i in found] == want
        assert [i.score for i in found] == pytest.approx([brute[k] for k in want], rel=1e-4)
    # a filter narrows the candidates; the item put with index=False has no vector and is never scored
    found = store.search(("docs",), query="tomato", filter={"title": "garden"})
    assert [i.key for i in found] == ["d"]
    assert "z" not in [i.key for i in store.search(("docs",), query="tomato", limit=10)]
    client.delete_collection(name)
