"""Clients written over the service interface: ``base`` (qdrant-client's methods, shared with the
remote client) and ``embedded`` (``vecdb.Client``, the in-process engine; loaded on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecdb.client.embedded import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from vecdb.client.embedded import Client

        return Client
    raise AttributeError(f"module 'vecdb.client' has no attribute {name!r}")


__all__ = ["Client"]
