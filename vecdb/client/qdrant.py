"""qdrant-client's own ``QdrantClient`` and ``AsyncQdrantClient``, running on the in-process engine.

Frameworks (LangChain's ``QdrantVectorStore(client=...)``, LlamaIndex, mem0, Haystack) check that
they were handed a ``qdrant_client.QdrantClient`` and read its answers as qdrant-client's models
(``info.config.params.vectors.size``). :class:`QdrantClient` *is* one: qdrant-client's class, built
as for its ``":memory:"`` mode, whose backend (``_client``, where every public method lands after
qdrant-client's own argument handling and inference) is swapped for :class:`EngineBackend`. The
backend hands each call to the embedded :class:`vecdb.Client` of the same method name, which takes
qdrant-client's models as arguments already, and turns the answer into the model qdrant-client's
own backends return (dumped as the REST server would send it, then validated as qdrant-client
parses a server's answer: the shape the HTTP tests already pin). Methods vecdb does not serve raise
:class:`NotSupported`. Errors come out as :class:`EngineError`: a ``UnexpectedResponse`` with
Qdrant's status and body (what code written against a server catches) that is also a
``ValueError`` (what code written against qdrant-client's local mode catches).

The data directory is vecdb's: ``vecdb serve`` opens it later (not while this client holds it).
qdrant-client is an optional dependency; this module imports it, so it is loaded on first use of
``vecdb.QdrantClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import orjson
import qdrant_client
from pydantic import BaseModel, ConfigDict, PydanticSchemaGenerationError, TypeAdapter
from qdrant_client.async_client_base import AsyncQdrantBase
from qdrant_client.client_base import QdrantBase
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_client.http.models import QueryResponse as _QQueryResponse
from qdrant_client.local.qdrant_local import QdrantLocal

from vecdb.client.embedded import Client
from vecdb.errors import Unsupported, VecdbError, wire_message
from vecdb.limits import DEFAULT_MAX_MAP_SIZE
from vecdb.models.query import QueryResponse, ScoredPoint


class EngineError(UnexpectedResponse, ValueError):
    """A vecdb error as qdrant-client raises a server's (``status_code``, ``content``: Qdrant's JSON
    error body) and as its local mode raises (a ValueError). ``error`` is vecdb's own."""

    def __init__(self, error: VecdbError) -> None:
        body = orjson.dumps({"status": {"error": wire_message(error)}, "time": 0.0})
        UnexpectedResponse.__init__(self, error.status, wire_message(error), body, {})  # type: ignore[arg-type]
        self.error = error


class NotSupported(EngineError):
    """A qdrant-client method the in-process engine does not serve (cluster, shard, full-storage ...)."""


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _plain(value: Any) -> Any:
    """An answer as the REST server would send it (JSON types, nulls left out)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _scored(points: list[ScoredPoint]) -> Optional[list[dict[str, Any]]]:
    """Hits as the dicts qdrant-client's ``ScoredPoint`` validates (half the cost of dumping vecdb's
    models first), when none carries a vector (a sparse vector is a different model in each
    library, so those take the general path); else None."""
    out = []
    for p in points:
        if p.vector is not None or p.shard_key is not None:
            return None
        hit = {"id": p.id, "version": p.version, "score": p.score, "payload": p.payload}
        if p.order_value is not None:
            hit["order_value"] = p.order_value
        out.append(hit)
    return out


def _as_qdrant(value: Any, annotation: Any) -> Any:
    """vecdb's answer as qdrant-client's model ``annotation`` (a method's return type)."""
    if annotation is None or annotation is type(None) or isinstance(value, (bool, type(None))):
        return value
    if isinstance(value, QueryResponse) and value.explain is None:  # (the hot call: a query, kept cheap)
        points = _scored(value.points)
        if points is not None:
            return _QQueryResponse.model_validate({"points": points})
    adapter = _ADAPTERS.get(annotation)
    if adapter is None:
        try:
            adapter = TypeAdapter(annotation)
        except PydanticSchemaGenerationError:  # (unions naming gRPC classes: checked by isinstance)
            adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        _ADAPTERS[annotation] = adapter
    return adapter.validate_python(_plain(value))


def _return_types(base: type) -> dict[str, Any]:
    """Each public method of qdrant-client's backend interface and the type it returns."""
    out = {}
    for name, method in inspect.getmembers(base, inspect.isfunction):
        if name.startswith("_") or name == "close":
            continue
        try:
            out[name] = typing.get_type_hints(method).get("return")
        except Exception:  # (a hint this Python cannot resolve: answer untyped)
            out[name] = Any
    return out


def _forward(engine: Callable[..., Any], annotation: Any) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return _as_qdrant(engine(*args, **kwargs), annotation)
        except VecdbError as exc:
            raise EngineError(exc) from exc

    return call


def _refuse(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise NotSupported(Unsupported(f"{name}: this method is not supported by vecdb's in-process engine"))

    return call


class EngineBackend(QdrantBase):
    """qdrant-client's backend interface over an embedded :class:`vecdb.Client`."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.engine = client
        for name, annotation in _RETURNS.items():
            method = getattr(client, name, None)
            setattr(self, name, _forward(method, annotation) if method is not None else _refuse(name))

    def close(self, grpc_grace: Optional[float] = None, **kwargs: Any) -> None:
        self.engine.close()


class AsyncEngineBackend(AsyncQdrantBase):
    """:class:`EngineBackend` for ``AsyncQdrantClient``: each call runs in a worker thread, so that a
    long one (an import, a big batch) does not stall the event loop."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.engine = client
        for name, annotation in _ASYNC_RETURNS.items():
            method = getattr(client, name, None)
            sync = _forward(method, annotation) if method is not None else _refuse(name)
            setattr(self, name, self._in_thread(sync))

    @staticmethod
    def _in_thread(sync: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(sync)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(sync, *args, **kwargs)

        return call

    async def close(self, grpc_grace: Optional[float] = None, **kwargs: Any) -> None:
        self.engine.close()


_RETURNS = _return_types(QdrantBase)
_ASYNC_RETURNS = _return_types(AsyncQdrantBase)


class QdrantClient(qdrant_client.QdrantClient):
    """``qdrant_client.QdrantClient`` whose ``path=`` (local mode) runs on vecdb's engine in this process.

    ``QdrantClient(path="./vecdb_data")``: the data directory ``vecdb serve`` uses too (default
    ``./vecdb_data``); ``max_collection_bytes`` as :class:`vecdb.Client`. Without ``path`` it is
    qdrant-client's class as it is (``url=``/``host=``: a server; ``":memory:"``: its local mode), so
    it can stand in for qdrant-client's class everywhere (see :func:`qdrant_paths`). qdrant-client's
    inference (``Document`` queries embedded by FastEmbed) works as in its local mode."""

    def __init__(
        self,
        *args: Any,
        path: Optional[str | Path] = None,
        max_collection_bytes: int = DEFAULT_MAX_MAP_SIZE,
        **kwargs: Any,
    ) -> None:
        if path is None:
            super().__init__(*args, **kwargs)
            return
        super().__init__(location=":memory:", **_memory_options(args, kwargs))
        _swap(self, EngineBackend(Client(path, max_collection_bytes=max_collection_bytes)), path)


class AsyncQdrantClient(qdrant_client.AsyncQdrantClient):
    """``qdrant_client.AsyncQdrantClient`` whose ``path=`` runs on vecdb's engine (see :class:`QdrantClient`)."""

    def __init__(
        self,
        *args: Any,
        path: Optional[str | Path] = None,
        max_collection_bytes: int = DEFAULT_MAX_MAP_SIZE,
        **kwargs: Any,
    ) -> None:
        if path is None:
            super().__init__(*args, **kwargs)
            return
        super().__init__(location=":memory:", **_memory_options(args, kwargs))
        _swap(self, AsyncEngineBackend(Client(path, max_collection_bytes=max_collection_bytes)), path)


def _memory_options(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """qdrant-client's constructor options that still apply when ``path`` replaces the server (connection
    settings such as ``port`` or ``api_key`` are left unused, as its local mode leaves them)."""
    if args or any(kwargs.get(k) is not None for k in ("location", "url", "host")):
        raise ValueError("Only one of <location>, <url>, <host> or <path> should be specified.")
    keep = ("cloud_inference", "local_inference_batch_size")
    return {k: v for k, v in kwargs.items() if k in keep}


@contextlib.contextmanager
def qdrant_paths() -> Iterator[None]:
    """Within the block, qdrant-client's own classes (``qdrant_client.QdrantClient`` and
    ``AsyncQdrantClient``, as looked up on the module) are vecdb's: code that builds its client itself
    from a ``path`` (Haystack's ``QdrantDocumentStore(path=...)``) runs on vecdb's engine. Keep the
    block open while such code may still open its client (Haystack opens it on first use)."""
    saved = qdrant_client.QdrantClient, qdrant_client.AsyncQdrantClient
    qdrant_client.QdrantClient, qdrant_client.AsyncQdrantClient = QdrantClient, AsyncQdrantClient  # type: ignore[misc]
    try:
        yield
    finally:
        qdrant_client.QdrantClient, qdrant_client.AsyncQdrantClient = saved  # type: ignore[misc]


def _swap(client: Any, backend: Any, path: str | Path) -> None:
    """Put ``backend`` where qdrant-client's ``":memory:"`` constructor put its local one."""
    local = client._client
    if isinstance(local, QdrantLocal):
        local.close()
    else:  # (the async client's local backend closes with a coroutine; in memory mode it holds no files)
        local._closed = True
    client._client = backend
    client._init_options["location"] = None
    client._init_options["path"] = str(path)


__all__ = [
    "AsyncEngineBackend",
    "AsyncQdrantClient",
    "EngineBackend",
    "EngineError",
    "NotSupported",
    "QdrantClient",
    "qdrant_paths",
]
