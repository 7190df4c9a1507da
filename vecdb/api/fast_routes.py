"""The hot routes (query and search, single and batch; scroll, count, retrieve; upsert) served from ASGI.

A similarity query costs a few hundred microseconds in the engine; FastAPI's routing walk over every
route, its dependency solving and its generic body handling, Starlette's request object and the
generic response encoding cost as much again (measured: ``python -m benchmarks serve`` prints the
budget per stage). So these few routes are matched by one regular expression and answered here:

* the body is read whole and parsed by orjson (strict JSON, as :mod:`vecdb.api.json_body`);
* the same pydantic request model validates it, and every error is answered exactly as FastAPI's
  path answers it (the same status and message, naming the field: :mod:`vecdb.api.errors`);
* the response is encoded by pydantic-core straight to JSON bytes inside Qdrant's envelope;
* an upsert's vectors become one float32 matrix (:mod:`vecdb.models.columns`), not 384,000 validated
  floats per batch of 1,000; it is parsed, validated and written in a worker thread (a write's fsync
  must not hold up the event loop), and a large body is decoded in a helper process
  (:mod:`vecdb.api.decode_pool`: the decode holds the GIL, which queries need meanwhile).

What a route is does not change: FastAPI still declares them (OpenAPI, and any request this layer
does not take, such as a body that is not JSON, falls through to it); :class:`ServerMiddleware`
around this layer still checks API keys and body limits and records metrics and access logs, under
the same route template.

A request that is surely sub-millisecond work (see :func:`_quick`) runs on the event loop's thread when
``inline`` (``vecdb serve --inline-queries``, the default): the hop to a worker thread and back cost a
third of the server's capacity (glove50 100k, 8 connections: 1,460 against 2,150 requests/s). Others
(prefetch trees, text to embed, ``exact`` scans, large batches) run in the worker threads, so that
they do not hold up the requests behind them; so do a collection's queries for a few seconds after
one of them turned out slow inline (a filter that scans payloads: :data:`INLINE_SLOW_S`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Optional

import orjson
from anyio import to_thread
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from vecdb.api.decode_pool import DecodePool
from vecdb.api.errors import describe_validation_error, error_body
from vecdb.errors import InvalidInput, VecdbError, wire_message
from vecdb.models.columns import as_columns, batch_with_matrix, dense_matrix
from vecdb.models.points import (
    CountRequest,
    CountResult,
    Document,
    PointInsertOperations,
    PointRequest,
    Record,
    ScrollRequest,
    ScrollResult,
    UpdateResult,
)
from vecdb.models.query import (
    NearestQuery,
    QueryRequest,
    QueryRequestBatch,
    QueryResponse,
    ScoredPoint,
    SearchRequest,
    SearchRequestBatch,
)
from vecdb.models.vector_json import upsert_columns
from vecdb.service import VectorService

log = logging.getLogger(__name__)


class _Route:
    """One hot route: how its body is validated, the service call and the encoder of its result."""

    def __init__(
        self,
        template: str,
        model: Any,
        call: str,
        result: Any,
        validate: Optional[Callable[[Any], Any]] = None,
        decode: Optional[Callable[[bytes, Callable[[bytes], Any]], Any]] = None,
        threaded: bool = False,
    ) -> None:
        """``validate``: parsed JSON to request (default: the model's validation); ``decode``: the raw body
        straight to a request, or None to take orjson and ``validate``. A route with either is a write.
        ``threaded``: a read that always runs in a worker thread (a scroll or count may scan payloads)."""
        self.template = self.path = template
        self.adapter: TypeAdapter[Any] = TypeAdapter(model)
        self.validate = validate or (lambda data: self.adapter.validate_python(data, from_attributes=True))
        self.decode = decode
        self.call = call
        self.encoder: TypeAdapter[Any] = TypeAdapter(result)
        self.write = validate is not None
        self.threaded = threaded


class _Converted:
    """An upsert of a points list taken as one matrix batch; ``data()`` gives the body back for the
    point-by-point retry."""

    def __init__(self, req: BaseModel, data: Callable[[], Any]) -> None:
        self.req, self.data = req, data


def _upsert(data: Any) -> Any:
    """An upsert body with its dense vectors as one matrix when they are that (a ``batch`` of unnamed
    vectors, or ``points`` each with one), else validated by the model as FastAPI would."""
    if isinstance(data, dict):
        extra = {k: v for k, v in data.items() if k not in ("batch", "points")}
        batch, points = data.get("batch"), data.get("points")
        try:
            if "points" in data and isinstance(points, list):
                columns = as_columns(points)
                if columns is not None:
                    return _Converted(batch_with_matrix(columns, extra), lambda: data)
            elif isinstance(batch, dict):
                matrix = dense_matrix(batch.get("vectors"))
                if matrix is not None:
                    return batch_with_matrix({**batch, "vectors": matrix}, extra)
        except ValidationError:
            pass  # the model's own validation names the field
    return _INSERT.validate_python(data, from_attributes=True)


def _upsert_body(body: bytes, columns_of: Callable[[bytes], Any] = upsert_columns) -> Any:
    """:func:`_upsert` from the raw body, its vectors decoded straight into numpy
    (:mod:`vecdb.models.vector_json`; ``columns_of``: that decode, or the same in a helper process,
    :mod:`vecdb.api.decode_pool`); None when the body is not in a shape that allows it."""
    found = columns_of(body)
    if found is None:
        return None
    columns, extra, from_points = found
    try:
        req = batch_with_matrix(columns, extra)
    except ValidationError:
        return None
    return _Converted(req, lambda: orjson.loads(body)) if from_points else req


_INSERT: TypeAdapter[Any] = TypeAdapter(PointInsertOperations)

_ROUTES = {
    ("POST", "query"): _Route(
        "/collections/{collection_name}/points/query", QueryRequest, "query_points", QueryResponse
    ),
    ("POST", "query/batch"): _Route(
        "/collections/{collection_name}/points/query/batch",
        QueryRequestBatch,
        "query_batch_points",
        list[QueryResponse],
    ),
    ("POST", "search"): _Route(
        "/collections/{collection_name}/points/search", SearchRequest, "search_points", list[ScoredPoint]
    ),
    ("POST", "search/batch"): _Route(
        "/collections/{collection_name}/points/search/batch",
        SearchRequestBatch,
        "search_batch_points",
        list[list[ScoredPoint]],
    ),
    ("POST", "scroll"): _Route(
        "/collections/{collection_name}/points/scroll", ScrollRequest, "scroll_points", ScrollResult, threaded=True
    ),
    ("POST", "count"): _Route(
        "/collections/{collection_name}/points/count", CountRequest, "count_points", CountResult, threaded=True
    ),
    ("POST", ""): _Route(
        "/collections/{collection_name}/points", PointRequest, "get_points", list[Record], threaded=True
    ),
    ("PUT", ""): _Route(
        "/collections/{collection_name}/points",
        PointInsertOperations,
        "upsert_points",
        UpdateResult,
        validate=_upsert,
        decode=_upsert_body,
    ),
}
_PATH = re.compile(r"^/collections/([^/]+)/points(?:/(query|query/batch|search|search/batch|scroll|count))?$")


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether FastAPI would read the body as JSON: no content type, or a JSON one."""
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return True


class FastRoutes:
    """ASGI middleware answering :data:`_ROUTES` itself; everything else goes on to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: Callable[[], VectorService],
        inline: bool = True,
        decode_pool: Optional[DecodePool] = None,
    ) -> None:
        """``service``: the app's service (read per request: tests swap it); ``decode_pool``: where large
        upsert bodies are decoded (None: in the request's worker thread)."""
        self.app = app
        self.service = service
        self.inline = inline
        self.decode_pool = decode_pool
        self.last_read = -BUSY_WINDOW_S
        """``time.monotonic()`` when the last query or search was answered."""
        self.slow_until: dict[str, float] = {}
        """Collections whose last inline query was slow, and until when their queries go to the worker
        threads instead (``time.perf_counter()``): a query that turns out slow must not hold up the
        event loop again and again."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT"):
            matched = _PATH.match(scope["path"])
            if matched is not None:
                route = _ROUTES.get((scope["method"], matched.group(2) or ""))
                if route is not None and _json_content(scope.get("headers", [])):
                    await self._serve(scope, receive, send, matched.group(1), route)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, collection: str, route: _Route) -> None:
        scope["route"] = route  # (its ``path``, the template, labels metrics and access logs, as FastAPI's would)
        scope["path_params"] = {"collection_name": collection}
        started = scope.get("state", {}).get("started", time.perf_counter())
        chunks = []
        while True:
            message = await receive()  # (the body limit is enforced by ServerMiddleware's receive)
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        method = getattr(self.service(), route.call)
        if route.write:
            # a large body's decode holds the GIL for tens of ms: in a helper process while queries are served
            busy = time.monotonic() - self.last_read < BUSY_WINDOW_S and self.decode_pool is not None
            columns_of = self.decode_pool.upsert_columns if busy else upsert_columns  # type: ignore[union-attr]
            status, payload = await to_thread.run_sync(_handle, body, route, method, collection, started, columns_of)
        else:
            req = _parse(body, route)
            if isinstance(req, list):
                status, payload = _refused(req, started)
            elif self.inline and not route.threaded and _quick(req) and self.slow_until.get(collection, 0.0) < started:
                cpu = time.thread_time()  # (this thread's own work: waits for the GIL under load do not count)
                status, payload = _run(method, collection, req, route, started)
                if time.thread_time() - cpu > INLINE_SLOW_S:  # (a filter that scans payloads, no index yet)
                    self.slow_until[collection] = time.perf_counter() + SLOW_FOR_S
            else:
                status, payload = await to_thread.run_sync(_run, method, collection, req, route, started)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        if not route.write:
            self.last_read = time.monotonic()


BUSY_WINDOW_S = 0.5
"""Queries answered within this many seconds make a large upsert decode in the helper process."""

INLINE_SLOW_S = 0.005
"""An inline query that took more CPU time than this (its thread's own, not waits for the GIL) sends its
collection's queries to the worker threads..."""
SLOW_FOR_S = 5.0
"""...for this long (then one inline query tries again)."""

INLINE_BATCH = 16
"""Batches of more searches than this run in a worker thread."""


def _quick(req: Any) -> bool:
    """Whether a request is surely sub-millisecond work, to run on the event loop: not a batch of more than
    :data:`INLINE_BATCH`, no prefetch stages, no text to embed, no ``exact`` full scan asked for."""
    if isinstance(req, (QueryRequestBatch, SearchRequestBatch)):
        return len(req.searches) <= INLINE_BATCH and all(_quick(r) for r in req.searches)
    params = getattr(req, "params", None)
    if params is not None and params.exact:
        return False
    if isinstance(req, QueryRequest):
        query = req.query.nearest if isinstance(req.query, NearestQuery) else req.query
        return not req.prefetch and not isinstance(query, Document)
    return True


def _parse(body: bytes, route: _Route, columns_of: Callable[[bytes], Any] = upsert_columns) -> Any:
    """The validated request, or (a list) the errors FastAPI would have reported for it (under ``body``)."""
    if not body:
        return [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
    if route.decode is not None:
        decoded = route.decode(body, columns_of)
        if decoded is not None:
            return decoded
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [
            {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "ctx": {"error": exc.msg}}
        ]
    try:
        return route.validate(data)  # (from_attributes, as FastAPI validates: the same messages)
    except ValidationError as exc:
        return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]


def _refused(errors: list[dict[str, Any]], started: float) -> tuple[int, bytes]:
    status, text = describe_validation_error(errors)
    return status, error_body(text, started)


def _handle(
    body: bytes,
    route: _Route,
    method: Callable[[str, Any], Any],
    collection: str,
    started: float,
    columns_of: Callable[[bytes], Any],
) -> tuple[int, bytes]:
    """:func:`_parse` and :func:`_run` together (writes run both in a worker thread)."""
    req = _parse(body, route, columns_of)
    if isinstance(req, list):
        return _refused(req, started)
    return _run(method, collection, req, route, started)


def _run(
    method: Callable[[str, Any], Any], collection: str, req: Any, route: _Route, started: float
) -> tuple[int, bytes]:
    """The engine's answer as ``(status, body)``: Qdrant's envelope, or an error as :mod:`vecdb.api.errors` maps it."""
    try:
        if isinstance(req, _Converted):
            try:
                result = method(collection, req.req)
            except InvalidInput:  # refused as a matrix: again point by point, so that the error names points[i]
                try:
                    plain = _INSERT.validate_python(req.data(), from_attributes=True)
                except ValidationError as exc:
                    return _refused([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()], started)
                result = method(collection, plain)
        else:
            result = method(collection, req)
    except VecdbError as exc:
        if exc.status >= 500:
            log.error("%s failed: %s", route.template, exc)
        return exc.status, error_body(wire_message(exc), started)
    except Exception:
        log.exception("unexpected error in %s", route.template.replace("{collection_name}", collection))
        return 500, error_body("Service internal error: unexpected server error (see the server log)")
    encoded = route.encoder.dump_json(result, exclude_none=True)
    return 200, b'{"result":%b,"status":"ok","time":%b}' % (encoded, repr(time.perf_counter() - started).encode())


__all__ = ["INLINE_BATCH", "FastRoutes"]
