"""Every point's external id and version, by internal id, in memory.

A search that returns no payload and no vector needs nothing from LMDB but
each hit's id and version. Reading them back per query cost a read
transaction and ten B-tree lookups on caches a graph search had just
flushed: about a quarter of an HNSW query's time. Held here they cost 16
bytes per point (24 more for a UUID), filled at open from the ``ids`` table.

Like the vector matrix, the arrays are shared by successive snapshots and
only appended to: an older read view never looks past its own ``n``. The one
in-place change is a point's version after a payload-only write (the point
keeps its internal id), which an older read view may then already see; that
only ever shows a newer version number, never an older one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Optional

import numpy as np

from vecdb.ids import INT_TAG, PointId

_INT_KEY_LEN = 9


class PointIds:
    """External ids (``uint64``, or 16 UUID bytes where ``is_uuid``) and versions over internal ids."""

    __slots__ = ("ints", "versions", "uuids", "is_uuid")

    def __init__(
        self,
        ints: np.ndarray,
        versions: np.ndarray,
        uuids: Optional[np.ndarray] = None,
        is_uuid: Optional[np.ndarray] = None,
    ) -> None:
        self.ints = ints
        self.versions = versions
        self.uuids = uuids  # uint8 [capacity, 16], allocated with the first UUID
        self.is_uuid = is_uuid  # bool [capacity], likewise

    @staticmethod
    def empty(capacity: int) -> PointIds:
        return PointIds(np.zeros(capacity, dtype=np.uint64), np.zeros(capacity, dtype=np.int64))

    @property
    def capacity(self) -> int:
        return len(self.ints)

    def grown(self, capacity: int, used: int) -> PointIds:
        """A copy with room for ``capacity`` internal ids (the first ``used`` kept)."""
        out = PointIds.empty(capacity)
        out.ints[:used] = self.ints[:used]
        out.versions[:used] = self.versions[:used]
        if self.uuids is not None and self.is_uuid is not None:
            out._allow_uuids()
            out.uuids[:used] = self.uuids[:used]  # type: ignore[index]
            out.is_uuid[:used] = self.is_uuid[:used]  # type: ignore[index]
        return out

    def _allow_uuids(self) -> None:
        if self.uuids is None:
            self.uuids = np.zeros((self.capacity, 16), dtype=np.uint8)
            self.is_uuid = np.zeros(self.capacity, dtype=bool)

    def put(self, iids: np.ndarray, keys: Sequence[bytes], versions: np.ndarray | int) -> None:
        """Record new points: ``keys`` are their id keys (:func:`vecdb.ids.id_to_key`), aligned with ``iids``."""
        if not len(keys):
            return
        self.versions[iids] = versions
        if all(len(k) == _INT_KEY_LEN for k in keys):  # integer ids only: one vectorised decode
            raw = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _INT_KEY_LEN)
            self.ints[iids] = raw[:, 1:].copy().view(">u8").ravel()
            if self.is_uuid is not None:
                self.is_uuid[iids] = False
            return
        for iid, key in zip(np.asarray(iids).tolist(), keys, strict=True):
            if key[:1] == INT_TAG:
                self.ints[iid] = int.from_bytes(key[1:_INT_KEY_LEN], "big")
                if self.is_uuid is not None:
                    self.is_uuid[iid] = False
            else:
                self._allow_uuids()
                self.uuids[iid] = np.frombuffer(key[1:17], dtype=np.uint8)  # type: ignore[index]
                self.is_uuid[iid] = True  # type: ignore[index]

    def set_version(self, iids: Sequence[int], version: int | np.ndarray) -> None:
        if len(iids):
            self.versions[np.asarray(iids, dtype=np.int64)] = version

    def ids_of(self, iids: Sequence[int] | np.ndarray) -> list[PointId]:
        """The external ids of ``iids``, as the API returns them (int, or hyphenated UUID string)."""
        where = np.asarray(iids, dtype=np.int64)
        out: list[PointId] = self.ints[where].tolist()
        if self.is_uuid is not None:
            for j in np.flatnonzero(self.is_uuid[where]).tolist():
                out[j] = str(uuid.UUID(bytes=self.uuids[where[j]].tobytes()))  # type: ignore[index]
        return out

    def page_in_id_order(self, iids: np.ndarray, offset: Optional[PointId], count: int) -> np.ndarray:
        """The first ``count`` of ``iids`` in external-id order (integer ids first, then UUIDs by their
        bytes, as the ``ids`` table's keys sort), from the id ``offset`` inclusive (None: the first)."""
        iids = np.asarray(iids, dtype=np.int64)
        is_uuid = self.is_uuid[iids] if self.is_uuid is not None else np.zeros(len(iids), dtype=bool)
        ints, uuids = iids[~is_uuid], iids[is_uuid]
        if isinstance(offset, int):
            ints = ints[self.ints[ints] >= offset]
        elif offset is not None:  # a UUID: past every integer id
            ints = ints[:0]
            start = uuid.UUID(offset).bytes
            uuids = uuids[[self.uuids[i].tobytes() >= start for i in uuids.tolist()]]  # type: ignore[index]
        page = _smallest(ints, self.ints[ints], count)
        if len(page) < count and len(uuids):
            keys = [self.uuids[i].tobytes() for i in uuids.tolist()]  # type: ignore[index]
            order = sorted(range(len(keys)), key=keys.__getitem__)[: count - len(page)]
            page = np.concatenate((page, uuids[order]))
        return page

    def ids_and_versions(self, iids: Sequence[int] | np.ndarray) -> tuple[list[PointId], list[int]]:
        """:meth:`ids_of` and :meth:`versions_of` together (a query's hits need both)."""
        where = np.asarray(iids, dtype=np.int64)
        return self.ids_of(where), self.versions[where].tolist()

    def versions_of(self, iids: Sequence[int] | np.ndarray) -> list[int]:
        return self.versions[np.asarray(iids, dtype=np.int64)].tolist()  # type: ignore[no-any-return]

    def memory_bytes(self) -> int:
        extra = 0 if self.uuids is None or self.is_uuid is None else self.uuids.nbytes + self.is_uuid.nbytes
        return int(self.ints.nbytes + self.versions.nbytes + extra)


def _smallest(items: np.ndarray, keys: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` of ``items`` with the smallest (unique) ``keys``, in key order."""
    if len(items) > count:
        cut = np.argpartition(keys, count - 1)[:count]  # (unique keys: no partition worst case)
        items, keys = items[cut], keys[cut]
    return items[np.argsort(keys, kind="stable")]


__all__ = ["PointIds"]
