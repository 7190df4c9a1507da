"""vecdb: a vector similarity database with a Qdrant-compatible REST API and an embedded client.

``vecdb.Client`` is loaded on first use, so importing ``vecdb`` (as the remote client
does, for the models and errors) costs no faiss, LMDB or numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecdb import errors, models

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vecdb.client.embedded import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from vecdb.client.embedded import Client

        return Client
    raise AttributeError(f"module 'vecdb' has no attribute {name!r}")


__all__ = ["Client", "__version__", "errors", "models"]
