"""Tests of the filter models (vecdb.models.filters) and their evaluation (vecdb.filtering.evaluate).

The table-driven tests pin the semantics of section 7 of the API spec one rule
at a time. The differential test at the end checks vecdb against qdrant-client's
in-memory evaluator (which mirrors the server) on random payloads and filters,
so corner cases nobody thought of are compared too.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

import pytest
from pydantic import ValidationError

from tests.helpers import FakePoint
from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import compile_filter, extract_values, filter_ids, parse_key_path, point_slice
from vecdb.ids import PointId
from vecdb.models.filters import (
    DatetimeRange,
    FieldCondition,
    Filter,
    HasIdCondition,
    MatchExcept,
    MatchValue,
    NestedCondition,
    Range,
    parse_datetime,
)


def passes(flt: Any, payload: dict[str, Any], point_id: PointId = 1, vectors: tuple[str, ...] = ()) -> bool:
    """Evaluate ``flt`` on one point; a filter that compiles to None passes everything."""
    predicate = compile_filter(flt)
    if predicate is None:
        return True
    return predicate(FakePoint(point_id, payload, frozenset(vectors)))


def must(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"must": list(conditions)}


def fc(key: str, test: Optional[dict[str, Any]] = None, **tests: Any) -> dict[str, Any]:
    """A field condition: ``fc("a", match={...})`` or ``fc("a", is_one)``."""
    return {"key": key, **(test or {}), **tests}


is_one = {"match": {"value": 1}}
is_true = {"match": {"value": True}}
is_false = {"match": {"value": False}}
NOON_Z = "2024-01-01T12:00:00Z"
NOON_NAIVE = "2024-01-01T12:00:00"


# --------------------------------------------------------------------------- table of conditions

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # match value: exact, no cross-type equality
    ("value int", must(fc("a", match={"value": 1})), {"a": 1}, True),
    ("value int vs float", must(fc("a", match={"value": 1})), {"a": 1.0}, False),
    ("value int vs bool", must(fc("a", match={"value": 1})), {"a": True}, False),
    ("value int vs str", must(fc("a", match={"value": 1})), {"a": "1"}, False),
    ("value bool vs int", must(fc("a", match={"value": True})), {"a": 1}, False),
    ("value bool", must(fc("a", match={"value": True})), {"a": True}, True),
    ("value false vs 0", must(fc("a", match={"value": False})), {"a": 0}, False),
    ("value str", must(fc("a", match={"value": "x"})), {"a": "x"}, True),
    ("value str case", must(fc("a", match={"value": "x"})), {"a": "X"}, False),
    ("value missing", must(fc("a", match={"value": 1})), {}, False),
    ("value null", must(fc("a", match={"value": 1})), {"a": None}, False),
    ("value in array", must(fc("a", match={"value": 1})), {"a": [2, 1]}, True),
    ("value array of bools", must(fc("a", match={"value": True})), {"a": [False, True]}, True),
    ("value flattens one level", must(fc("a", match={"value": 1})), {"a": [[1]]}, False),
    ("value object", must(fc("a", match={"value": 1})), {"a": {"b": 1}}, False),
    # match any
    ("any str", must(fc("a", match={"any": ["x", "y"]})), {"a": "y"}, True),
    ("any str miss", must(fc("a", match={"any": ["x", "y"]})), {"a": "z"}, False),
    ("any int", must(fc("a", match={"any": [1, 2]})), {"a": 2}, True),
    ("any int vs float", must(fc("a", match={"any": [1, 2]})), {"a": 2.0}, False),
    ("any int vs bool", must(fc("a", match={"any": [0, 1]})), {"a": True}, False),
    ("any in array", must(fc("a", match={"any": ["x"]})), {"a": ["w", "x"]}, True),
    ("any empty list", must(fc("a", match={"any": []})), {"a": "x"}, False),
    ("any missing", must(fc("a", match={"any": ["x"]})), {}, False),
    # match except: null and missing do not satisfy it
    ("except other", must(fc("a", match={"except": ["x"]})), {"a": "y"}, True),
    ("except listed", must(fc("a", match={"except": ["x"]})), {"a": "x"}, False),
    ("except missing", must(fc("a", match={"except": ["x"]})), {}, False),
    ("except null", must(fc("a", match={"except": ["x"]})), {"a": None}, False),
    ("except empty array", must(fc("a", match={"except": ["x"]})), {"a": []}, False),
    ("except array one other", must(fc("a", match={"except": ["x"]})), {"a": ["x", "y"]}, True),
    ("except array all listed", must(fc("a", match={"except": ["x"]})), {"a": ["x", "x"]}, False),
    ("except other type", must(fc("a", match={"except": ["1"]})), {"a": 1}, True),
    ("except int vs float", must(fc("a", match={"except": [1]})), {"a": 1.0}, True),
    ("except object", must(fc("a", match={"except": [1]})), {"a": {"b": 1}}, True),
    ("except empty list", must(fc("a", match={"except": []})), {"a": 5}, True),
    # full text without an index
    ("text all tokens", must(fc("t", match={"text": "world HELLO"})), {"t": "Hello, world!"}, True),
    ("text partial token", must(fc("t", match={"text": "wor"})), {"t": "Hello, world!"}, False),
    ("text missing token", must(fc("t", match={"text": "hello moon"})), {"t": "Hello world"}, False),
    ("text underscore splits", must(fc("t", match={"text": "bar"})), {"t": "foo_bar"}, True),
    ("text empty query", must(fc("t", match={"text": " ,"})), {"t": "anything"}, False),
    ("text non-string", must(fc("t", match={"text": "1"})), {"t": 1}, False),
    ("text in array", must(fc("t", match={"text": "b"})), {"t": ["a", "b c"]}, True),
    ("text_any one token", must(fc("t", match={"text_any": "moon world"})), {"t": "hello world"}, True),
    ("text_any none", must(fc("t", match={"text_any": "moon sun"})), {"t": "hello world"}, False),
    ("phrase in order", must(fc("t", match={"phrase": "Brown fox"})), {"t": "the brown fox"}, True),
    ("phrase wrong order", must(fc("t", match={"phrase": "fox brown"})), {"t": "the brown fox"}, False),
    ("phrase not adjacent", must(fc("t", match={"phrase": "the fox"})), {"t": "the brown fox"}, False),
    ("prefix", must(fc("t", match={"prefix": "he"})), {"t": "hello"}, True),
    ("prefix case-sensitive", must(fc("t", match={"prefix": "He"})), {"t": "hello"}, False),
    ("prefix empty vs non-string", must(fc("t", match={"prefix": ""})), {"t": 3}, False),
    ("substring", must(fc("t", match={"substring": "ll"})), {"t": "hello"}, True),
    ("substring case", must(fc("t", match={"substring": "LL"})), {"t": "hello"}, False),
    # numeric range: booleans are not numbers
    ("range gte edge", must(fc("a", range={"gte": 5})), {"a": 5}, True),
    ("range gt edge", must(fc("a", range={"gt": 5})), {"a": 5}, False),
    ("range lt float", must(fc("a", range={"lt": 3.0})), {"a": 2.5}, True),
    ("range two bounds", must(fc("a", range={"gt": 1, "lte": 2})), {"a": 2}, True),
    ("range two bounds out", must(fc("a", range={"gt": 1, "lte": 2})), {"a": 3}, False),
    ("range bool", must(fc("a", range={"lt": 10})), {"a": True}, False),
    ("range numeric string", must(fc("a", range={"lt": 10})), {"a": "5"}, False),
    ("range any array element", must(fc("a", range={"gt": 5})), {"a": [1, 10]}, True),
    ("range one element for all bounds", must(fc("a", range={"gt": 5, "lt": 0})), {"a": [-1, 10]}, False),
    ("range no bounds number", must(fc("a", range={})), {"a": 1}, True),
    ("range no bounds string", must(fc("a", range={})), {"a": "x"}, False),
    ("range missing", must(fc("a", range={"lt": 10})), {}, False),
    # datetime range: naive means UTC on both sides
    ("dt naive payload vs Z bound", must(fc("d", range={"gte": NOON_Z})), {"d": "2024-01-01T12:00:00"}, True),
    ("dt offset payload", must(fc("d", range={"gte": NOON_Z})), {"d": "2024-01-01T13:00:00+02:00"}, False),
    ("dt offset payload lt", must(fc("d", range={"lt": NOON_NAIVE})), {"d": "2024-01-01T13:00:00+02:00"}, True),
    ("dt offset bound", must(fc("d", range={"gt": "2024-01-01T12:00:00+01:00"})), {"d": "2024-01-01T11:30:00Z"}, True),
    ("dt date-only payload", must(fc("d", range={"gte": "2024-01-01"})), {"d": "2024-01-01"}, True),
    ("dt date-only strict", must(fc("d", range={"gt": "2024-01-01"})), {"d": "2024-01-01"}, False),
    ("dt space separator", must(fc("d", range={"lt": "2024-01-02"})), {"d": "2024-01-01 23:59:59"}, True),
    ("dt fraction", must(fc("d", range={"gt": "2024-01-01T00:00:00"})), {"d": "2024-01-01T00:00:00.000001Z"}, True),
    (
        "dt nanoseconds cut",
        must(fc("d", range={"lte": "2024-01-01T00:00:00.123456Z"})),
        {"d": "2024-01-01T00:00:00.123456999Z"},
        True,
    ),
    ("dt hour-only offset", must(fc("d", range={"lt": "2024-01-01T00:00:00Z"})), {"d": "2024-01-01T00:30:00+01"}, True),
    ("dt UTC suffix", must(fc("d", range={"gte": "2024-01-01T00:00:00Z"})), {"d": "2024-01-01 00:00:00 UTC"}, True),
    ("dt invalid payload", must(fc("d", range={"gt": "2000-01-01"})), {"d": "yesterday"}, False),
    ("dt impossible date", must(fc("d", range={"gt": "2000-01-01"})), {"d": "2024-02-30"}, False),
    ("dt number payload", must(fc("d", range={"gt": "2000-01-01"})), {"d": 1704067200}, False),
    ("dt in array", must(fc("d", range={"gt": "2020-01-01"})), {"d": ["bad", "2024-01-01T00:00:00Z"]}, True),
    # values_count: arrays count their length; a missing key counts 0
    ("count list", must(fc("arr", values_count={"gte": 2})), {"arr": [1, 2]}, True),
    ("count list short", must(fc("arr", values_count={"gte": 3})), {"arr": [1, 2]}, False),
    ("count scalar", must(fc("arr", values_count={"lte": 1, "gte": 1})), {"arr": "x"}, True),
    ("count empty list", must(fc("arr", values_count={"lt": 1})), {"arr": []}, True),
    ("count null", must(fc("arr", values_count={"lt": 1})), {"arr": None}, True),
    ("count missing lt", must(fc("arr", values_count={"lt": 1})), {}, True),
    ("count missing gte", must(fc("arr", values_count={"gte": 1})), {}, False),
    ("count wildcard path", must(fc("arr[].x", values_count={"gte": 2})), {"arr": [{"x": [1, 2]}, {"x": 3}]}, True),
    # is_empty: missing, null or []
    ("is_empty missing", must({"is_empty": {"key": "a"}}), {}, True),
    ("is_empty null", must({"is_empty": {"key": "a"}}), {"a": None}, True),
    ("is_empty []", must({"is_empty": {"key": "a"}}), {"a": []}, True),
    ("is_empty [null]", must({"is_empty": {"key": "a"}}), {"a": [None]}, False),
    ("is_empty {}", must({"is_empty": {"key": "a"}}), {"a": {}}, False),
    ("is_empty empty string", must({"is_empty": {"key": "a"}}), {"a": ""}, False),
    ("is_empty zero", must({"is_empty": {"key": "a"}}), {"a": 0}, False),
    ("is_empty field form true", must(fc("a", is_empty=True)), {}, True),
    ("is_empty field form false", must(fc("a", is_empty=False)), {"a": 1}, True),
    ("is_empty field form false on missing", must(fc("a", is_empty=False)), {}, False),
    # is_null: null, or an array with a null element one level deep
    ("is_null null", must({"is_null": {"key": "a"}}), {"a": None}, True),
    ("is_null missing", must({"is_null": {"key": "a"}}), {}, False),
    ("is_null []", must({"is_null": {"key": "a"}}), {"a": []}, False),
    ("is_null array with null", must({"is_null": {"key": "a"}}), {"a": [1, None]}, True),
    ("is_null two levels", must({"is_null": {"key": "a"}}), {"a": [[None]]}, False),
    ("is_null field form false", must(fc("a", is_null=False)), {"a": 1}, True),
    ("is_null field form false on null", must(fc("a", is_null=False)), {"a": None}, False),
    # key paths
    ("dot path", must(fc("city.name", match={"value": "A"})), {"city": {"name": "A"}}, True),
    ("dot path through non-object", must(fc("city.name", match={"value": "A"})), {"city": "A"}, False),
    ("key on array needs []", must(fc("arr.x", match={"value": 1})), {"arr": [{"x": 1}]}, False),
    ("wildcard path", must(fc("arr[].x", match={"value": 2})), {"arr": [{"x": 1}, {"x": 2}]}, True),
    ("wildcard flattens leaf arrays", must(fc("arr[].x", match={"value": 3})), {"arr": [{"x": [2, 3]}]}, True),
    ("index path", must(fc("arr[0].x", match={"value": 1})), {"arr": [{"x": 1}, {"x": 2}]}, True),
    ("index path other element", must(fc("arr[0].x", match={"value": 2})), {"arr": [{"x": 1}, {"x": 2}]}, False),
    ("index out of range", must(fc("arr[5]", match={"value": 1})), {"arr": [1]}, False),
    ("index leaf", must(fc("arr[1]", match={"value": "b"})), {"arr": ["a", "b"]}, True),
    ("trailing [] on scalars", must(fc("arr[]", match={"value": "b"})), {"arr": ["a", "b"]}, True),
    ("nested wildcards", must(fc("a[].b[].c", match={"value": 1})), {"a": [{"b": [{"c": 0}, {"c": 1}]}]}, True),
    ("quoted key", must(fc('"a.b"', match={"value": 1})), {"a.b": 1, "a": {"b": 2}}, True),
    ("quoted key not split", must(fc('"a.b"', match={"value": 2})), {"a.b": 1, "a": {"b": 2}}, False),
    ("quoted then path", must(fc('"a.b".c', match={"value": 1})), {"a.b": {"c": 1}}, True),
    ("unicode key", must(fc("größe", match={"value": 1})), {"größe": 1}, True),
    # has_id / has_vector
    ("has_id int", must({"has_id": [1, 2]}), {}, True),
    ("has_id int miss", must({"has_id": [3]}), {}, False),
    ("has_id empty", must({"has_id": []}), {}, False),
    ("has_vector yes", must({"has_vector": "text"}), {}, True),
    ("has_vector no", must({"has_vector": "image"}), {}, False),
    # nested: the whole sub-filter must hold for one element
    (
        "nested one element must hold all",
        must({"nested": {"key": "diet", "filter": must(fc("food", match={"value": "meat"}), fc("likes", is_false))}}),
        {"diet": [{"food": "meat", "likes": True}, {"food": "veg", "likes": False}]},
        False,
    ),
    (
        "flat paths mix elements",
        must(fc("diet[].food", match={"value": "meat"}), fc("diet[].likes", match={"value": False})),
        {"diet": [{"food": "meat", "likes": True}, {"food": "veg", "likes": False}]},
        True,
    ),
    (
        "nested match",
        must({"nested": {"key": "diet", "filter": must(fc("food", match={"value": "meat"}), fc("likes", is_true))}}),
        {"diet": [{"food": "meat", "likes": True}, {"food": "veg", "likes": False}]},
        True,
    ),
    (
        "nested key with []",
        must({"nested": {"key": "diet[]", "filter": must(fc("food", match={"value": "veg"}))}}),
        {"diet": [{"food": "meat"}, {"food": "veg"}]},
        True,
    ),
    (
        "nested must_not per element",
        must({"nested": {"key": "diet", "filter": {"must_not": [fc("food", match={"value": "meat"})]}}}),
        {"diet": [{"food": "meat"}, {"food": "veg"}]},
        True,
    ),
    (
        "nested on object is no array",
        must({"nested": {"key": "diet", "filter": must(fc("food", match={"value": "meat"}))}}),
        {"diet": {"food": "meat"}},
        False,
    ),
    (
        "nested skips non-objects",
        must({"nested": {"key": "diet", "filter": {}}}),
        {"diet": [1, "x"]},
        False,
    ),
    (
        "nested empty filter needs an element",
        must({"nested": {"key": "diet", "filter": {}}}),
        {"diet": [{}]},
        True,
    ),
    (
        "nested inside nested",
        must({"nested": {"key": "a", "filter": must({"nested": {"key": "b", "filter": must(fc("c", is_one))}})}}),
        {"a": [{"b": [{"c": 0}]}, {"b": [{"c": 1}]}]},
        True,
    ),
    (
        "has_id never holds inside nested",
        must({"nested": {"key": "diet", "filter": must({"has_id": [1]})}}),
        {"diet": [{"food": "meat"}]},
        False,
    ),
    # clauses
    ("must_not missing key", {"must_not": [fc("a", match={"value": 1})]}, {}, True),
    ("must_not hit", {"must_not": [fc("a", match={"value": 1})]}, {"a": 1}, False),
    ("must_not any of", {"must_not": [fc("a", match={"value": 1}), fc("b", match={"value": 1})]}, {"b": 1}, False),
    ("empty should", {"should": []}, {}, True),
    ("empty should with must", {"should": [], "must": [fc("a", match={"value": 1})]}, {"a": 1}, True),
    ("should one of", {"should": [fc("a", match={"value": 1}), fc("b", match={"value": 1})]}, {"b": 1}, True),
    ("should none", {"should": [fc("a", match={"value": 1}), fc("b", match={"value": 1})]}, {"c": 1}, False),
    ("single condition clause", {"must": fc("a", match={"value": 1})}, {"a": 1}, True),
    ("single condition should", {"should": fc("a", match={"value": 1})}, {"a": 2}, False),
    ("empty must", {"must": []}, {}, True),
    ("empty filter as condition", must({}), {}, True),
    (
        "min_should met",
        {"min_should": {"conditions": [fc("a", is_one), fc("b", is_one), fc("c", is_one)], "min_count": 2}},
        {"a": 1, "c": 1},
        True,
    ),
    (
        "min_should short",
        {"min_should": {"conditions": [fc("a", is_one), fc("b", is_one), fc("c", is_one)], "min_count": 2}},
        {"a": 1},
        False,
    ),
    ("min_should no conditions", {"min_should": {"conditions": [], "min_count": 1}}, {}, False),
    (
        "all clauses ANDed",
        {
            "must": [fc("a", match={"value": 1})],
            "should": [fc("b", match={"value": 1})],
            "must_not": [fc("c", match={"value": 1})],
        },
        {"a": 1, "b": 1, "c": 1},
        False,
    ),
    (
        "filter as condition in must_not",
        {"must_not": [{"must": [fc("x", range={"lt": 3.0})]}]},
        {"x": 5},
        True,
    ),
    (
        "should of filters",
        {"should": [{"must": [fc("a", is_one), fc("b", match={"value": 2})]}, {"must_not": [{"has_id": [1]}]}]},
        {"a": 1, "b": 2},
        True,
    ),
]


@pytest.mark.parametrize(("flt", "payload", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_condition_table(flt: dict[str, Any], payload: dict[str, Any], expected: bool) -> None:
    assert passes(flt, payload, point_id=1, vectors=("text",)) is expected


def test_filter_model_accepted_as_is() -> None:
    flt = Filter(must=[FieldCondition(key="a", match=MatchValue(value=1))])
    assert passes(flt, {"a": 1}) and not passes(flt, {"a": 2})


# --------------------------------------------------------------------------- ids

SOME_UUID = "5e1c7a8b-2f3d-4c5e-9a7b-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    "spelling",
    [
        SOME_UUID,
        SOME_UUID.upper(),
        SOME_UUID.replace("-", ""),
        SOME_UUID.replace("-", "").upper(),
        "{" + SOME_UUID + "}",
        "urn:uuid:" + SOME_UUID,
    ],
)
def test_has_id_uuid_spellings(spelling: str) -> None:
    flt = must({"has_id": [7, spelling]})
    assert passes(flt, {}, point_id=SOME_UUID)
    assert not passes(flt, {}, point_id="00000000-0000-0000-0000-000000000001")
    condition = Filter.model_validate(flt).must[0]  # type: ignore[index]
    assert isinstance(condition, HasIdCondition)
    assert condition.has_id == [7, SOME_UUID]


@pytest.mark.parametrize("bad", ["not-a-uuid", -1, 2**64, True, 1.5, None, "12345"])
def test_has_id_rejects_invalid_ids(bad: Any) -> None:
    with pytest.raises(ValidationError, match="has_id"):
        Filter.model_validate(must({"has_id": [1, bad]}))


def test_has_id_int_and_uuid_do_not_mix() -> None:
    assert not passes(must({"has_id": [1]}), {}, point_id="00000000-0000-0000-0000-000000000001")


# --------------------------------------------------------------------------- datetimes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03:04", datetime(2024, 1, 2, 3, 4, tzinfo=timezone.utc)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05.5+02:00", datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05-0130", datetime(2024, 1, 2, 4, 34, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05+01", datetime(2024, 1, 2, 2, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03:04:05 +01:00", datetime(2024, 1, 2, 2, 4, 5, tzinfo=timezone.utc)),
        ("  2024-01-02T03:04:05z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02 03:04:05.123456789 UTC", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)),
        ("2024-01-02t03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2024-01-02T03", None),
        ("2024-13-01", None),
        ("2024-01-02T03:04Z", None),
        ("tomorrow", None),
        ("", None),
    ],
)
def test_parse_datetime(text: str, expected: Optional[datetime]) -> None:
    assert parse_datetime(text) == expected


def test_datetime_range_bounds_from_python_objects() -> None:
    naive = DatetimeRange(gte=datetime(2024, 1, 1, 12))
    assert naive.gte == datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    aware = DatetimeRange(lt=datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert aware.lt == datetime(2024, 1, 1, 10, tzinfo=timezone.utc)
    day = DatetimeRange(gt=date(2024, 1, 1))
    assert day.gt == datetime(2024, 1, 1, tzinfo=timezone.utc)
    flt = Filter(must=[FieldCondition(key="d", range=naive)])
    assert passes(flt, {"d": "2024-01-01T12:00:00Z"})
    assert not passes(flt, {"d": "2024-01-01T13:00:00+02:00"})


def test_range_kind_follows_bound_types() -> None:
    numeric = Filter.model_validate(must(fc("a", range={"gt": 1, "lt": 2.5}))).must[0]  # type: ignore[index]
    assert isinstance(numeric.range, Range)  # type: ignore[union-attr]
    dated = Filter.model_validate(must(fc("a", range={"gt": "2024-01-01"}))).must[0]  # type: ignore[index]
    assert isinstance(dated.range, DatetimeRange)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- models and errors


WIRE = {
    "must": [
        {"key": "city.name", "match": {"any": ["A", "B"]}},
        {"key": "tags[].x", "match": {"except": [1, 2]}},
        {"key": "d", "range": {"gte": "2024-01-01T00:00:00"}},
        {"key": "loc", "geo_radius": {"center": {"lon": 13.4, "lat": 52.5}, "radius": 1000.0}},
        {"has_id": [1, "00000000-0000-0000-0000-000000000005"]},
        {"is_null": {"key": "n"}},
        {"nested": {"key": "diet", "filter": {"must": [{"key": "food", "match": {"value": "meat"}}]}}},
        {"key": "arr", "values_count": {"gte": 2}},
        {"has_vector": "text"},
    ],
    "should": [{"key": "a", "match": {"value": True}}],
    "must_not": [{"must": [{"key": "x", "range": {"lt": 3.0}}]}],
    "min_should": {"conditions": [{"key": "a", "match": {"value": "x"}}], "min_count": 1},
}


def test_wire_example_parses_and_compiles() -> None:
    flt = Filter.model_validate(WIRE)
    assert isinstance(flt.must[1].match, MatchExcept)  # type: ignore[index, union-attr]
    assert isinstance(flt.must[6], NestedCondition)  # type: ignore[index]
    assert compile_filter(flt) is not None  # (geo included: tests/unit/test_geo.py checks its answers)


def test_wire_example_without_geo_evaluates() -> None:
    body = dict(WIRE, must=[c for c in WIRE["must"] if "geo_radius" not in c])  # type: ignore[union-attr]
    payload = {
        "city": {"name": "B"},
        "tags": [{"x": 1}, {"x": 3}],
        "d": "2024-06-01T00:00:00Z",
        "n": None,
        "diet": [{"food": "meat"}],
        "arr": [1, 2],
        "a": "x",
        "x": 5,
    }
    assert not passes(body, payload, point_id=1, vectors=("text",))  # should needs a == true
    body["should"] = [{"key": "a", "match": {"value": "x"}}]
    assert passes(body, payload, point_id=1, vectors=("text",))
    assert not passes(body, payload, point_id=2, vectors=("text",))
    assert not passes(body, payload, point_id=1, vectors=())
    assert not passes(body, dict(payload, x=2), point_id=1, vectors=("text",))


def test_except_alias_round_trip() -> None:
    model = MatchExcept.model_validate({"except": [1, 2]})
    assert model.model_dump(by_alias=True) == {"except": [1, 2]}
    assert MatchExcept.model_validate({"except_": ["a"]}).except_ == ["a"]


def test_single_condition_clause_is_stored_as_list() -> None:
    flt = Filter.model_validate({"must": {"key": "a", "match": {"value": 1}}})
    assert isinstance(flt.must, list) and len(flt.must) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (must(fc("a", match={"value": 1.5})), "float"),
        (must(fc("a", match={"value": None})), "match value"),
        (must(fc("a", match={"any": [1, "a"]})), "not mixed"),
        (must(fc("a", match={"any": [True]})), "booleans"),
        (must(fc("a", match={"except": [1.5]})), "integers"),
        (must(fc("a", match={"valeu": 1})), "match must be"),
        (must(fc("a")), "exactly one"),
        (must(fc("a", match={"value": 1}, range={"gt": 1})), "exactly one"),
        (must(fc("a", range={"gt": True})), "range"),
        (must(fc("a", range={"gt": "not a date"})), "RFC 3339"),
        (must(fc("a", values_count={"gt": -1})), "values_count"),
        (must(fc("a", is_empty="yes")), "is_empty"),
        (must({"keyy": "a"}), "a condition must be"),
        (must({"is_empty": {"key": "a"}, "extra": 1}), "extra"),
        ({"must_nt": []}, "must_nt"),
        ({"min_should": {"conditions": [], "min_count": 0}}, "min_count"),
        (must({"slice": {"total": 2, "index": 2}}), "slice index"),
        (must({"nested": {"key": "a"}}), "filter"),
        (must({"has_vector": 1}), "has_vector"),
    ],
)
def test_invalid_filters_are_validation_errors(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Filter.model_validate(body)
    assert fragment.lower() in str(raised.value).lower()


@pytest.mark.parametrize("key", ["", "a..b", "a.", ".a", "a[x]", "a[-1]", '"a', "a b", "a[0]x", "a[", "a$"])
def test_bad_key_paths_raise_invalid_input(key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        compile_filter(must(fc(key, match={"value": 1})))
    assert repr(key) in str(raised.value)


@pytest.mark.parametrize(
    ("key", "steps"),
    [
        ("a", ("a",)),
        ("a.b-c_d", ("a", "b-c_d")),
        ("a[]", ("a", None)),
        ("a[0][]", ("a", 0, None)),
        ("a[].b[3].c", ("a", None, "b", 3, "c")),
        ('"a.b"', ("a.b",)),
        ('"a b"[].c', ("a b", None, "c")),
        ('x."y.z"', ("x", "y.z")),
    ],
)
def test_parse_key_path(key: str, steps: tuple[Any, ...]) -> None:
    assert parse_key_path(key) == steps


def test_geo_conditions_compile() -> None:
    square = [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]
    for test in (
        {"geo_bounding_box": {"top_left": {"lon": 0, "lat": 1}, "bottom_right": {"lon": 1, "lat": 0}}},
        {"geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}},
        {"geo_polygon": {"exterior": {"points": square}}},
    ):
        flt = Filter.model_validate({"should": [{"must_not": [fc("loc", **test)]}]})
        assert compile_filter(flt) is not None


def test_compile_filter_none_when_nothing_to_filter() -> None:
    for body in (None, {}, {"must": []}, {"should": []}, {"must_not": []}, {"must": [{}]}, {"must": [{"must": []}]}):
        assert compile_filter(body) is None
    assert compile_filter(must(fc("a", match={"value": 1}))) is not None


def test_constant_false_filter_rejects_everything() -> None:
    predicate = compile_filter({"must": [{"has_id": []}]})
    assert predicate is not None and predicate(FakePoint(1, {})) is False
    predicate = compile_filter({"must_not": [{}]})
    assert predicate is not None and predicate(FakePoint(1, {})) is False


def test_filter_ids() -> None:
    assert filter_ids(None) is None
    assert filter_ids({"must": [{"has_id": [1, "{" + SOME_UUID + "}"]}]}) == {1, SOME_UUID}
    assert filter_ids({"must": {"has_id": [1]}, "should": []}) == {1}
    assert filter_ids({"must": [{"has_id": [1, 2, 3]}, {"has_id": [2, 3, 4]}]}) == {2, 3}
    assert filter_ids({"must": [{"has_id": [1]}, fc("a", match={"value": 1})]}) is None
    assert filter_ids({"must": [{"has_id": [1]}], "must_not": [{"has_id": [2]}]}) is None
    assert filter_ids({"should": [{"has_id": [1]}]}) is None
    assert filter_ids({"must": []}) is None


def test_extract_values() -> None:
    payload = {"a": [{"b": [1, 2]}, {"b": 3}, {"c": 4}], "s": "x", "n": None}
    assert extract_values(payload, "a[].b") == [1, 2, 3]
    assert extract_values(payload, "a[].b", flat=False) == [[1, 2], 3]
    assert extract_values(payload, "a[1].b") == [3]
    assert extract_values(payload, "s") == ["x"]
    assert extract_values(payload, "n") == [None]
    assert extract_values(payload, "missing") == []
    assert extract_values(payload, "a.b") == []
    with pytest.raises(InvalidInput):
        extract_values(payload, "a..b")


def test_slice_partitions_ids() -> None:
    ids: list[PointId] = [*range(50), *(str(uuid.UUID(int=i * 7919 + 1)) for i in range(50))]
    predicates = [compile_filter(must({"slice": {"total": 3, "index": i}})) for i in range(3)]
    for point_id in ids:
        hits = [p(FakePoint(point_id, {})) for p in predicates if p is not None]
        assert hits.count(True) == 1
    assert compile_filter(must({"slice": {"total": 1, "index": 0}})) is None


class CountingPoint:
    """A PointView that counts payload reads, like a view that decodes lazily."""

    def __init__(self, point_id: PointId, payload: dict[str, Any]) -> None:
        self.id = point_id
        self._payload = payload
        self.reads = 0

    @property
    def payload(self) -> dict[str, Any]:
        self.reads += 1
        return self._payload

    def has_vector(self, name: str) -> bool:
        return name == "text"


@pytest.mark.parametrize(
    "body",
    [
        {"must": [{"has_id": [1]}]},
        {"must": [fc("a", match={"value": 1}), {"has_id": [1]}]},
        {"must": [{"must": [fc("a", match={"value": 1})]}, {"has_vector": "image"}]},
        {"must_not": [{"has_vector": "text"}], "should": [fc("a", match={"value": 1})]},
        {"must": [{"slice": {"total": 2, "index": 0}}, {"has_id": [1]}], "should": [fc("a", range={"gt": 0})]},
    ],
)
def test_id_only_conditions_fail_without_reading_the_payload(body: dict[str, Any]) -> None:
    predicate = compile_filter(body)
    point = CountingPoint(2, {"a": 1})
    assert predicate is not None and predicate(point) is False
    assert point.reads == 0


def test_payload_is_read_when_needed() -> None:
    predicate = compile_filter({"must": [{"has_id": [2]}, fc("a", match={"value": 1})]})
    point = CountingPoint(2, {"a": 1})
    assert predicate is not None and predicate(point) is True
    assert point.reads == 1


def test_payload_none_is_treated_as_empty() -> None:
    predicate = compile_filter({"must_not": [fc("a", match={"value": 1})]})
    assert predicate is not None and predicate(FakePoint(1, None)) is True  # type: ignore[arg-type]


# --------------------------------------------------------------------------- differential test

SCALARS: list[Any] = [0, 1, 2, 3, -1, 1.0, 2.5, 3.0, True, False, "a", "b", "c", "A", "", None]
MATCH_VALUES: list[Any] = [0, 1, 2, 3, -1, True, False, "a", "b", "c", "A", ""]
BOUNDS: list[Any] = [-1, 0, 0.5, 1, 2, 2.5, 3]
DATES: list[str] = [
    "2024-01-01T10:00:00Z",
    "2024-01-01 10:00:00",
    "2024-01-01T10:00:00.123+02:00",
    "2024-01-01T12:30:00-01:00",
    "2024-01-01",
    "2024-01-02T00:00",
    "2023-12-31T23:59:59.999999999Z",
    "2024-01-01T10:00:00+01",
    " 2024-01-01T09:00:00z",
    "2024-01-01 11:00:00 UTC",
    "2024-1-1",
    "2024-02-30",
    "not a date",
]
DATE_BOUNDS: list[str] = [
    "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00",
    "2024-01-01T11:00:00+02:00",
    "2024-01-01",
    "2024-01-02",
    "2023-12-31T23:00:00-01:00",
]
TEXTS: list[str] = ["Hello world", "hello, World!", "the brown fox", "foo_bar baz", "", "a b c", "über Straße"]
QUERIES: list[str] = ["hello", "world hello", "brown fox", "fox brown", "bar", "", "a", "straße", "b c"]
TOP_KEYS: list[str] = [
    "a",
    "b",
    "c",
    "flag",
    "z",
    "missing",
    "tags",
    "tags[]",
    "tags[0]",
    "n.x",
    "n.y",
    "n",
    "arr[].x",
    "arr[0].x",
    "arr[].s",
    "arr[].sub[].x",
    "arr",
    "arr.x",
    '"dot.key"',
    "d",
    "t",
]
INNER_KEYS: list[str] = ["x", "s", "sub", "sub[].x", "sub[0].x", "missing"]
VECTOR_NAMES: list[str] = ["", "text", "image"]


def _rand_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.6 or depth > 1:
        return rng.choice(SCALARS)
    if roll < 0.85:
        return [_rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {"x": _rand_value(rng, depth + 1), "y": rng.choice(SCALARS)}


def _rand_element(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return rng.choice(SCALARS)
    element: dict[str, Any] = {}
    if rng.random() < 0.8:
        element["x"] = _rand_value(rng, 1)
    if rng.random() < 0.7:
        element["s"] = rng.choice(["a", "b", "hello world", None, 1])
    if rng.random() < 0.5:
        element["sub"] = [{"x": rng.choice(SCALARS)} for _ in range(rng.randint(0, 2))]
    return element


def _rand_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for key in ("a", "b", "c", "flag", "z"):
        if rng.random() < 0.8:
            payload[key] = _rand_value(rng)
    if rng.random() < 0.8:
        payload["tags"] = [rng.choice(["a", "b", "c", 1, 2, None]) for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.7:
        payload["n"] = {"x": _rand_value(rng, 1), "y": rng.choice(SCALARS)} if rng.random() < 0.8 else _rand_value(rng)
    if rng.random() < 0.8:
        roll = rng.random()
        if roll < 0.8:
            payload["arr"] = [_rand_element(rng) for _ in range(rng.randint(0, 3))]
        elif roll < 0.9:
            payload["arr"] = _rand_element(rng)
        else:
            payload["arr"] = rng.choice(SCALARS)
    if rng.random() < 0.8:
        payload["d"] = rng.choice(DATES) if rng.random() < 0.8 else [rng.choice(DATES), rng.choice(DATES)]
    if rng.random() < 0.8:
        payload["t"] = rng.choice(TEXTS) if rng.random() < 0.85 else [rng.choice(TEXTS), 3]
    if rng.random() < 0.5:
        payload["dot.key"] = rng.choice(SCALARS)
    return payload


def _bounds(rng: random.Random, pool: list[Any]) -> dict[str, Any]:
    names = rng.sample(["gt", "gte", "lt", "lte"], rng.randint(0, 2))
    return {name: rng.choice(pool) for name in names}


def _rand_match(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["value", "value", "any", "except", "text", "text_any", "phrase", "prefix", "substring"])
    if kind == "value":
        return {"value": rng.choice(MATCH_VALUES)}
    if kind in ("any", "except"):
        pool = [0, 1, 2, 3, -1] if rng.random() < 0.5 else ["a", "b", "c", "A", ""]
        return {kind: rng.sample(pool, rng.randint(0, 3))}
    if kind in ("text", "text_any", "phrase"):
        return {kind: rng.choice(QUERIES)}
    return {kind: rng.choice(["a", "", "A", "he", "o w"])}


def _rand_condition(rng: random.Random, depth: int, keys: list[str], ids: list[str]) -> dict[str, Any]:
    kinds = ["match", "match", "match", "range", "dt", "count", "empty", "null", "empty_f", "null_f"]
    if keys is TOP_KEYS:
        kinds += ["has_id", "has_vector", "slice"]
    else:
        kinds += ["has_id"]  # never holds inside nested
    if depth < 2:
        kinds += ["nested", "filter"]
    kind = rng.choice(kinds)
    key = rng.choice(keys)
    if kind == "match":
        return {"key": key, "match": _rand_match(rng)}
    if kind == "range":
        return {"key": key, "range": _bounds(rng, BOUNDS)}
    if kind == "dt":
        bounds = _bounds(rng, DATE_BOUNDS) or {"gte": rng.choice(DATE_BOUNDS)}
        return {"key": rng.choice(["d", key]), "range": bounds}
    if kind == "count":
        return {"key": key, "values_count": _bounds(rng, [0, 1, 2, 3])}
    if kind == "empty":
        return {"is_empty": {"key": key}}
    if kind == "null":
        return {"is_null": {"key": key}}
    if kind == "empty_f":
        return {"key": key, "is_empty": rng.random() < 0.5}
    if kind == "null_f":
        return {"key": key, "is_null": rng.random() < 0.5}
    if kind == "has_id":
        return {"has_id": rng.sample(ids, rng.randint(0, 4))}
    if kind == "has_vector":
        return {"has_vector": rng.choice(VECTOR_NAMES)}
    if kind == "slice":
        total = rng.randint(1, 4)
        return {"slice": {"total": total, "index": rng.randrange(total)}}
    if kind == "nested":
        nested_key = rng.choice(["arr", "arr[]", "arr[].sub", "n", "a", "tags"] if keys is TOP_KEYS else ["sub", "x"])
        return {"nested": {"key": nested_key, "filter": _rand_filter(rng, depth + 1, INNER_KEYS, ids)}}
    return _rand_filter(rng, depth + 1, keys, ids)


def _rand_clause(rng: random.Random, depth: int, keys: list[str], ids: list[str]) -> Any:
    conditions = [_rand_condition(rng, depth, keys, ids) for _ in range(rng.randint(0, 3))]
    if len(conditions) == 1 and rng.random() < 0.3:
        return conditions[0]  # a single condition instead of a list
    return conditions


def _rand_filter(rng: random.Random, depth: int, keys: list[str], ids: list[str]) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    for clause in ("must", "should", "must_not"):
        if rng.random() < 0.5:
            flt[clause] = _rand_clause(rng, depth, keys, ids)
    if rng.random() < 0.2:
        flt["min_should"] = {
            "conditions": [_rand_condition(rng, depth, keys, ids) for _ in range(rng.randint(0, 3))],
            "min_count": rng.randint(1, 3),
        }
    return flt


def _spellings(point_id: PointId, rng: random.Random) -> str | int:
    if isinstance(point_id, int):
        return point_id
    text = str(point_id)
    return rng.choice([text, text.upper(), text.replace("-", ""), "{" + text + "}", "urn:uuid:" + text])


def test_differential_against_qdrant_client_local_mode() -> None:
    qmodels = pytest.importorskip("qdrant_client.http.models")
    payload_filters = pytest.importorskip("qdrant_client.local.payload_filters")

    rng = random.Random(20240601)
    points: list[FakePoint] = []
    for index in range(300):
        point_id: PointId = index if rng.random() < 0.5 else str(uuid.UUID(int=rng.getrandbits(128)))
        vectors = frozenset(name for name in VECTOR_NAMES if rng.random() < 0.5)
        points.append(FakePoint(point_id, _rand_payload(rng), vectors))

    mismatches: list[str] = []
    matched_total = 0
    for _ in range(200):
        id_pool = [_spellings(rng.choice(points).id, rng) for _ in range(6)] + [10_000, 0]
        body = _rand_filter(rng, 0, TOP_KEYS, id_pool)  # type: ignore[arg-type]
        theirs = qmodels.Filter.model_validate(body)
        predicate = compile_filter(body)
        for point in points:
            expected = payload_filters.check_filter(
                theirs, point.payload, point.id, {name: True for name in point.vectors}
            )
            got = True if predicate is None else predicate(point)
            matched_total += got
            if got != expected and len(mismatches) < 5:
                mismatches.append(f"filter={body}\npayload={point.payload} id={point.id} vecdb={got} qdrant={expected}")
    assert not mismatches, "\n\n".join(mismatches)
    # the generator must produce filters that select something, or the test proves little
    assert 0.05 < matched_total / (300 * 200) < 0.95


def test_slice_hash_matches_qdrant_client() -> None:
    siphash = pytest.importorskip("qdrant_client.local.siphash")
    rng = random.Random(7)
    ids: list[PointId] = [0, 1, 2**64 - 1, *(rng.getrandbits(64) for _ in range(50))]
    ids += [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    for point_id in ids:
        for total in (2, 3, 7, 1000):
            assert point_slice(point_id, total) == siphash.point_id_slice(point_id, total)


def test_datetime_parser_matches_qdrant_client() -> None:
    datetime_utils = pytest.importorskip("qdrant_client.local.datetime_utils")
    rng = random.Random(11)
    parts = [
        "2024",
        "-",
        "01",
        "-",
        "1",
        "02",
        "T",
        " ",
        "t",
        "10",
        ":",
        "00",
        "5",
        ".",
        "123",
        "1234567",
        "Z",
        "z",
        "+01",
        "+01:00",
        "-0130",
        " UTC",
        " ",
        "x",
    ]
    samples = set(DATES)
    for _ in range(1200):
        samples.add("".join(rng.choice(parts) for _ in range(rng.randint(1, 12))))
        base = rng.choice(["2024-01-02", "2024-01-02T03:04", "2024-01-02 03:04:05", "2024-01-02T03:04:05.6"])
        samples.add(base + "".join(rng.choice(parts) for _ in range(rng.randint(0, 3))))
    for text in sorted(samples):
        assert parse_datetime(text) == datetime_utils.parse(text), text
