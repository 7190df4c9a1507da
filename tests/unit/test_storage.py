"""The LMDB byte layout, against a real environment."""

from __future__ import annotations

import lmdb
import numpy as np
import pytest

from vecdb.errors import Corruption
from vecdb.ids import id_to_key
from vecdb.storage.points import POINTS_DBS, PointsTables


@pytest.fixture
def tables(tmp_path):
    env = lmdb.open(str(tmp_path), max_dbs=len(POINTS_DBS), map_size=1 << 24)
    t = PointsTables({n: env.open_db(n.encode()) for n in POINTS_DBS})
    yield env, t
    env.close()


def test_put_new_writes_rows_in_order(tables):
    env, t = tables
    rows0 = np.arange(6, dtype=np.float32).reshape(3, 2)
    rows1 = np.full((1, 3), 7, dtype=np.float32)
    with env.begin(write=True) as txn:
        t.put_new(
            txn,
            10,
            1,
            [id_to_key(5), id_to_key(1), id_to_key(9)],
            [b"{}", b'{"a":1}', b"{}"],
            {0: (np.arange(3), rows0), 1: (np.array([1]), rows1)},
        )
    with env.begin() as txn:
        assert [t.iid_of(txn, id_to_key(i)) for i in (5, 1, 9)] == [10, 11, 12]
        assert [(p.iid, p.id, p.payload) for p in t.iter_points(txn)] == [(10, 5, {}), (11, 1, {"a": 1}), (12, 9, {})]
        assert [(i, s) for i, s, _ in t.iter_vectors(txn)] == [(10, 0), (11, 0), (11, 1), (12, 0)]
        np.testing.assert_array_equal(t.get_vector(txn, 11, 1), rows1[0])
        np.testing.assert_array_equal(t.get_vector(txn, 12, 0), rows0[2])


def test_put_new_refuses_internal_ids_below_stored_ones(tables):
    """Append mode would silently skip such rows; the transaction must fail instead."""
    env, t = tables
    with env.begin(write=True) as txn:
        t.put_new(txn, 5, 1, [id_to_key(1)], [b"{}"], {0: (np.arange(1), np.zeros((1, 2), np.float32))})
    with pytest.raises(Corruption, match="points"):
        with env.begin(write=True) as txn:
            t.put_new(txn, 3, 2, [id_to_key(2)], [b"{}"], {0: (np.arange(1), np.zeros((1, 2), np.float32))})
    with env.begin() as txn:
        assert t.iid_of(txn, id_to_key(2)) is None
