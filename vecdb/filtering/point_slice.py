"""Qdrant's ``slice`` condition: which of ``total`` slices a point id falls in.

Slices must agree with a Qdrant server's (a client may page through a collection
slice by slice against either), so this is Qdrant's hash: SipHash-2-4 with a zero
key over the id's bytes (checked against ``qdrant_client.local.siphash`` in
``tests/unit/test_filters.py``). A module of its own because the hash knows
nothing of filters; the evaluator only calls :func:`point_slice`.
"""

from __future__ import annotations

import uuid

from vecdb.ids import PointId

_MASK64 = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK64


def _siphash24(data: bytes) -> int:
    """SipHash-2-4 with a zero key: Qdrant's slice hash, so slices agree with the server."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def rounds(count: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 = (v0 + v1) & _MASK64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    length = len(data)
    full = length - length % 8
    for offset in range(0, full, 8):
        block = int.from_bytes(data[offset : offset + 8], "little")
        v3 ^= block
        rounds(2)
        v0 ^= block
    block = int.from_bytes(data[full:], "little") | ((length & 0xFF) << 56)
    v3 ^= block
    rounds(2)
    v0 ^= block
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def point_slice(point_id: PointId, total: int) -> int:
    """Which of ``total`` slices a canonical id falls in (8 LE bytes / 16 UUID bytes)."""
    if isinstance(point_id, int):
        data = point_id.to_bytes(8, "little")
    else:
        data = uuid.UUID(point_id).bytes
    return _siphash24(data) % total


__all__ = ["point_slice"]
