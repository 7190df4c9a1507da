"""Per-request ceilings: points per write, bytes per payload, results per query.

A server shared by many clients needs them so that one request cannot take
the memory or the time of all the others; ``vecdb serve`` sets sane defaults
(see :class:`vecdb.api.settings.ServerSettings`). An embedded client is its
own only user and has none unless it asks. A request over a limit is refused
whole, before anything is written, with a message naming the field and the
setting that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from vecdb.errors import InvalidInput

DEFAULT_MAX_MAP_SIZE = 1 << 40
"""Largest LMDB map of one collection unless told otherwise (``--max-collection-bytes``)."""


@dataclass(frozen=True)
class Limits:
    max_points: Optional[int] = None
    """Points one write request may carry (upsert, or all upserts of one batch)."""
    max_payload_bytes: Optional[int] = None
    """Bytes of one point's payload, as stored JSON."""
    max_results: Optional[int] = None
    """``limit + offset`` of one query, search or scroll."""

    def check_points(self, count: int, field: str) -> None:
        if self.max_points is not None and count > self.max_points:
            raise InvalidInput(
                f"{field}: {count} points in one request; the limit is {self.max_points} "
                "(server option --max-batch-points)"
            )

    def check_payloads(self, payloads: list[bytes], field: str) -> None:
        if self.max_payload_bytes is None:
            return
        for i, payload in enumerate(payloads):
            if len(payload) > self.max_payload_bytes:
                raise InvalidInput(
                    f"{field}[{i}]: payload of {len(payload)} bytes; the limit is "
                    f"{self.max_payload_bytes} (server option --max-payload-bytes)"
                )

    def check_results(self, limit: int, offset: int, field: str) -> None:
        if self.max_results is not None and limit + offset > self.max_results:
            raise InvalidInput(
                f"{field}: limit + offset = {limit + offset}; the limit is {self.max_results} "
                "(server option --max-results)"
            )


NO_LIMITS = Limits()

__all__ = ["NO_LIMITS", "Limits"]
