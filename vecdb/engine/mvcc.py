"""The one consistency protocol between a collection's writer and its readers.

A write is one LMDB transaction; after it commits, the write publishes what the commit changed
in memory: payload-index deltas, then a new read view (vectors, ids, tombstones). A read sees
one commit whole: the view, the payload indexes and the LMDB transaction it uses are all as of
the same commit.

How, in one place:

* The writer holds ``write_lock`` for the commit and the publication, and marks the
  publication with ``publishing`` (odd while payload indexes and the view change).
* A reader notes ``publishing`` when it starts. One that will read LMDB ("eager") opens its
  transaction first and takes the view of that commit: the current one, or one of the
  ``KEPT_VIEWS`` kept after they were replaced. Others take the current view and check any
  transaction they open later against its sequence number.
* A reader whose transaction or payload indexes turn out newer than its view raises
  :class:`StaleRead` and starts again; after ``READ_TRIES`` it runs holding ``write_lock``,
  so a storm of writes cannot starve it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Optional, Protocol, TypeVar

import lmdb

from vecdb.engine.views import ReadView
from vecdb.storage.env import Environment
from vecdb.storage.points import PointsTables

T = TypeVar("T")
W = TypeVar("W")

READ_TRIES = 8
"""Optimistic tries of a read that writes keep overtaking, before it holds writes off to finish."""
KEPT_VIEWS = 4
"""Views kept after they are replaced, for reads that opened their LMDB transaction just before."""


class Follows(Protocol):
    """Catches a follower process's view up with commits another process made (see
    :class:`vecdb.engine.follow.Follower`)."""

    def sync(self) -> bool: ...

    def sync_to(self, txn: lmdb.Transaction) -> bool:
        """:meth:`sync` to the commit ``txn`` holds; the caller holds ``write_lock``."""
        ...


class StaleRead(Exception):
    """A write landed after the read took its view (the read starts again)."""


class Mvcc:
    """One collection's published read view and the protocol that keeps reads whole."""

    def __init__(self, env: Environment, tables: PointsTables, view: ReadView) -> None:
        self.env = env
        self.tables = tables
        self.write_lock = threading.Lock()
        self.publishing = 0
        """Odd while a write updates the payload indexes and publishes its view."""
        self.view = view
        self.recent: dict[int, ReadView] = {}
        """The last few views by write sequence number, for reads whose transaction is a write behind."""
        self.follow: Optional[Follows] = None
        """In a process that follows another's writes (:mod:`vecdb.engine.follow`): what catches the view
        up with LMDB; a read whose transaction is newer than every view calls it instead of waiting."""

    # --- the writer's side -------------------------------------------------------------------

    def reset(self, view: ReadView) -> None:
        """The view rebuilt from LMDB at open (no reader can hold an older one yet)."""
        self.view = view
        self.recent = {}

    def write(self, body: Callable[[lmdb.Transaction], W], publish: Callable[[W, ReadView], ReadView]) -> W:
        """Commit ``body`` in one durable transaction, then publish: ``publish(result, current view)``
        applies the payload-index deltas and returns the new view, while readers are told to retry."""
        with self.write_lock:
            result = self.env.write(body)
            with self.publishing_change():
                self.adopt(publish(result, self.view))
        return result

    def adopt(self, view: ReadView) -> None:
        """Make ``view`` the current one, keeping the last few. Callers hold ``write_lock`` and mark
        the change with :meth:`publishing_change`."""
        kept = {seq: old for seq, old in self.recent.items() if seq > view.seq - KEPT_VIEWS}
        self.recent = {**kept, view.seq: view}
        self.view = view

    @contextlib.contextmanager
    def publishing_change(self) -> Iterator[None]:
        """Mark the payload indexes and the view as changing (``publishing`` odd) for the block: a
        read that used the payload indexes meanwhile starts again. Callers hold ``write_lock``."""
        self.publishing += 1
        try:
            yield
        finally:
            self.publishing += 1

    # --- the readers' side -------------------------------------------------------------------

    def read(self, body: Callable[[ReadView, ReadOnDemand], T], eager: bool = False) -> T:
        """Run ``body`` against one write's state: a view, and a read transaction of the same
        commit, while the payload indexes stay as that commit left them (see the module doc)."""
        for _ in range(READ_TRIES):
            mark = self.publishing
            reader = ReadOnDemand(self.env, self.tables, lambda: self.publishing, mark)
            try:
                with reader:
                    if eager:
                        seq = self.tables.committed_seq(reader.txn())
                        view = self._view_of(seq)
                        if view is None:
                            continue
                        if view is not self.view:
                            reader.index_is_newer()
                        reader.holds(seq)
                    else:
                        view = self.view
                        reader.expect(view.seq)
                    return body(view, reader)
            except StaleRead:
                if self.follow is not None:
                    self.follow.sync()  # another process's write: catch up with it
                else:
                    time.sleep(0)  # let the overtaking write publish
        with self.write_lock:
            with ReadOnDemand(self.env) as reader:
                if self.follow is not None:  # bring the view to this transaction's commit
                    self.follow.sync_to(reader.txn())
                return body(self.view, reader)

    def _view_of(self, seq: int) -> Optional[ReadView]:
        """The view after write ``seq``: current, kept, or about to be published (LMDB commits a
        write just before its view is published); None if no longer kept."""
        for _ in range(1000):
            view = self.view
            if view.seq == seq:
                return view
            if view.seq > seq:
                return self.recent.get(seq)
            if self.follow is not None:
                self.follow.sync()
            else:
                time.sleep(0)
        return None


class ReadOnDemand:
    """A read transaction opened on first use and closed with the block.

    After :meth:`expect`, it checks that the transaction holds that commit; given the
    collection's ``publishing`` counter and its value when the read began (``mark``),
    :meth:`check_index` checks that no write has since touched the payload indexes (an odd
    mark fails it: a write was publishing, or :meth:`index_is_newer` said they are already
    past the read's view). Each raises :class:`StaleRead`.
    """

    def __init__(
        self,
        env: Environment,
        tables: Optional[PointsTables] = None,
        publishing: Optional[Callable[[], int]] = None,
        mark: int = 0,
    ) -> None:
        self._env = env
        self._tables = tables
        self._seq: Optional[int] = None
        self._publishing = publishing
        self._mark = mark
        self._opened: Optional[contextlib.AbstractContextManager[lmdb.Transaction]] = None
        self._txn: Optional[lmdb.Transaction] = None

    def expect(self, seq: int) -> None:
        self._seq = seq
        if self._txn is not None:
            self._check_txn()

    def holds(self, seq: int) -> None:
        """:meth:`expect` for a transaction already read as holding commit ``seq`` (no second check)."""
        self._seq = seq

    def index_is_newer(self) -> None:
        self._mark = -1  # odd: never matches

    def txn(self) -> lmdb.Transaction:
        if self._txn is None:
            self._opened = self._env.read()
            self._txn = self._opened.__enter__()
            self._check_txn()
        return self._txn

    def _check_txn(self) -> None:
        if self._tables is not None and self._seq is not None and self._tables.committed_seq(self._txn) != self._seq:
            raise StaleRead

    def check_index(self) -> None:
        if self._publishing is not None and (self._mark % 2 or self._publishing() != self._mark):
            raise StaleRead

    def __enter__(self) -> ReadOnDemand:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._opened is not None:
            opened, self._opened, self._txn = self._opened, None, None
            opened.__exit__(*exc)
