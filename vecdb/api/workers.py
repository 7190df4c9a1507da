"""``vecdb serve`` (one reader per core by default; ``--workers N``): several server processes over one data directory.

One Python process answers one request at a time (the interpreter lock), so past the first core
a server needs processes. The layout:

* The **supervisor** (the ``vecdb serve`` process) takes the data directory's lock, which keeps
  any unrelated process out, binds the TCP port once, and starts the workers with the socket:
  the kernel spreads connections over them. It restarts a worker that dies and stops them all
  on SIGINT/SIGTERM; if the supervisor itself is killed, the kernel kills the workers
  (``PR_SET_PDEATHSIG``), so the lock is never free while a worker still runs.
* **Worker 0, the primary**, is the server as it runs alone: it does every write, builds the
  indexes and saves their checkpoints. It also listens on a Unix socket for requests the others
  forward to it.
* **Workers 1..N-1, the followers**, answer reads (query, search, scroll, count, retrieve; their
  batches) themselves, after catching up with every commit the primary made before the request
  arrived (:mod:`vecdb.engine.follow`): a write acknowledged by any worker is visible to every
  read that starts after the acknowledgement, on any worker. Everything else (writes, collection
  and index management, snapshots, collection info) they forward to the primary and relay its
  answer, so a client never needs to know which process it reached. So do they a search of a
  collection while the rows they would scan exactly beside its saved graphs (written since the
  primary's last checkpoint) exceed ``--follower-tail-kb``: the primary's graph grows as it writes,
  so under a long ingest it answers such a search from its graph where a follower would scan.

Durability is LMDB's: a write is acknowledged after its commit, whichever process acknowledged
it, so ``kill -9`` of any worker or of the whole group loses nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from vecdb.api.settings import MULTIPROCESS_ENV, ServerSettings
from vecdb.storage.lock import DataDirLock

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_READS = re.compile(
    r"^/collections/[^/]+/points"
    r"(/(query|search|recommend|discover)(/batch|/groups)?|/scroll|/count|/facet|/search/matrix/(pairs|offsets))?$"
)
"""POST routes a follower answers itself (``/points`` alone is retrieve; its PUT is an upsert)."""
_SEARCHES = re.compile(r"^/collections/([^/]+)/points/(query|search|recommend|discover)(/batch|/groups)?$")
"""The reads that scan vectors: passed to the primary while a follower's unindexed tail is large."""
_POINT = re.compile(r"^/collections/[^/]+/points/[^/]+$")
_HEALTH = frozenset({"/healthz", "/livez", "/readyz"})
_HOP_HEADERS = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"host"})

PRIMARY_WAIT_S = 15.0
"""How long a follower holds a request it forwards while the primary is down (being restarted)."""
RESTART_DELAY_S = 0.5
"""Pause before a dead worker is started again (a worker failing at start must not spin)."""
READY_TIMEOUT_S = 300.0
"""How long the supervisor waits for the primary to open the data directory (it may rebuild indexes)."""


def answered_locally(method: str, path: str) -> bool:
    """Whether a follower answers this request itself (a read of points) or forwards it."""
    if method == "POST":
        return _READS.match(path) is not None
    if method in ("GET", "HEAD"):
        return path in _HEALTH or (_POINT.match(path) is not None and not path.endswith(("/scroll", "/count")))
    return False


def searched_collection(method: str, path: str) -> Optional[str]:
    """The collection a request searches by vector (query, search and their variants), else None."""
    if method != "POST":
        return None
    found = _SEARCHES.match(path)
    return None if found is None else found.group(1)


class ForwardToPrimary:
    """ASGI layer of a follower: reads it answers with ``app``; anything else goes, as it came, to the
    primary over its Unix socket, and the primary's answer comes back as it went out."""

    def __init__(
        self,
        app: ASGIApp,
        socket_path: str,
        unindexed_bytes: Optional[Callable[[str, bool], int]] = None,
        tail_limit_bytes: int = 0,
    ) -> None:
        self.app = app
        self.socket_path = socket_path
        self.unindexed_bytes = unindexed_bytes
        """What a search of a collection would scan exactly here: ``(name, catch_up)`` -> bytes (the
        service's: as of the last catch-up, or caught up first)."""
        self.tail_limit_bytes = tail_limit_bytes
        self._client: Optional[Any] = None

    def _answers(self, scope: Scope) -> bool:
        """Reads are answered here, except searches while this follower's unindexed tail is over the
        limit: rows written since the primary's last checkpoint, which the primary's own graph holds
        already (under a long ingest a follower would scan them exactly on every query)."""
        method, path = scope["method"], scope["path"]
        if not answered_locally(method, path):
            return False
        if self.unindexed_bytes is None:
            return True
        name = searched_collection(method, path)
        if name is None or self.unindexed_bytes(name, False) <= self.tail_limit_bytes:
            return True  # (the common case costs no LMDB read: the answer syncs anyway)
        # over the limit as last seen: a checkpoint may have come since (forwarded searches do not
        # catch this process up), so look again, caught up
        return self.unindexed_bytes(name, True) <= self.tail_limit_bytes

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self.socket_path),
                base_url="http://primary",
                timeout=httpx.Timeout(None, connect=5.0),
            )
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._answers(scope):
            await self.app(scope, receive, send)
            return
        await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        import httpx

        started = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal started
            started = True
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_HEADERS]
        client_host = (scope.get("client") or ("", 0))[0]
        if client_host:
            headers.append((b"x-forwarded-for", client_host.encode()))
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        client = self._http()
        deadline = time.monotonic() + PRIMARY_WAIT_S
        while True:
            request = client.build_request(scope["method"], url, headers=headers, content=body())
            try:
                response = await client.send(request, stream=True)
                break
            except httpx.ConnectError as exc:  # nothing was sent: wait for the primary's restart
                if started or time.monotonic() > deadline:
                    log.warning("could not reach the primary worker: %s", exc)
                    await _unavailable(send, "the primary worker is not answering (it restarts by itself)")
                    return
                await asyncio.sleep(0.05)
            except httpx.TransportError as exc:  # it went away with the request: the outcome is unknown
                log.warning("the primary worker went away during a request: %s", exc)
                await _unavailable(send, "the primary worker went away during the request; it may or may not apply")
                return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_HEADERS]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _unavailable(send: Send, message: str) -> None:
    import orjson

    body = orjson.dumps({"status": {"error": f"Service unavailable: {message}"}, "time": 0.0})
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Have the kernel kill this process when the supervisor dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def run_worker(settings: ServerSettings, number: int, sock: socket.socket, socket_path: str, ready: Any) -> None:
    """A worker process's body: the app over the data directory in its role, served on ``sock``
    (and, for the primary, on the Unix socket followers forward to)."""
    _die_with_parent()
    import uvicorn

    from vecdb.api.access_log import configure_logging
    from vecdb.api.app import create_app

    configure_logging(settings.log_level, settings.log_format)
    follower = number > 0
    settings = replace(settings, worker_number=number, decode_processes=0 if follower else settings.decode_processes)
    app: Any = create_app(settings)
    sockets = [sock] if follower or settings.primary_serves else []
    if follower:
        service = app.state.service
        app = ForwardToPrimary(app, socket_path, service.unindexed_bytes, settings.follower_tail_kb * 1024)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(socket_path)
        unix.listen(2048)
        sockets.append(unix)
    config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False, log_config=None)
    server = uvicorn.Server(config)
    ready.set()
    log.info("worker %d of %d (%s) serving", number, settings.workers, "follower" if follower else "primary")
    server.run(sockets=sockets)


class Supervisor:
    """Starts, watches and stops the workers (see the module doc)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.count = settings.workers
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, Any] = {}
        self._ready: dict[int, Any] = {}
        """Each worker's start signal (kept referenced: a child unpickles it after ``start`` returns)."""
        self._stopping = threading.Event()
        self._folder = tempfile.mkdtemp(prefix="vecdb-")
        self.socket_path = str(Path(self._folder) / "primary.sock")
        self.metrics_folder = Path(self._folder) / "metrics"
        """Every worker's request counts (``vecdb/api/metrics.py``): the primary's ``/metrics`` sums them."""

    def serve(self) -> None:
        """Run until SIGINT or SIGTERM; the data directory's lock is held throughout."""
        root = Path(self.settings.path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        lock = DataDirLock(root)
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.settings.host, self.settings.port))
            sock.listen(2048)
            sock.set_inheritable(True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._stopping.set())
            self.metrics_folder.mkdir()
            os.environ[MULTIPROCESS_ENV] = str(self.metrics_folder)  # (spawned workers inherit it)
            self._start(0, sock, wait=True)
            followers = self.count - 1 if self.settings.primary_serves else self.count
            for number in range(1, followers + 1):
                self._start(number, sock, wait=False)
            where = f"http://{self.settings.host}:{self.settings.port}"
            log.info("serving %s on %s with %d workers", root, where, self.count)
            self._watch(sock)
        finally:
            self._stop_all()
            lock.release()
            os.environ.pop(MULTIPROCESS_ENV, None)
            shutil.rmtree(self._folder, ignore_errors=True)

    def _start(self, number: int, sock: socket.socket, wait: bool) -> None:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=run_worker,
            args=(self.settings, number, sock, self.socket_path, ready),
            name=f"vecdb-worker-{number}",
            daemon=False,
        )
        proc.start()
        self._procs[number] = proc
        self._ready[number] = ready
        if wait:  # the primary opens (and upgrades) the directory before any follower reads it
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not ready.wait(0.1):
                if not proc.is_alive() or time.monotonic() > deadline or self._stopping.is_set():
                    raise SystemExit(f"vecdb: worker {number} failed to start (exit code {proc.exitcode})")

    def _watch(self, sock: socket.socket) -> None:
        while not self._stopping.wait(0.2):
            for number, proc in list(self._procs.items()):
                if not proc.is_alive():
                    log.error("worker %d exited (code %s): starting it again", number, proc.exitcode)
                    time.sleep(RESTART_DELAY_S)
                    if not self._stopping.is_set():
                        self._start(number, sock, wait=False)

    def _stop_all(self) -> None:
        for proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes requests in flight and closes the database
        for proc in self._procs.values():
            proc.join(30)
            if proc.is_alive():
                proc.kill()


__all__ = ["ForwardToPrimary", "Supervisor", "answered_locally", "run_worker"]
