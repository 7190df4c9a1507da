"""The REST layer: translates HTTP to service calls and errors to status codes; no index math, no LMDB.

``create_app`` is loaded on first use, so that a process that only needs the settings (the
supervisor of ``vecdb serve --workers``, which holds the lock and starts the workers) does not
carry the app, the engine and their libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecdb.api.settings import ServerSettings

if TYPE_CHECKING:
    from vecdb.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from vecdb.api.app import create_app

        return create_app
    raise AttributeError(f"module 'vecdb.api' has no attribute {name!r}")


__all__ = ["ServerSettings", "create_app"]
