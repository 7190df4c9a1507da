"""The REST upsert decoder (``vecdb/models/vector_json.py``): vectors straight into numpy, or None.

It must give the very float32 values orjson and numpy give (the stored vectors may not depend on the
path a body took), and must leave to the model every body it could misread. (The HTTP answers of both
paths are compared in ``tests/http/test_fast_routes.py``.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from vecdb.models.vector_json import upsert_columns


def _reference(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).astype(np.float32)


def test_batch_vectors_decode_to_the_floats_orjson_and_numpy_give() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 384)) * rng.choice([1e-30, 1e-3, 1.0, 1e5, 1e37], size=(50, 1))
    rows = values.tolist()
    rows[0][:4] = [1, -2, 0, 12345678901234567890]  # integers are numbers too
    body = orjson.dumps({"batch": {"ids": list(range(50)), "vectors": rows, "payloads": [{"i": i} for i in range(50)]}})
    found = upsert_columns(body)
    assert found is not None
    columns, extra, from_points = found
    assert not from_points and extra == {}
    assert columns["vectors"].dtype == np.float32
    np.testing.assert_array_equal(columns["vectors"], _reference(orjson.loads(body)["batch"]["vectors"]))
    assert columns["ids"] == list(range(50)) and columns["payloads"][7] == {"i": 7}


def test_points_list_decodes_with_ids_payloads_and_other_fields() -> None:
    points = [{"id": i, "vector": [i + 0.5, -1.25, 3.0], "payload": {"t": f"[{i}]"}} for i in range(4)]
    points[2].pop("payload")
    body = orjson.dumps({"points": points, "update_filter": {"must": [{"key": "t", "match": {"any": ["a"]}}]}})
    found = upsert_columns(body)
    assert found is not None
    columns, extra, from_points = found
    assert from_points and extra == {"update_filter": {"must": [{"key": "t", "match": {"any": ["a"]}}]}}
    np.testing.assert_array_equal(columns["vectors"], _reference([p["vector"] for p in points]))
    assert columns["ids"] == [0, 1, 2, 3]
    assert columns["payloads"] == [{"t": "[0]"}, {"t": "[1]"}, None, {"t": "[3]"}]


@pytest.mark.parametrize(
    "body",
    [
        b'{"batch": {"ids": [1], "vectors": [[[0.5], 0.25]]}}',  # nested arrays (simdjson would flatten them)
        b'{"batch": {"ids": [1], "vectors": [[0.5, [0.25]]]}}',
        b'{"points": [{"id": 1, "vector": [0.5, [0.25]]}]}',
        b'{"batch": {"ids": [1, 2], "vectors": [[0.5, 0.25], [1.0]]}}',  # ragged
        b'{"batch": {"ids": [1], "vectors": [[0.5, true]]}}',  # booleans, strings, null
        b'{"batch": {"ids": [1], "vectors": [[0.5, "0.25"]]}}',
        b'{"points": [{"id": 1, "vector": [0.5, null]}]}',
        b'{"batch": {"ids": [1], "vectors": [[0.5]], "vectors": [[0.25]]}}',  # repeated keys: orjson keeps the last
        b'{"points": [{"id": 1, "vector": {"named": [0.5]}}]}',  # named vectors
        b'{"points": [{"id": 1, "vector": [0.5], "vectors": 1}]}',  # a field the model refuses
        b'{"batch": {"ids": [1], "vectors": {"named": [[0.5]]}}}',
        b'{"batch": {"ids": [1], "vectors": []}}',
        b'{"batch": [1]}',
        b"[1, 2]",
        b'{"batch": {"ids": [1], "vectors": [[0.5]]}',  # not JSON
        b'{"other": 1}',
    ],
)
def test_bodies_it_could_misread_are_left_to_the_model(body: bytes) -> None:
    assert upsert_columns(body) is None
