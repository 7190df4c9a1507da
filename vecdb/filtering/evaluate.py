"""Evaluation of Qdrant filters against points, without payload indexes: the filter compiler.

A filter is compiled once into nested closures, then called for every point of
a collection, so per-point work is kept to dictionary lookups and type checks:
key paths are parsed at compile time, match lists become frozensets, and
conditions that are constant (an empty ``should``, a ``has_id`` inside
``nested``) are folded away. ``point.payload`` is only read by conditions
that need it, after the id/vector conditions of the same clause, because the
caller's point view decodes the payload lazily.

Semantics follow qdrant-client's in-memory mode
(``qdrant_client/local/payload_filters.py``), which mirrors the server; the
tests in ``tests/unit/test_filters.py`` check that they agree. A field condition
holds when ANY value at its key passes, so a missing key (no values) fails every
positive test and therefore passes under ``must_not``.

This module holds the compiler: how conditions combine (must, must_not, should,
min_should, nested) and in which order they run. What a key path selects from a
payload and how one value is tested (types never compare equal across: ``true``
is not ``1``, ``1`` is not ``1.0``) are in :mod:`vecdb.filtering.values`, shared
with the payload index; the ``slice`` hash is :mod:`vecdb.filtering.point_slice`;
the coercion of a filter argument is :mod:`vecdb.filtering.filter_input`.

Key paths follow the one grammar of :mod:`vecdb.filtering.keypath`; the differential
tests in ``tests/unit/test_filter_differential.py`` compare this module, the payload
index and local mode on generated payloads, keys and conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Optional, Protocol, Union

from vecdb.errors import InvalidInput
from vecdb.filtering import geo
from vecdb.filtering.filter_input import as_filter, filter_ids
from vecdb.filtering.fulltext import TEXT_MATCHES, TextAnalyzer
from vecdb.filtering.keypath import KeyPath, parse_key_path
from vecdb.filtering.point_slice import point_slice
from vecdb.filtering.values import (
    FILTER_KEY,
    Getter,
    ValueTest,
    compile_getter,
    extract_values,
    is_empty,
    is_null,
    match_test,
    range_test,
    values_count_test,
)
from vecdb.ids import PointId
from vecdb.models.filters import (
    FieldCondition,
    Filter,
    HasIdCondition,
    HasVectorCondition,
    IsEmptyCondition,
    IsNullCondition,
    NestedCondition,
    SliceCondition,
)

# ``extract_values``, ``filter_ids``, ``parse_key_path`` and ``point_slice`` stay importable from here
# for older callers.


class PointView(Protocol):
    """What the evaluator needs to know about one stored point."""

    @property
    def id(self) -> PointId:
        """Canonical id: an int, or a lowercase hyphenated UUID string."""

    @property
    def payload(self) -> dict[str, Any]:
        """The decoded JSON payload object."""

    def has_vector(self, name: str) -> bool:
        """Whether the point stores a vector under ``name``."""
        ...


Predicate = Callable[[PointView], bool]
"""A compiled filter: True when the point passes."""

# Internal node: (payload, point) -> bool; see "compilation" below.
_Node = Callable[[Optional[dict[str, Any]], Optional[PointView]], bool]


def _always(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
    """Constant-true node; compared by identity for folding."""
    return True


def _never(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
    """Constant-false node; compared by identity for folding."""
    return False


def _never_point(point: PointView) -> bool:
    return False


_EMPTY_PAYLOAD: dict[str, Any] = {}

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
        return lambda payload, point: test(payload)  # type: ignore[arg-type]  # nested nodes always get a payload
    return lambda payload, point: test(point.payload or _EMPTY_PAYLOAD)  # type: ignore[union-attr]


def _any_value(get: Getter, test: ValueTest, nested: bool) -> _Node:
    """Node that holds when ``test`` passes for any value at the key."""

    def any_of_values(payload: dict[str, Any]) -> bool:
        for value in get(payload):
            if test(value):
                return True
        return False

    if nested:
        return lambda payload, point: any_of_values(payload)  # type: ignore[arg-type]  # as in _payload_node

    def node(payload: Optional[dict[str, Any]], point: Optional[PointView]) -> bool:
        for value in get(point.payload or _EMPTY_PAYLOAD):  # type: ignore[union-attr]
            if test(value):
                return True
        return False

    return node


_ANALYZERS: ContextVar[Optional[Mapping[KeyPath, TextAnalyzer]]] = ContextVar("text_analyzers", default=None)
"""The text-indexed fields' tokenizers while :func:`compile_filter` runs (set per call)."""


def _compile_field(condition: FieldCondition, nested: bool) -> _Node:
    key = condition.key
    geo_condition = condition.geo_radius or condition.geo_bounding_box or condition.geo_polygon
    if geo_condition is not None:
        return _any_value(compile_getter(key, flat=True), geo.value_test(geo_condition), nested)
    if condition.match is not None:
        analyzer = None
        if not nested and isinstance(condition.match, TEXT_MATCHES):
            analyzers = _ANALYZERS.get()
            analyzer = analyzers.get(parse_key_path(key, FILTER_KEY)) if analyzers else None
        return _any_value(compile_getter(key, flat=True), match_test(condition.match, analyzer), nested)
    if condition.range is not None:
        return _any_value(compile_getter(key, flat=True), range_test(condition.range), nested)
    raw = compile_getter(key, flat=False)
    if condition.values_count is not None:
        count_test = values_count_test(condition.values_count)
        return _payload_node(lambda payload: count_test(raw(payload)), nested)
    if condition.is_empty is not None:
        want_empty = condition.is_empty
        return _payload_node(lambda payload: is_empty(raw(payload)) is want_empty, nested)
    if condition.is_null is not None:
        want_null = condition.is_null
        return _payload_node(lambda payload: is_null(raw(payload)) is want_null, nested)
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
        return _payload_node(lambda payload: is_empty(raw(payload)), nested), _PAYLOAD_COST
    if isinstance(condition, IsNullCondition):
        raw = compile_getter(condition.is_null.key, flat=False)
        return _payload_node(lambda payload: is_null(raw(payload)), nested), _PAYLOAD_COST
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


def compile_filter(
    flt: Union[Filter, dict[str, Any], None], analyzers: Optional[Mapping[KeyPath, TextAnalyzer]] = None
) -> Optional[Predicate]:
    """Compile a filter into a predicate over points, or None when it filters nothing.

    A dict is validated as a Filter first (pydantic's ValidationError propagates).
    Raises InvalidInput for a malformed key path, before any point is read. ``analyzers``
    (the payload index's ``analyzers``) tokenizes text conditions on text-indexed fields as their
    index does; other fields use Qdrant's default tokenizer.
    """
    parsed = as_filter(flt)
    if parsed is None:
        return None
    token = _ANALYZERS.set(analyzers or None)
    try:
        root, _ = _compile_node(parsed, nested=False)
    finally:
        _ANALYZERS.reset(token)
    if root is _always:
        return None
    if root is _never:
        return _never_point

    def predicate(point: PointView) -> bool:
        return root(None, point)

    return predicate


__all__ = [
    "PointView",
    "Predicate",
    "compile_filter",
    "extract_values",
    "filter_ids",
    "parse_key_path",
    "point_slice",
]
