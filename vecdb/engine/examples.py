"""Queries scored against examples: ``recommend``, ``discover`` and ``context``; and ``sample: random``.

The examples are stored points (by id: their vector of the searched space, and the point itself is
left out of the answer) or vectors. Scores follow qdrant-client's local mode, which mirrors Qdrant's
core: each example's "core" similarity to a point is the dot product (Cosine: of unit vectors), or
the negated squared Euclidean or Manhattan distance, so higher is always closer; then

* ``recommend`` ``average_vector`` (the default): a nearest search with ``2 x mean(positive) -
  mean(negative)`` (``mean(positive)`` without negatives), through the index like any query, with
  that metric's usual scores;
* ``recommend`` ``best_score``: the best positive core score ``p`` and the best negative ``n``; a point
  closer to a positive scores ``sigmoid(p)``, one closer to a negative ``-sigmoid(n)`` (``sigmoid(x) =
  (x / (1 + |x|) + 1) / 2``), so every point liked more than disliked ranks first;
* ``recommend`` ``sum_scores``: the sum of positive core scores minus the sum of negative ones;
* ``discover``: per context pair +1, 0 or -1 as the point is closer to its positive, as close, or
  closer to its negative, summed, plus ``sigmoid(core score to the target)``: within the best region,
  the closest to the target;
* ``context``: per pair ``min(p - n - eps, 0) / (1 + |min(p - n - eps, 0)|)``, summed: 0 for a point on
  the positive side of every pair (ties among those are broken by internal id, newest first, as
  local mode's reversed sort leaves them).

Every score but ``average_vector``'s ranks higher-is-better whatever the metric, and ``score_threshold``
keeps scores above it. These kinds are scored by an exact scan of the filtered points (recall 1; a
scan of 1M x 128 takes tens of milliseconds per example); only ``average_vector`` uses the index.
Dense vectors only: sparse or multivector spaces, documents as examples and ``lookup_from`` answer
a 400 saying so. ``sample: random`` draws ``limit`` distinct live points passing the filter, uniformly,
every score 0 (Qdrant's server; local mode says 1).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.settings import VectorSpace
from vecdb.engine.views import ReadView, prepare_query
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.ids import id_to_key
from vecdb.models.collections import Distance
from vecdb.models.points import SparseVector
from vecdb.models.query import ContextPair, ContextQuery, DiscoverQuery, RecommendQuery
from vecdb.storage.points import PointsTables

EPSILON = 1.1920929e-7
"""f32::EPSILON, as Qdrant's core and local mode subtract it in the context score."""
CHUNK = 65_536
"""Rows scored per block (bounds the gathered copy of the matrix)."""


class Examples:
    """Example vectors of one query, resolved against one read (ids looked up in its transaction)."""

    def __init__(self, tables: PointsTables, reader: ReadOnDemand, space: VectorSpace, field: str) -> None:
        self.tables = tables
        self.reader = reader
        self.space = space
        self.field = field
        self.mentioned: list[int] = []
        """Internal ids of the points given as examples (left out of the answer)."""

    def vector(self, example: Any, at: str, normalised: bool = True) -> np.ndarray:
        """One example as a float32 vector of the space: a stored point's, or the given one (validated;
        Cosine vectors made unit length unless ``normalised`` is False)."""
        where = f"{self.field}.{at}"
        if isinstance(example, (int, str)):
            txn = self.reader.txn()
            iid = self.tables.iid_of(txn, id_to_key(example))
            if iid is None:
                raise NotFound(f"No point with id {example} found")
            row = self.tables.get_vector(txn, iid, self.space.index)
            if row is None:
                raise InvalidInput(f"{where}: point {example} has no vector named {self.space.name!r}")
            self.mentioned.append(iid)
            return row.astype(np.float32)
        if isinstance(example, SparseVector) or isinstance(example, dict):
            raise Unsupported(f"{where}: sparse vectors or documents as examples are not supported yet")
        if len(example) and isinstance(example[0], list):
            raise Unsupported(f"{where}: multivectors are not supported yet")
        if not normalised:
            prepare_query(np.asarray(example, dtype=np.float32), self.space, where)  # (validated only)
            return np.asarray(example, dtype=np.float32)
        return prepare_query(np.asarray(example, dtype=np.float32), self.space, where)

    def pairs(self, context: Optional[ContextPair | list[ContextPair]], at: str) -> list[tuple[np.ndarray, np.ndarray]]:
        listed = [] if context is None else context if isinstance(context, list) else [context]
        return [
            (self.vector(pair.positive, f"{at}[{i}].positive"), self.vector(pair.negative, f"{at}[{i}].negative"))
            for i, pair in enumerate(listed)
        ]


def average_vector(examples: Examples, query: RecommendQuery) -> np.ndarray:
    """``recommend`` ``average_vector``'s query: ``2 x mean(positive) - mean(negative)`` (raw examples as
    given, stored ones as stored, as local mode averages them), prepared as any query vector."""
    positive = [examples.vector(e, f"positive[{i}]", False) for i, e in enumerate(query.recommend.positive or [])]
    negative = [examples.vector(e, f"negative[{i}]", False) for i, e in enumerate(query.recommend.negative or [])]
    if not positive:
        raise InvalidInput(f"{examples.field}.positive: the average_vector strategy needs a positive example")
    mean = np.mean(np.stack(positive).astype(np.float64), axis=0)
    vector = mean if not negative else 2 * mean - np.mean(np.stack(negative).astype(np.float64), axis=0)
    return prepare_query(vector.astype(np.float32), examples.space, examples.field)


def _core(rows: np.ndarray, sq_norms: np.ndarray, example: np.ndarray, distance: Distance) -> np.ndarray:
    """Each row's core similarity to ``example`` (higher is closer), float32."""
    if distance in (Distance.COSINE, Distance.DOT):
        return rows @ example  # type: ignore[no-any-return]
    if distance == Distance.EUCLID:
        return -(sq_norms - 2 * (rows @ example) + np.float32(example @ example))  # type: ignore[no-any-return]
    return -np.abs(rows - example).sum(axis=1, dtype=np.float32)  # type: ignore[no-any-return]


def _fast_sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(x), x, x / (1 + np.abs(x)))  # type: ignore[no-any-return]


def _scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (_fast_sigmoid(x) + 1)  # type: ignore[no-any-return]


def scorer(examples: Examples, query: Any) -> Any:
    """A function ``(rows, sq_norms) -> scores`` (higher is better) for a non-average example query."""
    distance = examples.space.distance
    if isinstance(query, RecommendQuery):
        strategy = query.recommend.strategy
        positive = [examples.vector(e, f"positive[{i}]") for i, e in enumerate(query.recommend.positive or [])]
        negative = [examples.vector(e, f"negative[{i}]") for i, e in enumerate(query.recommend.negative or [])]
        if not positive and not negative:
            raise InvalidInput(f"{examples.field}: the {strategy} strategy needs a positive or negative example")

        def recommend(rows: np.ndarray, sq: np.ndarray) -> np.ndarray:
            pos = [_core(rows, sq, e, distance) for e in positive]
            neg = [_core(rows, sq, e, distance) for e in negative]
            if strategy == "sum_scores":
                total = np.zeros(len(rows), np.float32)
                for scores in pos:
                    total += scores
                for scores in neg:
                    total -= scores
                return total
            best_pos = np.max(pos, axis=0) if pos else np.full(len(rows), -np.inf, np.float32)
            best_neg = np.max(neg, axis=0) if neg else np.full(len(rows), -np.inf, np.float32)
            return np.where(best_pos > best_neg, _scaled_sigmoid(best_pos), -_scaled_sigmoid(best_neg))  # type: ignore[no-any-return]

        return recommend
    if isinstance(query, DiscoverQuery):
        target = examples.vector(query.discover.target, "target")
        pairs = examples.pairs(query.discover.context, "context")

        def discover(rows: np.ndarray, sq: np.ndarray) -> np.ndarray:
            ranks = np.zeros(len(rows), np.int32)
            for positive, negative in pairs:
                ranks += np.sign(_core(rows, sq, positive, distance) - _core(rows, sq, negative, distance)).astype(
                    np.int32
                )
            return ranks + _scaled_sigmoid(_core(rows, sq, target, distance)).astype(np.float32)  # type: ignore[no-any-return]

        return discover
    assert isinstance(query, ContextQuery)
    context_pairs = examples.pairs(query.context, "")
    if not context_pairs:
        raise InvalidInput(f"{examples.field}: a context query needs at least one pair")

    def context(rows: np.ndarray, sq: np.ndarray) -> np.ndarray:
        total = np.zeros(len(rows), np.float32)
        for positive, negative in context_pairs:
            difference = _core(rows, sq, positive, distance) - _core(rows, sq, negative, distance) - np.float32(EPSILON)
            total += _fast_sigmoid(np.minimum(difference, 0.0)).astype(np.float32)
        return total

    return context


def scan_top(view: ReadView, space: VectorSpace, candidates: np.ndarray, score: Any, k: int) -> list[tuple[float, int]]:
    """The ``k`` best ``(score, iid)`` of ``candidates`` (internal ids) by ``score`` (higher first; ties
    by newer internal id first)."""
    data = view.spaces[space.index]
    best_scores: list[np.ndarray] = []
    best_iids: list[np.ndarray] = []
    for lo in range(0, len(candidates), CHUNK):
        iids = candidates[lo : lo + CHUNK]
        with np.errstate(invalid="ignore", over="ignore"):  # (BLAS can leave spurious FP flags on small products)
            scores = np.asarray(score(data.matrix[iids], data.sq_norms[iids]), dtype=np.float64)
        if len(iids) > k:
            keep = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.zeros(0, np.int64)
            iids, scores = iids[keep], scores[keep]
        best_scores.append(scores)
        best_iids.append(iids)
    if not best_scores:
        return []
    scores = np.concatenate(best_scores)
    iids = np.concatenate(best_iids)
    order = np.lexsort((-iids, -scores))[:k]
    return list(zip(scores[order].tolist(), iids[order].tolist(), strict=True))


def candidates_of(view: ReadView, space: VectorSpace, mask: Optional[np.ndarray], left_out: list[int]) -> np.ndarray:
    """Internal ids of live points holding a vector of ``space``, passing ``mask``, not ``left_out``."""
    keep = view.live(space.index)
    if mask is not None:
        keep = keep & mask
    if left_out:
        keep = keep.copy() if not keep.flags.writeable else keep
        keep[[i for i in left_out if i < view.n]] = False
    return np.flatnonzero(keep)


def sample(view: ReadView, mask: Optional[np.ndarray], k: int) -> list[int]:
    """``k`` distinct live internal ids passing ``mask``, uniformly at random."""
    live = view.alive[: view.n] if mask is None else view.alive[: view.n] & mask
    ids = np.flatnonzero(live)
    if len(ids) <= k:
        return ids.tolist()  # type: ignore[no-any-return]
    return np.random.default_rng().choice(ids, size=k, replace=False).tolist()  # type: ignore[no-any-return]


MATRIX_BLOCK_FLOATS = 1 << 24
"""Floats a block of the distance matrix may hold (Manhattan broadcasts rows x sample x dim)."""


def sample_ids(view: ReadView, space: VectorSpace, mask: Optional[np.ndarray], k: int) -> list[int]:
    """:func:`sample` among the points holding a vector of ``space``."""
    live = view.live(space.index) if mask is None else view.live(space.index) & mask
    ids = np.flatnonzero(live)
    if len(ids) <= k:
        return ids.tolist()  # type: ignore[no-any-return]
    return np.random.default_rng().choice(ids, size=k, replace=False).tolist()  # type: ignore[no-any-return]


def nearest_among(rows: np.ndarray, distance: Distance, limit: int) -> list[list[tuple[int, float]]]:
    """For each row, its ``limit`` nearest other rows as ``(position, score)``, best first, scored as a
    query of that metric scores (Euclid and Manhattan: distances, ascending)."""
    n, dim = rows.shape
    wide = rows.astype(np.float64)
    sq = np.einsum("ij,ij->i", wide, wide)
    higher = distance in (Distance.COSINE, Distance.DOT)
    block = max(1, min(n, MATRIX_BLOCK_FLOATS // max(1, n * (dim if distance == Distance.MANHATTAN else 1))))
    k = min(limit, n - 1)
    out: list[list[tuple[int, float]]] = []
    for lo in range(0, n, block):
        part = wide[lo : lo + block]
        if higher:
            scores = part @ wide.T
        elif distance == Distance.EUCLID:
            scores = np.sqrt(np.maximum(sq[lo : lo + block, None] + sq[None, :] - 2 * (part @ wide.T), 0.0))
        else:
            scores = np.abs(part[:, None, :] - wide[None, :, :]).sum(axis=2)
        keyed = -scores if higher else scores.copy()
        keyed[np.arange(len(part)), np.arange(lo, lo + len(part))] = np.inf  # (a point is not its own neighbour)
        order = np.argsort(keyed, axis=1, kind="stable")[:, :k]
        for r, cols in enumerate(order.tolist()):
            out.append([(c, float(scores[r, c])) for c in cols])
    return out


__all__ = [
    "EPSILON",
    "Examples",
    "average_vector",
    "candidates_of",
    "nearest_among",
    "sample",
    "sample_ids",
    "scan_top",
    "scorer",
]
