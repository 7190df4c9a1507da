"""Payload indexes: Qdrant filters answered as boolean masks over internal ids.

A scan evaluates a compiled filter (:func:`vecdb.filtering.evaluate.compile_filter`) on
every point, decoding each payload. With a payload index on a field, a
condition on that field becomes a few ``searchsorted`` calls and one scatter
into a numpy mask, so a selective filter costs microseconds per thousand
points instead of a JSON decode per point.

The answers must be exactly those of the evaluator, so the index stores the
values the way the evaluator sees them (:func:`vecdb.filtering.evaluate.extract_values`:
arrays flattened one level, ``a[].b`` paths) and keeps its type rules:

* ``match`` compares within one type: a str only equals a str, an int (never a
  bool) only an int, a bool only the same bool; ``1`` does not match ``1.0``;
* ``range`` takes every number that is not a bool, compared numerically, so the
  numeric structure of an ``integer`` index also holds the floats of the field;
* a datetime ``range`` takes strings that :func:`parse_datetime` accepts,
  compared as instants (microseconds since the epoch here);
* ``except`` passes a point having any non-null value that is not one of the
  listed values *of the list's type*: ``except ["a"]`` passes ``5``. So an
  exact-match family also records, per point, whether it has a non-null value
  of another type (the "other" entry, code -1).

What an index cannot answer exactly (text matches, geo, is_empty, has_id, ...)
makes :meth:`PayloadIndex.filter_mask` return None and the caller scans.

Storage. Each indexed structure is a column of (key, iid, version) entries,
sorted by key: a big main run, a small delta run and a tail of recent appends
(sorted into the delta on the next read, the delta merged into main when it
outgrows an eighth of it), so a write never re-sorts the whole column. Keys are
float64 numbers, int64 microseconds, or int64 codes of exact values.

Replacement. Internal ids are never reused, but ``set_payload`` replaces a
payload under the same iid and the index does not remember old values per iid
(that would cost a dict per point). Instead every update bumps a per-iid
version and entries carry the version they were written with; an entry is live
only while its version is current. Queries skip the version check while no
live point has stale entries (the common, append-only case), and stale entries
are dropped by a compaction once they are a quarter of the column.

Concurrency. One writer (the collection's write lock) and many readers. Reads
settle the append tail lazily, which mutates, so every access to shared state
holds ``self._lock``; payload extraction, the expensive part of a write, runs
before the lock is taken.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import compile_getter, is_int, is_number, parse_key_path
from vecdb.models.filters import (
    DatetimeRange,
    FieldCondition,
    Filter,
    HasIdCondition,
    MatchAny,
    MatchExcept,
    MatchValue,
    Range,
    SliceCondition,
    parse_datetime,
)

DATA_TYPES: frozenset[str] = frozenset({"keyword", "integer", "float", "bool", "datetime", "uuid", "text", "geo"})
"""Accepted index data types; ``text`` and ``geo`` are tracked for counts but answer nothing."""

_DELTA_MIN = 4096  # the delta run may hold this many entries before it is merged into main
_COMPACT_MIN = 1024  # stale entries tolerated before a compaction, whatever the column size
_EXACT_INT = 2**53  # ints beyond this do not survive float64, so they are tested in Python
_OTHER_CODE = -1  # exact-family code: "has a non-null value of another type" (for except)
_OTHER = object()  # its marker among extracted values (not -1 itself: a payload may hold -1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_IID = np.int64
_VERSION = np.uint32


def _data_type(data_type: Any) -> str:
    """Normalise a data type (a str or PayloadSchemaType) and reject unknown ones."""
    name = str(getattr(data_type, "value", data_type))
    if name not in DATA_TYPES:
        raise InvalidInput(f"unsupported payload index type {name!r}; expected one of {sorted(DATA_TYPES)}")
    return name


def _micros(moment: datetime) -> int:
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


# --------------------------------------------------------------------------- sorted columns

_Bounds = list[tuple[Any, bool]]
"""Range bounds on one side as (value, inclusive)."""


def _bound_lists(condition: Union[Range, DatetimeRange], convert: Callable[[Any], Any]) -> tuple[_Bounds, _Bounds]:
    """(lower, upper) bounds of a range with values converted to the column's key type."""
    lowers = [(convert(b), closed) for b, closed in ((condition.gt, False), (condition.gte, True)) if b is not None]
    uppers = [(convert(b), closed) for b, closed in ((condition.lt, False), (condition.lte, True)) if b is not None]
    return lowers, uppers


class _Run(NamedTuple):
    """Entries sorted by key; ``vers`` is the iid's version when the entry was written."""

    keys: np.ndarray
    iids: np.ndarray
    vers: np.ndarray


def _empty_run(dtype: Any) -> _Run:
    return _Run(np.empty(0, dtype), np.empty(0, _IID), np.empty(0, _VERSION))


def _sorted_run(parts: Sequence[_Run]) -> _Run:
    """One sorted run from several; a stable sort finds existing sorted stretches cheaply."""
    keys = np.concatenate([part.keys for part in parts])
    iids = np.concatenate([part.iids for part in parts])
    vers = np.concatenate([part.vers for part in parts])
    order = np.argsort(keys, kind="stable")
    return _Run(keys[order], iids[order], vers[order])


class _Column:
    """(key, iid, version) entries searchable by key, cheap to append to."""

    __slots__ = ("_dtype", "_main", "_delta", "_tail")

    def __init__(self, dtype: Any) -> None:
        self._dtype = dtype
        self._main = _empty_run(dtype)
        self._delta = _empty_run(dtype)
        self._tail: list[_Run] = []

    def add(self, keys: list[Any], iids: list[int], versions: np.ndarray) -> None:
        """Append entries; ``versions`` maps iid -> current version (looked up now, not later)."""
        if not keys:
            return
        iid_array = np.array(iids, dtype=_IID)
        self._tail.append(_Run(np.array(keys, dtype=self._dtype), iid_array, versions[iid_array]))

    def runs(self) -> tuple[_Run, ...]:
        """The non-empty sorted runs, after sorting pending appends in."""
        if self._tail:
            self._settle()
        return tuple(run for run in (self._main, self._delta) if len(run.keys))

    def _settle(self) -> None:
        delta = _sorted_run([self._delta, *self._tail])
        self._tail = []
        if len(delta.keys) > max(_DELTA_MIN, len(self._main.keys) // 8):
            self._main = _sorted_run([self._main, delta])
            delta = _empty_run(self._dtype)
        self._delta = delta

    def compact(self, version: np.ndarray) -> np.ndarray:
        """Drop entries whose version is no longer current; return the iids kept."""
        merged = _sorted_run([self._main, self._delta, *self._tail])
        live = merged.vers == version[merged.iids]
        self._main = _Run(merged.keys[live], merged.iids[live], merged.vers[live])
        self._delta = _empty_run(self._dtype)
        self._tail = []
        return self._main.iids

    def equal(self, keys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(iids, versions) slices of the entries whose key is one of ``keys``."""
        found = []
        for run in self.runs():
            starts = np.searchsorted(run.keys, keys, "left")
            ends = np.searchsorted(run.keys, keys, "right")
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                if end > start:
                    found.append((run.iids[start:end], run.vers[start:end]))
        return found

    def between(self, lowers: _Bounds, uppers: _Bounds) -> list[tuple[np.ndarray, np.ndarray]]:
        """(iids, versions) slices of the entries with keys inside every bound;
        a bound is (value, inclusive)."""
        found = []
        for run in self.runs():
            start, end = 0, len(run.keys)
            for value, inclusive in lowers:
                start = max(start, int(np.searchsorted(run.keys, value, "left" if inclusive else "right")))
            for value, inclusive in uppers:
                end = min(end, int(np.searchsorted(run.keys, value, "right" if inclusive else "left")))
            if end > start:
                found.append((run.iids[start:end], run.vers[start:end]))
        return found

    def everything(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(run.iids, run.vers) for run in self.runs()]


# --------------------------------------------------------------------------- one field


class _Extracted:
    """What one field index takes from a batch of payloads, before any shared state is touched."""

    __slots__ = ("iids", "flags", "exact_keys", "exact_iids", "number_keys", "number_iids", "odd", "times", "time_iids")

    def __init__(self, iids: list[int]) -> None:
        self.iids = iids
        self.flags: list[bool] = []  # per iid: has a value of the index's data type (points_count)
        self.exact_keys: list[Any] = []  # raw values (codes are assigned under the lock), or _OTHER
        self.exact_iids: list[int] = []
        self.number_keys: list[float] = []
        self.number_iids: list[int] = []
        self.odd: list[tuple[int, Any]] = []  # numbers float64 cannot hold exactly (huge ints, NaN)
        self.times: list[int] = []
        self.time_iids: list[int] = []


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


class _Selection(NamedTuple):
    """What a query needs besides the field: mask size, per-iid versions, existing points."""

    size: int
    version: np.ndarray
    known: np.ndarray


class _FieldIndex:
    """The index of one payload field: an exact-match family, numbers and/or datetimes."""

    def __init__(self, key: str, data_type: str) -> None:
        self.key = key
        self.data_type = data_type
        self.steps = parse_key_path(key)
        self._get = compile_getter(key, flat=True)
        self._exact_kind = _exact_kind(data_type)
        self._is_exact = _EXACT_TESTS.get(self._exact_kind or "", None)
        self._flag_test = _FLAG_TESTS[data_type]
        self._check_flag = data_type == "uuid"  # a uuid index counts only strings that are UUIDs
        self._codes: dict[Any, int] = {}
        self._exact = _Column(np.int64) if self._exact_kind else None
        self._numbers = _Column(np.float64) if data_type in ("integer", "float") else None
        self._odd: list[tuple[int, int, Any]] = []  # (iid, version, number) tested in Python
        self._times = _Column(np.int64) if data_type == "datetime" else None
        self._entries_of = np.zeros(0, np.uint32)  # physical entries per iid (stale included), grown on use
        self._indexed = np.zeros(0, bool)
        self.points = 0
        self._physical = 0
        self._stale_live = 0  # upper bound of stale entries of points that still exist
        self._stale_dead = 0  # upper bound of stale entries of forgotten points
        self._take = self._pick_take()

    # ------------------------------------------------------------------ writing

    def grow(self, capacity: int) -> None:
        if capacity > len(self._entries_of):
            self._entries_of = np.concatenate([self._entries_of, np.zeros(capacity - len(self._entries_of), np.uint32)])
            self._indexed = np.concatenate([self._indexed, np.zeros(capacity - len(self._indexed), bool)])

    def extract(self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]) -> _Extracted:
        """Pull the field's values out of payloads; pure, so it runs outside the lock."""
        out = _Extracted(list(iids))
        get, take, flags = self._get, self._take, out.flags
        for iid, payload in zip(iids, payloads, strict=True):
            values = get(payload) if payload else None
            flags.append(take(iid, values, out) if values else False)
        return out

    def _pick_take(self) -> Callable[[int, list[Any], _Extracted], bool]:
        """The extractor for this data type; each returns whether the point has a value
        of the type (for points_count) and appends entries to the batch."""
        if self.data_type == "integer":

            def take_integer(iid: int, values: list[Any], out: _Extracted) -> bool:
                self._take_numbers(iid, values, out)
                return self._take_exact(iid, values, out)

            return take_integer
        if self._exact_kind is not None:
            return self._take_exact
        if self.data_type == "float":
            return self._take_numbers
        if self.data_type == "datetime":
            return self._take_times
        flag_test = self._flag_test
        return lambda iid, values, out: any(flag_test(value) for value in values)

    def _take_exact(self, iid: int, values: list[Any], out: _Extracted) -> bool:
        """One entry per distinct value of the family's type, one "other" entry for any
        non-null value of another type."""
        is_exact = self._is_exact
        assert is_exact is not None
        if len(values) == 1:  # the common scalar case, without a set
            value = values[0]
            if is_exact(value):
                out.exact_keys.append(value)
                out.exact_iids.append(iid)
                return self._flag_test(value) if self._check_flag else True
            if value is not None:
                out.exact_keys.append(_OTHER)
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
            out.exact_keys.append(_OTHER)
            out.exact_iids.append(iid)
        if self._check_flag:
            return any(self._flag_test(value) for value in distinct)
        return bool(distinct)

    def _take_numbers(self, iid: int, values: list[Any], out: _Extracted) -> bool:
        """Every number that is not a bool, as float64 when that is exact, else kept aside."""
        found = False
        for value in values:
            cls = value.__class__
            if cls is float:
                exact = value == value  # NaN sorts nowhere and compares false: keep aside
            elif cls is int:
                exact = -_EXACT_INT <= value <= _EXACT_INT
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

    def _take_times(self, iid: int, values: list[Any], out: _Extracted) -> bool:
        """Strings that parse as datetimes, as microseconds since the epoch."""
        found = False
        for value in values:
            if isinstance(value, str):
                moment = parse_datetime(value)
                if moment is not None:
                    out.times.append(_micros(moment))
                    out.time_iids.append(iid)
                    found = True
        return found

    def retire(self, live: np.ndarray, dead: np.ndarray) -> None:
        """These iids' versions were just bumped, so their entries are stale. A forgotten
        point's stale entries are harmless (queries AND with the known points); a live
        point's force version checks until the next compaction."""
        if len(live):
            self._stale_live += int(self._entries_of[live].sum())
        if len(dead):
            self._stale_dead += int(self._entries_of[dead].sum())
            self.points -= int(self._indexed[dead].sum())
            self._indexed[dead] = False

    def apply(self, batch: _Extracted, version: np.ndarray) -> None:
        """Add a batch's entries, written at the iids' current versions."""
        iids = np.array(batch.iids, dtype=_IID)
        flags = np.array(batch.flags, dtype=bool)
        self.points += int(flags.sum()) - int(self._indexed[iids].sum())
        self._indexed[iids] = flags
        if self._exact is not None:
            codes = [self._code(key) for key in batch.exact_keys]
            self._exact.add(codes, batch.exact_iids, version)
        if self._numbers is not None:
            self._numbers.add(batch.number_keys, batch.number_iids, version)
            self._odd.extend((iid, int(version[iid]), value) for iid, value in batch.odd)
        if self._times is not None:
            self._times.add(batch.times, batch.time_iids, version)
        written = batch.exact_iids + batch.number_iids + batch.time_iids + [iid for iid, _ in batch.odd]
        if written:
            np.add.at(self._entries_of, np.array(written, dtype=_IID), 1)
            self._physical += len(written)
        if self._stale_live + self._stale_dead > max(_COMPACT_MIN, self._physical // 4):
            self.compact(version)

    def _code(self, key: Any) -> int:
        """Dense code of an exact value (codes are never freed: one per distinct value ever seen)."""
        if key is _OTHER:
            return _OTHER_CODE
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self._codes)
        return code

    def settle(self) -> None:
        """Sort pending appends now (after a bulk build, before the index is published)."""
        for column in (self._exact, self._numbers, self._times):
            if column is not None:
                column.runs()

    def compact(self, version: np.ndarray) -> None:
        """Physically drop entries written under an older version of their iid."""
        kept: list[np.ndarray] = []
        for column in (self._exact, self._numbers, self._times):
            if column is not None:
                kept.append(column.compact(version))
        self._odd = [(iid, ver, value) for iid, ver, value in self._odd if version[iid] == ver]
        kept.append(np.array([iid for iid, _, _ in self._odd], dtype=_IID))
        every = np.concatenate(kept)
        self._entries_of = np.bincount(every, minlength=len(self._entries_of)).astype(np.uint32)
        self._physical = len(every)
        self._stale_live = self._stale_dead = 0

    # ------------------------------------------------------------------ reading

    def _mark(self, found: list[tuple[np.ndarray, np.ndarray]], sel: _Selection) -> np.ndarray:
        """Mask of the iids of live entries among ``found``."""
        mask = np.zeros(sel.size, bool)
        for iids, vers in found:
            mask[self._live(iids, vers, sel)] = True
        return self._hide_forgotten(mask, sel)

    def _live(self, iids: np.ndarray, vers: np.ndarray, sel: _Selection) -> np.ndarray:
        if self._stale_live:
            return iids[vers == sel.version[iids]]
        return iids

    def _hide_forgotten(self, mask: np.ndarray, sel: _Selection) -> np.ndarray:
        if self._stale_dead:
            mask &= sel.known
        return mask

    def match_mask(self, match: Any, sel: _Selection) -> Optional[np.ndarray]:
        """match value / any / except from the exact family, or None when it cannot be exact."""
        if self._exact is None:
            return None
        if isinstance(match, MatchValue):
            wanted = [match.value]
        elif isinstance(match, MatchAny):
            wanted = list(match.any)
        elif isinstance(match, MatchExcept):
            return self._except_mask(list(match.except_), sel)
        else:
            return None  # text, phrase, prefix, ...: never from these indexes
        if not wanted:
            return np.zeros(sel.size, bool)  # match any [] holds for no value
        if not self._holds_kind(wanted):
            return None
        return self._mark(self._exact.equal(self._known_codes(wanted)), sel)

    def _holds_kind(self, values: list[Any]) -> bool:
        """Whether every value is of the type this index keeps (so all candidates are in it)."""
        return all(self._is_exact(value) for value in values)  # type: ignore[misc]

    def _known_codes(self, values: list[Any]) -> np.ndarray:
        codes = {self._codes[value] for value in values if value in self._codes}
        return np.array(sorted(codes), dtype=np.int64)

    def _except_mask(self, excluded: list[Any], sel: _Selection) -> Optional[np.ndarray]:
        """A point passes when it has a non-null value outside ``excluded``. Each point has one
        entry per distinct value of the index's type plus one "other" entry if it has a non-null
        value of another type, so it passes iff it has more entries than excluded-value entries."""
        if excluded and not self._holds_kind(excluded):
            return None
        assert self._exact is not None
        counts = np.zeros(sel.size, np.int64)
        for iids, vers in self._exact.everything():
            counts += np.bincount(self._live(iids, vers, sel), minlength=sel.size)
        if excluded:
            for iids, vers in self._exact.equal(self._known_codes(excluded)):
                counts -= np.bincount(self._live(iids, vers, sel), minlength=sel.size)
        return self._hide_forgotten(counts > 0, sel)

    def range_mask(self, condition: Any, sel: _Selection) -> Optional[np.ndarray]:
        """Numeric range from the numbers, datetime range from the datetimes, else None."""
        if isinstance(condition, Range):
            return self._number_range(condition, sel)
        if isinstance(condition, DatetimeRange):
            return self._time_range(condition, sel)
        return None

    def _number_range(self, condition: Range, sel: _Selection) -> Optional[np.ndarray]:
        if self._numbers is None:
            return None
        bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
        for bound in bounds:
            if bound is None:
                continue
            if not is_number(bound) or (isinstance(bound, int) and not -_EXACT_INT <= bound <= _EXACT_INT):
                return None  # a bound float64 cannot hold would compare differently (the model gives floats)
            if math.isnan(bound):
                return np.zeros(sel.size, bool)  # every comparison with NaN is false
        lowers, uppers = _bound_lists(condition, float)
        mask = self._mark(self._numbers.between(lowers, uppers), sel)
        if self._odd:
            self._mark_odd(mask, lowers, uppers, sel)
        return mask

    def _mark_odd(self, mask: np.ndarray, lowers: _Bounds, uppers: _Bounds, sel: _Selection) -> None:
        """Numbers float64 cannot hold exactly, compared the way Python (the evaluator) does."""
        for iid, ver, value in self._odd:
            if sel.version[iid] != ver or not sel.known[iid]:
                continue
            if all(value >= b if inclusive else value > b for b, inclusive in lowers) and all(
                value <= b if inclusive else value < b for b, inclusive in uppers
            ):
                mask[iid] = True

    def _time_range(self, condition: DatetimeRange, sel: _Selection) -> Optional[np.ndarray]:
        if self._times is None:
            return None
        bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
        if any(b is not None and (not isinstance(b, datetime) or b.utcoffset() is None) for b in bounds):
            return None  # a naive bound does not compare with the evaluator's aware values either
        lowers, uppers = _bound_lists(condition, _micros)
        return self._mark(self._times.between(lowers, uppers), sel)


# --------------------------------------------------------------------------- the collection's indexes


def _fit(mask: np.ndarray, n: int) -> np.ndarray:
    """A mask of exactly ``n`` iids: iids beyond the capacity have no entries, so False."""
    if n <= len(mask):
        return mask[:n]
    return np.concatenate([mask, np.zeros(n - len(mask), bool)])


def _as_filter(flt: Union[Filter, dict[str, Any], None]) -> Optional[Filter]:
    if flt is None or isinstance(flt, Filter):
        return flt
    return Filter.model_validate(flt)


class PayloadIndex:
    """All payload indexes of one collection (field key path -> data type).

    Masks are over internal ids and relative to the *known* points: those whose
    latest :meth:`update` gave a payload, plus those a bulk :meth:`add_field` listed.
    The caller ANDs them with its alive mask.
    """

    def __init__(self, schema: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._capacity = 0
        self._known = np.zeros(0, bool)
        self._version = np.zeros(0, _VERSION)
        self._fields: dict[str, _FieldIndex] = {}
        self._by_steps: dict[tuple[Any, ...], _FieldIndex] = {}
        for field, data_type in schema.items():
            self._publish(_FieldIndex(field, _data_type(data_type)))

    @property
    def fields(self) -> dict[str, str]:
        with self._lock:
            return {name: index.data_type for name, index in self._fields.items()}

    # ------------------------------------------------------------------ writing

    def add_field(self, field: str, data_type: str, items: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Build (or rebuild) one field's index from the current (iid, payload) pairs.

        The listed iids become known points. Extraction and sorting happen before the
        lock is taken (there is one writer, so the versions read meanwhile stay valid);
        readers see the old index, or none, until the new one is published.
        """
        latest = {int(iid): payload for iid, payload in items if payload is not None}
        if latest and min(latest) < 0:
            raise ValueError("internal ids are non-negative")
        index = _FieldIndex(field, _data_type(data_type))
        iids = list(latest)
        batch = index.extract(iids, list(latest.values()))
        with self._lock:
            if iids:
                self._grow(max(iids) + 1)
                self._adopt(np.array(iids, dtype=_IID))
            version, capacity = self._version, self._capacity
        index.grow(capacity)
        index.apply(batch, version)
        index.settle()
        with self._lock:
            index.grow(self._capacity)
            self._publish(index)

    def _adopt(self, iids: np.ndarray) -> None:
        """Mark listed iids known. Entries other fields still hold for one that was forgotten
        are stale (its version moved on when it was forgotten) and are no longer hidden by the
        known mask, so those fields must check versions now."""
        fresh = iids[~self._known[iids]]
        if len(fresh):
            self._known[fresh] = True
            for index in self._fields.values():
                index.retire(fresh, fresh[:0])

    def drop_field(self, field: str) -> None:
        with self._lock:
            index = self._fields.pop(field, None)
            if index is not None:
                self._reindex_steps()

    def update(self, iid: int, payload: Optional[dict[str, Any]]) -> None:
        """Set the current payload of ``iid``; None forgets the point."""
        self.update_many([iid], [payload])

    def update_many(self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]) -> None:
        """Set the current payloads of several iids (the last one wins for a repeated iid)."""
        latest = {int(iid): payload for iid, payload in zip(iids, payloads, strict=True)}
        if not latest:
            return
        if min(latest) < 0:
            raise ValueError("internal ids are non-negative")
        live = [iid for iid, payload in latest.items() if payload is not None]
        dead = [iid for iid, payload in latest.items() if payload is None]
        live_payloads = [latest[iid] for iid in live]
        with self._lock:
            fields = list(self._fields.values())
        batches = [(index, index.extract(live, live_payloads)) for index in fields]
        live_array, dead_array = np.array(live, dtype=_IID), np.array(dead, dtype=_IID)
        with self._lock:
            self._grow(max(latest) + 1)
            self._version[live_array] += 1
            self._version[dead_array] += 1
            self._known[live_array] = True
            self._known[dead_array] = False
            for index, batch in batches:
                if self._fields.get(index.key) is not index:
                    continue  # dropped or rebuilt meanwhile
                index.retire(live_array, dead_array)
                index.apply(batch, self._version)

    def _grow(self, needed: int) -> None:
        if needed <= self._capacity:
            return
        capacity = max(needed, 2 * self._capacity, 1024)
        self._known = np.concatenate([self._known, np.zeros(capacity - self._capacity, bool)])
        self._version = np.concatenate([self._version, np.zeros(capacity - self._capacity, _VERSION)])
        self._capacity = capacity
        for index in self._fields.values():
            index.grow(capacity)

    def _publish(self, index: _FieldIndex) -> None:
        index.grow(self._capacity)
        self._fields[index.key] = index
        self._reindex_steps()

    def _reindex_steps(self) -> None:
        """Conditions find fields by parsed path, so ``a`` and ``"a"`` are the same field."""
        self._by_steps = {index.steps: index for index in self._fields.values()}

    # ------------------------------------------------------------------ reading

    def points_count(self, field: str) -> int:
        """Known points with at least one value of the field's data type (Qdrant's ``points``)."""
        with self._lock:
            index = self._fields.get(field)
            if index is None:
                raise KeyError(f"no payload index on {field!r}")
            return index.points

    def filter_mask(self, flt: Union[Filter, dict[str, Any], None], n: int) -> Optional[np.ndarray]:
        """bool[n] of the known iids < n that pass ``flt``, from indexes only; None when
        some part of the filter cannot be answered exactly (the caller then scans)."""
        parsed = _as_filter(flt)
        with self._lock:
            sel = self._selection()
            mask = sel.known.copy() if parsed is None else self._filter(parsed, sel)
        return None if mask is None else _fit(mask, n)

    def candidates_mask(self, flt: Union[Filter, dict[str, Any], None], n: int) -> Optional[np.ndarray]:
        """A superset of the iids < n passing ``flt``: the AND of the top-level clauses
        indexes answer exactly (each must and must_not condition on its own; should and
        min_should only whole). None when no clause is answerable."""
        parsed = _as_filter(flt)
        if parsed is None:
            return None
        with self._lock:
            sel = self._selection()
            parts = self._answerable_parts(parsed, sel)
            if not parts:
                return None
            mask = parts[0]
            for part in parts[1:]:
                mask &= part
        return _fit(mask, n)

    def _selection(self) -> _Selection:
        return _Selection(self._capacity, self._version, self._known)

    def _answerable_parts(self, flt: Filter, sel: _Selection) -> list[np.ndarray]:
        parts: list[np.ndarray] = []
        for condition in flt.must or []:
            mask = self._condition(condition, sel)
            if mask is not None:
                parts.append(mask)
        for condition in flt.must_not or []:
            mask = self._condition(condition, sel)
            if mask is not None:
                parts.append(sel.known & ~mask)
        if flt.should:
            mask = self._any_of(flt.should, sel)
            if mask is not None:
                parts.append(mask)
        if flt.min_should is not None:
            mask = self._at_least(flt.min_should.conditions, flt.min_should.min_count, sel)
            if mask is not None:
                parts.append(mask)
        return parts

    def _filter(self, flt: Filter, sel: _Selection) -> Optional[np.ndarray]:
        """Mirror of ``vecdb.filtering.evaluate._compile_node`` on masks: must AND, must_not AND NOT
        (relative to the known points), a non-empty should OR, min_should a count."""
        result = sel.known.copy()
        for condition in flt.must or []:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            result &= mask
        for condition in flt.must_not or []:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            result &= ~mask
        if flt.should:  # an empty should constrains nothing
            mask = self._any_of(flt.should, sel)
            if mask is None:
                return None
            result &= mask
        if flt.min_should is not None:
            mask = self._at_least(flt.min_should.conditions, flt.min_should.min_count, sel)
            if mask is None:
                return None
            result &= mask
        return result

    def _any_of(self, conditions: list[Any], sel: _Selection) -> Optional[np.ndarray]:
        result = np.zeros(sel.size, bool)
        for condition in conditions:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            result |= mask
        return result

    def _at_least(self, conditions: list[Any], need: int, sel: _Selection) -> Optional[np.ndarray]:
        if need > len(conditions):
            return np.zeros(sel.size, bool)  # as the evaluator: can never be met
        hits = np.zeros(sel.size, np.int32)
        for condition in conditions:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            hits += mask
        return hits >= need

    def _condition(self, condition: Any, sel: _Selection) -> Optional[np.ndarray]:
        """Mask of one condition, or None when indexes cannot answer it exactly."""
        if isinstance(condition, Filter):
            return self._filter(condition, sel)
        if isinstance(condition, FieldCondition):
            return self._field_condition(condition, sel)
        if isinstance(condition, HasIdCondition) and not condition.has_id:
            return np.zeros(sel.size, bool)  # has_id [] holds for no point
        if isinstance(condition, SliceCondition) and condition.slice.total == 1:
            return sel.known.copy()  # the one slice of one holds every point
        return None  # has_id, has_vector, nested, is_empty, is_null, other slices

    def _field_condition(self, condition: FieldCondition, sel: _Selection) -> Optional[np.ndarray]:
        try:
            steps = parse_key_path(condition.key)
        except InvalidInput:
            return None  # the caller's compile_filter reports the bad key
        index = self._by_steps.get(steps)
        if index is None:
            return None
        if condition.match is not None:
            return index.match_mask(condition.match, sel)
        if condition.range is not None:
            return index.range_mask(condition.range, sel)
        return None  # geo, values_count, is_empty, is_null


__all__ = ["DATA_TYPES", "PayloadIndex"]
