"""Payload values as a filter condition sees them: key-path getters and per-value tests.

Both the scan evaluator (:mod:`vecdb.filtering.evaluate`) and the payload index
(:mod:`vecdb.filtering.payload_index`) must see a field the same way, or their
answers would differ; so the getters that pull values out of a payload and the
type rules of ``match``, ``range``, ``values_count``, ``is_empty`` and ``is_null``
live here, once, apart from the filter compiler that combines them.

* a key path yields a list of values; an array at the end of the path is
  flattened one level (``flat``), and a field condition holds when ANY value passes;
* a missing key yields no values;
* bool, int, float and str never compare equal across types (``true`` is not
  ``1``, ``1`` is not ``1.0``), although Python says they do.

Key paths follow the one grammar of :mod:`vecdb.filtering.keypath`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

from vecdb.errors import InvalidInput
from vecdb.filtering.fulltext import DEFAULT_ANALYZER, TEXT_MATCHES, TextAnalyzer, text_test
from vecdb.filtering.keypath import KeyPath, parse_key_path
from vecdb.models.filters import (
    DatetimeRange,
    MatchAny,
    MatchExcept,
    MatchPrefix,
    MatchSubstring,
    MatchValue,
    Range,
    ValuesCount,
    parse_datetime,
)

Getter = Callable[[Any], list[Any]]
"""A compiled key path: payload -> the values it selects."""
ValueTest = Callable[[Any], bool]
"""A compiled test of one payload value."""

_NO_VALUES: list[Any] = []

# --------------------------------------------------------------------------- key paths

FILTER_KEY = "filter key"
"""How a malformed key of a filter condition (or payload index field) is named in errors."""


def _collect(data: Any, steps: KeyPath, at: int, flat: bool, out: list[Any]) -> None:
    """Depth-first walk of ``steps`` from ``data``, appending what the path selects."""
    while at < len(steps):
        step = steps[at]
        if step.__class__ is str:
            if data.__class__ is not dict or step not in data:
                return
            data = data[step]
        elif step is None:
            if data.__class__ is not list:
                return
            for item in data:
                _collect(item, steps, at + 1, flat, out)
            return
        else:
            if data.__class__ is not list or step >= len(data):  # type: ignore[operator]
                return
            data = data[step]  # type: ignore[index]
        at += 1
    if flat and data.__class__ is list:
        out.extend(data)
    else:
        out.append(data)


def compile_getter(key: str, flat: bool) -> Getter:
    """A function payload -> values at ``key``; specialised for the plain-key case."""
    steps = parse_key_path(key, FILTER_KEY)
    if len(steps) == 1 and steps[0].__class__ is str:
        name = steps[0]

        if flat:

            def get_one_flat(payload: Any) -> list[Any]:
                if name in payload:
                    value = payload[name]
                    return value if value.__class__ is list else [value]
                return _NO_VALUES

            return get_one_flat

        def get_one(payload: Any) -> list[Any]:
            return [payload[name]] if name in payload else _NO_VALUES

        return get_one

    def get_path(payload: Any) -> list[Any]:
        out: list[Any] = []
        _collect(payload, steps, 0, flat, out)
        return out

    return get_path


def extract_values(payload: dict[str, Any], key: str, flat: bool = True) -> list[Any]:
    """Values that payload key path ``key`` selects, as Qdrant sees them.

    With ``flat`` (how conditions and payload indexes see a field) an array at the
    end of the path contributes its elements, one level deep; without it the array
    is one value (how ``values_count``, ``is_empty`` and ``is_null`` see it).
    A missing key gives ``[]``. Raises InvalidInput for a malformed key.
    """
    out: list[Any] = []
    _collect(payload, parse_key_path(key, FILTER_KEY), 0, flat, out)
    return out


# --------------------------------------------------------------------------- value tests


def is_int(value: Any) -> bool:
    """An int that is not a bool (a bool never matches an integer, though Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool: what a numeric ``range`` takes."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact_test(values: list[Any]) -> ValueTest:
    """Exact membership of one payload value in ``values`` (all str, all int or one bool)."""
    if not values:
        return lambda value: False
    first = values[0]
    if isinstance(first, bool):
        wanted_bool = first
        return lambda value: value is wanted_bool
    if isinstance(first, str):
        if len(values) == 1:
            return lambda value: isinstance(value, str) and value == first
        strings = frozenset(values)
        return lambda value: isinstance(value, str) and value in strings
    if len(values) == 1:
        return lambda value: is_int(value) and value == first
    ints = frozenset(values)
    return lambda value: is_int(value) and value in ints


def match_test(match: Any, analyzer: Optional[TextAnalyzer] = None) -> ValueTest:
    """Compile one ``match`` object into a test of a single payload value; text conditions use
    ``analyzer`` (the field's text index) or Qdrant's default tokenizer."""
    if isinstance(match, MatchValue):
        return _exact_test([match.value])
    if isinstance(match, MatchAny):
        return _exact_test(list(match.any))
    if isinstance(match, MatchExcept):
        excluded = _exact_test(list(match.except_))
        # null is absence, not a value that differs from the list
        return lambda value: value is not None and not excluded(value)
    if isinstance(match, TEXT_MATCHES):
        return text_test(match, analyzer or DEFAULT_ANALYZER)
    if isinstance(match, MatchPrefix):
        prefix = match.prefix
        return lambda value: isinstance(value, str) and value.startswith(prefix)
    if isinstance(match, MatchSubstring):
        part = match.substring
        return lambda value: isinstance(value, str) and part in value
    raise InvalidInput(f"unknown match condition {type(match).__name__}")


def _bounds_test(lt: Any, lte: Any, gt: Any, gte: Any) -> Callable[[Any], bool]:
    """A test of an already type-checked, comparable value against the set bounds."""
    checks: list[Callable[[Any], bool]] = []
    if lt is not None:
        checks.append(lambda value: value < lt)
    if lte is not None:
        checks.append(lambda value: value <= lte)
    if gt is not None:
        checks.append(lambda value: value > gt)
    if gte is not None:
        checks.append(lambda value: value >= gte)
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    return lambda value: all(check(value) for check in checks)


def range_test(condition: Union[Range, DatetimeRange]) -> ValueTest:
    """Numbers (never booleans) against a Range; RFC 3339 strings against a DatetimeRange."""
    within = _bounds_test(condition.lt, condition.lte, condition.gt, condition.gte)
    if isinstance(condition, Range):
        return lambda value: is_number(value) and within(value)

    def datetime_test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        parsed = parse_datetime(value)
        return parsed is not None and within(parsed)

    return datetime_test


def values_count_test(condition: ValuesCount) -> Callable[[list[Any]], bool]:
    """Test on the unflattened values at a key: each value counts as its length if
    it is an array, 0 if null, else 1; the condition holds if any count passes.
    A missing key counts as one value of 0 (so ``lt: 1`` matches it, as in Qdrant)."""
    within = _bounds_test(condition.lt, condition.lte, condition.gt, condition.gte)

    def count_test(values: list[Any]) -> bool:
        if all(value is None for value in values):
            return within(0)
        for value in values:
            if value is None:
                count = 0
            elif isinstance(value, list):
                count = len(value)
            else:
                count = 1
            if within(count):
                return True
        return False

    return count_test


def is_empty(values: list[Any]) -> bool:
    """No value at all, or every value is null or ``[]``."""
    for value in values:
        if value is None or (isinstance(value, list) and not value):
            continue
        return False
    return True


def is_null(values: list[Any]) -> bool:
    """Some value is null, or an array holding a null element (one level deep)."""
    for value in values:
        if value is None or (isinstance(value, list) and None in value):
            return True
    return False


__all__ = [
    "FILTER_KEY",
    "Getter",
    "ValueTest",
    "compile_getter",
    "extract_values",
    "is_empty",
    "is_int",
    "is_null",
    "is_number",
    "match_test",
    "range_test",
    "values_count_test",
]
