"""One shard's replicas: writes to all of them, reads from one, and what a replica that stops answering means.

A shard of a replicated collection is the same one-shard collection held by ``replication_factor``
replicas, each its own data directory (in its own Ray actor when clustered). :class:`ReplicaSet` is
what the router (:mod:`vecdb.cluster.router`) talks to for one shard:

* **writes** go to every replica that takes writes (``Active``, and ``Partial``: one being filled by a
  transfer), one write at a time per shard (so that every replica applies the shard's writes in the
  same order), and succeed once ``write_consistency_factor`` replicas committed them (each commit is
  durable before its replica answers). With fewer, the write fails with
  :class:`~vecdb.errors.ShardUnavailable` naming the shard; the replicas that did commit keep it, as
  Qdrant's do.
* **reads** go to one ``Active`` replica, taken in turn; one that does not answer is marked ``Dead`` and
  the next is asked; none left is a 503 naming the shard.
* A replica that fails a write or a read is marked ``Dead`` through ``on_state`` (the cluster service
  persists it in the coordinator); it serves nothing until a transfer from a peer has filled it again
  (:func:`vecdb.cluster.transfer.stream_shard`).

A replica is reached through a *handle* with ``submit(method, *args)`` (start the call, return something
to wait on) and ``result(pending, timeout)`` (its answer; a vecdb error as itself; :class:`ReplicaDown`
when the replica cannot answer). :class:`LocalHandle` is the in-process handle (tests, one machine);
:class:`~vecdb.cluster.actors.RayShard` is the Ray actor's.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from vecdb.errors import ShardUnavailable, VecdbError

log = logging.getLogger(__name__)

ACTIVE = "Active"
DEAD = "Dead"
PARTIAL = "Partial"
"""Qdrant's replica states: serving; failed (needs a transfer before it serves); being filled (takes
writes, serves no reads)."""

TAKES_WRITES = (ACTIVE, PARTIAL)


class ReplicaDown(Exception):
    """A replica did not answer (its actor died, its node left, or it timed out)."""


class ReplicaHandle(Protocol):
    def submit(self, method: str, *args: Any) -> Any: ...
    def result(self, pending: Any, timeout: Optional[float] = None) -> Any: ...
    def alive(self, timeout: float) -> bool: ...


class LocalHandle:
    """A service in this process as a replica: the call runs at ``submit``; ``result`` hands its answer
    back (or raises its error), so the same code serves in-process and remote replicas."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.down = False
        """Set by tests to stand for a replica that stopped answering."""

    def submit(self, method: str, *args: Any) -> Any:
        if self.down:
            return ReplicaDown("replica marked down")
        try:
            return getattr(self.service, method)(*args)
        except VecdbError as exc:
            return exc

    def result(self, pending: Any, timeout: Optional[float] = None) -> Any:
        if isinstance(pending, (VecdbError, ReplicaDown)):
            raise pending
        return pending

    def alive(self, timeout: float) -> bool:
        return not self.down


@dataclass
class Replica:
    """One copy of a shard: its id in the collection's shard map, the node holding it, its state."""

    replica_id: str
    handle: Any
    node: str = "local"
    state: str = ACTIVE
    busy: bool = False
    """Being filled by a transfer (healing leaves it alone)."""
    fresh: bool = False
    """``Dead``, but the last of its shard to take writes: it holds every acknowledged write, so it may
    serve again as it is when no active peer is left to refill it (a replica that died while peers went on
    writing may not: it missed writes)."""


StateChange = Callable[[int, str, str, bool], None]
"""``on_state(shard_id, replica_id, new_state, fresh)``: told whenever a replica's state changes."""


class ReplicaSet:
    """The replicas of one shard (see the module's docstring)."""

    def __init__(
        self,
        shard_id: int,
        replicas: Sequence[Replica],
        write_consistency_factor: int = 1,
        collection: str = "",
        on_state: Optional[StateChange] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self.shard_id = shard_id
        self.replicas = list(replicas)
        self.write_consistency_factor = write_consistency_factor
        self.collection = collection
        self.on_state = on_state
        self.timeout = timeout
        """Seconds a replica may take to answer before it counts as down (None: wait)."""
        self.write_lock = threading.RLock()
        """Held across one write to all replicas (and by a transfer for each batch it copies)."""
        self._turn = itertools.count()

    def __repr__(self) -> str:
        states = ", ".join(f"{r.replica_id}@{r.node}:{r.state}" for r in self.replicas)
        return f"ReplicaSet(shard {self.shard_id}: {states})"

    # --- states -----------------------------------------------------------------------------------

    def replica(self, replica_id: str) -> Replica:
        for r in self.replicas:
            if r.replica_id == replica_id:
                return r
        raise KeyError(replica_id)

    def set_state(self, replica: Replica, state: str) -> None:
        if replica.state == state:
            return
        log.warning(
            "collection %s shard %d: replica %s on %s %s -> %s",
            self.collection,
            self.shard_id,
            replica.replica_id,
            replica.node,
            replica.state,
            state,
        )
        replica.state = state
        # the last replica taking writes to fail holds them all; any other that fails now missed some
        replica.fresh = state == DEAD and not any(r.state == ACTIVE for r in self.replicas if r is not replica)
        if self.on_state is not None:
            self.on_state(self.shard_id, replica.replica_id, state, replica.fresh)

    def active(self) -> list[Replica]:
        return [r for r in self.replicas if r.state == ACTIVE]

    def _name(self) -> str:
        where = f" of collection {self.collection!r}" if self.collection else ""
        return f"shard {self.shard_id}{where}"

    # --- reads ------------------------------------------------------------------------------------

    def submit_read(self, method: str, *args: Any) -> tuple[Optional[Replica], Any, str, tuple[Any, ...]]:
        """Start ``method`` on the next active replica (what :meth:`finish_read` waits on)."""
        active = self.active()
        if not active:
            return (None, None, method, args)
        replica = active[next(self._turn) % len(active)]
        return (replica, replica.handle.submit(method, *args), method, args)

    def finish_read(self, pending: tuple[Optional[Replica], Any, str, tuple[Any, ...]]) -> Any:
        """The answer of :meth:`submit_read`; a replica that cannot answer is marked dead and the read is
        asked of the next one."""
        replica, ref, method, args = pending
        while replica is not None:
            try:
                return replica.handle.result(ref, self.timeout)
            except ReplicaDown as exc:
                log.warning("%s: replica %s failed a read: %s", self._name(), replica.replica_id, exc)
                self.set_state(replica, DEAD)
            replica, ref, _, _ = self.submit_read(method, *args)
        raise ShardUnavailable(f"{self._name()}: no active replica to read from")

    def read(self, method: str, *args: Any) -> Any:
        return self.finish_read(self.submit_read(method, *args))

    # --- writes -----------------------------------------------------------------------------------

    def submit_write(self, method: str, *args: Any) -> tuple[list[tuple[Replica, Any]], str]:
        """Start ``method`` on every replica taking writes. Takes the shard's write lock, which
        :meth:`finish_write` releases: call them in pairs."""
        self.write_lock.acquire()
        try:
            return ([(r, r.handle.submit(method, *args)) for r in self.replicas if r.state in TAKES_WRITES], method)
        except BaseException:
            self.write_lock.release()
            raise

    def finish_write(self, pending: tuple[list[tuple[Replica, Any]], str]) -> Any:
        """The write's answer once every replica answered: the first replica's result when at least
        ``write_consistency_factor`` committed it; the replicas' own error when each refused it alike (bad
        input is refused by every replica); else a 503 naming the shard."""
        started, method = pending
        try:
            done: list[Any] = []
            refused: list[tuple[Replica, VecdbError]] = []
            for replica, ref in started:
                try:
                    done.append(replica.handle.result(ref, self.timeout))
                except VecdbError as exc:
                    refused.append((replica, exc))
                except ReplicaDown as down:
                    log.warning("%s: replica %s failed a write: %s", self._name(), replica.replica_id, down)
                    self.set_state(replica, DEAD)
            if refused and not done:
                raise refused[0][1]
            for replica, error in refused:  # committed elsewhere: this copy now differs, so it must be refilled
                log.warning(
                    "%s: replica %s refused a write its peers took: %s", self._name(), replica.replica_id, error
                )
                self.set_state(replica, DEAD)
            if len(done) < self.write_consistency_factor:
                raise ShardUnavailable(
                    f"{self._name()}: {len(done)} of {len(self.replicas)} replicas committed the write ({method}), "
                    f"write_consistency_factor is {self.write_consistency_factor}"
                )
            return done[0]
        finally:
            self.write_lock.release()

    def write(self, method: str, *args: Any) -> Any:
        return self.finish_write(self.submit_write(method, *args))


def single(shard_id: int, service: Any) -> ReplicaSet:
    """A shard held by one replica: ``service`` itself when it is a handle (a Ray shard), else wrapped in a
    :class:`LocalHandle`."""
    handle = service if hasattr(service, "submit") and hasattr(service, "result") else LocalHandle(service)
    return ReplicaSet(shard_id, [Replica("0", handle)])


__all__ = [
    "ACTIVE",
    "DEAD",
    "PARTIAL",
    "LocalHandle",
    "Replica",
    "ReplicaDown",
    "ReplicaHandle",
    "ReplicaSet",
    "single",
]
