"""Payload indexes: Qdrant filters answered as boolean masks over internal ids.

A scan evaluates a compiled filter (:func:`vecdb.filtering.evaluate.compile_filter`) on
every point, decoding each payload. With a payload index on a field, a
condition on that field becomes a few ``searchsorted`` calls and one scatter
into a numpy mask, so a selective filter costs microseconds per thousand
points instead of a JSON decode per point.

The answers must be exactly those of the evaluator, so the index stores the
values the way the evaluator sees them (:func:`vecdb.filtering.values.extract_values`:
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

A ``text`` index answers ``text``/``text_any``/``phrase`` with its own tokenizer
(:mod:`vecdb.filtering.fulltext`). What an index cannot answer exactly (geo, is_empty, has_id, ...)
makes :meth:`PayloadIndex.filter_mask` return None and the caller scans.

Storage. Each indexed structure is a column of (key, iid, version) entries,
sorted by key: a big main run, a small delta run and a tail of recent appends,
so a write never re-sorts the whole column (:mod:`vecdb.filtering.columns`).

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

Modules. This one is the facade: the collection's fields, the known points and
their versions, and filters combined from per-field masks. One field's index is
:mod:`vecdb.filtering.field_index`, what it takes from payloads per data type
:mod:`vecdb.filtering.field_values`, its sorted columns :mod:`vecdb.filtering.columns`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import numpy as np

from vecdb.errors import InvalidInput, VecdbError
from vecdb.filtering.columns import IID, VERSION
from vecdb.filtering.field_index import FieldIndex, Selection
from vecdb.filtering.field_values import check_data_type
from vecdb.filtering.filter_input import as_filter
from vecdb.filtering.fulltext import TextAnalyzer, TextSettings
from vecdb.filtering.keypath import KeyPath, parse_key_path
from vecdb.filtering.values import FILTER_KEY
from vecdb.models.filters import FieldCondition, Filter, HasIdCondition, SliceCondition

log = logging.getLogger(__name__)


def _field_index(field: str, data_type: str, params: Optional[dict[str, Any]]) -> FieldIndex:
    """A new field index. Parameters were checked when the index was created; a store written
    before some of them were understood may hold ones refused now: such an index keeps the
    default tokenizer (how it answered then), with a warning."""
    try:
        return FieldIndex(field, data_type, params)
    except VecdbError as exc:
        log.warning("payload index %r: %s; indexed with the default text settings", field, exc)
        return FieldIndex(field, data_type, None)


def _fit(mask: np.ndarray, n: int) -> np.ndarray:
    """A mask of exactly ``n`` iids: iids beyond the capacity have no entries, so False."""
    if n <= len(mask):
        return mask[:n]
    return np.concatenate([mask, np.zeros(n - len(mask), bool)])


class PayloadIndex:
    """All payload indexes of one collection (field key path -> data type).

    Masks are over internal ids and relative to the *known* points: those whose
    latest :meth:`update` gave a payload, plus those a bulk :meth:`add_field` listed.
    The caller ANDs them with its alive mask.
    """

    def __init__(self, schema: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._built = threading.Event()
        """Clear while an open builds the indexes in the background (:meth:`hold_until_built`): every
        read and every change waits for it, so none sees or changes a half-built index."""
        self._built.set()
        self.generation = 0
        """Changes whenever a field is indexed or dropped (what a cached filter result must match)."""
        self._capacity = 0
        self._known = np.zeros(0, bool)
        self._version = np.zeros(0, VERSION)
        self._fields: dict[str, FieldIndex] = {}
        self._by_steps: dict[KeyPath, FieldIndex] = {}
        for field, data_type in schema.items():
            self._publish(FieldIndex(field, check_data_type(data_type)))

    def hold_until_built(self) -> None:
        """An open is about to build the indexes in the background (``add_fields(..., opening=True)``):
        until it is done, reads and changes of the indexes wait (other reads and writes go on)."""
        self._built.clear()

    @property
    def is_built(self) -> bool:
        """No background build in progress (see :meth:`hold_until_built`)."""
        return self._built.is_set()

    def built(self) -> None:
        """The background build ended (also when it failed or was stopped: waiters must not hang)."""
        self._built.set()

    @property
    def fields(self) -> dict[str, str]:
        self._built.wait()
        with self._lock:
            return {name: index.data_type for name, index in self._fields.items()}

    # ------------------------------------------------------------------ writing

    def add_fields(
        self,
        specs: dict[str, tuple[str, Optional[dict[str, Any]]]],
        chunks: Iterable[tuple[Sequence[int], Sequence[Optional[dict[str, Any]]]]],
        opening: bool = False,
    ) -> None:
        """Build (or rebuild) several fields' indexes in one pass over ``chunks`` of stored
        ``(iids, payloads)`` (each iid once, as a collection's payload table holds them).

        ``specs``: field -> (data type, ``field_schema`` params). Chunk by chunk, so that only one
        chunk's decoded payloads are alive at a time: built from one list of every payload, a
        collection of 200k small payloads kept about 400 bytes a point of freed Python objects in
        its resident memory. Readers see the old indexes, or none, until all are published.
        ``opening``: the build an open started in the background (:meth:`hold_until_built`); any
        other waits for that one.
        """
        if not opening:
            self._built.wait()
        building = {
            field: _field_index(field, check_data_type(data_type), params)
            for field, (data_type, params) in specs.items()
        }
        for iids, payloads in chunks:
            pairs = [(int(iid), payload) for iid, payload in zip(iids, payloads, strict=True) if payload is not None]
            if not pairs:
                continue
            kept_iids = [iid for iid, _ in pairs]
            kept = [payload for _, payload in pairs]
            if min(kept_iids) < 0:
                raise ValueError("internal ids are non-negative")
            batches = [(index, index.extract(kept_iids, kept)) for index in building.values()]
            with self._lock:
                self._grow(max(kept_iids) + 1)
                self._adopt(np.array(kept_iids, dtype=IID))
                version, capacity = self._version, self._capacity
            for index, batch in batches:
                index.grow(capacity)
                index.apply(batch, version)
        for index in building.values():
            index.settle()
        with self._lock:
            for index in building.values():
                index.grow(self._capacity)
                self._publish(index)

    def add_field(
        self,
        field: str,
        data_type: str,
        items: Iterable[tuple[int, dict[str, Any]]],
        params: Optional[dict[str, Any]] = None,
    ) -> None:
        """Build (or rebuild) one field's index from the current (iid, payload) pairs (the last one
        wins for a repeated iid); see :meth:`add_fields`. ``params`` is the ``field_schema`` dict a
        text index was created with (its tokenizer). The listed iids become known points.
        Extraction and sorting happen before the lock is taken (there is one writer, so the versions
        read meanwhile stay valid); readers see the old index, or none, until the new one is published."""
        latest = {int(iid): payload for iid, payload in items if payload is not None}
        self.add_fields({field: (data_type, params)}, [(list(latest), list(latest.values()))])

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
        self._built.wait()
        with self._lock:
            index = self._fields.pop(field, None)
            if index is not None:
                self._reindex_steps()

    def update(self, iid: int, payload: Optional[dict[str, Any]]) -> None:
        """Set the current payload of ``iid``; None forgets the point."""
        self.update_many([iid], [payload])

    def update_many(self, iids: Sequence[int], payloads: Sequence[Optional[dict[str, Any]]]) -> None:
        """Set the current payloads of several iids (the last one wins for a repeated iid)."""
        self._built.wait()
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
        live_array, dead_array = np.array(live, dtype=IID), np.array(dead, dtype=IID)
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
        self._version = np.concatenate([self._version, np.zeros(capacity - self._capacity, VERSION)])
        self._capacity = capacity
        for index in self._fields.values():
            index.grow(capacity)

    def _publish(self, index: FieldIndex) -> None:
        index.grow(self._capacity)
        self._fields[index.key] = index
        self._reindex_steps()

    def _reindex_steps(self) -> None:
        """Conditions find fields by parsed path, so ``a`` and ``"a"`` are the same field."""
        self._by_steps = {index.steps: index for index in self._fields.values()}
        self.generation += 1  # (a field indexed or dropped: a text index tokenizes its conditions its own way)

    # ------------------------------------------------------------------ reading

    def text_settings(self, field: str) -> Optional[TextSettings]:
        """The tokenizer settings of ``field``'s text index, None when it has none."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            return index.text.analyzer.settings if index is not None and index.text is not None else None

    def bm25(self, field: str, text: str, k1: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        """(iids, BM25 scores) over ``field``'s text index (see :meth:`TextIndex.bm25`), read under the
        lock a writer takes; callers inside a consistent read call ``check_index`` afterwards."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            if index is None or index.text is None:
                raise KeyError(f"no text index on {field!r}")
            return index.text.bm25(text, k1, b)

    @property
    def analyzers(self) -> dict[KeyPath, TextAnalyzer]:
        """Tokenizer of each text-indexed field, by parsed key path, for the scan evaluator."""
        self._built.wait()
        with self._lock:
            return {steps: index.text.analyzer for steps, index in self._by_steps.items() if index.text is not None}

    def points_count(self, field: str) -> int:
        """Known points with at least one value of the field's data type (Qdrant's ``points``)."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            if index is None:
                raise KeyError(f"no payload index on {field!r}")
            return index.points

    def has_range(self, field: str) -> bool:
        """Whether ``field`` has an index that keeps its values in order (see :meth:`ordered`)."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            return index is not None and index.has_range

    def ordered(
        self, field: str, start: Optional[float], descending: bool, count: int, accept: np.ndarray
    ) -> list[tuple[Any, int]]:
        """The first ``count`` (value, iid) entries of ``field`` in value order among the iids ``accept``
        holds (ties by iid; see :meth:`FieldIndex.ordered`); KeyError when it has no such index."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            if index is None or not index.has_range:
                raise KeyError(f"no range index on {field!r}")
            return index.ordered(start, descending, count, accept, self._selection())

    def has_match(self, field: str) -> bool:
        """Whether ``field`` has an index that answers ``match`` by value (see :meth:`facet`)."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            return index is not None and index.has_match

    def facet(self, field: str, accept: np.ndarray) -> list[tuple[Any, int]]:
        """(value, points) counts of ``field`` among the iids ``accept`` holds, most first (see
        :meth:`FieldIndex.facet`); KeyError when it has no such index."""
        self._built.wait()
        with self._lock:
            index = self._fields.get(field)
            if index is None or not index.has_match:
                raise KeyError(f"no match index on {field!r}")
            return index.facet(accept, self._selection())

    def filter_mask(self, flt: Union[Filter, dict[str, Any], None], n: int) -> Optional[np.ndarray]:
        """bool[n] of the known iids < n that pass ``flt``, from indexes only; None when
        some part of the filter cannot be answered exactly (the caller then scans)."""
        self._built.wait()
        parsed = as_filter(flt)
        with self._lock:
            sel = self._selection()
            mask = sel.known.copy() if parsed is None else self._filter(parsed, sel)
        return None if mask is None else _fit(mask, n)

    def candidates_mask(self, flt: Union[Filter, dict[str, Any], None], n: int) -> Optional[np.ndarray]:
        """A superset of the iids < n passing ``flt``: the AND of the top-level clauses
        indexes answer exactly (each must and must_not condition on its own; should and
        min_should only whole). None when no clause is answerable."""
        self._built.wait()
        parsed = as_filter(flt)
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

    def _selection(self) -> Selection:
        return Selection(self._capacity, self._version, self._known)

    def _answerable_parts(self, flt: Filter, sel: Selection) -> list[np.ndarray]:
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

    def _filter(self, flt: Filter, sel: Selection) -> Optional[np.ndarray]:
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

    def _any_of(self, conditions: list[Any], sel: Selection) -> Optional[np.ndarray]:
        result = np.zeros(sel.size, bool)
        for condition in conditions:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            result |= mask
        return result

    def _at_least(self, conditions: list[Any], need: int, sel: Selection) -> Optional[np.ndarray]:
        if need > len(conditions):
            return np.zeros(sel.size, bool)  # as the evaluator: can never be met
        hits = np.zeros(sel.size, np.int32)
        for condition in conditions:
            mask = self._condition(condition, sel)
            if mask is None:
                return None
            hits += mask
        return hits >= need

    def _condition(self, condition: Any, sel: Selection) -> Optional[np.ndarray]:
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

    def _field_condition(self, condition: FieldCondition, sel: Selection) -> Optional[np.ndarray]:
        try:
            steps = parse_key_path(condition.key, FILTER_KEY)
        except InvalidInput:
            return None  # the caller's compile_filter reports the bad key
        index = self._by_steps.get(steps)
        if index is None:
            return None
        if condition.match is not None:
            return index.match_mask(condition.match, sel)
        if condition.range is not None:
            return index.range_mask(condition.range, sel)
        geo_condition = condition.geo_radius or condition.geo_bounding_box or condition.geo_polygon
        if geo_condition is not None:
            return index.geo_mask(geo_condition, sel)
        return None  # values_count, is_empty, is_null


__all__ = ["PayloadIndex"]
