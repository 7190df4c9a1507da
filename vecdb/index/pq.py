"""Product quantization: codebooks trained by vecdb's K-Means, codes, and distance tables.

A vector of dimension ``d`` is cut into ``m`` sub-vectors of ``d / m``
dimensions; each is replaced by the index of its nearest centroid in that
sub-space's codebook of ``2 ** nbits`` entries, so 128 float32 dimensions
(512 bytes) become ``m`` bytes. Distances between a query and a code are
sums of ``m`` table lookups ("asymmetric distance computation").

Everything here takes an array module (NumPy or CuPy) through its inputs:
codebooks trained on either device give the same codes on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdb.errors import InvalidInput
from vecdb.index.device import module_of, to_numpy
from vecdb.index.kmeans import assign_nearest, kmeans

SUPPORTED_BITS = (8,)
"""One byte per sub-vector: the layout faiss's IVF-PQ scanner is fastest on."""
PQ_NITER = 15
"""Lloyd iterations per codebook. On 200k x 128 (nlist 512, m 32), 15 iterations on 32k residuals gave
re-ranked recall@10 0.983 against 0.985 for faiss's 25 on 64k, in a third of the training time."""


def check_shape(d: int, m: int, nbits: int) -> None:
    if m < 1 or d % m:
        raise InvalidInput(f"pq_m: must divide the vector size {d} (got {m})")
    if nbits not in SUPPORTED_BITS:
        raise InvalidInput(f"pq_bits: only {', '.join(map(str, SUPPORTED_BITS))} is supported (got {nbits})")


@dataclass(frozen=True)
class ProductQuantizer:
    """``codebooks``: float32 ``[m, 2 ** nbits, d / m]`` (NumPy or CuPy)."""

    codebooks: Any

    @property
    def m(self) -> int:
        return int(self.codebooks.shape[0])

    @property
    def ksub(self) -> int:
        return int(self.codebooks.shape[1])

    @property
    def dsub(self) -> int:
        return int(self.codebooks.shape[2])

    @property
    def nbits(self) -> int:
        return self.ksub.bit_length() - 1

    @property
    def d(self) -> int:
        return self.m * self.dsub

    @classmethod
    def train(cls, x: Any, m: int, nbits: int = 8, *, seed: int = 0, device: str = "auto") -> ProductQuantizer:
        """One K-Means per sub-space (random starts, ``PQ_NITER`` iterations; seeds ``seed + j``)."""
        n, d = x.shape
        check_shape(d, m, nbits)
        ksub = 1 << nbits
        if n < ksub:
            raise InvalidInput(f"training needs at least {ksub} vectors for pq_bits={nbits}, got {n}")
        dsub = d // m
        books = []
        for j in range(m):
            sub = x[:, j * dsub : (j + 1) * dsub]
            res = kmeans(sub, ksub, niter=PQ_NITER, tol=0.0, init="random", seed=seed + j, device=device)
            books.append(res.centroids)
        xp = module_of(books[0])
        return cls(xp.stack(books).astype(xp.float32))

    def to(self, xp: Any) -> ProductQuantizer:
        """The same codebooks on another array module (``numpy`` or ``cupy``)."""
        if module_of(self.codebooks) is xp:
            return self
        return ProductQuantizer(xp.asarray(to_numpy(self.codebooks)))

    def encode(self, x: Any) -> Any:
        """uint8 codes ``[n, m]``: the nearest codebook entry of each sub-vector.

        On the CPU, faiss's SIMD encoder does it with these codebooks (4x faster
        than our compiled loop on 1M x 128, m=32); :meth:`encode_arrays` is the
        array-module version (CuPy), which the tests check against it.
        """
        if isinstance(x, np.ndarray):
            return self._faiss_pq().compute_codes(np.ascontiguousarray(x, dtype=np.float32))
        return self.encode_arrays(x)

    def _faiss_pq(self) -> Any:
        import faiss

        cached = getattr(self, "_faiss", None)
        if cached is None:
            cached = faiss.ProductQuantizer(self.d, self.m, self.nbits)
            faiss.copy_array_to_vector(np.ascontiguousarray(self.codebooks, dtype=np.float32).ravel(), cached.centroids)
            object.__setattr__(self, "_faiss", cached)  # frozen dataclass: a private cache
        return cached

    def encode_arrays(self, x: Any) -> Any:
        """:meth:`encode` through the array module's products (NumPy or CuPy)."""
        xp = module_of(x)
        books = self.to(xp).codebooks
        codes = xp.empty((len(x), self.m), dtype=xp.uint8)
        for j in range(self.m):
            sub = xp.ascontiguousarray(x[:, j * self.dsub : (j + 1) * self.dsub], dtype=xp.float32)
            labels, _ = assign_nearest(sub, books[j])
            codes[:, j] = labels
        return codes

    def decode(self, codes: Any) -> Any:
        """Reconstructed float32 vectors ``[n, d]`` (centroid of each code, side by side)."""
        xp = module_of(codes)
        books = self.to(xp).codebooks
        parts = [books[j][codes[:, j].astype(xp.int64)] for j in range(self.m)]
        return xp.concatenate(parts, axis=1)

    def inner_tables(self, queries: Any) -> Any:
        """``<q_j, codebook_j[c]>`` for every query, sub-space and code: ``[nq, m, ksub]``."""
        xp = module_of(queries)
        books = self.to(xp).codebooks
        q = queries.reshape(len(queries), self.m, self.dsub)
        return xp.einsum("qmd,mkd->qmk", q, books)


__all__ = ["SUPPORTED_BITS", "ProductQuantizer", "check_shape"]
