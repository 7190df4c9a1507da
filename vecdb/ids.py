"""Point ids: unsigned 64-bit integers or UUIDs, in every spelling Qdrant accepts.

Users may send a UUID as 32 hex digits, hyphenated, ``{hyphenated}`` or
``urn:uuid:hyphenated``; vecdb always returns the lowercase hyphenated form.
Ids are stored as sortable byte keys so that an LMDB cursor walks them in
Qdrant's default scroll order: integers ascending, then UUIDs in string order.
"""

from __future__ import annotations

import uuid
from typing import Union

from vecdb.errors import InvalidInput

PointId = Union[int, str]
"""A normalised external id: a Python int in [0, 2**64) or a lowercase hyphenated UUID."""

_U64_MAX = 2**64 - 1
INT_TAG = b"\x00"
UUID_TAG = b"\x01"


def parse_point_id(value: object, field: str = "id") -> PointId:
    """Return the canonical form of a user-supplied id, or raise InvalidInput naming ``field``."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field}: point id must be an unsigned integer or a UUID, got a boolean")
    if isinstance(value, int):
        if 0 <= value <= _U64_MAX:
            return value
        raise InvalidInput(f"{field}: integer point id {value} is outside 0..2^64-1")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise InvalidInput(
                f"{field}: {value!r} is not a valid point id: expected an unsigned integer or a UUID"
            ) from None
    raise InvalidInput(f"{field}: point id must be an unsigned integer or a UUID, got {type(value).__name__}")


def id_to_key(point_id: PointId) -> bytes:
    """Encode a canonical id as a byte key whose order is Qdrant's scroll order."""
    if isinstance(point_id, int):
        return INT_TAG + point_id.to_bytes(8, "big")
    return UUID_TAG + uuid.UUID(point_id).bytes


def key_to_id(key: bytes) -> PointId:
    """Decode a key written by :func:`id_to_key`."""
    if key[:1] == INT_TAG:
        return int.from_bytes(key[1:9], "big")
    return str(uuid.UUID(bytes=bytes(key[1:17])))


def id_sort_key(point_id: PointId) -> tuple[int, int, str]:
    """Python sort key matching the byte-key order (for merging in memory)."""
    if isinstance(point_id, int):
        return (0, point_id, "")
    return (1, 0, point_id)


__all__ = ["INT_TAG", "UUID_TAG", "PointId", "id_sort_key", "id_to_key", "key_to_id", "parse_point_id"]
