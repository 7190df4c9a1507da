"""The filter masks of recent reads, so that a filter repeated on every query (an LLM app's
``user_id``, a tenant, a tag) is computed once per write, not once per query.

A mask depends on the read view (which points are live, and their payloads as of that write) and on
the payload index's schema (a text index changes how text conditions tokenize), so an entry is keyed
by the view's write sequence number and size, the schema generation and the filter's JSON. A new
write, a new view: old entries are never looked up again and age out. Entries are stored only once
the read that computed them passed its consistency check, and handed out read-only and as they are
(no copy per query): the same filter gives the same array object, so what the planner derives from
a mask (its allow-list over graph positions, a search bitmap) is kept with it too
(``engine/planner.py``). A caller that changes a mask copies it first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Optional

import numpy as np

MASK_CACHE_BYTES = 64 * 2**20
"""The most memory the cached masks of one collection take (one byte per point each)."""
MASK_CACHE_ENTRIES = 64


class MaskCache:
    def __init__(self, budget: int = MASK_CACHE_BYTES, entries: int = MASK_CACHE_ENTRIES) -> None:
        self._budget, self._entries = budget, entries
        self._masks: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Optional[np.ndarray]:
        with self._lock:
            mask = self._masks.get(key)
            if mask is None:
                return None
            self._masks.move_to_end(key)
        return mask

    def put(self, key: Any, mask: np.ndarray) -> Optional[np.ndarray]:
        """Keep a read-only copy of ``mask`` and return it (None if too large to keep)."""
        if mask.nbytes > self._budget // 4:  # (a collection so large that masks crowd each other out)
            return None
        mask = mask.copy()
        mask.flags.writeable = False
        with self._lock:
            old = self._masks.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._masks[key] = mask
            self._bytes += mask.nbytes
            while self._masks and (self._bytes > self._budget or len(self._masks) > self._entries):
                _, evicted = self._masks.popitem(last=False)
                self._bytes -= evicted.nbytes
        return mask

    def clear(self) -> None:
        with self._lock:
            self._masks.clear()
            self._bytes = 0


__all__ = ["MASK_CACHE_BYTES", "MaskCache"]
