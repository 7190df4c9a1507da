"""The embedded client: the same methods as qdrant-client, on a data directory in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vecdb.client_base import ClientBase
from vecdb.database import Database
from vecdb.service import LocalService

DEFAULT_PATH = "./vecdb_data"


class Client(ClientBase):
    """``vecdb.Client(path="./vecdb_data")`` opens (or creates) a data directory.

    Only one process may hold a data directory at a time; a second opener gets
    :class:`vecdb.errors.DataDirLocked` naming the holder. Close the client (or
    use it as a context manager) to release the directory.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, **_: Any) -> None:
        self._service = LocalService(Database(path))

    @property
    def service(self) -> LocalService:
        return self._service  # type: ignore[return-value]
