"""What a payload index keeps of a field, per data type, pulled out of payloads before any lock.

Extraction is the expensive part of a write (a key path walked per payload, a
type test per value) and touches no shared state, so it is separate from the
index that stores its result (:mod:`vecdb.filtering.field_index`): a writer runs
it for every indexed field outside the lock, then applies the batches under it.
The type rules are the evaluator's (:mod:`vecdb.filtering.values`), so that the
index and a scan see the same values:

* the exact-match family of a ``keyword``/``uuid`` index keeps strings, of an
  ``integer`` index ints (never bools), of a ``bool`` index bools, plus one "other"
  entry per point holding a non-null value of another type (``except`` needs it);
* ``integer`` and ``float`` indexes keep every number that is not a bool, as
  float64 when that is exact, else aside (huge ints, NaN);
* a ``datetime`` index keeps strings :func:`parse_datetime` accepts, as
  microseconds since the epoch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from vecdb.errors import InvalidInput
from vecdb.filtering.geo import lat_lon
from vecdb.filtering.keypath import parse_key_path
from vecdb.filtering.values import FILTER_KEY, compile_getter, is_int, is_number
from vecdb.models.filters import parse_datetime

DATA_TYPES: frozenset[str] = frozenset({"keyword", "integer", "float", "bool", "datetime", "uuid", "text", "geo"})
"""Accepted index data types; ``geo`` answers geo conditions through :mod:`vecdb.filtering.geo`; ``text``
answers text conditions and BM25 through :mod:`vecdb.filtering.fulltext`."""

EXACT_INT = 2**53  # ints beyond this do not survive float64, so they are tested in Python
OTHER = object()
"""Marks "a non-null value of another type" among extracted values (coded -1 in the index, but not -1
itself here: a payload may hold -1)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def check_data_type(data_type: Any) -> str:
    """Normalise a data type (a str or PayloadSchemaType) and reject unknown ones."""
    name = str(getattr(data_type, "value", data_type))
    if name not in DATA_TYPES:
        raise InvalidInput(f"unsupported payload index type {name!r}; expected one of {sorted(DATA_TYPES)}")
    return name


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: orders aware datetimes exactly as Python compares them."""
    return (moment - _EPOCH) // _MICROSECOND


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_geo(value: Any) -> bool:
    return isinstance(value, dict) and is_number(value.get("lat")) and is_number(value.get("lon"))


class Extracted:
    """What one field index takes from a batch of payloads, before any shared state is touched."""

    __slots__ = (
        "iids",
        "flags",
        "exact_keys",
        "exact_iids",
        "number_keys",
        "number_iids",
        "odd",
        "times",
        "time_iids",
        "texts",
        "geo_lats",
        "geo_lons",
        "geo_iids",
    )

    def __init__(self, iids: list[int]) -> None:
        self.iids = iids
        self.flags: list[bool] = []  # per iid: has a value of the index's data type (points_count)
        self.exact_keys: list[Any] = []  # raw values (codes are assigned under the lock), or OTHER
        self.exact_iids: list[int] = []
        self.number_keys: list[float] = []
        self.number_iids: list[int] = []
        self.odd: list[tuple[int, Any]] = []  # numbers float64 cannot hold exactly (huge ints, NaN)
        self.times: list[int] = []
        self.time_iids: list[int] = []
        self.texts: list[tuple[int, list[list[str]]]] = []  # a text index's tokens of each string, per iid
        self.geo_lats: list[float] = []  # a geo index's points (lat, lon), one entry per geo value
        self.geo_lons: list[float] = []
        self.geo_iids: list[int] = []


def _exact_kind(data_type: str) -> Optional[str]:
    """Which exact-match family a data type keeps: the type of value match/any/except it answers."""
    return {"keyword": "str", "uuid": "str", "integer": "int", "bool": "bool"}.get(data_type)


_EXACT_TESTS: dict[str, Callable[[Any], bool]] = {
    "str": lambda value: isinstance(value, str),
    "int": is_int,
    "bool": lambda value: isinstance(value, bool),
}

_FLAG_TESTS: dict[str, Callable[[Any], bool]] = {
    "keyword": lambda value: isinstance(value, str),
    "text": lambda value: isinstance(value, str),
    "uuid": lambda value: isinstance(value, str) and _is_uuid(value),
    "integer": is_int,
    "float": is_number,
    "bool": lambda value: isinstance(value, bool),
    "datetime": lambda value: isinstance(value, str) and parse_datetime(value) is not None,
    "geo": _is_geo,
}


class Extractor:
    """Pulls one field's values of one data type out of payloads; holds no state but its rules."""

    def __init__(
        self, key: str, data_type: str, tokenize: Optional[Callable[[list[str]], list[list[str]]]] = None
    ) -> None:
        self.data_type = data_type
        self._tokenize = tokenize
        """A text index's tokenizer (strings -> tokens of each), run here, outside the lock."""
        self._get = compile_getter(key, flat=True)
        steps = parse_key_path(key, FILTER_KEY)
        self._plain_key: Optional[str] = steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None
        """The top-level key, when the path is one (the columnar fast path of :meth:`extract` needs it)."""
        self.exact_kind = _exact_kind(data_type)
        """The type of value match/any/except the index answers, or None (no exact family)."""
        self.is_exact = _EXACT_TESTS.get(self.exact_kind or "", None)
        """Whether a value is of ``exact_kind``."""
        self._flag_test = _FLAG_TESTS[data_type]
        self._check_flag = data_type == "uuid"  # a uuid index counts only strings that are UUIDs
        self._take = self._pick_take()

    def extract(self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]) -> Extracted:
        """Pull the field's values out of payloads; pure, so it runs outside the lock."""
        fast = self._extract_scalars(iids, payloads)
        if fast is not None:
            return fast
        out = Extracted(list(iids))
        get, take, flags = self._get, self._take, out.flags
        for iid, payload in zip(iids, payloads, strict=True):
            values = get(payload) if payload else None
            flags.append(take(iid, values, out) if values else False)
        return out

    def _extract_scalars(
        self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]
    ) -> Optional[Extracted]:
        """:meth:`extract` in a few list passes when every point holds, at a top-level key, one value of
        the index's own type or none (the common case: ``user_id``, ``timestamp``, ``score``): what the
        per-point rules below give then, without a Python call per point (opening a collection rebuilds
        its indexes from every payload). None for anything else (lists, other types), which takes them."""
        name, data_type = self._plain_key, self.data_type
        if name is None or data_type not in ("keyword", "integer", "float"):
            return None
        values = [payload.get(name) if payload else None for payload in payloads]
        present = [(iid, value) for iid, value in zip(iids, values, strict=True) if value is not None]
        if data_type == "keyword":
            if not all(value.__class__ is str for _, value in present):
                return None
        elif data_type == "integer":
            if not all(value.__class__ is int and -EXACT_INT <= value <= EXACT_INT for _, value in present):
                return None
        elif not all(value.__class__ is float and value == value for _, value in present):  # (no NaN)
            return None
        out = Extracted(list(iids))
        out.flags = [value is not None for value in values]
        kept_iids = [iid for iid, _ in present]
        kept = [value for _, value in present]
        if data_type in ("keyword", "integer"):
            out.exact_keys, out.exact_iids = kept, kept_iids
        if data_type in ("integer", "float"):
            out.number_keys, out.number_iids = [float(value) for value in kept], list(kept_iids)
        return out

    def _pick_take(self) -> Callable[[int, list[Any], Extracted], bool]:
        """The extractor for this data type; each returns whether the point has a value
        of the type (for points_count) and appends entries to the batch."""
        if self.data_type == "integer":

            def take_integer(iid: int, values: list[Any], out: Extracted) -> bool:
                self._take_numbers(iid, values, out)
                return self._take_exact(iid, values, out)

            return take_integer
        if self.exact_kind is not None:
            return self._take_exact
        if self.data_type == "float":
            return self._take_numbers
        if self.data_type == "datetime":
            return self._take_times
        if self._tokenize is not None:
            return self._take_texts
        if self.data_type == "geo":
            return self._take_geo
        flag_test = self._flag_test
        return lambda iid, values, out: any(flag_test(value) for value in values)

    def _take_exact(self, iid: int, values: list[Any], out: Extracted) -> bool:
        """One entry per distinct value of the family's type, one "other" entry for any
        non-null value of another type."""
        is_exact = self.is_exact
        assert is_exact is not None
        if len(values) == 1:  # the common scalar case, without a set
            value = values[0]
            if is_exact(value):
                out.exact_keys.append(value)
                out.exact_iids.append(iid)
                return self._flag_test(value) if self._check_flag else True
            if value is not None:
                out.exact_keys.append(OTHER)
                out.exact_iids.append(iid)
            return False
        distinct: set[Any] = set()
        other = False
        for value in values:
            if is_exact(value):
                distinct.add(value)
            elif value is not None:
                other = True
        for value in distinct:
            out.exact_keys.append(value)
            out.exact_iids.append(iid)
        if other:
            out.exact_keys.append(OTHER)
            out.exact_iids.append(iid)
        if self._check_flag:
            return any(self._flag_test(value) for value in distinct)
        return bool(distinct)

    def _take_numbers(self, iid: int, values: list[Any], out: Extracted) -> bool:
        """Every number that is not a bool, as float64 when that is exact, else kept aside."""
        found = False
        for value in values:
            cls = value.__class__
            if cls is float:
                exact = value == value  # NaN sorts nowhere and compares false: keep aside
            elif cls is int:
                exact = -EXACT_INT <= value <= EXACT_INT
            elif is_number(value):  # an int or float subclass other than bool
                exact = False
            else:
                continue
            found = True
            if exact:
                out.number_keys.append(float(value))
                out.number_iids.append(iid)
            else:
                out.odd.append((iid, value))
        return found

    def _take_texts(self, iid: int, values: list[Any], out: Extracted) -> bool:
        """A text index's tokens of each string value (per value: conditions hold per string)."""
        assert self._tokenize is not None
        strings = [value for value in values if isinstance(value, str)]
        if strings:
            out.texts.append((iid, self._tokenize(strings)))
        return bool(strings)

    def _take_geo(self, iid: int, values: list[Any], out: Extracted) -> bool:
        """Every geo value (an object of finite ``lat``/``lon`` numbers), as the geo conditions read it."""
        found = False
        for value in values:
            point = lat_lon(value)
            if point is not None:
                out.geo_lats.append(point[0])
                out.geo_lons.append(point[1])
                out.geo_iids.append(iid)
                found = True
        return found

    def _take_times(self, iid: int, values: list[Any], out: Extracted) -> bool:
        """Strings that parse as datetimes, as microseconds since the epoch."""
        found = False
        for value in values:
            if isinstance(value, str):
                moment = parse_datetime(value)
                if moment is not None:
                    out.times.append(micros(moment))
                    out.time_iids.append(iid)
                    found = True
        return found


__all__ = ["DATA_TYPES", "EXACT_INT", "OTHER", "Extracted", "Extractor", "check_data_type", "micros"]
