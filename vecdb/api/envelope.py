"""Qdrant's success envelope: ``{"result": ..., "status": "ok", "time": seconds}``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response


def jsonable(value: Any) -> Any:
    """Models become JSON-ready dicts; unset optional fields are left out, as Qdrant does."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def ok(result: Any, started: float) -> Response:
    body = orjson.dumps({"result": jsonable(result), "status": "ok", "time": time.perf_counter() - started})
    return Response(body, media_type="application/json")
