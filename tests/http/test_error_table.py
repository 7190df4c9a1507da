"""Errors over real HTTP reach the remote client as the class the server raised.

The server writes ``<prefix>: <message>`` with the status of the error's class and the remote
client reads the class back from the same table (``vecdb/errors.py``); here every class a
request can provoke goes through a live server. ``DataDirLocked`` (raised only while a data
directory opens) and ``Corruption`` (stored bytes that do not decode, found at open) cannot be
provoked by a request; ``tests/unit/test_error_table.py`` holds their rows of the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vecdb_client import RemoteClient

from tests.harness import ServerProcess, start_server
from vecdb.errors import AlreadyExists, InvalidInput, NotFound, StorageFull, Unsupported, VecdbError


@pytest.fixture
def remote(server: ServerProcess) -> Iterator[RemoteClient]:
    c = RemoteClient(server.url)
    yield c
    c.close()


def _raised(exc: VecdbError, cls: type[VecdbError]) -> None:
    assert type(exc) is cls, exc
    assert exc.message.startswith(cls.prefix + ": "), exc.message


def test_not_found(remote: RemoteClient, name: str):
    with pytest.raises(VecdbError) as err:
        remote.get_collection(name)
    _raised(err.value, NotFound)
    assert "doesn't exist" in err.value.message


def test_already_exists(remote: RemoteClient, name: str):
    remote.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    with pytest.raises(VecdbError) as err:
        remote.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    _raised(err.value, AlreadyExists)
    assert "already exists" in err.value.message


def test_invalid_input(remote: RemoteClient, name: str):
    remote.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    with pytest.raises(VecdbError) as err:
        remote.upsert(name, points=[{"id": 1, "vector": [1.0, 2.0, 3.0]}])
    _raised(err.value, InvalidInput)


def test_unsupported(remote: RemoteClient, name: str):
    """A route vecdb does not serve yet; sent through the client's own transport (it has no method for it)."""
    remote.create_collection(name, vectors_config={"size": 2, "distance": "Dot"})
    with pytest.raises(VecdbError) as err:
        remote._service._call("GET", f"/collections/{name}/optimizations")
    _raised(err.value, Unsupported)
    assert "not supported yet" in err.value.message


def test_storage_full(tmp_path: Path):
    """A collection whose LMDB map is full answers 507, which comes back as StorageFull."""
    with start_server(tmp_path / "data", "--max-collection-bytes", str(4 << 20)) as srv:
        remote = RemoteClient(srv.url)
        try:
            remote.create_collection("c", vectors_config={"size": 2, "distance": "Dot"})
            with pytest.raises(VecdbError) as err:
                for batch in range(40):  # 40 x 800 kB: far more than the 4 MiB map
                    points = [
                        {"id": batch * 8 + i, "vector": [1.0, 0.0], "payload": {"text": "x" * 100_000}}
                        for i in range(8)
                    ]
                    remote.upsert("c", points=points)
            _raised(err.value, StorageFull)
        finally:
            remote.close()
