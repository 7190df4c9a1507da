"""The columnar extraction of scalar payload fields (``Extractor._extract_scalars``) gives exactly what
the per-point rules give, and steps aside for anything else (lists, mixed types, bools, NaN, huge ints)."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import pytest

from vecdb.filtering.field_values import EXACT_INT, Extracted, Extractor

SLOTS = Extracted.__slots__


def _both(extractor: Extractor, iids: list[int], payloads: list[Optional[dict[str, Any]]]) -> tuple[Any, Any]:
    fast = extractor._extract_scalars(iids, payloads)
    slow_extractor = Extractor.__new__(Extractor)
    slow_extractor.__dict__.update(extractor.__dict__)
    slow_extractor._plain_key = None  # the per-point rules only
    slow = slow_extractor.extract(iids, payloads)
    return fast, slow


def _same(a: Extracted, b: Extracted) -> None:
    for slot in SLOTS:
        x, y = getattr(a, slot), getattr(b, slot)
        assert len(x) == len(y), slot
        for u, v in zip(x, y, strict=True):
            assert type(u) is type(v) and (u == v or (isinstance(u, float) and math.isnan(u) and math.isnan(v))), slot


SCALARS = {
    "keyword": lambda r: f"u{r.integers(5)}",
    "integer": lambda r: int(r.integers(-(10**6), 10**6)),
    "float": lambda r: float(r.normal()),
}


@pytest.mark.parametrize("data_type", sorted(SCALARS))
def test_scalar_fields_extract_as_the_per_point_rules_do(data_type: str) -> None:
    rng = np.random.default_rng(4)
    make = SCALARS[data_type]
    payloads: list[Optional[dict[str, Any]]] = []
    for _ in range(2000):
        kind = rng.integers(6)
        payloads.append(
            None
            if kind == 0
            else {}
            if kind == 1
            else {"other": 1}
            if kind == 2
            else {"f": None}
            if kind == 3
            else {"f": make(rng), "g": [1, 2]}
        )
    iids = list(range(10, 2010))
    extractor = Extractor("f", data_type)
    fast, slow = _both(extractor, iids, payloads)
    assert fast is not None
    _same(fast, slow)
    assert extractor.extract(iids, payloads).flags == slow.flags


@pytest.mark.parametrize(
    "data_type,odd",
    [
        ("keyword", ["a", "b"]),
        ("keyword", 5),
        ("integer", True),
        ("integer", 2.0),
        ("integer", EXACT_INT + 1),
        ("integer", [1, 2]),
        ("float", 3),
        ("float", float("nan")),
        ("float", "1.5"),
    ],
)
def test_anything_else_takes_the_per_point_rules(data_type: str, odd: Any) -> None:
    payloads = [{"f": SCALARS[data_type](np.random.default_rng(i))} for i in range(10)] + [{"f": odd}]
    extractor = Extractor("f", data_type)
    fast, slow = _both(extractor, list(range(11)), payloads)
    assert fast is None
    _same(extractor.extract(list(range(11)), payloads), slow)


def test_nested_keys_take_the_per_point_rules() -> None:
    extractor = Extractor("a.b", "keyword")
    payloads = [{"a": {"b": "x"}}, {"a": [{"b": "y"}, {"b": "z"}]}]
    fast, slow = _both(extractor, [0, 1], payloads)
    assert fast is None and slow.exact_keys[0] == "x"
    _same(extractor.extract([0, 1], payloads), slow)
