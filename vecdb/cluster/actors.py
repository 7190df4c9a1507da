"""Shards as Ray actors (``pip install "vecdb[cluster]"``): each actor serves one shard's data directory
through an in-process :class:`~vecdb.engine.service.LocalService`, and :class:`RayShard` is the
router's handle on it (the :class:`~vecdb.service.VectorService` methods the router calls, forwarded).

Why this shape: the router (:mod:`vecdb.cluster.router`) already speaks to shards through the service
interface, so a shard in another process, or on another node, is the same service behind a remote
call. Ray restarts a dead actor (``max_restarts=-1``); the restarted actor opens the same data
directory, so it serves every acknowledged write again (LMDB is the source of truth, each write durable
before the call returns). Task retries stay off: a write is not sent twice behind the caller's back.

Ray is imported here only, on first use: ``vecdb serve`` without ``--ray`` never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vecdb.errors import VecdbError


class ShardServer:
    """The actor's body: one shard's data directory opened in the actor's process."""

    def __init__(self, path: str) -> None:
        from vecdb.engine.database import Database
        from vecdb.engine.service import LocalService

        self.path = path
        self.service = LocalService(Database(Path(path)))

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return getattr(self.service, method)(*args, **kwargs)

    def pid(self) -> int:
        import os

        return os.getpid()

    def close(self) -> None:
        self.service.db.close()


class RayShard:
    """The router's handle on a shard actor: ``shard.count_points(name, req)`` runs in the actor. A vecdb
    error raised there comes back as itself (its class and message), not wrapped in Ray's."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def forwarded(*args: Any, **kwargs: Any) -> Any:
            return self.gather([self.submit(method, *args, **kwargs)])[0]

        return forwarded

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Send ``method`` to the actor without waiting: a reference for :meth:`gather`."""
        return self.actor.call.remote(method, args, kwargs)

    @staticmethod
    def gather(refs: list[Any]) -> list[Any]:
        """The answers of :meth:`submit`'s references (the shards worked at once), errors as in a call."""
        import ray

        try:
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VecdbError):
                raise cause from None
            raise

    def pid(self) -> int:
        import ray

        return int(ray.get(self.actor.pid.remote()))


def start_shards(paths: list[Path], options: Optional[dict[str, Any]] = None) -> list[RayShard]:
    """One restartable actor per data directory (Ray must be initialised: ``ray.init(...)``)."""
    import ray

    actor_class = ray.remote(ShardServer).options(max_restarts=-1, max_task_retries=0, **(options or {}))
    return [RayShard(actor_class.remote(str(path))) for path in paths]


__all__ = ["RayShard", "ShardServer", "start_shards"]
