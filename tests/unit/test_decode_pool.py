"""Large upsert bodies decoded in a helper process (``vecdb/api/decode_pool.py``) give the very
columns the server's own decode gives, and a helper that dies costs a fallback, not a failed write."""

from __future__ import annotations

import numpy as np
import orjson

from vecdb.api.decode_pool import POOLED_BYTES, DecodePool
from vecdb.models.vector_json import upsert_columns


def _body(n: int, dim: int) -> bytes:
    rng = np.random.default_rng(2)
    return orjson.dumps(
        {
            "batch": {
                "ids": list(range(n)),
                "vectors": rng.normal(size=(n, dim)).tolist(),
                "payloads": [{"i": i} for i in range(n)],
            },
            "update_filter": {"must": [{"key": "i", "range": {"gte": 0}}]},
        }
    )


def _same(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    np.testing.assert_array_equal(a[0]["vectors"], b[0]["vectors"])
    assert {k: v for k, v in a[0].items() if k != "vectors"} == {k: v for k, v in b[0].items() if k != "vectors"}
    assert a[1:] == b[1:]


def test_the_helper_decodes_as_the_server_does_and_small_bodies_stay_home() -> None:
    pool = DecodePool(1)
    try:
        big = _body(600, 64)
        assert len(big) >= POOLED_BYTES
        _same(pool.upsert_columns(big), upsert_columns(big))  # type: ignore[arg-type]
        assert pool._pool is not None  # (it went to the helper)
        assert pool.upsert_columns(b'{"batch": {"ids": [1], "vectors": [[1.5]]}}')[0]["ids"] == [1]  # type: ignore[index]
        assert pool.upsert_columns(big[:-1]) is None  # not JSON: left to orjson, as at home
    finally:
        pool.close()


def test_a_dead_helper_falls_back_to_the_server_process() -> None:
    pool = DecodePool(1)
    try:
        big = _body(600, 64)
        pool.upsert_columns(big)
        assert pool._pool is not None
        for process in list(pool._pool._processes.values()):  # type: ignore[union-attr]
            process.kill()
            process.join()
        _same(pool.upsert_columns(big), upsert_columns(big))  # type: ignore[arg-type]
        _same(pool.upsert_columns(big), upsert_columns(big))  # type: ignore[arg-type]  # (a fresh helper)
    finally:
        pool.close()


def test_no_helper_when_switched_off() -> None:
    pool = DecodePool(0)
    big = _body(600, 64)
    _same(pool.upsert_columns(big), upsert_columns(big))  # type: ignore[arg-type]
    assert pool._pool is None
