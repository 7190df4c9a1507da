"""Pydantic models of Qdrant's filter language (spec: ``qdrant-api.md`` section 7).

Class and field names follow ``qdrant_client.http.models`` so that a body the
official client serialises (``by_alias``, ``exclude_unset``, ``exclude_none``)
validates here unchanged. vecdb never imports qdrant-client.

Why the unions are discriminated by hand: a Qdrant condition has no type tag, it
is recognised by which keys it carries (``key`` -> FieldCondition, ``has_id`` ->
HasIdCondition, ...). Pydantic's "smart" unions would try every member and, on
failure, report an error for each one, which is unreadable; and ``{}`` or
``{"is_empty": ...}`` fit more than one member. A callable ``Discriminator``
picks exactly one member from the keys, so errors point at the right model.

Why one module of this size: it is one wire vocabulary (every condition and match kind of one
language, with its discriminators), read side by side with Qdrant's spec; split, each part would
need the others' unions.

Validation here covers shape and types only. Things that depend on the
evaluation engine (bad key paths) are rejected by :func:`vecdb.filtering.evaluate.compile_filter`, which raises
:class:`vecdb.errors.InvalidInput` / :class:`vecdb.errors.Unsupported`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Annotated, Any, Optional, Union

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)

from vecdb.errors import InvalidInput
from vecdb.ids import parse_point_id
from vecdb.models.base import RequestModel

# --------------------------------------------------------------------------- match


def _check_match_value(value: Any) -> Any:
    """One readable error instead of one per union member (bool, int, str)."""
    if not isinstance(value, (bool, int, str)):
        raise ValueError(
            f"match value must be a boolean, an integer or a string, got {type(value).__name__}"
            + (" (floats cannot be matched exactly; use range)" if isinstance(value, float) else "")
        )
    return value


def _check_match_list(value: Any) -> Any:
    """``any``/``except`` take all strings or all integers, never a mix or booleans."""
    if not isinstance(value, list):
        raise ValueError("expected a list of strings or a list of integers")
    if all(isinstance(item, str) for item in value):
        return value
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return value
    raise ValueError("expected a list of strings or a list of integers (not mixed, no floats or booleans)")


class MatchValue(RequestModel):
    """Exact match of one value. Floats are not allowed (as in Qdrant), and bool,
    int and str never match each other: ``true`` is not ``1``."""

    value: Union[StrictBool, StrictInt, StrictStr]

    _check = field_validator("value", mode="before")(_check_match_value)


class MatchAny(RequestModel):
    """Exact match of any of the given values (all strings or all integers)."""

    any: Union[list[StrictStr], list[StrictInt]]

    _check = field_validator("any", mode="before")(_check_match_list)


class MatchExcept(RequestModel):
    """At least one value not in the list; a null or missing field does not satisfy it."""

    except_: Union[list[StrictStr], list[StrictInt]] = Field(alias="except")

    _check = field_validator("except_", mode="before")(_check_match_list)


class MatchText(RequestModel):
    """Full-text match: every query token must be a token of the value."""

    text: StrictStr


class MatchTextAny(RequestModel):
    """Full-text match: at least one query token must be a token of the value."""

    text_any: StrictStr


class MatchPhrase(RequestModel):
    """Full-text match: the query tokens must appear consecutively in the value."""

    phrase: StrictStr


class MatchPrefix(RequestModel):
    """Case-sensitive prefix of a string value."""

    prefix: StrictStr


class MatchSubstring(RequestModel):
    """Case-sensitive substring of a string value."""

    substring: StrictStr


_MATCH_KEYS: dict[str, str] = {
    "value": "value",
    "any": "any",
    "except": "except",
    "except_": "except",
    "text": "text",
    "text_any": "text_any",
    "phrase": "phrase",
    "prefix": "prefix",
    "substring": "substring",
}
_MATCH_TYPES: dict[type, str] = {
    MatchValue: "value",
    MatchAny: "any",
    MatchExcept: "except",
    MatchText: "text",
    MatchTextAny: "text_any",
    MatchPhrase: "phrase",
    MatchPrefix: "prefix",
    MatchSubstring: "substring",
}


def _match_tag(value: Any) -> Optional[str]:
    """Pick the Match member from the one key a match object carries."""
    if isinstance(value, dict):
        for key in value:
            tag = _MATCH_KEYS.get(key)
            if tag is not None:
                return tag
        return None
    return _MATCH_TYPES.get(type(value))


Match = Annotated[
    Union[
        Annotated[MatchValue, Tag("value")],
        Annotated[MatchAny, Tag("any")],
        Annotated[MatchExcept, Tag("except")],
        Annotated[MatchText, Tag("text")],
        Annotated[MatchTextAny, Tag("text_any")],
        Annotated[MatchPhrase, Tag("phrase")],
        Annotated[MatchPrefix, Tag("prefix")],
        Annotated[MatchSubstring, Tag("substring")],
    ],
    Discriminator(
        _match_tag,
        custom_error_type="invalid_match",
        custom_error_message=(
            "match must be an object with one of: value, any, except, text, text_any, phrase, prefix, substring"
        ),
    ),
]
"""Any ``match`` object; the member is chosen by its key."""

# --------------------------------------------------------------------------- datetimes

# The formats Qdrant core accepts for datetime payload values and range bounds
# (same list as qdrant-client's local mode). Tried in order with ``strptime``.
_DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f %z",
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%dT%H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)

# Fast path for the well-formed spellings; anything it does not match (or that it
# matches but cannot build) goes through the strptime loop, which is the reference.
_FAST_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})"
    r"(?::(\d{2})(?:\.(\d{1,6}))?"
    r"(?: ?(?:(Z)|([+-])(\d{2}):?(\d{2})))?"
    r")?)?"
)
_HOUR_ONLY_OFFSET = re.compile(r"[+-]\d\d")


def _normalize_datetime_text(text: str) -> str:
    """Undo the leniencies of core's parser that strptime does not share:
    leading blanks, a lowercase ``z``, a `` UTC`` suffix, and fractions finer
    than microseconds (cut, not rounded)."""
    text = text.lstrip()
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    elif text.endswith("z"):
        text = text[:-1] + "Z"
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[: dot + 7] + text[end:]
    return text


def _strptime_any(text: str) -> Optional[datetime]:
    for fmt in _DATETIME_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed
    return None


def _fast_parse(text: str) -> Optional[datetime]:
    found = _FAST_DATETIME.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = found.groups()
    try:
        tz: timezone = timezone.utc
        if sign is not None:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(frac.ljust(6, "0")) if frac else 0,
            tzinfo=tz,
        )
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def parse_datetime(text: str) -> Optional[datetime]:
    """Parse a datetime the way Qdrant core does; naive values are UTC.

    Returns an aware datetime, or None when core would not accept the string.
    Cached because the same payload strings are parsed for every query.
    """
    text = _normalize_datetime_text(text)
    parsed = _fast_parse(text)
    if parsed is not None:
        return parsed
    parsed = _strptime_any(text)
    if parsed is not None:
        return parsed
    # strptime's %z needs minutes; core also takes an hour-only offset ("+01").
    if _HOUR_ONLY_OFFSET.fullmatch(text[-3:]):
        return _strptime_any(text + ":00")
    return None


def _as_utc_datetime(value: Any) -> Any:
    """Turn a range bound into an aware datetime (naive = UTC, a date = midnight UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=timezone.utc)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not an RFC 3339 datetime")
        return parsed
    raise ValueError(f"expected an RFC 3339 datetime string, got {type(value).__name__}")


# --------------------------------------------------------------------------- ranges


class Range(RequestModel):
    """Numeric range. Bounds are numbers; booleans are rejected (they are not numbers)."""

    lt: Optional[float] = Field(default=None, strict=True)
    gt: Optional[float] = Field(default=None, strict=True)
    gte: Optional[float] = Field(default=None, strict=True)
    lte: Optional[float] = Field(default=None, strict=True)


class DatetimeRange(RequestModel):
    """Datetime range. Bounds arrive as RFC 3339 strings (or datetime/date objects
    from Python callers) and are stored as aware datetimes, naive ones read as UTC."""

    lt: Optional[datetime] = None
    gt: Optional[datetime] = None
    gte: Optional[datetime] = None
    lte: Optional[datetime] = None

    @field_validator("lt", "gt", "gte", "lte", mode="before")
    @classmethod
    def _parse_bound(cls, value: Any) -> Any:
        return _as_utc_datetime(value)


def _range_tag(value: Any) -> Optional[str]:
    """Numbers make a Range, strings or datetimes a DatetimeRange (as Qdrant's untagged enum)."""
    if isinstance(value, dict):
        for bound in value.values():
            if isinstance(bound, (str, date)):  # datetime is a date subclass
                return "datetime"
        return "number"
    if isinstance(value, Range):
        return "number"
    if isinstance(value, DatetimeRange):
        return "datetime"
    return None


RangeInterface = Annotated[
    Union[Annotated[Range, Tag("number")], Annotated[DatetimeRange, Tag("datetime")]],
    Discriminator(
        _range_tag,
        custom_error_type="invalid_range",
        custom_error_message="range must be an object with gt, gte, lt, lte",
    ),
]
"""``range`` of a FieldCondition: numeric bounds or datetime bounds."""


class ValuesCount(RequestModel):
    """Bounds on how many values a key holds (a list counts its length)."""

    lt: Optional[StrictInt] = Field(default=None, ge=0)
    gt: Optional[StrictInt] = Field(default=None, ge=0)
    gte: Optional[StrictInt] = Field(default=None, ge=0)
    lte: Optional[StrictInt] = Field(default=None, ge=0)


# --------------------------------------------------------------------------- geo (tested by vecdb/filtering/geo.py)


class GeoPoint(RequestModel):
    """A point on the globe, in degrees."""

    lon: float = Field(strict=True, ge=-180, le=180)
    lat: float = Field(strict=True, ge=-90, le=90)


class GeoBoundingBox(RequestModel):
    """Rectangle given by its top-left and bottom-right corners."""

    top_left: GeoPoint
    bottom_right: GeoPoint


class GeoRadius(RequestModel):
    """Circle of ``radius`` meters around ``center``."""

    center: GeoPoint
    radius: float = Field(strict=True)


class GeoLineString(RequestModel):
    """Closed ring of points bounding a polygon or one of its holes."""

    points: list[GeoPoint]


class GeoPolygon(RequestModel):
    """Polygon with optional holes; each ring closed (first point = last) and of at least 4 points, as
    Qdrant's server requires."""

    exterior: GeoLineString
    interiors: Optional[list[GeoLineString]] = None

    @model_validator(mode="after")
    def _closed_rings(self) -> GeoPolygon:
        for name, ring in [
            ("exterior", self.exterior),
            *((f"interiors[{i}]", r) for i, r in enumerate(self.interiors or [])),
        ]:
            points = ring.points
            if len(points) < 4:
                raise ValueError(f"{name}: polygon invalid: the size must be at least 4")
            if (points[0].lat, points[0].lon) != (points[-1].lat, points[-1].lon):
                raise ValueError(
                    f"{name}: polygon invalid: the first and the last points should be same to form a closed line"
                )
        return self


# --------------------------------------------------------------------------- conditions


_FIELD_CONDITION_KINDS: tuple[str, ...] = (
    "match",
    "range",
    "geo_bounding_box",
    "geo_radius",
    "geo_polygon",
    "values_count",
    "is_empty",
    "is_null",
)


class FieldCondition(RequestModel):
    """A test on the values at payload path ``key``; exactly one kind of test is set.

    Qdrant rejects a condition with no test. With several, its server and its
    in-memory mode disagree about how to combine them, so vecdb refuses that too.
    """

    key: StrictStr
    match: Optional[Match] = None
    range: Optional[RangeInterface] = None
    geo_bounding_box: Optional[GeoBoundingBox] = None
    geo_radius: Optional[GeoRadius] = None
    geo_polygon: Optional[GeoPolygon] = None
    values_count: Optional[ValuesCount] = None
    is_empty: Optional[StrictBool] = None
    is_null: Optional[StrictBool] = None

    @model_validator(mode="after")
    def _exactly_one_test(self) -> FieldCondition:
        present = [name for name in _FIELD_CONDITION_KINDS if getattr(self, name) is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(
                f"field condition on key {self.key!r} needs exactly one of "
                f"{', '.join(_FIELD_CONDITION_KINDS)} (found: {found})"
            )
        return self


class PayloadField(RequestModel):
    """A payload path, the argument of is_empty / is_null."""

    key: StrictStr


class IsEmptyCondition(RequestModel):
    """``{"is_empty": {"key": k}}``: k is missing, null or ``[]``."""

    is_empty: PayloadField


class IsNullCondition(RequestModel):
    """``{"is_null": {"key": k}}``: k is null, or an array with a null element."""

    is_null: PayloadField


class HasIdCondition(RequestModel):
    """``{"has_id": [ids]}``. Ids are normalised (any UUID spelling -> lowercase
    hyphenated) when parsed, so evaluation compares canonical ids only."""

    has_id: list[Union[StrictInt, StrictStr]]

    @field_validator("has_id", mode="before")
    @classmethod
    def _normalise_ids(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise ValueError("has_id must be a list of point ids")
        normalised: list[Union[int, str]] = []
        for index, raw in enumerate(value):
            try:
                normalised.append(parse_point_id(raw, f"has_id[{index}]"))
            except InvalidInput as exc:
                # a ValueError becomes a pydantic ValidationError located at has_id
                raise ValueError(exc.message) from None
        return normalised


class HasVectorCondition(RequestModel):
    """``{"has_vector": name}``: the point stores a vector under that name."""

    has_vector: StrictStr


class Slice(RequestModel):
    """Slice ``index`` of ``total`` disjoint slices of the id space (SipHash-2-4 of the id)."""

    total: StrictInt = Field(ge=1)
    index: StrictInt = Field(ge=0)

    @model_validator(mode="after")
    def _index_in_range(self) -> Slice:
        if self.index >= self.total:
            raise ValueError(f"slice index must be in [0, {self.total - 1}], got {self.index}")
        return self


class SliceCondition(RequestModel):
    """``{"slice": {"total": n, "index": i}}`` (Qdrant 1.19+)."""

    slice: Slice


class Nested(RequestModel):
    """The sub-filter must hold, as a whole, for one object of the array at ``key``."""

    key: StrictStr
    filter: Filter


class NestedCondition(RequestModel):
    """``{"nested": {"key": ..., "filter": {...}}}``."""

    nested: Nested


_FILTER_KEYS = frozenset({"must", "should", "must_not", "min_should"})
_CONDITION_KEYS: tuple[str, ...] = ("is_empty", "is_null", "has_id", "has_vector", "nested", "slice")
_CONDITION_TYPES: dict[type, str] = {
    FieldCondition: "field",
    IsEmptyCondition: "is_empty",
    IsNullCondition: "is_null",
    HasIdCondition: "has_id",
    HasVectorCondition: "has_vector",
    SliceCondition: "slice",
    NestedCondition: "nested",
}


def _condition_tag(value: Any) -> Optional[str]:
    """Pick the Condition member from the keys of the object (see module docstring)."""
    if isinstance(value, dict):
        if "key" in value:
            return "field"
        for key in _CONDITION_KEYS:
            if key in value:
                return key
        if _FILTER_KEYS.issuperset(value):  # includes {}, an empty filter
            return "filter"
        return None
    if isinstance(value, Filter):
        return "filter"
    return _CONDITION_TYPES.get(type(value))


Condition = Annotated[
    Union[
        Annotated[FieldCondition, Tag("field")],
        Annotated[IsEmptyCondition, Tag("is_empty")],
        Annotated[IsNullCondition, Tag("is_null")],
        Annotated[HasIdCondition, Tag("has_id")],
        Annotated[HasVectorCondition, Tag("has_vector")],
        Annotated[SliceCondition, Tag("slice")],
        Annotated[NestedCondition, Tag("nested")],
        Annotated["Filter", Tag("filter")],
    ],
    Discriminator(
        _condition_tag,
        custom_error_type="invalid_condition",
        custom_error_message=(
            "a condition must be a filter (must/should/must_not/min_should) or an object "
            "with one of: key, is_empty, is_null, has_id, has_vector, nested, slice"
        ),
    ),
]
"""One filter condition; a Filter is itself a condition (nesting)."""


class MinShould(RequestModel):
    """At least ``min_count`` of ``conditions`` must hold."""

    conditions: list[Condition]
    min_count: int = Field(ge=1)


class Filter(RequestModel):
    """must (all), should (at least one; an empty list constrains nothing),
    must_not (none) and min_should, ANDed together.

    Qdrant lets each clause be one condition or a list; a single condition is
    stored as a one-element list, so consumers handle one shape and validation
    errors point at ``must.0...`` rather than at two union branches.
    """

    should: Optional[list[Condition]] = None
    min_should: Optional[MinShould] = None
    must: Optional[list[Condition]] = None
    must_not: Optional[list[Condition]] = None

    @field_validator("should", "must", "must_not", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, tuple):
            return list(value)
        return [value]


Nested.model_rebuild()
NestedCondition.model_rebuild()
MinShould.model_rebuild()
Filter.model_rebuild()


__all__ = [
    "Condition",
    "DatetimeRange",
    "FieldCondition",
    "Filter",
    "GeoBoundingBox",
    "GeoLineString",
    "GeoPoint",
    "GeoPolygon",
    "GeoRadius",
    "HasIdCondition",
    "HasVectorCondition",
    "IsEmptyCondition",
    "IsNullCondition",
    "Match",
    "MatchAny",
    "MatchExcept",
    "MatchPhrase",
    "MatchPrefix",
    "MatchSubstring",
    "MatchText",
    "MatchTextAny",
    "MatchValue",
    "MinShould",
    "Nested",
    "NestedCondition",
    "PayloadField",
    "Range",
    "RangeInterface",
    "Slice",
    "SliceCondition",
    "ValuesCount",
    "parse_datetime",
]
