"""An inverted index for one sparse vector space: term -> posting list of (internal id, weight).

It sees internal ids and arrays only. Internal ids are never reused and a stored sparse vector never
changes (an overwrite is a new internal id), so the index is append-only: a write adds one small
:class:`Segment` of the points it created; deletes and overwrites are answered by the caller's
liveness mask (the read view's ``alive``), never by scoring a stale posting. Dead postings are dropped
when segments merge.

Segments are merged as a binary counter merges digits (the last two whenever the older is at most
twice the newer's size), so a point's postings are copied O(log n) times and a query visits
O(log writes) segments. A published index is never changed: :meth:`InvertedIndex.added` returns a new
one. Only :attr:`InvertedIndex.present` is shared and written in place, at internal ids no older
index or view covers (the same trick as the read view's matrices).

Why it is not in :mod:`vecdb.index.base`'s registry: that registry holds *dense* ANN kinds that the
optimizer builds off the write path, that search float32 query matrices and that may be approximate.
This index is exact, is updated on every write's publication, and answers term lists; forcing it into
the ``DenseIndex`` protocol would make every method there either meaningless or a special case.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

FORMAT = 1
MAX_SEGMENTS = 32
"""A safety cap on top of the binary-counter rule (merges past it whatever their sizes)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Postings of the internal ids ``[lo, hi)`` grouped by term (CSR over ``terms``)."""

    lo: int
    hi: int
    terms: np.ndarray  # uint32, ascending, unique
    offsets: np.ndarray  # int64 [len(terms) + 1]
    iids: np.ndarray  # int64 postings, grouped by term (ascending within a term)
    weights: np.ndarray  # float32, aligned with iids
    positive: bool = field(init=False)
    """Every stored weight is > 0: a point sharing a term then scores > 0 with a positive query
    weight, which lets a search tell hits from misses by their sum alone."""
    top: np.ndarray = field(init=False)
    """float32, aligned with ``terms``: each term's largest weight (what it can add to a score)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive", bool(len(self.weights) == 0 or self.weights.min() > 0))
        top = np.maximum.reduceat(self.weights, self.offsets[:-1]) if len(self.terms) else np.zeros(0, np.float32)
        object.__setattr__(self, "top", top.astype(np.float32, copy=False))

    @property
    def size(self) -> int:
        return len(self.iids)

    def widened(self, hi: int) -> Segment:
        """The same postings covering ids up to ``hi`` (what they hold is known: nothing recomputed)."""
        seg: Segment = object.__new__(Segment)
        for name in ("lo", "terms", "offsets", "iids", "weights", "positive", "top"):
            object.__setattr__(seg, name, getattr(self, name))
        object.__setattr__(seg, "hi", hi)
        return seg

    @staticmethod
    def empty(lo: int, hi: int) -> Segment:
        return Segment(
            lo,
            hi,
            np.zeros(0, np.uint32),
            np.zeros(1, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
        )

    @staticmethod
    def from_postings(lo: int, hi: int, terms: np.ndarray, iids: np.ndarray, weights: np.ndarray) -> Segment:
        """Group flat postings by term (stable: the iid order within a term is kept)."""
        if not len(terms):
            return Segment.empty(lo, hi)
        order = np.argsort(terms, kind="stable")
        terms = terms[order]
        starts = np.flatnonzero(np.concatenate(([True], terms[1:] != terms[:-1])))
        offsets = np.append(starts, len(terms)).astype(np.int64)
        return Segment(
            lo,
            hi,
            terms[starts].astype(np.uint32),
            offsets,
            iids[order].astype(np.int64, copy=False),
            weights[order].astype(np.float32, copy=False),
        )

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term, iid, weight) of every posting."""
        return np.repeat(self.terms, np.diff(self.offsets)), self.iids, self.weights

    def lookup(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For query ``terms``: positions (into ``terms``) of those present here, their posting ranges
        (starts, ends) and their positions among this segment's terms."""
        if not len(self.terms):
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, empty
        pos = np.searchsorted(self.terms, terms)
        clipped = np.minimum(pos, len(self.terms) - 1)
        found = np.flatnonzero(self.terms[clipped] == terms)
        at = pos[found]
        return found, self.offsets[at], self.offsets[at + 1], at


_KERNEL_ARRAYS = ("terms", "offsets", "iids", "weights", "top")
_NO_MASK = np.ones(1, dtype=bool)
_scratch_of = threading.local()


def _scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's scratch for ``n`` points: sums (float64) and touched flags (uint8), zeroed (the
    compiled search leaves them zero again), and a list of ids (int64). 17 bytes a point and thread."""
    x: Optional[np.ndarray] = getattr(_scratch_of, "x", None)
    if x is None or len(x) < n:
        size = max(n, 1024) * 5 // 4
        x = _scratch_of.x = np.zeros(size, dtype=np.float64)
        _scratch_of.seen = np.zeros(size, dtype=np.uint8)
        _scratch_of.touched = np.zeros(size, dtype=np.int64)
    return x, _scratch_of.seen, _scratch_of.touched


def warm_up() -> None:
    """Compile the search (or load it from numba's on-disk cache) on a tiny index, off the request
    path: a server's first sparse query would otherwise wait for it (about 9 s the first time on a
    2-core machine, about 1 s in each later process)."""
    one, term, weight = np.ones(1, dtype=bool), np.zeros(1, np.uint32), np.ones(1, np.float32)
    index = InvertedIndex.empty().added(1, np.zeros(1, np.int64), [term], [weight], one, 1)
    index.top(term, weight, 1, 1, one, False, None, 1)


def merge(segments: list[Segment], alive: Optional[np.ndarray], known: Optional[int] = None) -> Segment:
    """One segment of ``segments`` (adjacent id ranges, oldest first), dropping postings of ids that
    ``alive`` (bool by internal id) says are dead; ``known``: only ids below it are judged (a view
    older than the index knows nothing of the ids it did not see yet; default: every id here)."""
    parts = [s.flat() for s in segments]
    terms = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint32)
    iids = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    weights = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
    if alive is not None and len(iids):
        if known is not None and int(iids.max()) >= known:
            keep = iids >= known
            seen = ~keep
            keep[seen] = alive[iids[seen]]
        else:
            keep = alive[iids]
        if not keep.all():
            terms, iids, weights = terms[keep], iids[keep], weights[keep]
    return Segment.from_postings(segments[0].lo, segments[-1].hi, terms, iids, weights)


@dataclass(frozen=True)
class InvertedIndex:
    """The postings of every sparse vector stored under internal ids ``< n``."""

    n: int
    present: np.ndarray  # bool by internal id (capacity >= n): the point holds a vector of this space
    segments: tuple[Segment, ...] = ()
    dropped_seq: int = 0
    """The write whose merge last dropped dead postings: a read of an older view must start again."""
    _docs: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    _holders: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    _table: list[tuple[Any, ...]] = field(default_factory=list, compare=False, repr=False)
    """The segments as the compiled search takes them (built on the first search of this index)."""

    @staticmethod
    def empty() -> InvertedIndex:
        return InvertedIndex(0, np.zeros(1024, dtype=bool))

    @property
    def postings(self) -> int:
        return sum(s.size for s in self.segments)

    def added(
        self,
        next_iid: int,
        iids: np.ndarray,
        indices: list[np.ndarray],
        values: list[np.ndarray],
        alive: np.ndarray,
        seq: int,
    ) -> InvertedIndex:
        """The index after one write: ``iids`` (ascending, all ``>= self.n``) got the sparse vectors
        ``indices[j]`` / ``values[j]``; ``alive`` is the liveness after the write (for merges)."""
        present = self.present
        if next_iid > len(present):
            grown = np.zeros(max(next_iid, 2 * len(present)), dtype=bool)
            grown[: self.n] = present[: self.n]
            present = grown
        if not len(iids):
            return InvertedIndex(next_iid, present, self.segments, self.dropped_seq)
        present[iids] = True
        lengths = np.fromiter((len(i) for i in indices), dtype=np.int64, count=len(indices))
        terms = np.concatenate(indices).astype(np.uint32) if len(indices) else np.zeros(0, np.uint32)
        weights = np.concatenate(values).astype(np.float32) if len(values) else np.zeros(0, np.float32)
        fresh = Segment.from_postings(self.n, next_iid, terms, np.repeat(iids, lengths), weights)
        segments = list(self.segments)
        if segments and segments[-1].hi < self.n:  # (writes without sparse rows in between: widen the last range)
            last = segments[-1]
            segments[-1] = last.widened(self.n)
        segments.append(fresh)
        dropped = self.dropped_seq
        while len(segments) >= 2 and (segments[-2].size <= 2 * segments[-1].size or len(segments) > MAX_SEGMENTS):
            before = segments[-2].size + segments[-1].size
            merged = merge(segments[-2:], alive)
            if merged.size != before:
                dropped = seq
            segments[-2:] = [merged]
        return InvertedIndex(next_iid, present, tuple(segments), dropped)

    def advanced(self, next_iid: int) -> InvertedIndex:
        """The same postings, covering ids up to ``next_iid`` (a write that stored no vector of this space)."""
        return self.added(next_iid, np.zeros(0, np.int64), [], [], self.present, 0)

    def gather(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every posting of the query's ``terms``: (query-term position, iid, stored weight)."""
        which: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        ws: list[np.ndarray] = []
        for seg in self.segments:
            found, starts, ends, _ = seg.lookup(terms)
            for j, a, b in zip(found.tolist(), starts.tolist(), ends.tolist(), strict=True):
                if b > a:
                    which.append(np.full(b - a, j, dtype=np.int64))
                    ids.append(seg.iids[a:b])
                    ws.append(seg.weights[a:b])
        if not ids:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.float32)
        if len(ids) == 1:
            return which[0], ids[0], ws[0]
        return np.concatenate(which), np.concatenate(ids), np.concatenate(ws)

    def ranges(self, terms: np.ndarray, n: int) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
        """The posting lists of the query's ``terms`` among internal ids ``< n``, as (query-term
        position, iids ascending, weights, largest weight of the list) slices, oldest segment first."""
        out: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        for seg in self.segments:
            if seg.lo >= n:
                break
            found, starts, ends, at = seg.lookup(terms)
            cut = seg.hi > n  # the newest segment of a view older than the index: trim each list at n
            tops = seg.top[at].tolist()
            for j, a, b, top in zip(found.tolist(), starts.tolist(), ends.tolist(), tops, strict=True):
                ids = seg.iids[a:b]
                w = seg.weights[a:b]
                if cut:
                    end = int(np.searchsorted(ids, n))
                    ids, w = ids[:end], w[:end]
                if len(ids):
                    out.append((j, ids, w, top))
        return out

    def top(
        self,
        terms: np.ndarray,
        values: np.ndarray,
        n: int,
        k: int,
        alive: np.ndarray,
        some_dead: bool,
        mask: Optional[np.ndarray],
        idf_docs: Optional[int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best (internal ids, float32 scores) among ids ``< n`` for the query ``terms``
        (uint32 ascending, unique) weighted ``values``: best first, ties by lower id; a hit is a point
        sharing a term, whatever its sum. ``alive`` (bool by id) restricts the hits when ``some_dead``
        (a point below ``n`` that holds postings is dead), ``mask`` (bool by id) when given;
        ``idf_docs``: weigh the terms by Qdrant's IDF over that many live holders (None: no IDF).
        Exact; see :mod:`vecdb.index.sparse_kernels`."""
        from vecdb.index import sparse_kernels  # numba compiles on first use, not at import

        if not self.segments:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if not self._table:
            segs = self.segments
            self._table.append(
                (
                    np.array([s.lo for s in segs], dtype=np.int64),
                    np.array([s.hi for s in segs], dtype=np.int64),
                    *(sparse_kernels.typed_list([getattr(s, a) for s in segs]) for a in _KERNEL_ARRAYS),
                )
            )
        x, seen, touched = _scratch(n)
        return sparse_kernels.top_k(  # type: ignore[no-any-return, call-arg]
            *self._table[0],
            np.ascontiguousarray(terms, dtype=np.uint32),
            np.ascontiguousarray(values, dtype=np.float32),
            idf_docs is not None,
            0 if idf_docs is None else idf_docs,
            some_dead,
            np.ascontiguousarray(alive),
            n,
            mask is not None,
            _NO_MASK if mask is None else _writable(mask),
            k,
            self.positive(),
            x,
            seen,
            touched,
        )

    def positive(self) -> bool:
        """Every stored weight of every segment is > 0."""
        return all(seg.positive for seg in self.segments)

    def holders(self, n: int) -> int:
        """Points below ``n`` that ever got a vector of this space, live or not (fixed for a given ``n``:
        ``present`` only changes at ids no older view covers)."""
        cached = self._holders.get(n)
        if cached is None:
            cached = int(np.count_nonzero(self.present[: min(n, self.n)]))
            if len(self._holders) > 8:
                self._holders.clear()
            self._holders[n] = cached
        return cached

    def docs(self, seq: int, alive: np.ndarray, n: int) -> int:
        """Live points (as of the view of write ``seq``: ``alive[:n]``) holding a vector of this space."""
        cached = self._docs.get(seq)
        if cached is None:
            m = min(n, self.n)
            cached = int(np.count_nonzero(alive[:m] & self.present[:m]))
            if len(self._docs) > 8:
                self._docs.clear()
            self._docs[seq] = cached
        return cached

    def compacted(self, alive: np.ndarray, known: int, seq: int = 0) -> InvertedIndex:
        """One segment of the postings, less those of ids below ``known`` that ``alive`` says are dead
        (``alive``/``known``/``seq``: a view that may be older than the index). What a checkpoint saves,
        and what the optimizer publishes once writes pause: a query then looks up one segment."""
        if not self.segments:
            return self
        one = merge(list(self.segments), alive, min(known, self.n))
        dropped = max(self.dropped_seq, seq) if one.size != self.postings else self.dropped_seq
        return InvertedIndex(self.n, self.present, (one,), dropped)

    # --- checkpoints -------------------------------------------------------------------------

    def save(self, path: Path, alive: np.ndarray, known: int, compact: bool = True) -> dict[str, Any]:
        """Write the postings (less the dead ones :meth:`compacted` drops, unless this index is such a
        result already: ``compact=False``) to ``path`` durably (temp file, fsync, rename); returns the
        manifest's part."""
        one = self.compacted(alive, known) if compact or len(self.segments) > 1 else self
        seg = one.segments[0] if one.segments else Segment.empty(0, self.n)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                terms=seg.terms,
                offsets=seg.offsets,
                iids=seg.iids,
                weights=seg.weights,
                present=np.packbits(self.present[: self.n]),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return {"format": FORMAT, "covered": self.n, "postings": seg.size}

    @staticmethod
    def load(path: Path, manifest: dict[str, Any]) -> InvertedIndex:
        """The index :meth:`save` wrote (ValueError when the file does not fit its manifest)."""
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown sparse index format {manifest.get('format')!r}")
        n = int(manifest["covered"])
        with np.load(path, allow_pickle=False) as data:
            terms, offsets = data["terms"], data["offsets"]
            iids, weights = data["iids"], data["weights"]
            present_bits = data["present"]
        if (
            len(iids) != manifest["postings"]
            or len(weights) != len(iids)
            or len(offsets) != len(terms) + 1
            or (len(offsets) and int(offsets[-1]) != len(iids))
            or (len(iids) and int(iids.max()) >= n)
        ):
            raise ValueError("sparse index file does not match its manifest")
        present = np.zeros(max(n, 1024), dtype=bool)
        present[:n] = np.unpackbits(present_bits, count=n).astype(bool)
        seg = Segment(0, n, terms.astype(np.uint32), offsets.astype(np.int64), iids.astype(np.int64), weights)
        return InvertedIndex(n, present, (seg,) if len(iids) or n else ())


def _writable(mask: np.ndarray) -> np.ndarray:
    """The compiled search's signature takes writable arrays; a kept filter mask is read-only (copied)."""
    return np.ascontiguousarray(mask) if mask.flags.writeable else mask.copy()


__all__ = ["InvertedIndex", "Segment", "merge", "warm_up"]
