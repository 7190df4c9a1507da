"""Sorted value columns: the (key, iid, version) entries a payload index searches by key.

A field index (:mod:`vecdb.filtering.field_index`) keeps one column per structure
(exact-value codes, numbers, datetimes); this module is the data structure alone,
with no notion of fields, payloads or filters, so its cost model reads in one place.

Each column is a big main run, a small delta run and a tail of recent appends
(sorted into the delta on the next read, the delta merged into main when it
outgrows an eighth of it), so a write never re-sorts the whole column. Keys are
float64 numbers, int64 microseconds, or int64 codes of exact values. Entries carry
the version their iid had when they were written; :meth:`Column.compact` drops the
ones whose iid has moved on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from vecdb.models.filters import DatetimeRange, Range

IID = np.int64
"""dtype of internal ids in columns and masks."""
VERSION = np.uint32
"""dtype of per-iid versions."""
_DELTA_MIN = 4096  # the delta run may hold this many entries before it is merged into main

Bounds = list[tuple[Any, bool]]
"""Range bounds on one side as (value, inclusive)."""


def bound_lists(condition: Union[Range, DatetimeRange], convert: Callable[[Any], Any]) -> tuple[Bounds, Bounds]:
    """(lower, upper) bounds of a range with values converted to the column's key type."""
    lowers = [(convert(b), closed) for b, closed in ((condition.gt, False), (condition.gte, True)) if b is not None]
    uppers = [(convert(b), closed) for b, closed in ((condition.lt, False), (condition.lte, True)) if b is not None]
    return lowers, uppers


class Run(NamedTuple):
    """Entries sorted by key; ``vers`` is the iid's version when the entry was written."""

    keys: np.ndarray
    iids: np.ndarray
    vers: np.ndarray


def _empty_run(dtype: Any) -> Run:
    return Run(np.empty(0, dtype), np.empty(0, IID), np.empty(0, VERSION))


def _sorted_run(parts: Sequence[Run]) -> Run:
    """One sorted run from several; a stable sort finds existing sorted stretches cheaply."""
    keys = np.concatenate([part.keys for part in parts])
    iids = np.concatenate([part.iids for part in parts])
    vers = np.concatenate([part.vers for part in parts])
    order = np.argsort(keys, kind="stable")
    return Run(keys[order], iids[order], vers[order])


class Column:
    """(key, iid, version) entries searchable by key, cheap to append to."""

    __slots__ = ("_dtype", "_main", "_delta", "_tail")

    def __init__(self, dtype: Any) -> None:
        self._dtype = dtype
        self._main = _empty_run(dtype)
        self._delta = _empty_run(dtype)
        self._tail: list[Run] = []

    def add(self, keys: list[Any], iids: list[int], versions: np.ndarray) -> None:
        """Append entries; ``versions`` maps iid -> current version (looked up now, not later)."""
        if not keys:
            return
        iid_array = np.array(iids, dtype=IID)
        self._tail.append(Run(np.array(keys, dtype=self._dtype), iid_array, versions[iid_array]))

    def runs(self) -> tuple[Run, ...]:
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
        self._main = Run(merged.keys[live], merged.iids[live], merged.vers[live])
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

    def between(self, lowers: Bounds, uppers: Bounds) -> list[tuple[np.ndarray, np.ndarray]]:
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


class GeoColumn:
    """(lat, lon, iid, version) entries of a geo index, in arrival order: a geo condition tests every
    entry at once (numpy, about 10 ns an entry), so nothing is sorted; appends are joined on the next read."""

    __slots__ = ("_parts", "_joined")

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._joined: Optional[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = None

    def add(self, lats: list[float], lons: list[float], iids: list[int], versions: np.ndarray) -> None:
        if not lats:
            return
        iid_array = np.array(iids, dtype=IID)
        self._parts.append((np.array(lats, np.float64), np.array(lons, np.float64), iid_array, versions[iid_array]))
        self._joined = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lats, lons, iids, versions) of every entry."""
        if self._joined is None:
            if not self._parts:
                self._joined = (np.empty(0), np.empty(0), np.empty(0, IID), np.empty(0, VERSION))
            else:
                self._joined = tuple(np.concatenate(column) for column in zip(*self._parts, strict=True))  # type: ignore[assignment]
                self._parts = [self._joined]  # type: ignore[list-item]
        return self._joined  # type: ignore[return-value]

    def compact(self, version: np.ndarray) -> np.ndarray:
        """Drop entries whose version is no longer current; return the iids kept."""
        lats, lons, iids, vers = self.arrays()
        live = vers == version[iids]
        self._parts = [(lats[live], lons[live], iids[live], vers[live])]
        self._joined = None
        return iids[live]


__all__ = ["IID", "VERSION", "Bounds", "Column", "GeoColumn", "Run", "bound_lists"]
