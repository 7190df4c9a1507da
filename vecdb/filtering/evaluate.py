"""Evaluation of Qdrant filters against points, without payload indexes.

A filter is compiled once into nested closures, then called for every point of
a collection, so per-point work is kept to dictionary lookups and type checks:
key paths are parsed at compile time, match lists become frozensets, and
conditions that are constant (an empty ``should``, a ``has_id`` inside
``nested``) are folded away. ``point.payload`` is only read by conditions
that need it, after the id/vector conditions of the same clause, because the
caller's point view decodes the payload lazily.

Semantics follow qdrant-client's in-memory mode
(``qdrant_client/local/payload_filters.py``), which mirrors the server; the
differential test in ``tests/test_filters.py`` checks that they agree. In short:

* a key path yields a list of values; an array at the end of the path is
  flattened one level, and a field condition holds when ANY value passes;
* a missing key yields no values, so it fails every positive test (and
  therefore passes under ``must_not``);
* bool, int, float and str never compare equal across types (``true`` is not
  ``1``, ``1`` is not ``1.0``), although Python says they do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Optional, Protocol, Union

from vecdb.errors import InvalidInput, Unsupported
from vecdb.ids import PointId
from vecdb.models.filters import (
    DatetimeRange,
    FieldCondition,
    Filter,
    HasIdCondition,
    HasVectorCondition,
    IsEmptyCondition,
    IsNullCondition,
    MatchAny,
    MatchExcept,
    MatchPhrase,
    MatchPrefix,
    MatchSubstring,
    MatchText,
    MatchTextAny,
    MatchValue,
    NestedCondition,
    Range,
    SliceCondition,
    ValuesCount,
    parse_datetime,
)


class PointView(Protocol):
    """What the evaluator needs to know about one stored point."""

    id: PointId
    """Canonical id: an int, or a lowercase hyphenated UUID string."""
    payload: dict[str, Any]
    """The decoded JSON payload object."""

    def has_vector(self, name: str) -> bool:
        """Whether the point stores a vector under ``name``."""
        ...


Predicate = Callable[[PointView], bool]
"""A compiled filter: True when the point passes."""

# Internal node: (payload, point) -> bool; see "compilation" below.
_Node = Callable[[Optional[dict[str, Any]], Optional[PointView]], bool]
_Getter = Callable[[Any], list[Any]]
_ValueTest = Callable[[Any], bool]


def _always(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
    """Constant-true node; compared by identity for folding."""
    return True


def _never(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
    """Constant-false node; compared by identity for folding."""
    return False


def _never_point(point: PointView) -> bool:
    return False


_EMPTY_PAYLOAD: dict[str, Any] = {}
_NO_VALUES: list[Any] = []

# --------------------------------------------------------------------------- key paths

# A path step: str = object key, int = array index, None = every array element.
_Step = Union[str, int, None]
_KEY_CHAR = re.compile(r"[\w-]+")  # alphanumeric (Unicode), "_" and "-", as Qdrant
_U64_MAX = 2**64 - 1


@lru_cache(maxsize=1024)
def parse_key_path(key: str) -> tuple[_Step, ...]:
    """Split a payload key into steps: ``a.b``, ``arr[]``, ``arr[0]``, ``"a.b"``.

    Raises InvalidInput naming the key when it is not a valid path (same grammar
    as Qdrant: plain segments are alphanumerics, ``_`` and ``-``; a quoted segment
    is taken literally up to the next quote).
    """

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"filter key {key!r} is not a valid payload path: {why}")

    steps: list[_Step] = []
    rest = key
    if not rest:
        raise bad("it is empty")
    while True:
        if rest.startswith('"'):
            close = rest.find('"', 1)
            if close == -1:
                raise bad("unterminated quote")
            steps.append(rest[1:close])
            rest = rest[close + 1 :]
        else:
            found = _KEY_CHAR.match(rest)
            if found is None:
                raise bad(f"unexpected character at {rest[:10]!r}")
            steps.append(found.group(0))
            rest = rest[found.end() :]
        while rest.startswith("["):
            close = rest.find("]")
            if close == -1:
                raise bad("unterminated '['")
            inner = rest[1:close]
            if inner == "":
                steps.append(None)
            elif inner.isascii() and inner.isdigit() and int(inner) <= _U64_MAX:
                steps.append(int(inner))
            else:
                raise bad(f"array index {inner!r} is not a non-negative integer")
            rest = rest[close + 1 :]
        if not rest:
            return tuple(steps)
        if rest == ".":
            raise bad("it ends with '.'")
        if not rest.startswith("."):
            raise bad(f"expected '.' or '[' at {rest[:10]!r}")
        rest = rest[1:]


def _collect(data: Any, steps: tuple[_Step, ...], at: int, flat: bool, out: list[Any]) -> None:
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


def compile_getter(key: str, flat: bool) -> _Getter:
    """A function payload -> values at ``key``; specialised for the plain-key case."""
    steps = parse_key_path(key)
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
    _collect(payload, parse_key_path(key), 0, flat, out)
    return out


# --------------------------------------------------------------------------- value tests

_TOKEN = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    """Qdrant's default word tokenizer for unindexed text: alphanumeric runs, lowercased."""
    return [token.lower() for token in _TOKEN.findall(text)]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _exact_test(values: list[Any]) -> _ValueTest:
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


def _match_test(match: Any) -> _ValueTest:
    """Compile one ``match`` object into a test of a single payload value."""
    if isinstance(match, MatchValue):
        return _exact_test([match.value])
    if isinstance(match, MatchAny):
        return _exact_test(list(match.any))
    if isinstance(match, MatchExcept):
        excluded = _exact_test(list(match.except_))
        # null is absence, not a value that differs from the list
        return lambda value: value is not None and not excluded(value)
    if isinstance(match, MatchText):
        query = _tokens(match.text)
        if not query:
            return lambda value: False  # an empty query never matches
        return lambda value: isinstance(value, str) and set(query).issubset(_tokens(value))
    if isinstance(match, MatchTextAny):
        query_set = frozenset(_tokens(match.text_any))
        return lambda value: isinstance(value, str) and not query_set.isdisjoint(_tokens(value))
    if isinstance(match, MatchPhrase):
        phrase = _tokens(match.phrase)
        if not phrase:
            return lambda value: False
        size = len(phrase)

        def phrase_test(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            words = _tokens(value)
            return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))

        return phrase_test
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


def _range_test(condition: Union[Range, DatetimeRange]) -> _ValueTest:
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


def _values_count_test(condition: ValuesCount) -> Callable[[list[Any]], bool]:
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


def _is_empty(values: list[Any]) -> bool:
    """No value at all, or every value is null or ``[]``."""
    for value in values:
        if value is None or (isinstance(value, list) and not value):
            continue
        return False
    return True


def _is_null(values: list[Any]) -> bool:
    """Some value is null, or an array holding a null element (one level deep)."""
    for value in values:
        if value is None or (isinstance(value, list) and None in value):
            return True
    return False


# --------------------------------------------------------------------------- slice (SipHash)

_MASK64 = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK64


def _siphash24(data: bytes) -> int:
    """SipHash-2-4 with a zero key: Qdrant's slice hash, so slices agree with the server."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def rounds(count: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 = (v0 + v1) & _MASK64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    length = len(data)
    full = length - length % 8
    for offset in range(0, full, 8):
        block = int.from_bytes(data[offset : offset + 8], "little")
        v3 ^= block
        rounds(2)
        v0 ^= block
    block = int.from_bytes(data[full:], "little") | ((length & 0xFF) << 56)
    v3 ^= block
    rounds(2)
    v0 ^= block
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def point_slice(point_id: PointId, total: int) -> int:
    """Which of ``total`` slices a canonical id falls in (8 LE bytes / 16 UUID bytes)."""
    if isinstance(point_id, int):
        data = point_id.to_bytes(8, "little")
    else:
        data = uuid.UUID(point_id).bytes
    return _siphash24(data) % total


# --------------------------------------------------------------------------- compilation
#
# Nodes take (payload, point). Inside a nested filter ``payload`` is the array
# element and ``point`` is None. At the top level ``payload`` is None and nodes
# read ``point.payload`` themselves, only when they need it: the caller's point
# view may decode the payload lazily, so a has_id/has_vector filter never pays
# for JSON decoding. For the same reason conditions that do not read the payload
# are evaluated first within each clause (conditions are pure, order is free).

_PayloadTest = Callable[[dict[str, Any]], bool]
_ID_COST = 0  # decides from the point id / vectors alone
_PAYLOAD_COST = 1  # reads the payload


def _payload_node(test: _PayloadTest, nested: bool) -> _Node:
    """Wrap a test of a payload dict into a node reading the right payload."""
    if nested:
        return lambda payload, point: test(payload)
    return lambda payload, point: test(point.payload or _EMPTY_PAYLOAD)  # type: ignore[union-attr]


def _any_value(get: _Getter, test: _ValueTest, nested: bool) -> _Node:
    """Node that holds when ``test`` passes for any value at the key."""

    def any_of_values(payload: dict[str, Any]) -> bool:
        for value in get(payload):
            if test(value):
                return True
        return False

    if nested:
        return lambda payload, point: any_of_values(payload)

    def node(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
        for value in get(point.payload or _EMPTY_PAYLOAD):  # type: ignore[union-attr]
            if test(value):
                return True
        return False

    return node


def _compile_field(condition: FieldCondition, nested: bool) -> _Node:
    key = condition.key
    if condition.geo_bounding_box is not None or condition.geo_radius is not None or condition.geo_polygon is not None:
        raise Unsupported("geo filters are not supported yet")
    if condition.match is not None:
        return _any_value(compile_getter(key, flat=True), _match_test(condition.match), nested)
    if condition.range is not None:
        return _any_value(compile_getter(key, flat=True), _range_test(condition.range), nested)
    raw = compile_getter(key, flat=False)
    if condition.values_count is not None:
        count_test = _values_count_test(condition.values_count)
        return _payload_node(lambda payload: count_test(raw(payload)), nested)
    if condition.is_empty is not None:
        want_empty = condition.is_empty
        return _payload_node(lambda payload: _is_empty(raw(payload)) is want_empty, nested)
    if condition.is_null is not None:
        want_null = condition.is_null
        return _payload_node(lambda payload: _is_null(raw(payload)) is want_null, nested)
    raise InvalidInput(f"field condition on key {key!r} has no test")  # the model forbids this


def _nested_elements(key: str) -> Callable[[dict[str, Any]], list[Any]]:
    """Objects of the array(s) at ``key`` (``data`` and ``data[]`` are the same key)."""
    if len(key) > 2 and key.endswith("[]"):
        key = key[:-2]
    raw = compile_getter(key, flat=False)

    def elements(payload: dict[str, Any]) -> list[Any]:
        found: list[Any] = []
        for value in raw(payload):
            if isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict))
        return found

    return elements


def _compile_condition(condition: Any, nested: bool) -> tuple[_Node, int]:
    """Compile one condition into (node, cost); ``nested`` is True inside a nested
    filter, where the payload is an array element and id/vector/slice conditions
    never hold (as in Qdrant's in-memory mode)."""
    if isinstance(condition, FieldCondition):
        return _compile_field(condition, nested), _PAYLOAD_COST
    if isinstance(condition, Filter):
        return _compile_node(condition, nested)
    if isinstance(condition, IsEmptyCondition):
        raw = compile_getter(condition.is_empty.key, flat=False)
        return _payload_node(lambda payload: _is_empty(raw(payload)), nested), _PAYLOAD_COST
    if isinstance(condition, IsNullCondition):
        raw = compile_getter(condition.is_null.key, flat=False)
        return _payload_node(lambda payload: _is_null(raw(payload)), nested), _PAYLOAD_COST
    if isinstance(condition, HasIdCondition):
        ids = frozenset(condition.has_id)
        if nested or not ids:
            return _never, _ID_COST
        return (lambda payload, point: point.id in ids), _ID_COST  # type: ignore[union-attr]
    if isinstance(condition, HasVectorCondition):
        if nested:
            return _never, _ID_COST
        name = condition.has_vector
        return (lambda payload, point: point.has_vector(name)), _ID_COST  # type: ignore[union-attr]
    if isinstance(condition, SliceCondition):
        if nested:
            return _never, _ID_COST
        total, index = condition.slice.total, condition.slice.index
        if total == 1:
            return _always, _ID_COST
        return (lambda payload, point: point_slice(point.id, total) == index), _ID_COST  # type: ignore[union-attr]
    if isinstance(condition, NestedCondition):
        elements = _nested_elements(condition.nested.key)
        inner, _ = _compile_node(condition.nested.filter, nested=True)
        if inner is _never:
            return _never, _ID_COST

        def any_element(payload: dict[str, Any]) -> bool:
            for element in elements(payload):
                if inner(element, None):
                    return True
            return False

        if inner is _always:
            return _payload_node(lambda payload: bool(elements(payload)), nested), _PAYLOAD_COST
        return _payload_node(any_element, nested), _PAYLOAD_COST
    raise InvalidInput(f"unknown filter condition {type(condition).__name__}")


def _all_of(nodes: list[_Node]) -> _Node:
    if not nodes:
        return _always
    if len(nodes) == 1:
        return nodes[0]
    if len(nodes) == 2:
        first, second = nodes
        return lambda payload, point: first(payload, point) and second(payload, point)

    def every(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
        for node in nodes:
            if not node(payload, point):
                return False
        return True

    return every


def _compile_all(conditions: list[Any], nested: bool) -> list[tuple[_Node, int]]:
    """Compile a clause's conditions, cheapest first (stable otherwise)."""
    compiled = [_compile_condition(condition, nested) for condition in conditions]
    compiled.sort(key=lambda pair: pair[1])
    return compiled


def _compile_node(flt: Filter, nested: bool) -> tuple[_Node, int]:
    """Compile a Filter into (node, cost), folding constant sub-conditions."""
    checks: list[tuple[_Node, int]] = []

    for node, cost in _compile_all(flt.must or [], nested):
        if node is _never:
            return _never, _ID_COST
        if node is not _always:
            checks.append((node, cost))

    excluded: list[_Node] = []
    excluded_cost = _ID_COST
    for node, cost in _compile_all(flt.must_not or [], nested):
        if node is _always:
            return _never, _ID_COST
        if node is not _never:
            excluded.append(node)
            excluded_cost = max(excluded_cost, cost)
    if excluded:
        if len(excluded) == 1:
            only = excluded[0]
            checks.append(((lambda payload, point: not only(payload, point)), excluded_cost))
        else:

            def none_of(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
                for node in excluded:
                    if node(payload, point):
                        return False
                return True

            checks.append((none_of, excluded_cost))

    if flt.should:  # an empty should constrains nothing
        alternatives: list[_Node] = []
        alternatives_cost = _ID_COST
        satisfied = False
        for node, cost in _compile_all(flt.should, nested):
            if node is _always:
                satisfied = True
            elif node is not _never:
                alternatives.append(node)
                alternatives_cost = max(alternatives_cost, cost)
        if not satisfied:
            if not alternatives:
                return _never, _ID_COST
            if len(alternatives) == 1:
                checks.append((alternatives[0], alternatives_cost))
            else:

                def any_of(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
                    for node in alternatives:
                        if node(payload, point):
                            return True
                    return False

                checks.append((any_of, alternatives_cost))

    if flt.min_should is not None:
        counted: list[_Node] = []
        counted_cost = _ID_COST
        need = flt.min_should.min_count
        for node, cost in _compile_all(flt.min_should.conditions, nested):
            if node is _always:
                need -= 1
            elif node is not _never:
                counted.append(node)
                counted_cost = max(counted_cost, cost)
        if need > len(counted):
            return _never, _ID_COST
        if need > 0:
            required = need

            def at_least(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
                hits = 0
                left = len(counted)
                for node in counted:
                    left -= 1
                    if node(payload, point):
                        hits += 1
                        if hits >= required:
                            return True
                    elif hits + left < required:
                        return False
                return False

            checks.append((at_least, counted_cost))

    checks.sort(key=lambda pair: pair[1])
    cost = max((c for _, c in checks), default=_ID_COST)
    return _all_of([node for node, _ in checks]), cost


def _as_filter(flt: Union[Filter, dict[str, Any], None]) -> Optional[Filter]:
    if flt is None or isinstance(flt, Filter):
        return flt
    if isinstance(flt, dict):
        return Filter.model_validate(flt)
    raise InvalidInput(f"filter must be an object, got {type(flt).__name__}")


def compile_filter(flt: Union[Filter, dict[str, Any], None]) -> Optional[Predicate]:
    """Compile a filter into a predicate over points, or None when it filters nothing.

    A dict is validated as a Filter first (pydantic's ValidationError propagates).
    Raises InvalidInput for a malformed key path and Unsupported for geo conditions,
    before any point is read.
    """
    parsed = _as_filter(flt)
    if parsed is None:
        return None
    root, _ = _compile_node(parsed, nested=False)
    if root is _always:
        return None
    if root is _never:
        return _never_point

    def predicate(point: PointView) -> bool:
        return root(None, point)

    return predicate


def filter_ids(flt: Union[Filter, dict[str, Any], None]) -> Optional[set[PointId]]:
    """The exact id set of a filter that is only ``must: has_id`` conditions, else None.

    Lets a planner fetch those points by key instead of scanning. Several has_id
    conditions in ``must`` intersect. Anything else in the filter (other
    conditions, must_not, a non-empty should, min_should) returns None.
    """
    parsed = _as_filter(flt)
    if parsed is None or parsed.must_not or parsed.should or parsed.min_should is not None:
        return None
    if not parsed.must:
        return None
    ids: Optional[set[PointId]] = None
    for condition in parsed.must:
        if not isinstance(condition, HasIdCondition):
            return None
        these = set(condition.has_id)
        ids = these if ids is None else ids & these
    return ids


__all__ = [
    "PointView",
    "Predicate",
    "compile_filter",
    "extract_values",
    "filter_ids",
    "parse_key_path",
    "point_slice",
]
