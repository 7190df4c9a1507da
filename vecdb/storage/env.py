"""An LMDB environment that grows its map by itself and turns storage failures into clear errors.

LMDB needs a fixed map size up front. Rather than reserve terabytes of address
space per collection, vecdb starts small and doubles the map when a write
transaction runs out of room, then retries that transaction. LMDB allows a
resize only while no transaction of this process is open, so reads take a
shared lock and the resize takes it exclusively; writers are serialised anyway
(LMDB's rule), so a write simply holds the writer lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import lmdb

from vecdb.errors import StorageFull

log = logging.getLogger(__name__)
T = TypeVar("T")

from vecdb.limits import DEFAULT_MAX_MAP_SIZE  # noqa: E402,F401  (re-exported)

MIN_MAP_SIZE = 32 << 20


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """A full disk while writing ``what`` (a file, a copy) is a clear StorageFull, not a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"no space left on the device while writing {what}") from exc
        raise
    except lmdb.Error as exc:
        if "No space left" in str(exc):
            raise StorageFull(f"no space left on the device while writing {what}: {exc}") from exc
        raise


class _SharedExclusiveLock:
    """Many readers or one resizer; resizes are rare, so a simple condition variable suffices.

    Readers take it on every read transaction, so its shared side is plain method calls over a
    plain lock (a generator-based context manager and an ``RLock`` cost a few microseconds of
    a query that costs tens)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._exclusive = False

    def acquire_shared(self) -> None:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._readers += 1

    def release_shared(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class _ReadTxn:
    """``with env.read() as txn``: a read transaction held under the gate's shared side."""

    __slots__ = ("_env", "_gate", "_txn")

    def __init__(self, env: lmdb.Environment, gate: _SharedExclusiveLock) -> None:
        self._env = env
        self._gate = gate
        self._txn: lmdb.Transaction | None = None

    def __enter__(self) -> lmdb.Transaction:
        self._gate.acquire_shared()
        try:
            self._txn = self._env.begin(buffers=False)
        except lmdb.MapResizedError:  # another process grew the map past ours: adopt its size
            self._gate.release_shared()
            with self._gate.exclusive():
                self._env.set_mapsize(0)
            return self.__enter__()
        except BaseException:
            self._gate.release_shared()
            raise
        return self._txn

    def __exit__(self, *exc: object) -> None:
        txn, self._txn = self._txn, None
        try:
            if txn is not None:
                txn.abort()  # (a read transaction has nothing to commit)
        finally:
            self._gate.release_shared()


class Environment:
    """One LMDB environment (a directory) with named databases, durable commits and map growth."""

    def __init__(
        self,
        path: Path,
        db_names: tuple[str, ...],
        *,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_map_size = max_map_size
        data_file = path / "data.mdb"
        used = data_file.stat().st_size if data_file.exists() else 0
        map_size = MIN_MAP_SIZE
        while map_size < 2 * used:
            map_size *= 2
        self.env = lmdb.open(
            str(path),
            map_size=min(map_size, max(max_map_size, used)),
            max_dbs=len(db_names) + 1,
            max_readers=512,
            sync=True,
            metasync=True,
            readahead=False,
            meminit=False,
        )
        self.dbs = {name: self.env.open_db(name.encode()) for name in db_names}
        self._gate = _SharedExclusiveLock()
        self._writer = threading.Lock()
        self.follower = False
        """Set in a process that only reads what another one writes: a write is a bug, refused."""

    def read(self) -> contextlib.AbstractContextManager[lmdb.Transaction]:
        """A consistent read snapshot; many may be open at once."""
        return _ReadTxn(self.env, self._gate)

    def write(self, body: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``body`` in one write transaction and commit it durably (fsync).

        ``body`` may run more than once: when the map is full the transaction is
        aborted, the map doubled and ``body`` called again, so it must not have
        side effects outside the transaction. Either all of it commits or none.
        """
        if self.follower:
            raise RuntimeError(f"{self.path}: a follower process never writes (its primary does)")
        with self._writer:
            while True:
                try:
                    with self._gate.shared():
                        with self.env.begin(write=True) as txn:
                            return body(txn)
                except lmdb.MapFullError:
                    self._grow()
                except lmdb.DiskError as exc:
                    raise StorageFull(f"storage error while writing to {self.path}: {exc}") from exc
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise StorageFull(f"no space left on the device holding {self.path}") from exc
                    raise
                except lmdb.Error as exc:
                    if "No space left" in str(exc) or "MDB_MAP_FULL" in str(exc):
                        raise StorageFull(f"no space left for {self.path}: {exc}") from exc
                    raise

    def reserve_headroom(self) -> None:
        """Grow the map now if it is more than half full.

        Called before a long read transaction (a snapshot copy): a resize must wait for every
        read of this process to end, and reads arriving meanwhile queue behind it, so a write
        that ran out of map during the copy would stall searches until the copy finished.
        """
        with self._writer:
            info = self.env.info()
            used = (info["last_pgno"] + 1) * self.env.stat()["psize"]
            if used * 2 > info["map_size"] and info["map_size"] < self.max_map_size:
                self._grow()

    def copy_to(self, folder: Path, txn: lmdb.Transaction) -> Path:
        """Write a compacted copy of the environment, exactly as ``txn`` (a read transaction of
        :meth:`read`) sees it, to ``folder/data.mdb``; return that file.

        Taking the copy in the caller's transaction lets it read other state (index manifests)
        from the very commit the copy holds. Writers go on meanwhile (LMDB's MVCC); a map
        resize waits until the copy ends, since the caller holds a read transaction.
        """
        folder.mkdir(parents=True, exist_ok=True)
        with storage_errors(f"a copy of {self.path} to {folder}"):
            self.env.copy(str(folder), compact=True, txn=txn)
        return folder / "data.mdb"

    def _grow(self) -> None:
        current = self.env.info()["map_size"]
        if current >= self.max_map_size:
            raise StorageFull(
                f"the database map of {self.path} is full at {current >> 20} MiB "
                f"(limit {self.max_map_size >> 20} MiB); the store is intact and readable"
            )
        new_size = min(current * 2, self.max_map_size)
        with self._gate.exclusive():
            self.env.set_mapsize(new_size)
        log.info("grew LMDB map of %s to %d MiB", self.path, new_size >> 20)

    def close(self) -> None:
        with self._writer, self._gate.exclusive():
            self.env.close()
