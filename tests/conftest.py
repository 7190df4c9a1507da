"""Shared fixtures: a real server process on a free loopback port, and clients over both transports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from vecdb_client import RemoteClient

import vecdb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``vecdb serve`` child process; ``kill()`` is SIGKILL, as a crash would be."""

    proc: subprocess.Popen[bytes]
    url: str
    path: Path
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    path: Path, *extra: str, wait: bool = True, env: dict[str, str] | None = None, log_level: str = "warning"
) -> ServerProcess:
    port = free_port()
    log = path.parent / f"server-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vecdb",
                "serve",
                "--path",
                str(path),
                "--port",
                str(port),
                "--log-level",
                log_level,
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", path, log)
    if wait:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:  # open without a key
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"server did not start: {log.read_text()}")
            time.sleep(0.05)
    return server


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
def name() -> str:
    """A fresh collection name, so tests sharing the session server never collide."""
    return "t_" + uuid.uuid4().hex[:12]
