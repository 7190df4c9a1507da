"""Fixtures for every folder: a real server process (``tests/harness.py``), and clients over both transports.

``client`` runs a test against the embedded client and the remote client alike, so it lives here, at
the root, for ``unit/``, ``engine/``, ``http/`` and ``system/`` to share.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from vecdb_client import RemoteClient

import vecdb
from tests.harness import ServerProcess, free_port, start_server

__all__ = ["ServerProcess", "free_port", "start_server"]  # the harness's names, for older imports from here


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole session; tests isolate themselves by collection name."""
    srv = start_server(tmp_path_factory.mktemp("server") / "data")
    yield srv
    srv.stop()


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[vecdb.Client | RemoteClient]:
    """The embedded client and the remote client: every test using this runs against both."""
    if request.param == "local":
        c: vecdb.Client | RemoteClient = vecdb.Client(path=tmp_path / "data")
    else:
        c = RemoteClient(request.getfixturevalue("server").url)
    yield c
    c.close()


@pytest.fixture
def http_client(server: ServerProcess) -> Iterator[QdrantClient]:
    """qdrant-client itself, over HTTP, against the session server (the differential tests' transport)."""
    c = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False, timeout=30)
    yield c
    c.close()


@pytest.fixture
def name() -> str:
    """A fresh collection name, so tests sharing the session server never collide."""
    return "t_" + uuid.uuid4().hex[:12]
