"""The one place where errors become HTTP responses with Qdrant-shaped error bodies.

Body: ``{"status": {"error": "<prefix>: <message>"}, "time": <seconds>}``. Each error class
carries its status and prefix (``vecdb/errors.py``, read back by the remote client). The
prefixes are Qdrant's, because client libraries search the text (LlamaIndex
looks for "already exists"). Unexpected exceptions are logged with their
traceback and answered 500 without internals; a client mistake is never a 500.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vecdb.errors import VecdbError, wire_message
from vecdb.models.base import error_location, most_telling

log = logging.getLogger(__name__)

# Pydantic error types that mean "well-formed but out of range": Qdrant answers those 422.
_VALIDATION_TYPES = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
    "string_too_short",
    "string_too_long",
    "multiple_of",
}


def error_response(status: int, message: str, started: float | None = None) -> Response:
    return Response(error_body(message, started), status_code=status, media_type="application/json")


def error_body(message: str, started: float | None = None) -> bytes:
    """Qdrant's error body: ``{"status": {"error": message}, "time": seconds}``."""
    elapsed = 0.0 if started is None else time.perf_counter() - started
    return orjson.dumps({"status": {"error": message}, "time": elapsed})


def describe_validation_error(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """Name the first offending fields; 422 only if every problem is a range/length violation."""
    status = 422 if errors and all(e.get("type") in _VALIDATION_TYPES for e in errors) else 400
    parts = []
    for err in most_telling(errors)[:3]:
        where = error_location(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            parts.append(f"invalid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}")
        else:
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more problems")
    prefix = "Validation error in JSON body" if status == 422 else "Format error in JSON body"
    return status, f"{prefix}: {'; '.join(parts)}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VecdbError)
    async def _vecdb_error(request: Request, exc: VecdbError) -> Response:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(exc.status, wire_message(exc), request.state.started)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, exc: RequestValidationError) -> Response:
        status, message = describe_validation_error(list(exc.errors()))
        return error_response(status, message, request.state.started)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"Not found: no route for {request.method} {request.url.path}"
        elif exc.status_code == 405 and message == "Method Not Allowed":
            message = f"Method not allowed: {request.method} {request.url.path}"
        return error_response(exc.status_code, message, getattr(request.state, "started", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "Service internal error: unexpected server error (see the server log)")
