"""One payload field's index: its columns, the versions of their entries, and the masks they answer.

A :class:`vecdb.filtering.payload_index.PayloadIndex` holds one of these per indexed
field and combines their masks; this module answers one condition on one field
(``match`` value/any/except, a numeric or datetime ``range``) from sorted columns
(:mod:`vecdb.filtering.columns`), with the values extraction
(:mod:`vecdb.filtering.field_values`) took from the payloads.

Entries are never updated in place: a write bumps the iid's version, so its old
entries go stale; queries check versions only while some live point has stale
entries, and a compaction drops them once they are a quarter of the field's entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Optional

import numpy as np

from vecdb.filtering import geo
from vecdb.filtering.columns import IID, Bounds, Column, GeoColumn, Run, bound_lists
from vecdb.filtering.field_values import EXACT_INT, OTHER, Extracted, Extractor, micros
from vecdb.filtering.fulltext import TEXT_MATCHES, TextAnalyzer, settings_from_params
from vecdb.filtering.keypath import parse_key_path
from vecdb.filtering.text_index import TextIndex
from vecdb.filtering.values import is_number
from vecdb.models.filters import DatetimeRange, MatchAny, MatchExcept, MatchValue, Range

_COMPACT_MIN = 1024  # stale entries tolerated before a compaction, whatever the column size
_OTHER_CODE = -1  # exact-family code: "has a non-null value of another type" (for except)


class Selection(NamedTuple):
    """What a query needs besides the field: mask size, per-iid versions, existing points."""

    size: int
    version: np.ndarray
    known: np.ndarray


class FieldIndex:
    """The index of one payload field: an exact-match family, numbers and/or datetimes."""

    def __init__(self, key: str, data_type: str, params: Optional[dict[str, Any]] = None) -> None:
        self.key = key
        self.data_type = data_type
        self.params = params
        self.steps = parse_key_path(key, "payload index field_name")
        self.text: Optional[TextIndex] = None
        """A ``text`` index's tokens (conditions and BM25), None for other types."""
        if data_type == "text":
            self.text = TextIndex(TextAnalyzer(settings_from_params(params)))
        self._extractor = Extractor(key, data_type, self.text.tokens_of if self.text is not None else None)
        self._codes: dict[Any, int] = {}
        self._values: list[Any] = []  # the value of each code (its position)
        self._exact = Column(np.int64) if self._extractor.exact_kind else None
        self._numbers = Column(np.float64) if data_type in ("integer", "float") else None
        self._odd: list[tuple[int, int, Any]] = []  # (iid, version, number) tested in Python
        self._times = Column(np.int64) if data_type == "datetime" else None
        self._geo = GeoColumn() if data_type == "geo" else None
        self._entries_of = np.zeros(0, np.uint32)  # physical entries per iid (stale included), grown on use
        self._indexed = np.zeros(0, bool)
        self.points = 0
        self._physical = 0
        self._stale_live = 0  # upper bound of stale entries of points that still exist
        self._stale_dead = 0  # upper bound of stale entries of forgotten points

    # ------------------------------------------------------------------ writing

    def grow(self, capacity: int) -> None:
        if capacity > len(self._entries_of):
            self._entries_of = np.concatenate([self._entries_of, np.zeros(capacity - len(self._entries_of), np.uint32)])
            self._indexed = np.concatenate([self._indexed, np.zeros(capacity - len(self._indexed), bool)])

    def extract(self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]) -> Extracted:
        """Pull the field's values out of payloads; pure, so it runs outside the lock."""
        return self._extractor.extract(iids, payloads)

    def retire(self, live: np.ndarray, dead: np.ndarray) -> None:
        """These iids' versions were just bumped, so their entries are stale. A forgotten
        point's stale entries are harmless (queries AND with the known points); a live
        point's force version checks until the next compaction."""
        if self.text is not None:
            self.text.remove(live.tolist())
            self.text.remove(dead.tolist())
        if len(live):
            self._stale_live += int(self._entries_of[live].sum())
        if len(dead):
            self._stale_dead += int(self._entries_of[dead].sum())
            self.points -= int(self._indexed[dead].sum())
            self._indexed[dead] = False

    def apply(self, batch: Extracted, version: np.ndarray) -> None:
        """Add a batch's entries, written at the iids' current versions."""
        iids = np.array(batch.iids, dtype=IID)
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
        if self._geo is not None:
            self._geo.add(batch.geo_lats, batch.geo_lons, batch.geo_iids, version)
        if self.text is not None:
            for iid, tokens in batch.texts:
                self.text.add(iid, tokens)
        written = (
            batch.exact_iids + batch.number_iids + batch.time_iids + batch.geo_iids + [iid for iid, _ in batch.odd]
        )
        if written:
            np.add.at(self._entries_of, np.array(written, dtype=IID), 1)
            self._physical += len(written)
        if self._stale_live + self._stale_dead > max(_COMPACT_MIN, self._physical // 4):
            self.compact(version)

    def _code(self, key: Any) -> int:
        """Dense code of an exact value (codes are never freed: one per distinct value ever seen)."""
        if key is OTHER:
            return _OTHER_CODE
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self._codes)
            self._values.append(key)
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
        if self._geo is not None:
            kept.append(self._geo.compact(version))
        self._odd = [(iid, ver, value) for iid, ver, value in self._odd if version[iid] == ver]
        kept.append(np.array([iid for iid, _, _ in self._odd], dtype=IID))
        every = np.concatenate(kept)
        self._entries_of = np.bincount(every, minlength=len(self._entries_of)).astype(np.uint32)
        self._physical = len(every)
        self._stale_live = self._stale_dead = 0

    # ------------------------------------------------------------------ reading

    def _mark(self, found: list[tuple[np.ndarray, np.ndarray]], sel: Selection) -> np.ndarray:
        """Mask of the iids of live entries among ``found``."""
        mask = np.zeros(sel.size, bool)
        for iids, vers in found:
            mask[self._live(iids, vers, sel)] = True
        return self._hide_forgotten(mask, sel)

    def _live(self, iids: np.ndarray, vers: np.ndarray, sel: Selection) -> np.ndarray:
        if self._stale_live:
            return iids[vers == sel.version[iids]]
        return iids

    def _hide_forgotten(self, mask: np.ndarray, sel: Selection) -> np.ndarray:
        if self._stale_dead:
            mask &= sel.known
        return mask

    def match_mask(self, match: Any, sel: Selection) -> Optional[np.ndarray]:
        """match value / any / except from the exact family, text / text_any / phrase from a
        text index, or None when it cannot be exact."""
        if self.text is not None and isinstance(match, TEXT_MATCHES):
            return self.text.mask(match, sel.size)
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
        return all(self._extractor.is_exact(value) for value in values)  # type: ignore[misc]

    def _known_codes(self, values: list[Any]) -> np.ndarray:
        codes = {self._codes[value] for value in values if value in self._codes}
        return np.array(sorted(codes), dtype=np.int64)

    def _except_mask(self, excluded: list[Any], sel: Selection) -> Optional[np.ndarray]:
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

    def geo_mask(self, condition: geo.GeoCondition, sel: Selection) -> Optional[np.ndarray]:
        """A geo radius, box or polygon over a geo index's points, else None."""
        if self._geo is None:
            return None
        lats, lons, iids, vers = self._geo.arrays()
        inside = geo.mask(lats, lons, condition)
        return self._mark([(iids[inside], vers[inside])], sel)

    def range_mask(self, condition: Any, sel: Selection) -> Optional[np.ndarray]:
        """Numeric range from the numbers, datetime range from the datetimes, else None."""
        if isinstance(condition, Range):
            return self._number_range(condition, sel)
        if isinstance(condition, DatetimeRange):
            return self._time_range(condition, sel)
        return None

    def _number_range(self, condition: Range, sel: Selection) -> Optional[np.ndarray]:
        if self._numbers is None:
            return None
        bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
        for bound in bounds:
            if bound is None:
                continue
            if not is_number(bound) or (isinstance(bound, int) and not -EXACT_INT <= bound <= EXACT_INT):
                return None  # a bound float64 cannot hold would compare differently (the model gives floats)
            if math.isnan(bound):
                return np.zeros(sel.size, bool)  # every comparison with NaN is false
        lowers, uppers = bound_lists(condition, float)
        mask = self._mark(self._numbers.between(lowers, uppers), sel)
        if self._odd:
            self._mark_odd(mask, lowers, uppers, sel)
        return mask

    def _mark_odd(self, mask: np.ndarray, lowers: Bounds, uppers: Bounds, sel: Selection) -> None:
        """Numbers float64 cannot hold exactly, compared the way Python (the evaluator) does."""
        for iid, ver, value in self._odd:
            if sel.version[iid] != ver or not sel.known[iid]:
                continue
            if all(value >= b if inclusive else value > b for b, inclusive in lowers) and all(
                value <= b if inclusive else value < b for b, inclusive in uppers
            ):
                mask[iid] = True

    @property
    def has_range(self) -> bool:
        """Whether it keeps values in key order (what a ``range`` and ``order_by`` read): integer indexes
        unless created with ``"range": false``, float and datetime ones."""
        if self.data_type == "integer":
            return (self.params or {}).get("range") is not False
        return self.data_type in ("float", "datetime")

    @property
    def has_match(self) -> bool:
        """Whether it answers ``match`` by value (what a facet counts): keyword, uuid and bool indexes,
        integer ones unless created with ``"lookup": false``."""
        if self._exact is None:
            return False
        return self.data_type != "integer" or (self.params or {}).get("lookup") is not False

    def facet(self, accept: np.ndarray, sel: Selection) -> list[tuple[Any, int]]:
        """(value, points) of every value held by an accepted point, most points first, then by value;
        a point counts once per distinct value (its entries already are one per distinct value)."""
        assert self._exact is not None
        counts = np.zeros(len(self._codes), np.int64)
        for run in self._exact.runs():
            codes, iids = run.keys, run.iids
            ok = (codes >= 0) & (iids < len(accept))
            ok[ok] = accept[iids[ok]]
            if self._stale_live:
                ok &= run.vers == sel.version[iids]
            if self._stale_dead:
                ok &= sel.known[iids]
            counts += np.bincount(codes[ok], minlength=len(counts))
        values = self._values
        found = [(values[code], int(counts[code])) for code in np.flatnonzero(counts).tolist()]
        return sorted(found, key=lambda hit: (-hit[1], hit[0]))

    def ordered(
        self, start: Optional[float], descending: bool, count: int, accept: np.ndarray, sel: Selection
    ) -> list[tuple[Any, int]]:
        """The first ``count`` distinct (value, iid) entries of accepted points in value order, ties by
        iid; from ``start`` on (inclusive) when given. A point with several values appears once per
        value. Numbers come from a number index, microseconds from a datetime one; NaN has no place.

        Each sorted run is read from its start in growing chunks until it has given ``count``
        accepted entries (plus the rest of the last value's ties), so a page costs about
        ``count / selectivity`` entries, not a sort of the field."""
        column = self._numbers if self._numbers is not None else self._times
        if column is None or count <= 0 or not len(accept):
            return []
        found: set[tuple[Any, int]] = set()
        for run in column.runs():
            found.update(self._run_head(run, start, descending, count, accept, sel))
        if self._odd and column is self._numbers:
            for iid, ver, value in self._odd:
                if value != value or iid >= len(accept) or not accept[iid] or sel.version[iid] != ver:
                    continue
                if start is None or (value <= start if descending else value >= start):
                    found.add((value, iid))
        if descending:
            return sorted(found, key=lambda entry: (-entry[0], entry[1]))[:count]
        return sorted(found)[:count]

    def _run_head(
        self, run: Run, start: Optional[float], descending: bool, count: int, accept: np.ndarray, sel: Selection
    ) -> set[tuple[Any, int]]:
        keys = run.keys
        lo, hi = 0, len(keys)
        if start is not None:
            if descending:
                hi = int(np.searchsorted(keys, start, "right"))
            else:
                lo = int(np.searchsorted(keys, start, "left"))
        taken: set[tuple[Any, int]] = set()
        step = max(64, 2 * count)
        while lo < hi and len(taken) < count:
            a, b = (lo, min(hi, lo + step)) if not descending else (max(lo, hi - step), hi)
            taken.update(self._accepted(run, a, b, accept, sel))
            if descending:
                hi = a
            else:
                lo = b
            step *= 2
        if taken and lo < hi:  # the last value's other entries may tie with (and sort before) one taken
            if descending:
                a, b = int(np.searchsorted(keys, keys[hi], "left")), hi
            else:
                a, b = lo, int(np.searchsorted(keys, keys[lo - 1], "right"))
            taken.update(self._accepted(run, a, b, accept, sel))
        return taken

    def _accepted(self, run: Run, a: int, b: int, accept: np.ndarray, sel: Selection) -> list[tuple[Any, int]]:
        iids = run.iids[a:b]
        ok = iids < len(accept)
        ok[ok] = accept[iids[ok]]
        if self._stale_live:
            ok &= run.vers[a:b] == sel.version[iids]
        if self._stale_dead:
            ok &= sel.known[iids]
        return list(zip(run.keys[a:b][ok].tolist(), iids[ok].tolist(), strict=True))

    def _time_range(self, condition: DatetimeRange, sel: Selection) -> Optional[np.ndarray]:
        if self._times is None:
            return None
        bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
        if any(b is not None and (not isinstance(b, datetime) or b.utcoffset() is None) for b in bounds):
            return None  # a naive bound does not compare with the evaluator's aware values either
        lowers, uppers = bound_lists(condition, micros)
        return self._mark(self._times.between(lowers, uppers), sel)


__all__ = ["FieldIndex", "Selection"]
