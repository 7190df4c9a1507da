"""Pure-ASGI middleware: request timing, metrics and logs, body size limit, API key.

Written against ASGI directly (not BaseHTTPMiddleware) so the cost per request
stays in microseconds and streamed bodies can be cut off at the limit.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import Any, Optional

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vecdb.api.access_log import log_request
from vecdb.api.errors import error_response
from vecdb.api.metrics import UNMATCHED_ROUTE, Metrics
from vecdb.api.routes_dashboard import DASHBOARD_PATHS

OPEN_PATHS = {"/", "/healthz", "/livez", "/readyz"}
"""Routes served without an API key, as Qdrant does."""
_UNGATED = OPEN_PATHS | DASHBOARD_PATHS
"""Also the dashboard's static files (exact paths, no prefix match): its data comes from the gated API."""

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_READ_POSTS = re.compile(
    r"^/collections/[^/]+/(points(/(scroll|count|query|query/batch|query/groups|search|search/batch|search/groups"
    r"|search/matrix/pairs|search/matrix/offsets|recommend|recommend/batch|recommend/groups|discover|discover/batch))?"
    r"|facet)$"
)
"""POST routes that only read (retrieve, scroll, count, query, search, and Qdrant's other searches, served or
answered "not supported yet"): a read-only key may call them."""


def is_read_only_request(method: str, path: str) -> bool:
    """Whether a request changes nothing, so that a read-only API key may make it."""
    return method in _READ_METHODS or (method == "POST" and _READ_POSTS.match(path) is not None)


_UPLOADS = re.compile(r"^/collections/[^/]+/snapshots/upload$")
"""Snapshot uploads: whole collections, bounded by their own limit, not by the JSON body limit."""


def _too_large_message(max_body: int, option: str = "--max-request-bytes") -> str:
    return f"Payload too large: request body exceeds the limit of {max_body} bytes (server option {option})"


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit.

    An HTTPException, because FastAPI turns any other exception raised while it
    reads the body into "400 There was an error parsing the body"; this way the
    app's handler answers 413, and the middleware does if nothing else did.
    """

    def __init__(self, max_body: int, option: str) -> None:
        super().__init__(413, _too_large_message(max_body, option))


class ServerMiddleware:
    """Request timing, the body size limit and API keys (Qdrant's ``api-key`` header or a Bearer token).

    With a key configured every route but :data:`OPEN_PATHS` needs one: 401
    without a valid key; 403 when the read-only key is used for a write. Keys
    are compared in constant time and never logged.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        api_key: Optional[str],
        read_only_api_key: Optional[str] = None,
        metrics: Optional[Metrics] = None,
        access_log: bool = True,
        max_upload: Optional[int] = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.max_body = max_body
        self.max_upload = max_body if max_upload is None else max_upload
        self.api_key = api_key.encode() if api_key else None
        self.read_only_api_key = read_only_api_key.encode() if read_only_api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = started
        answered: list[int] = []  # the status, once a response has started

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        try:
            await self._serve(scope, receive, observed_send, started, answered)
        finally:
            status = answered[0] if answered else 500  # (the app failed before answering)
            template = getattr(scope.get("route"), "path", None)
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope["method"], template or UNMATCHED_ROUTE, status, seconds)
            if self.access_log:
                log_request(scope, template, status, seconds)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, started: float, answered: list[int]) -> None:
        if (self.api_key is not None or self.read_only_api_key is not None) and scope["path"] not in _UNGATED:
            access = self._access(scope)
            if access is None:
                await _plain(send, 401, b"Must provide a valid API key or an Authorization bearer token")
                return
            if access == "read" and not is_read_only_request(scope["method"], scope["path"]):
                await _send_response(
                    send,
                    error_response(
                        403, f"Forbidden: the read-only API key cannot {scope['method']} {scope['path']}", started
                    ),
                )
                return
        limit, option = self.max_body, "--max-request-bytes"
        if scope["method"] == "POST" and _UPLOADS.match(scope["path"]):
            limit, option = self.max_upload, "--max-snapshot-upload-bytes"
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, started, limit, option)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit, option)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if not answered:
                await self._too_large(send, started, limit, option)

    def _access(self, scope: Scope) -> Optional[str]:
        """``"full"``, ``"read"`` or None (no valid key) for the key the request presents."""
        presented: Optional[bytes] = None
        for name, value in scope.get("headers", []):
            if name == b"api-key":
                presented = value
            elif name == b"authorization" and value[:7].lower() == b"bearer " and presented is None:
                presented = value[7:].strip()
        if presented is None:
            return None
        # both comparisons always run, each in constant time: the answer's timing says nothing of either key
        full = self.api_key is not None and hmac.compare_digest(presented, self.api_key)
        read = self.read_only_api_key is not None and hmac.compare_digest(presented, self.read_only_api_key)
        return "full" if full else "read" if read else None

    async def _too_large(self, send: Send, started: float, limit: int, option: str) -> None:
        response = error_response(413, _too_large_message(limit, option), started)
        await _send_response(send, response)


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": text})


async def _send_response(send: Send, response: Any) -> None:
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
