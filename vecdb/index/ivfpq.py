"""IVF-PQ: vectors grouped into ``nlist`` coarse lists, each stored as PQ codes of its residual.

Trained by vecdb's own K-Means (:mod:`vecdb.index.kmeans`, CPU or GPU): the
coarse centroids on a sample of the vectors, then one codebook per sub-space
on the sample's residuals (vector minus its list's centroid), the layout of
faiss's ``IndexIVFPQ`` (``by_residual``). Codes are computed by vecdb too, so
both search paths below scan exactly the same bytes:

* CPU: a faiss ``IndexIVFPQ`` whose quantizer and codebooks are ours and whose
  lists are filled with our codes (``add_entries``); faiss's SIMD list scan,
  its allow-list selector over internal ids, and precomputed L2 tables. Its
  lists are the only copy of the entries (codes plus internal ids as faiss ids).
* Array module (CuPy on a GPU; NumPy in the tests): :meth:`IvfPqIndex.search_arrays`,
  the same arithmetic written with array operations. For L2,
  ``|q - c - r|^2 = |q - c|^2 + sum_j (|r_j|^2 + 2 <c_j, r_j>) - 2 sum_j <q_j, r_j>``:
  the middle term depends only on (list, code) and is tabulated once per
  index, the last only on (query, code), once per query.

Scores are approximate; the planner re-ranks the best candidates from the
stored float32 vectors. Like :class:`vecdb.index.hnsw.HnswIndex`, a published
index is never changed: growth returns a new one.

The shape rules (default ``nlist``, ``pq_m`` and ``nprobe``) are in
:mod:`vecdb.index.ivfpq_shape`. :class:`IvfPqIndex` stays one class although it
passes the project's ~400-line guide: training, adding, both searches and
persistence share its private state (the faiss index whose lists are the only
copy of the entries, the centroids and codebooks those lists were coded with,
the per-array-module tables derived from the lists, the training statistics the
retrain rule reads), and splitting it would pass that state between modules
instead of keeping it behind one object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np

from vecdb.durable import fsync_path, write_durably
from vecdb.errors import Corruption, InvalidInput
from vecdb.index.base import Probe, SearchParams, register
from vecdb.index.device import array_module, module_of, resolve_device, to_numpy
from vecdb.index.distance import higher_is_better, metric_of, normalise
from vecdb.index.hnsw import allow_list
from vecdb.index.ivfpq_shape import IvfPqShape, default_nlist, default_nprobe, default_pq_m, shape_for
from vecdb.index.kmeans import assign_nearest, kmeans
from vecdb.index.pq import ProductQuantizer, check_shape
from vecdb.models.collections import Distance

FORMAT = 1
COARSE_NITER = 20
TRAIN_POINTS_PER_LIST = 64
"""Coarse K-Means sample: at most this many points per list (faiss warns below 39)."""
PQ_TRAIN_POINTS = 32768
"""Residuals the codebooks train on (128 per codebook entry; see ``pq.PQ_NITER``)."""
_SCAN_ENTRIES = 1 << 22
"""Array-module search: queries are taken in groups scanning at most this many codes at once."""
DEFAULT_OVERSAMPLING = 10.0
"""Candidates re-ranked exactly per result, unless ``params.quantization.oversampling`` says otherwise
(codes alone rank too coarsely for recall@10 >= 0.9 on 128-d data; benchmarks/results/ivfpq.md)."""
RETRAIN_GROWTH = 4.0
"""Retrained once the space holds this many times the vectors it was trained on."""
RETRAIN_DRIFT = 1.5
"""... or once added vectors' mean squared distance to their centroid exceeds the training sample's by this."""
DRIFT_MIN_ADDED = 0.25
"""Drift is judged once at least this share of the training size has been added."""
MIN_TRAIN_POINTS = 1024
"""Fewer live vectors than this are not worth lists (and a 256-entry codebook needs 256 anyway)."""


def supports(distance: Distance) -> bool:
    """The metrics faiss's IVF-PQ scans (as its HNSW: Manhattan stays exact)."""
    return metric_of(distance).indexable


@register
class IvfPqIndex:
    """Coarse centroids, a product quantizer, and the coded lists (host arrays are the truth)."""

    kind = "ivf_pq"
    ann = True
    quantized = True
    allows_by_position = False
    """Its allow-lists are over internal ids (faiss holds internal ids as its ids)."""
    min_points = MIN_TRAIN_POINTS
    breadth_name = "nprobe"
    search_stage = "ivf_search"
    file_suffix = ".ivfpq"
    SIDE_FILES = (".json",)
    """Suffixes of the files :meth:`save` writes beside ``path`` (a snapshot copies them along)."""

    def __init__(
        self,
        distance: Distance,
        centroids: np.ndarray,
        pq: ProductQuantizer,
        faiss_index: Optional[Any] = None,
        labels: Optional[np.ndarray] = None,
        stats: Optional[dict[str, float]] = None,
    ) -> None:
        self.distance = distance
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.pq = pq.to(np)
        # faiss's lists hold the entries (our codes, internal ids as faiss ids)
        self.faiss_index = faiss_index if faiss_index is not None else self._empty_faiss()
        self.labels = np.zeros(0, np.int64) if labels is None else labels
        """Internal ids of the entries, ascending (tombstone counts, allow-lists)."""
        self.stats = {"trained_on": 0.0, "train_residual": 0.0, "added_residual": 0.0, "added": 0.0, **(stats or {})}
        """Training size, mean squared coarse residual of the training sample, and of the entries added."""
        self._device_cache: dict[str, Any] = {}

    # --- training ------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        sample: np.ndarray,
        distance: Distance,
        shape: IvfPqShape,
        *,
        seed: int = 0,
        device: str = "auto",
    ) -> IvfPqIndex:
        """An empty index whose centroids and codebooks come from ``sample`` (float32 ``[n, d]``)."""
        if not supports(distance):
            raise InvalidInput(f"index: IVF-PQ supports Cosine, Dot and Euclid, not {distance.value}")
        n, d = sample.shape
        check_shape(d, shape.pq_m, shape.pq_bits)
        if shape.nlist < 1 or shape.nlist > n:
            raise InvalidInput(f"nlist: must be between 1 and the {n} training vectors, got {shape.nlist}")
        dev = resolve_device(device)
        xp = array_module(dev)
        rng = np.random.default_rng(seed)
        data = xp.asarray(sample[_sample_rows(rng, n, shape.nlist * TRAIN_POINTS_PER_LIST)], dtype=xp.float32)
        coarse = kmeans(data, shape.nlist, niter=COARSE_NITER, tol=0.0, init="random", seed=seed, device=dev)
        centroids = to_numpy(coarse.centroids)
        if metric_of(distance).normalised:
            # Unit vectors: unit centroids make "largest inner product" the same list as "nearest".
            centroids = normalise(centroids)
        pq_data = xp.asarray(sample[_sample_rows(rng, n, PQ_TRAIN_POINTS)], dtype=xp.float32)
        on_device = xp.asarray(centroids)
        residuals = pq_data - on_device[_assign_lists(distance, pq_data, on_device)]
        pq = ProductQuantizer.train(residuals, shape.pq_m, shape.pq_bits, seed=seed + 1, device=dev)
        stats = {"trained_on": float(n), "train_residual": float((residuals * residuals).sum(axis=1).mean())}
        return cls(distance, centroids, pq, stats=stats)

    @classmethod
    def supports(cls, distance: Distance) -> bool:
        return supports(distance)

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
    ) -> IvfPqIndex:
        """Trained on a seeded sample of ``population`` (its shape from ``params``' ``nlist``, ``pq_m``,
        ``pq_bits``, ``compression`` and the population's size), holding ``rows[labels]``."""
        population = labels if population is None else population
        shape = shape_for(dict(params), rows.shape[1], len(population))
        cap = PQ_TRAIN_POINTS + shape.nlist * TRAIN_POINTS_PER_LIST
        rng = np.random.default_rng(len(population))
        sample = population if len(population) <= cap else np.sort(rng.choice(population, cap, replace=False))
        trained = cls.train(rows[sample], distance, shape, seed=0, device=device)
        trained.stats["trained_on"] = float(len(population))  # the growth rule compares with the population
        return trained.grown(labels, rows[labels])

    # --- contents --------------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    def encode(self, vectors: Any) -> tuple[Any, Any, float]:
        """(list of each vector, PQ codes of its residual, summed squared residual), on the vectors' module."""
        xp = module_of(vectors)
        if xp is np:
            centroids, pq = self.centroids, self.pq
        else:
            t = self._tables(xp)
            centroids, pq = t["centroids"], t["pq"]
        lists = _assign_lists(self.distance, vectors, centroids)
        residuals = vectors - centroids[lists]
        codes = pq.encode(residuals)
        return lists.astype(xp.int32), codes, float((residuals * residuals).sum())

    def grown(self, labels: np.ndarray, vectors: Any, should_stop: Optional[Any] = None) -> IvfPqIndex:
        """A new index holding this one's entries plus ``vectors`` under ``labels`` (internal ids, ascending,
        above every current one). Adding is cheap (assign and encode), so ``should_stop`` is not polled."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) and len(labels) and labels[0] <= self.labels[-1]:
            raise ValueError("IVF-PQ labels must be appended in ascending order")
        lists, codes, residual = self.encode(vectors)
        lists, codes = to_numpy(lists), to_numpy(codes)
        stats = dict(self.stats)
        stats["added_residual"] += residual
        stats["added"] += len(labels)
        out = IvfPqIndex(
            self.distance,
            self.centroids,
            self.pq,
            faiss_index=faiss.clone_index(self.faiss_index),
            labels=np.concatenate([self.labels, labels]),
            stats=stats,
        )
        out._fill_faiss(lists, labels, codes)
        return out

    def outdated(self, params: Mapping[str, Any], live: int) -> bool:
        """Retrain once the space has grown to ``RETRAIN_GROWTH`` times the training population, or once
        enough added vectors sit farther from their centroids than the training sample did (drift)."""
        trained_on = self.stats["trained_on"] or 1.0
        if live >= RETRAIN_GROWTH * trained_on:
            return True
        return self.stats["added"] >= DRIFT_MIN_ADDED * trained_on and self.drift() > RETRAIN_DRIFT

    def describe(self) -> str:
        return f"IVF-PQ (nlist={self.nlist}, pq_m={self.pq.m})"

    def drift(self) -> float:
        """Mean squared coarse residual of the added vectors over the training sample's (1: no drift)."""
        if not self.stats["added"] or not self.stats["train_residual"]:
            return 1.0
        return self.stats["added_residual"] / self.stats["added"] / self.stats["train_residual"]

    def memory_bytes(self) -> int:
        """Codes and ids of the entries (faiss's lists), our id array, centroids and codebooks."""
        per_entry = self.pq.m + 8 + 8
        return int(self.ntotal * per_entry + self.centroids.nbytes + self.pq.codebooks.nbytes)

    # --- search ----------------------------------------------------------------------------------

    def probe(self, k: int, params: SearchParams, boost: float) -> Probe:
        """``nprobe``: the query's or the default share of the lists, boosted; ``oversampling`` times ``k``
        candidates when they are re-ranked (``rescore``), else ``k``."""
        nprobe = min(self.nlist, math.ceil((params.nprobe or default_nprobe(self.nlist)) * boost))
        fetch = k if not params.rescore else math.ceil(k * (params.oversampling or DEFAULT_OVERSAMPLING))
        return Probe(nprobe, self.nlist, fetch)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int,
        allowed: Optional[np.ndarray] = None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k`` as ``(scores, internal ids)``; missing slots hold id -1.

        Scores are squared L2 distances (Euclid, lower is better) or inner
        products (Cosine, Dot). ``allowed``: bool mask over internal ids.
        """
        if device != "cpu":
            xp = array_module(resolve_device(device))
            scores, ids = self.search_arrays(
                xp.asarray(queries, dtype=xp.float32), k, nprobe, None if allowed is None else xp.asarray(allowed)
            )
            return to_numpy(scores), to_numpy(ids)
        k = max(1, k)
        params = faiss.SearchParametersIVF()
        params.nprobe = max(1, min(nprobe, self.nlist))
        keep = None
        if allowed is not None:
            params.sel, keep = allow_list(allowed)
        scores, ids = self.faiss_index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        del keep
        return scores, ids

    def search_arrays(self, queries: Any, k: int, nprobe: int, allowed: Optional[Any] = None) -> tuple[Any, Any]:
        """:meth:`search` written with array operations, for CuPy (and NumPy, to test it anywhere)."""
        xp = module_of(queries)
        nq = len(queries)
        nprobe = max(1, min(nprobe, self.nlist))
        ip = higher_is_better(self.distance)
        worst = xp.float32(-np.inf) if ip else xp.float32(np.inf)
        out_s = xp.full((nq, k), worst, dtype=xp.float32)
        out_i = xp.full((nq, k), -1, dtype=xp.int64)
        if not self.ntotal:
            return out_s, out_i
        t = self._tables(xp)
        centroids = t["centroids"]
        if ip:
            coarse = queries @ centroids.T
            probe = xp.argsort(-coarse, axis=1)[:, :nprobe]
        else:
            coarse = (queries * queries).sum(axis=1)[:, None] - 2 * queries @ centroids.T + t["c_sq"][None, :]
            probe = xp.argsort(coarse, axis=1)[:, :nprobe]
        sizes = t["offsets"][probe + 1] - t["offsets"][probe]  # [nq, nprobe]
        per_query = sizes.sum(axis=1)
        inner = t["pq"].inner_tables(queries)  # [nq, m, ksub]
        lo = 0
        counts = to_numpy(per_query)
        while lo < nq:
            hi = lo + 1
            total = int(counts[lo])
            while hi < nq and total + int(counts[hi]) <= _SCAN_ENTRIES:
                total += int(counts[hi])
                hi += 1
            self._scan(
                xp,
                t,
                probe[lo:hi],
                sizes[lo:hi],
                coarse[lo:hi],
                inner[lo:hi],
                allowed,
                k,
                ip,
                worst,
                out_s[lo:hi],
                out_i[lo:hi],
            )
            lo = hi
        return out_s, out_i

    def _scan(
        self,
        xp: Any,
        t: dict[str, Any],
        probe: Any,
        sizes: Any,
        coarse: Any,
        inner: Any,
        allowed: Optional[Any],
        k: int,
        ip: bool,
        worst: Any,
        out_s: Any,
        out_i: Any,
    ) -> None:
        """Score every code of the probed lists of a group of queries; keep each query's top ``k``."""
        nq, nprobe = probe.shape
        m, ksub = self.pq.m, self.pq.ksub
        flat_sizes = sizes.ravel()
        total = int(flat_sizes.sum())
        if total == 0:
            return
        pair = xp.repeat(xp.arange(nq * nprobe), flat_sizes)  # (query, probe) pair of each scanned entry
        pair_start = xp.cumsum(flat_sizes) - flat_sizes
        pos = t["offsets"][probe.ravel()][pair] + (xp.arange(total) - pair_start[pair])
        qid = pair // nprobe
        lists = probe.ravel()[pair]
        codes = t["codes"][pos].astype(xp.int64)  # [total, m]
        sub = xp.arange(m)[None, :]
        acc = inner.reshape(nq, m * ksub)[qid[:, None], sub * ksub + codes].sum(axis=1)
        if ip:
            score = xp.take_along_axis(coarse, probe, axis=1).ravel()[pair] + acc
        else:
            list_terms = t["list_terms"].reshape(self.nlist, m * ksub)[lists[:, None], sub * ksub + codes].sum(axis=1)
            score = coarse[qid, lists] + list_terms - 2 * acc
        labels = t["labels"][pos]
        if allowed is not None:
            ok = labels < len(allowed)
            ok[ok] = allowed[labels[ok]]
            score = xp.where(ok, score, worst)
        # one row per query, padded with the worst score, then a per-row top-k
        per_query = sizes.sum(axis=1)
        width = max(int(per_query.max()), 1)
        row_start = xp.cumsum(per_query) - per_query
        col = xp.arange(total) - row_start[qid]
        grid_s = xp.full((nq, width), worst, dtype=xp.float32)
        grid_i = xp.full((nq, width), -1, dtype=xp.int64)
        grid_s[qid, col] = score
        grid_i[qid, col] = labels
        key = -grid_s if ip else grid_s
        kk = min(k, width)
        order = xp.argsort(key, axis=1, kind="stable")[:, :kk]
        top_s = xp.take_along_axis(grid_s, order, axis=1)
        top_i = xp.take_along_axis(grid_i, order, axis=1)
        top_i = xp.where(top_s == worst, -1, top_i)
        out_s[:, :kk] = top_s
        out_i[:, :kk] = top_i

    def _tables(self, xp: Any) -> dict[str, Any]:
        """Lists sorted by list number (CSR) and the per-(list, code) L2 terms, on ``xp`` (cached)."""
        key = xp.__name__
        cached = self._device_cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        codes, labels, sizes = self.lists()
        offsets = np.zeros(self.nlist + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        books = self.pq.codebooks  # [m, ksub, dsub]
        m, ksub, dsub = books.shape
        c_sub = self.centroids.reshape(self.nlist, m, dsub)
        list_terms = (books * books).sum(axis=2)[None, :, :] + 2 * np.einsum("lmd,mkd->lmk", c_sub, books)
        tables = {
            "centroids": xp.asarray(self.centroids),
            "c_sq": xp.asarray((self.centroids * self.centroids).sum(axis=1)),
            "offsets": xp.asarray(offsets),
            "codes": xp.asarray(codes),
            "labels": xp.asarray(labels),
            "list_terms": xp.asarray(list_terms.astype(np.float32)),
            "pq": self.pq.to(xp),  # codebooks on the device once, not per search
        }
        self._device_cache[key] = tables
        return tables

    # --- faiss (CPU search) ------------------------------------------------------------------------

    def _empty_faiss(self) -> Any:
        d = self.centroids.shape[1]
        ip = higher_is_better(self.distance)
        quantizer = faiss.IndexFlatIP(d) if ip else faiss.IndexFlatL2(d)
        quantizer.add(self.centroids)
        metric = metric_of(self.distance).faiss_metric
        assert metric is not None  # train() refused the distances faiss cannot scan
        index = faiss.IndexIVFPQ(quantizer, d, self.nlist, self.pq.m, self.pq.nbits, metric)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index frees it
        faiss.copy_array_to_vector(
            np.ascontiguousarray(self.pq.codebooks, dtype=np.float32).ravel(), index.pq.centroids
        )
        index.is_trained = True
        if not ip:
            index.use_precomputed_table = 1
            index.precompute_table()
        return index

    def _fill_faiss(self, lists: np.ndarray, labels: np.ndarray, codes: np.ndarray) -> None:
        """Append entries to the faiss lists as they are (no re-encoding)."""
        order = np.argsort(lists, kind="stable")
        lists, labels, codes = lists[order], np.ascontiguousarray(labels[order]), np.ascontiguousarray(codes[order])
        bounds = np.flatnonzero(np.r_[True, lists[1:] != lists[:-1], True])
        invlists = self.faiss_index.invlists
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            invlists.add_entries(int(lists[a]), int(b - a), faiss.swig_ptr(labels[a:b]), faiss.swig_ptr(codes[a:b]))
        self.faiss_index.ntotal += len(labels)

    def list_ids(self) -> np.ndarray:
        """The internal ids of every entry (no codes copied: what opening needs)."""
        invlists = self.faiss_index.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), size).copy()
            for i in range(self.nlist)
            if (size := invlists.list_size(i))
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry grouped by list: (codes ``[ntotal, m]``, internal ids, list sizes ``[nlist]``)."""
        invlists = self.faiss_index.invlists
        m = self.pq.m
        sizes = np.array([invlists.list_size(i) for i in range(self.nlist)], dtype=np.int64)
        codes = np.empty((int(sizes.sum()), m), dtype=np.uint8)
        labels = np.empty(int(sizes.sum()), dtype=np.int64)
        at = 0
        for i, size in enumerate(sizes.tolist()):
            if size:
                codes[at : at + size] = faiss.rev_swig_ptr(invlists.get_codes(i), size * m).reshape(size, m)
                labels[at : at + size] = faiss.rev_swig_ptr(invlists.get_ids(i), size)
                at += size
        return codes, labels, sizes

    # --- persistence -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": FORMAT, "nlist": self.nlist, "pq_m": self.pq.m}

    def save(self, path: Path) -> None:
        """The faiss index file (lists, centroids, codebooks) and a JSON header beside it, durably."""
        write_durably(path, lambda tmp: faiss.write_index(self.faiss_index, str(tmp)))
        header = {"format": FORMAT, "distance": self.distance.value, "stats": self.stats}
        write_durably(path.with_name(path.name + self.SIDE_FILES[0]), lambda tmp: tmp.write_text(json.dumps(header)))
        fsync_path(path.parent)

    @classmethod
    def load(cls, path: Path, manifest: Optional[Mapping[str, Any]] = None, shared: bool = False) -> IvfPqIndex:
        """The index :meth:`save` wrote; its JSON header must say this ``FORMAT`` (and so must ``manifest``)."""
        if manifest is not None and manifest.get("format") != FORMAT:
            raise ValueError(f"index format {manifest.get('format')} is not {FORMAT}")
        try:
            header = json.loads(path.with_name(path.name + cls.SIDE_FILES[0]).read_text())
            if header.get("format") != FORMAT:
                raise Corruption(f"{path}: IVF-PQ format {header.get('format')!r}, expected {FORMAT}")
            index = faiss.read_index(str(path))  # already the concrete class: do not downcast again
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise Corruption(f"{path}: unreadable IVF-PQ index ({exc})") from None
        if not isinstance(index, faiss.IndexIVFPQ):
            raise Corruption(f"{path}: not an IVF-PQ index")
        centroids = index.quantizer.reconstruct_n(0, index.nlist)
        books = faiss.vector_to_array(index.pq.centroids).reshape(index.pq.M, index.pq.ksub, index.pq.dsub)
        out = cls(
            Distance(header["distance"]),
            centroids,
            ProductQuantizer(books),
            faiss_index=index,
            stats=header.get("stats"),
        )
        out.labels = np.sort(out.list_ids())
        return out


def _sample_rows(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Ascending row numbers of a seeded sample of at most ``size`` of ``n`` rows (all when fewer)."""
    return np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)


def _assign_lists(distance: Distance, vectors: Any, centroids: Any) -> Any:
    """List of each vector: nearest centroid (L2), or largest inner product (Cosine, Dot), as faiss."""
    if not higher_is_better(distance):
        return assign_nearest(vectors, centroids)[0]
    xp = module_of(vectors)
    out = xp.empty(len(vectors), dtype=xp.int64)
    block = max(1, _SCAN_ENTRIES // max(1, len(centroids)))
    for lo in range(0, len(vectors), block):
        out[lo : lo + block] = (vectors[lo : lo + block] @ centroids.T).argmax(axis=1)
    return out


# IvfPqShape and the default_* rules stay importable from here (tests and benchmarks import them so).
__all__ = [
    "DEFAULT_OVERSAMPLING",
    "IvfPqIndex",
    "IvfPqShape",
    "default_nlist",
    "default_nprobe",
    "default_pq_m",
    "supports",
]
