"""Shared route helpers: the service behind the app and the request start time."""

from __future__ import annotations

from fastapi import Request

from vecdb.service import VectorService


def service(request: Request) -> VectorService:
    return request.app.state.service  # type: ignore[no-any-return]


def started(request: Request) -> float:
    return request.state.started  # type: ignore[no-any-return]
