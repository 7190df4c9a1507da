"""vecdb: a vector similarity database with a Qdrant-compatible REST API and an embedded client.

``vecdb.Client`` is loaded on first use, so importing ``vecdb`` (as the remote client
does, for the models and errors) costs no faiss, LMDB or numba. ``vecdb.QdrantClient`` and
``vecdb.AsyncQdrantClient`` (qdrant-client's classes over the in-process engine) need qdrant-client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecdb import errors, models

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vecdb.client.embedded import Client
    from vecdb.client.qdrant import AsyncQdrantClient, QdrantClient, qdrant_paths


def __getattr__(name: str) -> Any:
    if name == "Client":
        from vecdb.client.embedded import Client

        return Client
    if name in ("QdrantClient", "AsyncQdrantClient", "qdrant_paths"):  # (needs qdrant-client installed)
        from vecdb.client import qdrant

        return getattr(qdrant, name)
    raise AttributeError(f"module 'vecdb' has no attribute {name!r}")


__all__ = ["AsyncQdrantClient", "Client", "QdrantClient", "__version__", "errors", "models", "qdrant_paths"]
