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

Sparse and multivector spaces take the same formulas with their own core similarity, as local mode
does: sparse, the dot product over shared terms (0 where none is shared; with ``modifier: idf`` the
examples' weights scaled by IDF); multivector, the MaxSim sum (``engine/multi_search.py``). Their
``average_vector`` is a nearest query too: sparse, ``2 x mean(positive) - mean(negative)`` over the
union of terms; multivector, the positive examples' rows followed by the negative ones' rows negated.
Documents as examples and ``lookup_from`` answer a 400 saying so. ``sample: random`` draws ``limit``
distinct live points passing the filter, uniformly, every score 0 (Qdrant's server; local mode says 1).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.settings import MultiSpace, SparseSpace, VectorSpace
from vecdb.engine.views import ReadView, SparseRow, prepare_multi, prepare_query, prepare_sparse, unit
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

    def __init__(
        self, tables: PointsTables, reader: ReadOnDemand, space: VectorSpace | SparseSpace | MultiSpace, field: str
    ) -> None:
        self.tables = tables
        self.reader = reader
        self.space = space
        self.field = field
        self.mentioned: list[int] = []
        """Internal ids of the points given as examples (left out of the answer)."""

    def vector(self, example: Any, at: str, normalised: bool = True) -> Any:
        """One example as a vector of the space: a stored point's, or the given one (validated). Dense: a
        float32 vector (Cosine made unit length unless ``normalised`` is False); sparse: a
        :data:`~vecdb.engine.views.SparseRow`; multivector: a float32 matrix."""
        where = f"{self.field}.{at}"
        space = self.space
        if isinstance(example, (int, str)):
            txn = self.reader.txn()
            iid = self.tables.iid_of(txn, id_to_key(example))
            if iid is None:
                raise NotFound(f"No point with id {example} found")
            found: Any
            if isinstance(space, SparseSpace):
                found = self.tables.get_sparse(txn, iid, space.index)
            elif isinstance(space, MultiSpace):
                found = self.tables.get_multi(txn, iid, space.index, space.size)
            else:
                found = self.tables.get_vector(txn, iid, space.index)
            if found is None:
                raise InvalidInput(f"{where}: point {example} has no vector named {space.name!r}")
            self.mentioned.append(iid)
            if isinstance(space, VectorSpace):  # (a raw uint8 Cosine row made unit length, as search reads it)
                found = found.astype(np.float32)
                return unit(found, space) if normalised else found
            return found if not isinstance(found, np.ndarray) else found.astype(np.float32)
        if isinstance(example, dict):
            raise Unsupported(f"{where}: documents as examples are not supported yet")
        if isinstance(space, SparseSpace):
            return prepare_sparse(example, where)
        if isinstance(space, MultiSpace):
            return prepare_multi(example, space, where)
        if isinstance(example, SparseVector):
            raise InvalidInput(
                f"{where}: Wrong input: Conversion between sparse and regular vectors failed for vector '{space.name}'"
            )
        if len(example) and isinstance(example[0], list):
            raise InvalidInput(
                f"{where}: Wrong input: Conversion between multi and regular vectors failed for vector '{space.name}'"
            )
        if not normalised:
            prepare_query(np.asarray(example, dtype=np.float32), space, where)  # (validated only)
            return np.asarray(example, dtype=np.float32)
        return prepare_query(np.asarray(example, dtype=np.float32), space, where)

    def pairs(self, context: Optional[ContextPair | list[ContextPair]], at: str) -> list[tuple[Any, Any]]:
        listed = [] if context is None else context if isinstance(context, list) else [context]
        return [
            (self.vector(pair.positive, f"{at}[{i}].positive"), self.vector(pair.negative, f"{at}[{i}].negative"))
            for i, pair in enumerate(listed)
        ]


def average_vector(examples: Examples, query: RecommendQuery) -> Any:
    """``recommend`` ``average_vector``'s query: ``2 x mean(positive) - mean(negative)`` (raw examples as
    given, stored ones as stored, as local mode averages them), prepared as any query vector; for a
    sparse space a :data:`~vecdb.engine.views.SparseRow`, for a multivector space a matrix."""
    positive = [examples.vector(e, f"positive[{i}]", False) for i, e in enumerate(query.recommend.positive or [])]
    negative = [examples.vector(e, f"negative[{i}]", False) for i, e in enumerate(query.recommend.negative or [])]
    if not positive:
        raise InvalidInput(f"{examples.field}.positive: the average_vector strategy needs a positive example")
    if isinstance(examples.space, SparseSpace):
        return _sparse_average(positive, negative)
    if isinstance(examples.space, MultiSpace):
        return np.concatenate([*positive, *(-m for m in negative)]).astype(np.float32)
    mean = np.mean(np.stack(positive).astype(np.float64), axis=0)
    vector = mean if not negative else 2 * mean - np.mean(np.stack(negative).astype(np.float64), axis=0)
    assert isinstance(examples.space, VectorSpace)
    return prepare_query(vector.astype(np.float32), examples.space, examples.field)


def _sparse_average(positive: list[SparseRow], negative: list[SparseRow]) -> SparseRow:
    """Local mode's ``sparse_avg`` and ``merge_positive_and_negative_avg``: means over the union of terms
    (a missing term counts 0), then ``2 x positive - negative``."""

    def mean(rows: list[SparseRow]) -> dict[int, float]:
        total: dict[int, float] = {}
        for indices, values in rows:
            for i, v in zip(indices.tolist(), values.tolist(), strict=True):
                total[i] = total.get(i, 0.0) + v
        return {i: v / len(rows) for i, v in total.items()}

    pos = mean(positive)
    if negative:
        neg = mean(negative)
        pos = {i: 2 * pos.get(i, 0.0) - neg.get(i, 0.0) for i in sorted(set(pos) | set(neg))}
    terms = sorted(pos)
    return np.array(terms, dtype=np.uint32), np.array([pos[i] for i in terms], dtype=np.float32)


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


Core = Any
"""``core(example) -> scores``: each candidate's core similarity to one example (higher is closer)."""


def scorer(examples: Examples, query: Any) -> Any:
    """A function ``core -> scores`` (higher is better) for a non-average example query: ``core(example)``
    gives each candidate's core similarity to an example (dense: a block of rows; sparse and multivector:
    every candidate, see :func:`sparse_core` and :func:`multi_core`)."""
    if isinstance(query, RecommendQuery):
        strategy = query.recommend.strategy
        positive = [examples.vector(e, f"positive[{i}]") for i, e in enumerate(query.recommend.positive or [])]
        negative = [examples.vector(e, f"negative[{i}]") for i, e in enumerate(query.recommend.negative or [])]
        if not positive and not negative:
            raise InvalidInput(f"{examples.field}: the {strategy} strategy needs a positive or negative example")

        def recommend(core: Core) -> np.ndarray:
            pos = [core(e) for e in positive]
            neg = [core(e) for e in negative]
            size = len((pos or neg)[0])
            if strategy == "sum_scores":
                total = np.zeros(size, np.float32)
                for scores in pos:
                    total += scores
                for scores in neg:
                    total -= scores
                return total
            best_pos = np.max(pos, axis=0) if pos else np.full(size, -np.inf, np.float32)
            best_neg = np.max(neg, axis=0) if neg else np.full(size, -np.inf, np.float32)
            return np.where(best_pos > best_neg, _scaled_sigmoid(best_pos), -_scaled_sigmoid(best_neg))  # type: ignore[no-any-return]

        return recommend
    if isinstance(query, DiscoverQuery):
        target = examples.vector(query.discover.target, "target")
        pairs = examples.pairs(query.discover.context, "context")

        def discover(core: Core) -> np.ndarray:
            to_target = core(target)
            ranks = np.zeros(len(to_target), np.int32)
            for positive, negative in pairs:
                ranks += np.sign(core(positive) - core(negative)).astype(np.int32)
            return ranks + _scaled_sigmoid(to_target).astype(np.float32)  # type: ignore[no-any-return]

        return discover
    assert isinstance(query, ContextQuery)
    context_pairs = examples.pairs(query.context, "")
    if not context_pairs:
        raise InvalidInput(f"{examples.field}: a context query needs at least one pair")

    def context(core: Core) -> np.ndarray:
        total: Any = 0
        for positive, negative in context_pairs:
            difference = core(positive) - core(negative) - np.float32(EPSILON)
            total = total + _fast_sigmoid(np.minimum(difference, 0.0)).astype(np.float32)
        return total  # type: ignore[no-any-return]

    return context


def scan_top(view: ReadView, space: VectorSpace, candidates: np.ndarray, score: Any, k: int) -> list[tuple[float, int]]:
    """The ``k`` best ``(score, iid)`` of ``candidates`` (internal ids) by ``score`` (higher first; ties
    by newer internal id first)."""
    data = view.spaces[space.index]
    distance = space.distance

    def block(iids: np.ndarray) -> np.ndarray:
        rows, sq = data.matrix[iids], data.sq_norms[iids]
        with np.errstate(invalid="ignore", over="ignore"):  # (BLAS can leave spurious FP flags on small products)
            return np.asarray(score(lambda e: _core(rows, sq, e, distance)), dtype=np.float64)

    def blocks() -> Any:
        for lo in range(0, len(candidates), CHUNK):
            iids = candidates[lo : lo + CHUNK]
            yield iids, block(iids)

    return top_of(blocks(), k)


def top_of(blocks: Any, k: int) -> list[tuple[float, int]]:
    """The ``k`` best ``(score, iid)`` of ``(iids, scores)`` blocks (higher first; ties by newer internal id
    first, as local mode's reversed sort leaves them)."""
    best_scores: list[np.ndarray] = []
    best_iids: list[np.ndarray] = []
    for iids, scores in blocks:
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


def leave_out(view: ReadView, mask: Optional[np.ndarray], left_out: list[int]) -> Optional[np.ndarray]:
    """``mask`` (None: every point) without the points ``left_out`` (a query's own examples); a new array
    when anything is left out, never the caller's (kept masks are shared)."""
    if not left_out:
        return mask
    out = np.ones(view.n, bool) if mask is None else mask.copy()
    out[[i for i in left_out if i < view.n]] = False
    return out


def candidates_of(
    view: ReadView, space: Optional[VectorSpace], mask: Optional[np.ndarray], left_out: list[int]
) -> np.ndarray:
    """Internal ids of live points holding a vector of ``space`` (None: every live point), passing ``mask``,
    not ``left_out``."""
    keep = view.live(space.index) if space is not None else view.alive[: view.n].copy()  # (never the view's own)
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


def sample_ids(allowed: np.ndarray, k: int) -> list[int]:
    """``k`` distinct internal ids where ``allowed`` (bool over internal ids) is true, uniformly at random."""
    ids = np.flatnonzero(allowed)
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


def best_of_rows(scores: np.ndarray, limit: int, multi: Any) -> list[list[tuple[int, float]]]:
    """For each row of a pairwise score matrix (NaN: not a hit), its ``limit`` best other columns as
    ``(position, score)``: higher first, or lower first for a multivector space of Euclid or Manhattan."""
    smaller = multi is not None and multi.distance in (Distance.EUCLID, Distance.MANHATTAN)
    out = []
    for r, row in enumerate(scores):
        cols = [c for c in range(len(row)) if c != r and not np.isnan(row[c])]
        cols.sort(key=lambda c: (row[c] if smaller else -row[c], c))
        out.append([(c, float(row[c])) for c in cols[:limit]])
    return out


__all__ = [
    "EPSILON",
    "best_of_rows",
    "Examples",
    "average_vector",
    "candidates_of",
    "nearest_among",
    "sample",
    "sample_ids",
    "scan_top",
    "scorer",
]
