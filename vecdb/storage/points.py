"""Byte layout of one collection's LMDB environment.

Named databases:

* ``meta``     -- format marker, collection config (JSON), counters.
* ``ids``      -- external id key (see :mod:`vecdb.ids`) -> ``internal id (u64) | version (u64)``.
  Its cursor order is Qdrant's scroll order. The version rides along so that
  opening a collection learns every point's id and version from this small
  table alone, without reading payloads. (Collections written before versions
  were kept here hold the internal id alone; they are read from ``points``.)
* ``points``   -- internal id -> ``version (u64) | key length (u8) | key | payload JSON``.
* ``vectors``  -- internal id + vector-space index -> raw little-endian float32.
* ``sparse``   -- internal id + sparse-space index -> ``indices (u32 LE) | values (f32 LE)``, the
  indices ascending and unique, as many of each. Stores written before sparse vectors existed get
  the (empty) table on their first open; nothing else about them changes.
* ``multi``    -- multivector space index (u16) + internal id -> the point's matrix of float32 rows (raw
  little-endian, row after row; the space's size says where one ends). Keyed space first, so that an
  exact MaxSim scan of one space is one cursor range. Added like ``sparse``: older stores get the
  (empty) table on their first open.
* ``changes``  -- write sequence number (u64) -> what that write changed: ``first internal id | next
  internal id | dead count (u32) | touched count (u32) | dead ids (u64 LE...) | touched ids (u64 LE...)``.
  New points are the internal ids ``first .. next-1``; dead ones were deleted or replaced; touched
  ones had their payload alone rewritten. The last :data:`CHANGES_KEPT` writes are kept, so that a
  process serving the same directory (``vecdb serve --workers``) catches up on another's writes
  without reading the whole store again. Added like ``sparse``: older stores get it on first open.

Internal ids are dense and never reused: an overwrite writes the new version
under a fresh internal id and deletes the old rows, so the in-memory matrix and
later index files can refer to rows by number without ever seeing them change.
Every value is plain bytes (JSON and float32), never pickle.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import lmdb
import numpy as np
import orjson

from vecdb.errors import Corruption
from vecdb.ids import PointId, id_to_key, key_to_id

POINTS_DBS = ("meta", "ids", "points", "vectors", "sparse", "changes", "multi")
FORMAT = b"vecdb-collection/1"

_IID = struct.Struct(">Q")
_VEC_KEY = struct.Struct(">QH")
_HEADER = struct.Struct(">QB")
_ID_VALUE = struct.Struct(">QQ")
_CHANGE = struct.Struct(">QQII")
_MULTI_KEY = struct.Struct(">HQ")

CHANGES_KEPT = 10000
"""Writes whose change records are kept; a reader further behind reads the whole store again."""


def iid_key(iid: int) -> bytes:
    return _IID.pack(iid)


def vector_key(iid: int, space: int) -> bytes:
    return _VEC_KEY.pack(iid, space)


def multi_key(space: int, iid: int) -> bytes:
    return _MULTI_KEY.pack(space, iid)


def decode_multi(raw: bytes, size: int) -> np.ndarray:
    """A ``multi`` value as a read-only float32 ``[rows, size]`` matrix over the buffer (copy to keep it
    past the transaction)."""
    return np.frombuffer(raw, dtype="<f4").reshape(-1, size)


def encode_sparse(indices: np.ndarray, values: np.ndarray) -> bytes:
    return indices.astype("<u4", copy=False).tobytes() + values.astype("<f4", copy=False).tobytes()


def decode_sparse(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(indices uint32, values float32) of a ``sparse`` value (copies: LMDB's buffer is not kept)."""
    half = len(raw) // 2
    return (
        np.frombuffer(raw, dtype="<u4", count=half // 4).astype(np.uint32),
        np.frombuffer(raw, dtype="<f4", offset=half).astype(np.float32),
    )


def decode_iid(raw: bytes) -> int:
    """The internal id of a ``points`` key or an ``ids`` value (which may carry a version after it)."""
    return int(_IID.unpack_from(raw)[0])


def _iids_of(keys: list[bytes]) -> list[int]:
    """Internal ids of ``points`` keys (8 bytes big-endian each), decoded together."""
    return np.frombuffer(b"".join(keys), dtype=">u8").astype(np.int64).tolist()  # type: ignore[no-any-return]


def id_value(iid: int, version: int) -> bytes:
    return _ID_VALUE.pack(iid, version)


def encode_record(version: int, key: bytes, payload_json: bytes) -> bytes:
    return _HEADER.pack(version, len(key)) + key + payload_json


@dataclass(slots=True)
class StoredPoint:
    """One point as read back from LMDB (payload still encoded until asked for)."""

    iid: int
    id: PointId
    version: int
    payload_json: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.payload_json)  # type: ignore[no-any-return]


def decode_record(iid: int, raw: bytes) -> StoredPoint:
    version, key_len = _HEADER.unpack_from(raw)
    start = _HEADER.size
    key = raw[start : start + key_len]
    return StoredPoint(iid, key_to_id(key), version, raw[start + key_len :])


def record_payload(raw: bytes) -> bytes:
    """The payload JSON of a ``points`` value, its id and version left undecoded (the header's last
    byte is the key's length)."""
    return raw[_HEADER.size + raw[_HEADER.size - 1] :]


@dataclass(frozen=True, slots=True)
class Change:
    """What one committed write changed (a ``changes`` record)."""

    seq: int
    first_iid: int
    next_iid: int
    dead: np.ndarray  # int64 internal ids deleted or replaced (may include ids born in the same write)
    touched: np.ndarray  # int64 internal ids whose payload alone was rewritten


def encode_change(first_iid: int, next_iid: int, dead: list[int], touched: list[int]) -> bytes:
    return (
        _CHANGE.pack(first_iid, next_iid, len(dead), len(touched))
        + np.asarray(dead, dtype="<u8").tobytes()
        + np.asarray(touched, dtype="<u8").tobytes()
    )


def decode_change(seq: int, raw: bytes) -> Change:
    first, nxt, n_dead, n_touched = _CHANGE.unpack_from(raw)
    ids = np.frombuffer(raw, dtype="<u8", offset=_CHANGE.size, count=n_dead + n_touched).astype(np.int64)
    return Change(seq, first, nxt, ids[:n_dead], ids[n_dead:])


@dataclass(slots=True)
class IdChunk:
    """Part of the ``ids`` table: positions align across the three."""

    iids: np.ndarray  # int64
    versions: np.ndarray  # int64
    keys: list[bytes]  # external id keys (vecdb.ids.id_to_key)
    legacy: bool = False  # some values held the internal id alone (see PointsTables.upgrade_ids)


def _check_appended(result: tuple[int, int], expected: int, table: str) -> None:
    """LMDB's append mode skips (without an error) a key that is not above the last one."""
    if result[1] != expected:
        raise Corruption(f"{table}: {expected - result[1]} rows were not above the stored internal ids")


class PointsTables:
    """Typed access to the named databases of one collection, inside caller-owned transactions."""

    def __init__(self, dbs: dict[str, Any]) -> None:
        self.meta = dbs["meta"]
        self.ids = dbs["ids"]
        self.points = dbs["points"]
        self.vectors = dbs["vectors"]
        self.sparse = dbs.get("sparse")
        self.changes = dbs.get("changes")
        self.multi = dbs.get("multi")

    # meta
    def check_format(self, txn: lmdb.Transaction) -> bool:
        """True if the environment holds a collection; raise Corruption if it holds something else."""
        marker = txn.get(b"format", db=self.meta)
        if marker is None:
            return False
        if marker != FORMAT:
            raise Corruption(f"unknown collection format {marker!r}; expected {FORMAT!r}")
        return True

    def put_meta_json(self, txn: lmdb.Transaction, key: str, value: Any) -> None:
        txn.put(key.encode(), orjson.dumps(value), db=self.meta)

    def committed_seq(self, txn: lmdb.Transaction) -> int:
        """The sequence number of the last write committed as of ``txn``."""
        return int(self.get_meta_json(txn, "counters")["seq"])

    def get_meta_json(self, txn: lmdb.Transaction, key: str, default: Any = None) -> Any:
        raw = txn.get(key.encode(), db=self.meta)
        return default if raw is None else orjson.loads(raw)

    def init(self, txn: lmdb.Transaction, config: dict[str, Any]) -> None:
        txn.put(b"format", FORMAT, db=self.meta)
        self.put_meta_json(txn, "config", config)
        self.put_meta_json(txn, "counters", {"next_iid": 0, "seq": 0})

    # changes
    def put_change(self, txn: lmdb.Transaction, seq: int, record: bytes) -> None:
        """Record write ``seq``'s changes and drop the record that fell out of the kept window."""
        if self.changes is None:
            return
        txn.put(_IID.pack(seq), record, db=self.changes)
        if seq > CHANGES_KEPT:
            txn.delete(_IID.pack(seq - CHANGES_KEPT), db=self.changes)

    def changes_after(self, txn: lmdb.Transaction, seq: int, upto: int) -> Optional[list[Change]]:
        """The records of writes ``seq+1 .. upto`` in order, or None when some are no longer kept."""
        if self.changes is None:
            return None
        out: list[Change] = []
        cursor = txn.cursor(db=self.changes)
        if not cursor.set_key(_IID.pack(seq + 1)):
            return None if upto > seq else []
        for key, raw in cursor.iternext(keys=True, values=True):
            (at,) = _IID.unpack(key)
            if at > upto:
                break
            out.append(decode_change(at, raw))
        if len(out) != upto - seq or (out and out[-1].seq != upto):
            return None
        return out

    # ids / points
    def iid_of(self, txn: lmdb.Transaction, key: bytes) -> Optional[int]:
        raw = txn.get(key, db=self.ids)
        return None if raw is None else decode_iid(raw)

    def get(self, txn: lmdb.Transaction, iid: int) -> Optional[StoredPoint]:
        raw = txn.get(iid_key(iid), db=self.points)
        return None if raw is None else decode_record(iid, raw)

    def get_many(self, txn: lmdb.Transaction, iids: list[int]) -> list[Optional[StoredPoint]]:
        """Several points in one cursor call (a search's hits); None where a point is gone."""
        keys = [_IID.pack(i) for i in iids]
        with txn.cursor(db=self.points) as cur:
            found = dict(cur.getmulti(keys))
        return [
            None if (raw := found.get(key)) is None else decode_record(iid, raw)
            for iid, key in zip(iids, keys, strict=True)
        ]

    def payloads_of(self, txn: lmdb.Transaction, iids: list[int]) -> list[Optional[bytes]]:
        """The stored payload JSON of several points (a search's hits), None where a point is gone:
        the record's id and version are not decoded (the read view already holds them)."""
        get, db, pack = txn.get, self.points, _IID.pack
        return [None if (raw := get(pack(iid), db=db)) is None else record_payload(raw) for iid in iids]

    def put(self, txn: lmdb.Transaction, iid: int, version: int, key: bytes, payload_json: bytes) -> None:
        txn.put(key, id_value(iid, version), db=self.ids)
        txn.put(iid_key(iid), encode_record(version, key, payload_json), db=self.points)

    def put_new(
        self,
        txn: lmdb.Transaction,
        first_iid: int,
        version: int,
        keys: list[bytes],
        payloads: list[bytes],
        vectors: dict[int, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """Write fresh points under internal ids ``first_iid, first_iid + 1, ...`` in bulk.

        ``vectors``: space -> (ascending positions into ``keys``, float32 rows). The
        new internal ids are above every stored one, so the ``points`` and
        ``vectors`` rows go in with LMDB's append mode (no tree search per row).
        """
        iid_keys = [_IID.pack(first_iid + i) for i in range(len(keys))]
        head = _HEADER.pack
        pack_id = _ID_VALUE.pack
        with txn.cursor(db=self.ids) as cur:
            cur.putmulti([(k, pack_id(first_iid + i, version)) for i, k in enumerate(keys)])
        records = [head(version, len(k)) + k + p for k, p in zip(keys, payloads, strict=True)]
        with txn.cursor(db=self.points) as cur:
            _check_appended(
                cur.putmulti(list(zip(iid_keys, records, strict=True)), append=True), len(records), "points"
            )
        items: list[tuple[bytes, bytes]] = []
        for space, (positions, rows) in vectors.items():
            blob = rows.astype("<f4", copy=False).tobytes()
            width = rows.shape[1] * 4
            pack = _VEC_KEY.pack
            items.extend(
                (pack(first_iid + int(pos), space), blob[j * width : (j + 1) * width])
                for j, pos in enumerate(positions.tolist())
            )
        if len(vectors) > 1:
            items.sort()
        with txn.cursor(db=self.vectors) as cur:
            _check_appended(cur.putmulti(items, append=True), len(items), "vectors")

    def get_vector(self, txn: lmdb.Transaction, iid: int, space: int) -> Optional[np.ndarray]:
        raw = txn.get(vector_key(iid, space), db=self.vectors)
        return None if raw is None else np.frombuffer(raw, dtype="<f4")

    def delete(
        self, txn: lmdb.Transaction, iid: int, point_id: PointId, n_spaces: int, n_sparse: int = 0, n_multi: int = 0
    ) -> None:
        """Remove every row of one stored version (its id mapping only if it still points here)."""
        key = id_to_key(point_id)
        if self.iid_of(txn, key) == iid:
            txn.delete(key, db=self.ids)
        txn.delete(iid_key(iid), db=self.points)
        for space in range(n_spaces):
            txn.delete(vector_key(iid, space), db=self.vectors)
        for space in range(n_sparse):
            txn.delete(vector_key(iid, space), db=self.sparse)
        for space in range(n_multi):
            txn.delete(multi_key(space, iid), db=self.multi)

    # multivectors
    def put_multi_many(self, txn: lmdb.Transaction, items: list[tuple[int, int, np.ndarray]]) -> None:
        """Rows ``(internal id, multivector space, float32 matrix)`` of new points."""
        if not items:
            return
        rows = sorted((_MULTI_KEY.pack(space, iid), m.astype("<f4", copy=False).tobytes()) for iid, space, m in items)
        with txn.cursor(db=self.multi) as cur:
            cur.putmulti(rows)

    def get_multi(self, txn: lmdb.Transaction, iid: int, space: int, size: int) -> Optional[np.ndarray]:
        """A point's matrix (a copy), or None when it holds no vector of that space."""
        if self.multi is None:
            return None
        raw = txn.get(_MULTI_KEY.pack(space, iid), db=self.multi)
        return None if raw is None else decode_multi(raw, size).copy()

    def has_multi(self, txn: lmdb.Transaction, iid: int, space: int) -> bool:
        return self.multi is not None and txn.get(_MULTI_KEY.pack(space, iid), db=self.multi) is not None

    def multi_of(self, txn: lmdb.Transaction, space: int, iids: list[int]) -> list[tuple[int, bytes]]:
        """``(internal id, raw value)`` of those of ``iids`` (ascending) that hold a vector of ``space``."""
        if self.multi is None or not iids:
            return []
        keys = [_MULTI_KEY.pack(space, iid) for iid in iids]
        with txn.cursor(db=self.multi) as cur:
            found = cur.getmulti(keys)
        return [(_MULTI_KEY.unpack(key)[1], raw) for key, raw in found]

    def multi_holders(self, txn: lmdb.Transaction, space: int) -> np.ndarray:
        """Internal ids (int64, ascending) holding a vector of ``space``: its keys alone, no value read."""
        if self.multi is None:
            return np.zeros(0, np.int64)
        cursor = txn.cursor(db=self.multi)
        keys: list[bytes] = []
        if cursor.set_range(_MULTI_KEY.pack(space, 0)):
            for key in cursor.iternext(keys=True, values=False):
                if key[:2] != _MULTI_KEY.pack(space, 0)[:2]:
                    break
                keys.append(key)
        if not keys:
            return np.zeros(0, np.int64)
        parsed = np.frombuffer(b"".join(keys), dtype=[("space", ">u2"), ("iid", ">u8")])
        return parsed["iid"].astype(np.int64)

    def multi_scan(self, txn: lmdb.Transaction, space: int) -> Iterator[tuple[int, bytes]]:
        """Every stored ``(internal id, raw value)`` of ``space``, in internal-id order (one cursor range)."""
        if self.multi is None:
            return
        cursor = txn.cursor(db=self.multi)
        if not cursor.set_range(_MULTI_KEY.pack(space, 0)):
            return
        for key, raw in cursor.iternext(keys=True, values=True):
            at, iid = _MULTI_KEY.unpack(key)
            if at != space:
                return
            yield iid, raw

    # sparse vectors
    def put_sparse_many(self, txn: lmdb.Transaction, items: list[tuple[int, int, bytes]]) -> None:
        """Rows ``(internal id, sparse space, encoded value)`` of new points (ids above every stored one)."""
        if not items:
            return
        rows = sorted((_VEC_KEY.pack(iid, space), raw) for iid, space, raw in items)
        with txn.cursor(db=self.sparse) as cur:
            _check_appended(cur.putmulti(rows, append=True), len(rows), "sparse")

    def get_sparse(self, txn: lmdb.Transaction, iid: int, space: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        if self.sparse is None:
            return None
        raw = txn.get(vector_key(iid, space), db=self.sparse)
        return None if raw is None else decode_sparse(raw)

    def has_sparse(self, txn: lmdb.Transaction, iid: int, space: int) -> bool:
        return self.sparse is not None and txn.get(vector_key(iid, space), db=self.sparse) is not None

    def sparse_from(self, txn: lmdb.Transaction, first_iid: int) -> Iterator[tuple[int, int, bytes]]:
        """Every stored sparse row ``(internal id, space, raw value)`` with internal id >= ``first_iid``, in key
        order (what an index checkpoint covering the ids below ``first_iid`` still needs)."""
        if self.sparse is None:
            return
        cursor = txn.cursor(db=self.sparse)
        if not cursor.set_range(_VEC_KEY.pack(first_iid, 0)):
            return
        for raw_key, raw in cursor.iternext(keys=True, values=True):
            iid, space = _VEC_KEY.unpack(raw_key)
            yield iid, space, raw

    def iter_points(self, txn: lmdb.Transaction) -> Iterator[StoredPoint]:
        """Every live point in internal-id order."""
        for raw_iid, raw in txn.cursor(db=self.points):
            yield decode_record(decode_iid(raw_iid), raw)

    def iter_payloads(self, txn: lmdb.Transaction, chunk: int = 8192) -> Iterator[tuple[list[int], list[Any]]]:
        """Every live point's payload in internal-id order, decoded, in chunks of ``(iids, payloads)``:
        one orjson call per chunk, no record's id decoded (opening a collection rebuilds its payload
        indexes from these)."""
        keys: list[bytes] = []
        raws: list[bytes] = []
        for raw_iid, raw in txn.cursor(db=self.points):
            keys.append(raw_iid)
            raws.append(record_payload(raw))
            if len(raws) == chunk:
                yield _iids_of(keys), orjson.loads(b"[" + b",".join(raws) + b"]")
                keys, raws = [], []
        if raws:
            yield _iids_of(keys), orjson.loads(b"[" + b",".join(raws) + b"]")

    def iter_ids_from(self, txn: lmdb.Transaction, start_key: Optional[bytes]) -> Iterator[int]:
        """Internal ids in external-id order, starting at ``start_key`` inclusive."""
        cursor = txn.cursor(db=self.ids)
        found = cursor.set_range(start_key) if start_key is not None else cursor.first()
        if not found:
            return
        for _, raw_iid in cursor:
            yield decode_iid(raw_iid)

    def id_chunks(self, txn: lmdb.Transaction, rows: int = 65536) -> Iterator[IdChunk]:
        """Every live point's internal id, version and external id, from the ``ids`` table alone,
        in chunks of at most ``rows`` (in external-id order)."""
        for keys, values in _cursor_chunks(txn, self.ids, rows):
            yield self._id_chunk(txn, keys, values)

    def _id_chunk(self, txn: lmdb.Transaction, keys: list[bytes], values: list[bytes]) -> IdChunk:
        if all(len(v) == _ID_VALUE.size for v in values):
            pairs = np.frombuffer(b"".join(values), dtype=">u8").reshape(len(values), 2).astype(np.int64)
            iids, versions = pairs[:, 0].copy(), pairs[:, 1].copy()
        else:  # written before versions were kept beside the internal id: read them from the records
            iids = np.array([decode_iid(v) for v in values], dtype=np.int64)
            versions = np.array(
                [_ID_VALUE.unpack(v)[1] if len(v) == _ID_VALUE.size else self._stored_version(txn, v) for v in values],
                dtype=np.int64,
            )
            return IdChunk(iids, versions, keys, legacy=True)
        return IdChunk(iids, versions, keys)

    def upgrade_ids(self, txn: lmdb.Transaction) -> int:
        """Rewrite ``ids`` values that hold the internal id alone as ``internal id | version``
        (once per store written before versions were kept there); returns how many changed."""
        legacy = [
            (k, v) for k, v in txn.cursor(db=self.ids).iternext(keys=True, values=True) if len(v) != _ID_VALUE.size
        ]
        for key, value in legacy:
            txn.put(key, id_value(decode_iid(value), self._stored_version(txn, value)), db=self.ids)
        return len(legacy)

    def _stored_version(self, txn: lmdb.Transaction, raw_iid: bytes) -> int:
        raw = txn.get(raw_iid[: _IID.size], db=self.points)
        if raw is None:
            raise Corruption(f"ids: internal id {decode_iid(raw_iid)} has no points record")
        return int(_HEADER.unpack_from(raw)[0])

    def vector_chunks(
        self, txn: lmdb.Transaction, sizes: list[int], rows: int = 65536
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Every stored vector as ``(space, internal ids, float32 rows)`` chunks of at most ``rows`` entries,
        in key order: at most one chunk of bytes in memory beside what the caller keeps."""
        for keys, values in _cursor_chunks(txn, self.vectors, rows):
            yield from _split_chunk(keys, values, sizes)

    def records_from(self, txn: lmdb.Transaction, first_iid: int) -> Iterator[StoredPoint]:
        """The stored points of internal ids ``first_iid`` and above, in id order."""
        cursor = txn.cursor(db=self.points)
        if not cursor.set_range(_IID.pack(first_iid)):
            return
        for key, raw in cursor.iternext(keys=True, values=True):
            yield decode_record(decode_iid(key), raw)

    def vector_chunks_from(
        self, txn: lmdb.Transaction, first_iid: int, sizes: list[int]
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """:meth:`vector_chunks` of internal ids ``first_iid`` and above (one chunk per space)."""
        cursor = txn.cursor(db=self.vectors)
        if not cursor.set_range(_VEC_KEY.pack(first_iid, 0)):
            return
        keys: list[bytes] = []
        values: list[bytes] = []
        for key, value in cursor.iternext(keys=True, values=True):
            keys.append(key)
            values.append(value)
        if keys:
            yield from _split_chunk(keys, values, sizes)

    def iter_vectors(self, txn: lmdb.Transaction) -> Iterator[tuple[int, int, bytes]]:
        for raw_key, raw in txn.cursor(db=self.vectors):
            iid, space = _VEC_KEY.unpack(raw_key)
            yield iid, space, raw


def _cursor_chunks(txn: lmdb.Transaction, db: Any, rows: int) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """A table's ``(keys, values)`` in key order, at most ``rows`` at a time (bounded memory on open)."""
    keys: list[bytes] = []
    values: list[bytes] = []
    for key, value in txn.cursor(db=db).iternext(keys=True, values=True):
        keys.append(key)
        values.append(value)
        if len(keys) == rows:
            yield keys, values
            keys, values = [], []
    if keys:
        yield keys, values


def _split_chunk(
    keys: list[bytes], values: list[bytes], sizes: list[int]
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    parsed = np.frombuffer(b"".join(keys), dtype=[("iid", ">u8"), ("space", ">u2")])
    spaces = parsed["space"].astype(np.int64)
    iids = parsed["iid"].astype(np.int64)
    if len(sizes) == 1:  # one space: the values are all rows of one matrix
        yield 0, iids, np.frombuffer(b"".join(values), dtype="<f4").reshape(len(values), sizes[0])
        return
    for space, size in enumerate(sizes):
        where = np.flatnonzero(spaces == space)
        if len(where):
            rows = np.frombuffer(b"".join([values[j] for j in where.tolist()]), dtype="<f4")
            yield space, iids[where], rows.reshape(len(where), size)
