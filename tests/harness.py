"""The one way to start a real ``vecdb serve`` child on a free loopback port, for tests and benchmarks.

Tests (through ``tests/conftest.py``) and benchmarks (``benchmarks/common.py``, run from a source
checkout as ``python -m benchmarks``) both start servers here, so a change to how the server is
launched, waited for or stopped is made once. The server is a separate process on purpose: tests
kill it with SIGKILL as a crash would, and benchmarks measure what a real client pays.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The source checkout: a child started with ``cwd=REPO_ROOT`` imports this tree's ``vecdb``."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it; the socket is closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``vecdb serve`` child process; ``kill()`` is SIGKILL, as a crash would be.

    ``log`` holds the child's stdout and stderr; ``startup_s`` is the time from spawning to the first
    healthy ``/healthz`` (0.0 when started with ``wait=False``).
    """

    proc: subprocess.Popen[bytes]
    url: str
    path: Path
    log: Path
    port: int = 0
    startup_s: float = 0.0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (a graceful shutdown) and wait ``timeout`` seconds for it, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    path: Path,
    *extra: str,
    wait: bool = True,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
    log_dir: Path | None = None,
    timeout: float = 30,
    cwd: Path | None = None,
    workers: int | None = 1,
) -> ServerProcess:
    """Start ``python -m vecdb serve --path path`` plus ``extra`` options on a free loopback port.

    One process (``--workers 1``) unless ``extra`` names ``--workers`` or ``workers`` is None (the
    server's default: one reader per core), so a test sees what it starts whatever the machine.

    ``env`` is added to this process's environment. The log goes to ``log_dir`` (default: the data
    directory's parent, beside it, never inside it) as ``server-<port>.log``. With ``wait`` the call
    returns once ``/healthz`` answers 200 (open without a key) and raises, with the log, if the child
    exits first or ``timeout`` seconds pass; without it, the caller watches ``proc`` itself.
    """
    port = free_port()
    log = (log_dir if log_dir is not None else path.parent) / f"server-{port}.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    argv = [sys.executable, "-m", "vecdb", "serve", "--path", str(path), "--port", str(port)]
    if "--workers" not in extra and workers is not None:
        argv += ["--workers", str(workers)]
    t0 = time.perf_counter()
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*argv, "--log-level", log_level, *extra], stdout=out, stderr=subprocess.STDOUT, env=child_env, cwd=cwd
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", path, log, port)
    if wait:
        _wait_healthy(server, timeout)
        server.startup_s = time.perf_counter() - t0
    return server


def _wait_healthy(server: ServerProcess, timeout: float) -> None:
    """Poll ``/healthz`` until it answers 200; the child's log is in every error."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}: {server.log.read_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"server did not start: {server.log.read_text()}")
        time.sleep(0.05)
