"""Exact (brute-force) search: the reference every other index is measured against.

Similarities go through one BLAS matrix product per block of queries; Euclid
uses ``|x|^2 - 2 x.q + |q|^2`` for ranking and then recomputes the exact
distance of the few candidates it returns, so reported scores are exact and
ties are broken by the lower id, deterministically.

:class:`FlatIndex` is the ``flat`` kind of the index registry: no ANN
structure, so the optimizer builds none for a ``flat`` collection and every
search of it is the planner's exact scan; as an index object (its own copy of
some rows) it is the oracle the other kinds are tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np

from vecdb.durable import fsync_path, write_durably
from vecdb.index.base import Probe, SearchParams, register
from vecdb.index.distance import Kernel, higher_is_better, metric_of
from vecdb.models.collections import Distance

FORMAT = 1

_QUERY_BLOCK = 256
_MANHATTAN_ROWS = 16384
_RESCORE_MARGIN = 16


def exact_search(
    matrix: np.ndarray,
    queries: np.ndarray,
    k: int,
    distance: Distance,
    allowed: Optional[np.ndarray] = None,
    sq_norms: Optional[np.ndarray] = None,
    allowed_rows: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``matrix`` for each query.

    ``allowed``: optional bool mask over the rows (``allowed_rows``: its true positions, when the caller
    has them). Returns ``(scores, ids)`` of shape ``[nq, k]``; slots beyond the number of allowed rows
    hold id -1. Scores are similarities (Cosine, Dot) or distances (Euclid, Manhattan).
    """
    nq = len(queries)
    n = len(matrix)
    if allowed is not None and (len(allowed_rows) == n if allowed_rows is not None else allowed.all()):
        allowed = None
    rows: Optional[np.ndarray] = None
    if allowed is not None:
        rows = np.flatnonzero(allowed) if allowed_rows is None else allowed_rows
        # Gather when few rows survive; otherwise scan all and mask, which keeps the matrix contiguous
        # (measured on 100k x 128: gathering 30% costs 0.8x a full scan, gathering 45% costs 1.6x).
        if len(rows) * 3 < n:
            matrix = matrix[rows]
            sq_norms = None if sq_norms is None else sq_norms[rows]
            allowed = None
        else:
            rows = None
    n_rows = len(matrix)
    k_eff = min(k, n_rows if allowed is None else int(np.count_nonzero(allowed)))
    out_scores = np.full((nq, k), np.nan, dtype=np.float32)
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    if k_eff == 0:
        return out_scores, out_ids
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    kernel = metric_of(distance).kernel
    better = higher_is_better(distance)
    if nq == 1 and kernel is not Kernel.L1:
        best_keys, best = _top_of_one(matrix, queries[0], k_eff, kernel, sq_norms, allowed)
        out_scores[0, :k_eff] = -best_keys if better else best_keys
        out_ids[0, :k_eff] = best if rows is None else rows[best]
        return out_scores, out_ids
    for start in range(0, nq, _QUERY_BLOCK):
        block = queries[start : start + _QUERY_BLOCK]
        keys = _ranking_keys(matrix, block, kernel, sq_norms)  # smaller is better
        if allowed is not None:
            keys[:, ~allowed] = np.inf
        take = min(n_rows, k_eff + (_RESCORE_MARGIN if kernel is Kernel.L2 else 0))
        cand = (
            np.argpartition(keys, take - 1, axis=1)[:, :take]
            if take < n_rows
            else np.tile(np.arange(n_rows), (len(block), 1))
        )
        if kernel is Kernel.L2:  # ranked by |x|^2 - 2 x.q: recompute the candidates' distances exactly
            diff = matrix[cand] - block[:, None, :]
            cand_keys = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
            if allowed is not None:  # the margin may have taken disallowed rows: keep them last
                cand_keys[~allowed[cand]] = np.inf
        else:
            cand_keys = np.take_along_axis(keys, cand, axis=1)
        # Sort by (key, id): deterministic ties, lower id first.
        order = np.lexsort((cand, cand_keys), axis=1)[:, :k_eff]
        best = np.take_along_axis(cand, order, axis=1)
        best_keys = np.take_along_axis(cand_keys, order, axis=1)
        scores = -best_keys if better else best_keys
        out_scores[start : start + len(block), :k_eff] = scores
        out_ids[start : start + len(block), :k_eff] = best if rows is None else rows[best]
    return out_scores, out_ids


def _top_of_one(
    matrix: np.ndarray,
    query: np.ndarray,
    k: int,
    kernel: Kernel,
    sq_norms: Optional[np.ndarray],
    allowed: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_search`'s loop for a single query, on 1-d arrays: the same ranking, ties and L2
    re-scoring, in half the numpy calls (a filtered query scanning a few thousand rows spent more in
    the 2-d bookkeeping than in its product)."""
    n_rows = len(matrix)
    keys = matrix @ query
    if kernel is Kernel.L2:
        keys *= -2.0
        keys += sq_norms if sq_norms is not None else np.einsum("ij,ij->i", matrix, matrix)
    else:
        np.negative(keys, out=keys)
    if allowed is not None:
        keys[~allowed] = np.inf
    take = min(n_rows, k + (_RESCORE_MARGIN if kernel is Kernel.L2 else 0))
    cand = np.argpartition(keys, take - 1)[:take] if take < n_rows else np.arange(n_rows)
    if kernel is Kernel.L2:
        diff = matrix[cand] - query
        cand_keys = np.sqrt(np.einsum("kd,kd->k", diff, diff))
        if allowed is not None:
            cand_keys[~allowed[cand]] = np.inf
    else:
        cand_keys = keys[cand]
    order = np.lexsort((cand, cand_keys))[:k]
    return cand_keys[order], cand[order]


def _ranking_keys(matrix: np.ndarray, block: np.ndarray, kernel: Kernel, sq_norms: Optional[np.ndarray]) -> np.ndarray:
    """Per (query, row) a float32 key where smaller means nearer."""
    if kernel is Kernel.L1:
        keys = np.empty((len(block), len(matrix)), dtype=np.float32)
        for lo in range(0, len(matrix), _MANHATTAN_ROWS):
            chunk = matrix[lo : lo + _MANHATTAN_ROWS]
            for qi, q in enumerate(block):
                keys[qi, lo : lo + len(chunk)] = np.abs(chunk - q).sum(axis=1)
        return keys
    products = block @ matrix.T
    if kernel is Kernel.L2:
        norms = sq_norms if sq_norms is not None else np.einsum("ij,ij->i", matrix, matrix)
        products *= -2.0
        products += norms[None, :]
        return products  # |x|^2 - 2 x.q ranks as |x - q|^2 does (|q|^2 is constant per query)
    return np.negative(products, out=products)


@register
class FlatIndex:
    """The ``flat`` kind: its rows in a float32 matrix, every search :func:`exact_search` over them."""

    kind = "flat"
    ann = False
    quantized = False
    allows_by_position = True
    """Its allow-lists are over its rows (``iid_mask[labels]``)."""
    min_points = 0
    breadth_name = ""
    """No breadth: an exact search looks at every allowed row."""
    search_stage = "flat_search"
    file_suffix = ".flat"
    SIDE_FILES = (".labels.npy",)
    """Suffixes of the files :meth:`save` writes beside ``path`` (a snapshot copies them along)."""

    def __init__(self, distance: Distance, vectors: np.ndarray, labels: np.ndarray) -> None:
        self.distance = distance
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)

    @property
    def ntotal(self) -> int:
        return len(self.labels)

    @classmethod
    def supports(cls, distance: Distance) -> bool:
        return True  # the exact scan compares by every distance

    @classmethod
    def build(
        cls,
        distance: Distance,
        params: Mapping[str, Any],
        rows: np.ndarray,
        labels: np.ndarray,
        population: Optional[np.ndarray] = None,
        should_stop: Optional[Callable[[], bool]] = None,
        device: str = "cpu",
    ) -> FlatIndex:
        labels = np.asarray(labels, dtype=np.int64)
        return cls(distance, rows[labels], labels)

    def grown(
        self, labels: np.ndarray, vectors: np.ndarray, should_stop: Optional[Callable[[], bool]] = None
    ) -> FlatIndex:
        labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) and len(labels) and labels[0] <= self.labels[-1]:
            raise ValueError("flat labels must be appended in ascending order")
        return FlatIndex(
            self.distance,
            np.concatenate([self.vectors, np.asarray(vectors, dtype=np.float32).reshape(len(labels), -1)]),
            np.concatenate([self.labels, labels]),
        )

    def outdated(self, params: Mapping[str, Any], live: int) -> bool:
        return False

    def probe(self, k: int, params: SearchParams, boost: float) -> Probe:
        return Probe(1, 1, k)  # exact: nothing to widen

    def search(
        self,
        queries: np.ndarray,
        k: int,
        breadth: int,
        allowed: Optional[np.ndarray] = None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` as ``(raw scores, internal ids)``: raw as faiss reports them (squared for Euclid)."""
        scores, pos = exact_search(self.vectors, queries, k, self.distance, allowed)
        ids = np.where(pos >= 0, self.labels[np.maximum(pos, 0)], -1) if self.ntotal else pos
        if metric_of(self.distance).kernel is Kernel.L2:
            scores = scores * scores
        return scores, ids

    def memory_bytes(self) -> int:
        return int(self.vectors.nbytes + self.labels.nbytes)

    def describe(self) -> str:
        return "flat"

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": FORMAT, "distance": self.distance.value}

    def save(self, path: Path) -> None:
        """``path`` (the rows) and ``path.labels.npy``, durably."""
        write_durably(path, lambda tmp: _save_npy(tmp, self.vectors))
        write_durably(path.with_name(path.name + self.SIDE_FILES[0]), lambda tmp: _save_npy(tmp, self.labels))
        fsync_path(path.parent)

    @classmethod
    def load(cls, path: Path, manifest: Mapping[str, Any], shared: bool = False) -> FlatIndex:
        if manifest.get("format") != FORMAT:
            raise ValueError(f"index format {manifest.get('format')} is not {FORMAT}")
        vectors = np.load(path)
        labels = np.load(path.with_name(path.name + cls.SIDE_FILES[0]))
        if len(labels) != len(vectors):
            raise ValueError(f"{path}: {len(vectors)} vectors but {len(labels)} labels")
        return cls(Distance(manifest["distance"]), vectors, labels)


def _save_npy(tmp: Path, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:  # np.save on a path would append ".npy" to the temp name
        np.save(f, array)
