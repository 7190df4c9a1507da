"""IVF-PQ shape rules: how many lists, how many code bytes, how many lists a query probes.

The defaults depend only on a space's size and dimension (and a query's ``nprobe``
on the number of lists), not on anything trained; :class:`vecdb.index.ivfpq.IvfPqIndex`
reads them when it builds and probes, and the benchmarks size their runs with them
without training an index. So they live apart from the index class, which takes a
shape and trains on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class IvfPqShape:
    """Coarse lists, PQ sub-spaces (code bytes per vector at 8 bits) and bits per sub-space code."""

    nlist: int
    pq_m: int
    pq_bits: int = 8


DEFAULT_NPROBE_SHARE = 16
"""Default nprobe: nlist / 16, at least 16 (small indexes need a larger share: sift5k, nlist 64, reaches
recall@10 0.91 at 16 and 0.73 at 8), at most nlist."""


def default_nlist(n: int) -> int:
    """About sqrt(n), a power of two (1M -> 1024), with at least 39 training points per list (faiss's floor)."""
    nlist = 1 << max(0, int(round(np.log2(np.sqrt(max(n, 1))))))
    while nlist > 1 and n / nlist < 39:
        nlist //= 2
    return nlist


def default_pq_m(d: int, compression: Optional[float] = None) -> int:
    """Code bytes per vector: the largest divisor of ``d`` within ``4 d / compression`` bytes (Qdrant's
    product ratios), else by default the smallest divisor of ``d`` that is at least ``d / 4`` (32 bytes
    for 128 dimensions: 16x smaller than float32)."""
    if compression:
        budget = max(1, int(4 * d // compression))
        return max(m for m in range(1, min(budget, d) + 1) if d % m == 0)
    return next(m for m in range(max(1, -(-d // 4)), d + 1) if d % m == 0)


def default_nprobe(nlist: int) -> int:
    """Lists a query probes when it does not say (see ``DEFAULT_NPROBE_SHARE``)."""
    return max(1, min(nlist, max(16, nlist // DEFAULT_NPROBE_SHARE)))


def shape_for(cfg: dict[str, Any], d: int, n: int) -> IvfPqShape:
    """The shape an ``index`` setting asks for, defaults filled from the space's size and dimension."""
    nlist = int(cfg.get("nlist") or default_nlist(n))
    pq_m = int(cfg.get("pq_m") or default_pq_m(d, cfg.get("compression")))
    return IvfPqShape(min(nlist, max(1, n)), pq_m, int(cfg.get("pq_bits") or 8))


__all__ = ["DEFAULT_NPROBE_SHARE", "IvfPqShape", "default_nlist", "default_nprobe", "default_pq_m", "shape_for"]
