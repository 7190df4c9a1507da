"""Large upsert bodies decoded in a helper process, so that queries keep the interpreter meanwhile.

Parsing a 1,000 x 384 batch (7.6 MB of JSON) is one C call that holds the GIL for 15-40 ms (simdjson
or orjson alike): every query arriving meanwhile waits for it, and the search p99 under a bulk load
rose from about 2 ms to over 20 ms (``python -m benchmarks serve``'s ingest rows). In a helper
process the same decode costs the server only the copy of the body out and of the float32 matrix,
ids and payloads back.

The round trip costs time, so it is taken only when it buys something: for bodies of at least
:data:`POOLED_BYTES`, and only while queries are being served (:class:`vecdb.api.fast_routes.FastRoutes`
decides, from the time of the last one answered: an upsert stream alone on the server decodes in its own
thread, at full speed). Any body also decodes
in the request's thread when the helper process cannot be used (it died, or the platform cannot start
one): the decode there is the same function, so answers never depend on where it ran.

Measured (glove50 100k served, wrk at 2 connections, 1,000 x 384 upserts at 10k points/s): search p99
2 ms idle, 25-33 ms during the ingest decoded in the server process, 4-7 ms with the helper; a single
upsert stream alone: about 21k vectors/s in the server process, 15k through the helper.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import threading
from typing import Any, Optional

from vecdb.models.vector_json import upsert_columns

log = logging.getLogger(__name__)

POOLED_BYTES = 256 * 1024
"""Bodies at least this large are decoded in the helper process."""


class DecodePool:
    """At most ``processes`` helper processes (started on first use, ``spawn``: the server holds
    threads and open LMDB environments, which a fork must not copy)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: Optional[concurrent.futures.ProcessPoolExecutor] = None
        self._lock = threading.Lock()

    def upsert_columns(self, body: bytes) -> Optional[tuple[dict[str, Any], dict[str, Any], bool]]:
        """:func:`vecdb.models.vector_json.upsert_columns`, in a helper process when the body is large."""
        pool = self._get() if len(body) >= POOLED_BYTES else None
        if pool is not None:
            try:
                return pool.submit(upsert_columns, body).result()
            except Exception:  # a helper died (killed, out of memory): decode here, start afresh next time
                log.warning("upsert decode process failed; decoding in the server process", exc_info=True)
                self._discard(pool)
        return upsert_columns(body)

    def _get(self) -> Optional[concurrent.futures.ProcessPoolExecutor]:
        if self.processes <= 0:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["POOLED_BYTES", "DecodePool"]
