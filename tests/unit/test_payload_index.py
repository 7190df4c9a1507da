"""Tests of vecdb.filtering.payload_index: masks from payload indexes must equal the scan evaluator.

The differential test drives a PayloadIndex through random writes (new points,
payload replacement, forgetting) and compares, after each round, every random
filter's ``filter_mask`` (when not None) with ``compile_filter`` evaluated on
each point, and checks that ``candidates_mask`` is a superset. Payloads mix the
types the evaluator treats specially: ``1`` / ``1.0`` / ``true``, nulls, nested
arrays and objects, ints beyond float64 precision, NaN, datetimes with offsets.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any, Optional

import numpy as np
import pytest

import vecdb.filtering.columns as columns
import vecdb.filtering.field_index as field_index
from tests.helpers import FakePoint
from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import compile_filter, extract_values
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.models.filters import Filter, parse_datetime

SCHEMA = {
    "k": "keyword",
    "i": "integer",
    "f": "float",
    "b": "bool",
    "d": "datetime",
    "u": "uuid",
    "t": "text",
    "n.x": "integer",
    "arr[].v": "keyword",
}
UNINDEXED = "z"

STRINGS = ["a", "b", "c", "1", ""]
UUIDS = [str(uuid.UUID(int=i)) for i in (1, 2)] + [str(uuid.UUID(int=3)).upper()]
INTS = [0, 1, 2, -1, 7, 2**53, 2**53 + 1, -(2**60), 10**20]
FLOATS = [0.0, 1.0, 1.5, -2.5, 2.0**53, float("inf"), float("nan")]
DATETIMES = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+02:00",
    "2024-01-01",
    "2024-01-01 12:00:00",
    "2024-01-01T12:00:00.000001Z",
    "2023-12-31T23:59:59.999999-00:30",
    "not a date",
    "2024-02-30",
]
SCALARS: list[Any] = STRINGS + UUIDS + INTS + FLOATS + DATETIMES + [True, False, None]


def _rand_scalar(rng: random.Random) -> Any:
    return rng.choice(SCALARS)


def _rand_value(rng: random.Random) -> Any:
    """A scalar, an array (possibly nested or empty) or an object."""
    roll = rng.random()
    if roll < 0.55:
        return _rand_scalar(rng)
    if roll < 0.85:
        return [_rand_scalar(rng) for _ in range(rng.randint(0, 3))]
    if roll < 0.95:
        return [[_rand_scalar(rng)], _rand_scalar(rng)]
    return {"x": _rand_scalar(rng)}


def _rand_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for key in ("k", "i", "f", "b", "d", "u", "t", UNINDEXED):
        if rng.random() < 0.75:
            payload[key] = _rand_value(rng)
    if rng.random() < 0.6:
        payload["n"] = {"x": _rand_value(rng)} if rng.random() < 0.8 else _rand_value(rng)
    if rng.random() < 0.6:
        payload["arr"] = [{"v": _rand_value(rng)} for _ in range(rng.randint(0, 3))]
    return payload


# --------------------------------------------------------------------------- random filters

KEYS = list(SCHEMA) + [UNINDEXED, '"k"']


def _rand_match(rng: random.Random) -> dict[str, Any]:
    strings = STRINGS + UUIDS
    ints = [value for value in INTS if abs(value) < 2**63]
    kind = rng.choice(["value", "value", "any", "except"])
    if kind == "value":
        pool = rng.choice([strings, ints, [True, False]])
        return {"value": rng.choice(pool)}
    pool = rng.choice([strings, ints])
    return {kind: rng.sample(pool, rng.randint(0, 3))}


def _rand_range(rng: random.Random) -> dict[str, Any]:
    pool: list[Any]
    if rng.random() < 0.35:
        pool = ["2024-01-01T00:00:00Z", "2024-01-01", "2023-12-31T23:00:00+01:00", "2024-01-01T12:00:00"]
    else:
        pool = [0, 1, 1.0, 1.5, -3, 2**53, 2**53 + 2, 2.0**60, -(2.0**61), 1e30]
    bounds = rng.sample(["gt", "gte", "lt", "lte"], rng.randint(0, 2))
    return {bound: rng.choice(pool) for bound in bounds}


def _rand_condition(rng: random.Random, depth: int) -> dict[str, Any]:
    roll = rng.random()
    if depth < 2 and roll < 0.2:
        return _rand_filter(rng, depth + 1)
    if roll < 0.25:
        return rng.choice(
            [
                {"is_empty": {"key": rng.choice(KEYS)}},
                {"has_id": [1, 2]},
                {"has_id": []},
                {"key": "t", "match": {"text": "a"}},
                {"key": rng.choice(KEYS), "values_count": {"gt": 1}},
                {"slice": {"total": 1, "index": 0}},
            ]
        )
    key = rng.choice(KEYS)
    if rng.random() < 0.6:
        return {"key": key, "match": _rand_match(rng)}
    return {"key": key, "range": _rand_range(rng)}


def _rand_clause(rng: random.Random, depth: int) -> list[dict[str, Any]]:
    return [_rand_condition(rng, depth) for _ in range(rng.choice([0, 1, 1, 2, 3]))]


def _rand_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for clause in ("must", "should", "must_not"):
        if rng.random() < 0.5:
            body[clause] = _rand_clause(rng, depth)
    if rng.random() < 0.2:
        conditions = _rand_clause(rng, depth)
        body["min_should"] = {"conditions": conditions, "min_count": rng.randint(1, len(conditions) + 1)}
    return body


# --------------------------------------------------------------------------- reference


def _expected(flt: Filter, payloads: dict[int, dict[str, Any]], n: int) -> np.ndarray:
    predicate = compile_filter(flt)
    expected = np.zeros(n, bool)
    for iid, payload in payloads.items():
        expected[iid] = predicate is None or predicate(FakePoint(iid, payload))
    return expected


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


COUNTED = {
    "keyword": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str),
    "uuid": lambda v: isinstance(v, str) and _is_uuid(v),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, str) and parse_datetime(v) is not None,
}


def _check(index: PayloadIndex, payloads: dict[int, dict[str, Any]], rng: random.Random, rounds: int) -> int:
    """Compare ``rounds`` random filters; return how many filter_mask answered."""
    n = max(payloads, default=0) + 3
    answered = 0
    for _ in range(rounds):
        body = _rand_filter(rng)
        flt = Filter.model_validate(body)
        expected = _expected(flt, payloads, n)
        mask = index.filter_mask(flt, n)
        if mask is not None:
            answered += 1
            assert mask.dtype == bool and mask.shape == (n,)
            assert np.array_equal(mask, expected), (body, np.flatnonzero(mask != expected)[:5])
        candidates = index.candidates_mask(flt, n)
        if candidates is not None:
            assert candidates.shape == (n,)
            missed = expected & ~candidates
            assert not missed.any(), (body, np.flatnonzero(missed)[:5])
    for name, data_type in SCHEMA.items():
        want = sum(any(COUNTED[data_type](v) for v in extract_values(p, name)) for p in payloads.values())
        assert index.points_count(name) == want, name
    return answered


@pytest.mark.parametrize("small", [False, True], ids=["default-sizes", "tiny-runs-and-compaction"])
def test_differential_against_scan_evaluator(small: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if small:  # exercise delta merges and compactions with a few hundred points
        monkeypatch.setattr(columns, "_DELTA_MIN", 4)
        monkeypatch.setattr(field_index, "_COMPACT_MIN", 3)
    answered = _random_history(random.Random(1234 + small))
    assert answered > 100  # most random filters are answerable, so the comparison means something


def _random_history(rng: random.Random) -> int:
    """Random writes with checks after each batch; returns how many filters were answered."""
    payloads: dict[int, dict[str, Any]] = {}
    bulk = ["d", "u", "arr[].v"]
    index = PayloadIndex({name: data_type for name, data_type in SCHEMA.items() if name not in bulk})

    first = {iid: _rand_payload(rng) for iid in range(120)}
    index.update_many(list(first), list(first.values()))
    payloads.update(first)
    for name in bulk:  # built later from the current payloads, as create_field_index does
        index.add_field(name, SCHEMA[name], payloads.items())
    assert index.fields == SCHEMA

    answered = _check(index, payloads, rng, 60)
    next_iid = 120
    for _ in range(6):
        iids: list[int] = []
        batch: list[Optional[dict[str, Any]]] = []
        for _ in range(40):
            roll = rng.random()
            if roll < 0.4 or not payloads:
                iids.append(next_iid)
                next_iid += 1
                batch.append(_rand_payload(rng))
            elif roll < 0.8:
                iids.append(rng.choice(list(payloads)))  # set_payload / overwrite
                batch.append(_rand_payload(rng))
            else:
                iids.append(rng.choice(list(payloads)))  # delete
                batch.append(None)
        if rng.random() < 0.5:
            index.update_many(iids, batch)
        else:
            for iid, payload in zip(iids, batch, strict=True):
                index.update(iid, payload)
        for iid, payload in zip(iids, batch, strict=True):
            if payload is None:
                payloads.pop(iid, None)
            else:
                payloads[iid] = payload
        answered += _check(index, payloads, rng, 60)
    return answered


def test_match_semantics_on_typed_values() -> None:
    payloads = {
        0: {"i": 1, "k": "a"},
        1: {"i": 1.0, "k": ["a", "b"]},
        2: {"i": True, "k": 5},
        3: {"i": [1, "x"], "k": None},
        4: {"i": None},
        5: {},
        6: {"i": 2**53 + 1, "k": [["a"]]},
    }
    index = PayloadIndex({"i": "integer", "k": "keyword"})
    index.update_many(list(payloads), list(payloads.values()))

    def ids(body: dict[str, Any]) -> list[int]:
        mask = index.filter_mask(Filter.model_validate(body), 8)
        assert mask is not None
        assert np.array_equal(mask, _expected(Filter.model_validate(body), payloads, 8)), body
        return np.flatnonzero(mask).tolist()

    assert ids({"must": [{"key": "i", "match": {"value": 1}}]}) == [0, 3]
    assert ids({"must": [{"key": "i", "range": {"gte": 1, "lte": 1}}]}) == [0, 1, 3]
    assert ids({"must": [{"key": "i", "range": {"gt": 2.0**53}}]}) == [6]
    assert ids({"must": [{"key": "i", "match": {"except": [1]}}]}) == [1, 2, 3, 6]
    assert ids({"must": [{"key": "k", "match": {"except": ["a"]}}]}) == [1, 2, 6]
    assert ids({"must": [{"key": "k", "match": {"except": []}}]}) == [0, 1, 2, 6]
    assert ids({"must_not": [{"key": "k", "match": {"value": "a"}}]}) == [2, 3, 4, 5, 6]
    assert ids({"should": [{"key": "k", "match": {"value": "b"}}, {"key": "i", "match": {"value": 1}}]}) == [0, 1, 3]


def test_replacement_and_forgetting() -> None:
    index = PayloadIndex({"k": "keyword", "f": "float", "d": "datetime"})
    index.update(0, {"k": "old", "f": 1.0, "d": "2024-01-01"})
    index.update(1, {"k": "old", "f": 2.0})
    index.update(0, {"k": "new", "f": 5.0, "d": "2025-01-01"})
    index.update(1, None)

    def ids(body: dict[str, Any]) -> list[int]:
        mask = index.filter_mask(Filter.model_validate(body), 2)
        assert mask is not None
        return np.flatnonzero(mask).tolist()

    assert ids({"must": [{"key": "k", "match": {"value": "old"}}]}) == []
    assert ids({"must": [{"key": "k", "match": {"value": "new"}}]}) == [0]
    assert ids({"must": [{"key": "f", "range": {"lt": 3}}]}) == []
    assert ids({"must": [{"key": "d", "range": {"lt": "2024-06-01"}}]}) == []
    assert ids({"must_not": [{"key": "k", "match": {"value": "x"}}]}) == [0]  # 1 is forgotten
    assert index.points_count("k") == 1 and index.points_count("d") == 1
    index.update(1, {"k": "old"})  # a forgotten iid written again
    assert ids({"must": [{"key": "k", "match": {"value": "old"}}]}) == [1]
    assert ids({"must": [{"key": "f", "range": {"lt": 3}}]}) == []


def test_bulk_build_listing_a_forgotten_iid() -> None:
    index = PayloadIndex({"k": "keyword"})
    index.update(0, {"k": "a"})
    index.update(0, None)
    index.add_field("g", "keyword", [(0, {"g": "x"})])  # lists iid 0 as a current point again
    assert index.filter_mask({"must": [{"key": "g", "match": {"value": "x"}}]}, 1).tolist() == [True]
    assert index.filter_mask({"must": [{"key": "k", "match": {"value": "a"}}]}, 1).tolist() == [False]


@pytest.mark.parametrize(
    "body",
    [
        {"must": [{"key": "z", "match": {"value": "a"}}]},  # no index on z
        {"must": [{"key": "z", "match": {"text": "a"}}]},  # no text index on z
        {"must": [{"key": "k", "match": {"value": 1}}]},  # keyword index, int value
        {"must": [{"key": "k", "match": {"except": [1]}}]},
        {"must": [{"key": "f", "match": {"value": 1}}]},  # float index has no exact values
        {"must": [{"key": "k", "range": {"gt": 1}}]},
        {"must": [{"key": "f", "range": {"gt": "2024-01-01"}}]},  # datetime range on a float index
        {"must": [{"key": "k", "match": {"value": "a"}}, {"is_empty": {"key": "k"}}]},
        {"must": [{"has_id": [1]}]},
        {"must": [{"has_vector": "v"}]},
        {"must": [{"key": "k", "is_null": True}]},
        {"should": [{"key": "k", "match": {"value": "a"}}, {"key": "z", "match": {"value": "a"}}]},
        {"must_not": [{"must": [{"key": "k", "match": {"value": "a"}}, {"key": "z", "range": {}}]}]},
        {"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "v", "match": {"value": "a"}}]}}}]},
        {"must": [{"key": "bad key!", "match": {"value": "a"}}]},
        {"must": [{"key": "k", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1.0}}]},
    ],
)
def test_unanswerable_filters_give_none(body: dict[str, Any]) -> None:
    index = PayloadIndex({"k": "keyword", "f": "float", "t": "text"})
    index.update_many([0, 1], [{"k": "a", "f": 1.0, "t": "a"}, {"k": "b"}])
    assert index.filter_mask(Filter.model_validate(body), 2) is None


def test_candidates_mask_is_the_answerable_part() -> None:
    index = PayloadIndex({"k": "keyword", "f": "float"})
    index.update_many([0, 1, 2], [{"k": "a", "z": 1}, {"k": "a", "z": 2}, {"k": "b", "z": 1}])
    body = {"must": [{"key": "k", "match": {"value": "a"}}, {"key": "z", "match": {"value": 1}}]}
    assert index.filter_mask(Filter.model_validate(body), 3) is None
    assert index.candidates_mask(Filter.model_validate(body), 3).tolist() == [True, True, False]
    body = {"must_not": [{"key": "k", "match": {"value": "b"}}], "should": [{"key": "z", "match": {"value": 1}}]}
    assert index.candidates_mask(Filter.model_validate(body), 4).tolist() == [True, True, False, False]
    only_unindexed = {"must": [{"key": "z", "match": {"value": 1}}]}
    assert index.candidates_mask(Filter.model_validate(only_unindexed), 3) is None


def test_constant_conditions_and_sizes() -> None:
    index = PayloadIndex({"k": "keyword"})
    index.update_many([0, 1, 2], [{"k": "a"}, {}, {"k": "b"}])
    assert index.filter_mask({"must": [{"has_id": []}]}, 3).tolist() == [False] * 3
    assert index.filter_mask({"must": [{"slice": {"total": 1, "index": 0}}]}, 3).tolist() == [True] * 3
    assert index.filter_mask({}, 3).tolist() == [True] * 3
    assert index.filter_mask(None, 3).tolist() == [True] * 3
    assert (
        index.filter_mask(
            {"min_should": {"conditions": [{"key": "k", "match": {"any": []}}], "min_count": 2}}, 3
        ).tolist()
        == [False] * 3
    )
    beyond = index.filter_mask({"must": [{"key": "k", "match": {"value": "b"}}]}, 5000)  # n > capacity
    assert beyond.shape == (5000,) and np.flatnonzero(beyond).tolist() == [2]
    assert index.filter_mask({"must": [{"key": "k", "match": {"value": "b"}}]}, 2).tolist() == [False, False]
    assert index.filter_mask({"must": [{"key": '"k"', "match": {"value": "a"}}]}, 3).tolist() == [True, False, False]


def test_points_count_and_schema_changes() -> None:
    index = PayloadIndex({"k": "keyword", "u": "uuid"})
    index.update_many(
        [0, 1, 2, 3],
        [{"k": ["a", 1], "u": str(uuid.UUID(int=5))}, {"k": 1, "u": "nope"}, {"k": "b"}, {"k": None}],
    )
    assert index.points_count("k") == 2 and index.points_count("u") == 1
    index.update(2, {"k": 3})
    index.update(0, None)
    assert index.points_count("k") == 0
    index.add_field("i", "integer", [(1, {"i": 4}), (3, {"i": 4.0}), (7, {"i": [1, 2]})])
    assert index.fields == {"k": "keyword", "u": "uuid", "i": "integer"}
    assert index.points_count("i") == 2
    mask = index.filter_mask({"must": [{"key": "i", "range": {"gte": 4}}]}, 8)
    assert np.flatnonzero(mask).tolist() == [1, 3]
    index.drop_field("i")
    assert "i" not in index.fields
    assert index.filter_mask({"must": [{"key": "i", "range": {"gte": 4}}]}, 8) is None
    with pytest.raises(KeyError):
        index.points_count("i")
    with pytest.raises(InvalidInput):
        PayloadIndex({"x": "vector"})


def test_concurrent_readers_and_one_writer() -> None:
    index = PayloadIndex({"k": "keyword", "f": "float"})
    stop = threading.Event()
    errors: list[BaseException] = []
    flt = Filter.model_validate(
        {"must": [{"key": "k", "match": {"any": ["a", "b"]}}, {"key": "f", "range": {"lt": 50}}]}
    )

    def read() -> None:
        try:
            while not stop.is_set():
                index.filter_mask(flt, 4000)
                index.candidates_mask(flt, 4000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    rng = random.Random(5)
    for step in range(300):
        iids = [rng.randrange(3000) for _ in range(10)]
        index.update_many(iids, [{"k": rng.choice("abc"), "f": rng.randrange(100)} for _ in iids])
        if step % 100 == 0:
            index.add_field(f"extra{step}", "integer", [])
    stop.set()
    for reader in readers:
        reader.join()
    assert not errors
