"""Structured request logs: one record per request on the ``vecdb.access`` logger.

Every record carries the same fields as attributes (``http_method``, ``http_path``,
``http_route``, ``http_status``, ``duration_ms``, ``collection``, ``client``,
``request_id``), so a log pipeline can index them; ``--log-format json`` writes
each log line as one JSON object with them, the text format a short line. The
API key is never logged: it is a header, and no header but ``x-request-id`` is
read here.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, Optional

import orjson
from starlette.types import Scope

log = logging.getLogger("vecdb.access")

_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def log_request(scope: Scope, route: Optional[str], status: int, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    request_id = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
    fields = {
        "http_method": scope["method"],
        "http_path": scope["path"],
        "http_route": route,
        "http_status": status,
        "duration_ms": round(seconds * 1e3, 3),
        "collection": (scope.get("path_params") or {}).get("collection_name"),
        "client": f"{client[0]}:{client[1]}" if client else None,
        "request_id": request_id,
    }
    log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, seconds * 1e3, extra=fields)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str, fmt: str) -> None:
    """The root handler for ``vecdb serve``: ``text`` (human lines) or ``json`` (one object per line)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
