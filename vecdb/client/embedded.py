"""The embedded client: the same methods as qdrant-client, on a data directory in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vecdb.client.base import ClientBase
from vecdb.engine.database import Database
from vecdb.engine.service import LocalService
from vecdb.limits import DEFAULT_MAX_MAP_SIZE

DEFAULT_PATH = "./vecdb_data"


class Client(ClientBase):
    """``vecdb.Client(path="./vecdb_data")`` opens (or creates) a data directory.

    Only one process may hold a data directory at a time; a second opener gets
    :class:`vecdb.errors.DataDirLocked` naming the holder. Close the client (or
    use it as a context manager) to release the directory.
    """

    def __init__(
        self, path: str | Path = DEFAULT_PATH, *, max_collection_bytes: int = DEFAULT_MAX_MAP_SIZE, **_: Any
    ) -> None:
        """``max_collection_bytes``: the largest LMDB map of one collection (as ``vecdb serve``'s flag);
        a write past it raises :class:`vecdb.errors.StorageFull` and changes nothing."""
        self._service = LocalService(Database(path, max_map_size=max_collection_bytes))

    @property
    def service(self) -> LocalService:
        return self._service  # type: ignore[return-value]
