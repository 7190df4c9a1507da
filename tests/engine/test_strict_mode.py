"""Strict mode enforced as Qdrant's server enforces it (its own strict-mode tests, restated), embedded
and over HTTP; and the settings vecdb does not implement refused by name instead of stored and ignored:
strict-mode settings it does not enforce, multi-bit binary encodings and per-vector quantization, custom sharding
and shard keys,
unknown payload-index parameters."""

from __future__ import annotations

from typing import Any

import pytest

from vecdb.errors import Forbidden, InvalidInput, Unsupported
from vecdb.models.points import ScrollRequest

BERLIN = {"must": [{"key": "city", "match": {"value": "Berlin"}}]}


def _setup(client: Any, name: str) -> None:
    client.create_collection(name, {"size": 4, "distance": "Dot"})
    client.upsert(
        name,
        [
            {"id": i, "vector": [1.0, 2.0, 3.0, float(i)], "payload": {"city": "Berlin" if i % 2 else "Rome", "n": i}}
            for i in range(1, 7)
        ],
    )


def _strict(client: Any, name: str, **config: Any) -> None:
    client.update_collection(name, strict_mode_config={"enabled": True, **config})


def test_limits_params_and_unindexed_filters(client: Any, name: str) -> None:
    _setup(client, name)
    q = [0.2, 0.1, 0.9, 0.7]
    assert (
        len(
            client.query_points(
                name, query=q, limit=4, query_filter=BERLIN, search_params={"hnsw_ef": 5, "exact": True}
            ).points
        )
        == 3
    )
    _strict(client, name, max_query_limit=4, search_max_hnsw_ef=5)
    client.query_points(name, query=q, limit=4, search_params={"hnsw_ef": 5})
    _strict(
        client, name, max_query_limit=3, search_max_hnsw_ef=4, search_allow_exact=False, search_max_oversampling=1.5
    )
    for call, fragment in [
        (lambda: client.query_points(name, query=q, limit=4), 'Limit exceeded 4 > 3 for "limit"'),
        (lambda: client.scroll(name, limit=10), '"limit"'),
        (lambda: client.query_points(name, query=q, limit=2, search_params={"hnsw_ef": 5}), '"hnsw_ef"'),
        (lambda: client.query_points(name, query=q, limit=2, search_params={"exact": True}), "Exact search disabled"),
        (
            lambda: client.query_points(name, query=q, limit=2, search_params={"quantization": {"oversampling": 2.0}}),
            '"oversampling"',
        ),
        (
            lambda: client.query_points_groups(name, "city", query=q, limit=2, group_size=2),
            'Limit exceeded 4 > 3 for "limit"',
        ),
        (
            lambda: client.query_points(name, prefetch=[{"query": q, "limit": 10}], query={"fusion": "rrf"}, limit=2),
            '"limit"',
        ),
    ]:
        with pytest.raises(Forbidden, match=fragment):
            call()
    assert len(client.query_points(name, query=q, limit=3).points) == 3

    # a filter on a field without a fitting index, for reads and for writes
    _strict(client, name, unindexed_filtering_retrieve=False, unindexed_filtering_update=False)
    with pytest.raises(
        Forbidden, match=r'Index required but not found for "city" of one of the following types: \[keyword'
    ):
        client.query_points(name, query=q, limit=3, query_filter=BERLIN)
    with pytest.raises(Forbidden, match='"city"'):
        client.count(name, count_filter=BERLIN)
    with pytest.raises(Forbidden, match='"city"'):
        client.delete(name, {"filter": BERLIN})
    with pytest.raises(Forbidden, match='"n"'):
        client.scroll(name, scroll_filter={"must": [{"key": "n", "range": {"gte": 2}}]}, limit=3)
    client.create_payload_index(name, "city", "keyword")
    assert len(client.query_points(name, query=q, limit=3, query_filter=BERLIN).points) == 3
    client.delete(name, {"filter": BERLIN})
    assert client.count(name).count == 3
    client.update_collection(name, strict_mode_config={"enabled": False})
    client.scroll(name, scroll_filter={"must": [{"key": "n", "range": {"gte": 2}}]}, limit=10)  # off again


def test_write_limits(client: Any, name: str) -> None:
    _setup(client, name)
    batch = {"ids": [1, 2, 3, 4, 5, 6], "vectors": [[1.0, 2.0, 3.0, 5.0]] * 6}
    _strict(client, name, upsert_max_batchsize=5, filter_max_conditions=2, condition_max_size=2, max_points_count=8)
    with pytest.raises(Forbidden, match='Limit exceeded 6 > 5 for "upsert"'):
        client.upsert(name, batch)
    with pytest.raises(Forbidden, match='"upsert"'):
        client.batch_update_points(name, [{"upsert": {"batch": batch}}])
    vectors = [{"id": i, "vector": [1.0, 1.0, 1.0, 1.0]} for i in range(1, 7)]
    with pytest.raises(Forbidden, match="update limit"):
        client.update_vectors(name, vectors)
    three = {
        "must": [
            {"key": "n", "range": {"gte": 1}},
            {"key": "n", "range": {"lte": 9}},
            {"key": "city", "match": {"any": ["Rome"]}},
        ]
    }
    with pytest.raises(Forbidden, match='"filter conditions"'):
        client.count(name, count_filter=three)
    with pytest.raises(Forbidden, match='"condition value count"'):
        client.count(name, count_filter={"must": [{"key": "city", "match": {"any": ["a", "b", "c"]}}]})
    client.upsert(name, {"ids": [1, 2, 7, 8], "vectors": [[1.0, 1.0, 1.0, 1.0]] * 4})  # 8 points: at the limit
    with pytest.raises(Forbidden, match="Max points count limit of 8 reached!"):
        client.upsert(name, {"ids": [3, 9], "vectors": [[1.0, 1.0, 1.0, 1.0]] * 2})
    client.upsert(name, {"ids": [3, 4], "vectors": [[1.0, 1.0, 1.0, 1.0]] * 2})  # overwrites add nothing
    assert client.count(name).count == 8


def test_settings_not_implemented_are_refused_by_name(client: Any, name: str) -> None:
    for config, error, fragment in [
        (
            {"strict_mode_config": {"enabled": True, "read_rate_limit": 10}},
            Unsupported,
            "strict_mode_config.read_rate_limit",
        ),
        (
            {"strict_mode_config": {"enabled": True, "max_query_limit": -1}},
            InvalidInput,
            "strict_mode_config.max_query_limit",
        ),
        ({"strict_mode_config": {"bogus": 1}}, InvalidInput, "strict_mode_config.bogus"),
        ({"quantization_config": {"binary": {"encoding": "two_bits"}}}, Unsupported, "quantization_config.binary"),
        ({"sharding_method": "custom"}, Unsupported, "sharding_method"),
    ]:
        with pytest.raises(error, match=fragment):
            client.create_collection(name, {"size": 2, "distance": "Dot"}, **config)
        assert not client.collection_exists(name)
    with pytest.raises(Unsupported, match=r"vectors.v.quantization_config.scalar"):
        client.create_collection(
            name, {"v": {"size": 2, "distance": "Dot", "quantization_config": {"scalar": {"type": "int8"}}}}
        )
    client.create_collection(name, {"size": 2, "distance": "Dot"})
    with pytest.raises(Unsupported, match="quantization_config.binary.query_encoding"):
        client.update_collection(name, quantization_config={"binary": {"query_encoding": "scalar4bits"}})
    with pytest.raises(Unsupported, match="strict_mode_config.max_timeout"):
        client.update_collection(name, strict_mode_config={"max_timeout": 5})
    assert client.get_collection(name).config.strict_mode_config == {"enabled": False}
    with pytest.raises(InvalidInput, match=r"field_schema.bogus: not a parameter of integer indexes"):
        client.create_payload_index(name, "n", {"type": "integer", "bogus": True})
    client.create_payload_index(name, "n", {"type": "integer", "lookup": False, "range": True, "is_principal": True})
    client.upsert(name, [{"id": 1, "vector": [1.0, 0.0]}])
    with pytest.raises(Unsupported, match="shard_key"):  # (the body's field, as a server receives it)
        client._service.scroll_points(name, ScrollRequest(shard_key="a"))
