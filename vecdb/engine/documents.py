"""Replace ``{"text": ..}`` documents in a write or a query by the vectors of the collection's model.

Writes are rewritten before they are prepared (outside the write lock: a model
takes milliseconds per text), all the texts of one request embedded in one call;
what reaches storage is an ordinary request with float vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from vecdb.engine.embed import embed_texts, model_spec
from vecdb.engine.settings import DEFAULT_VECTOR
from vecdb.errors import InvalidInput
from vecdb.models.points import Batch, Document, PointInsertOperations, PointsBatch, UpdateVectors
from vecdb.models.query import NearestQuery, QueryRequest

Visit = Callable[[Document, str, str], Any]
"""(document, vector name, field path) -> what replaces it."""


def resolve_insert(op: PointInsertOperations, embedding: Optional[dict[str, Any]], field: str) -> PointInsertOperations:
    if isinstance(op, PointsBatch):
        vectors = op.batch.vectors
        columns = vectors.values() if isinstance(vectors, dict) else [vectors]
        if isinstance(vectors, np.ndarray) or not any(isinstance(v, Document) for c in columns for v in c):
            return op  # (the embedded client's array fast path never holds text)
        return _resolved(lambda visit: op.model_copy(update={"batch": _map_batch(op.batch, visit, field)}), embedding)
    return _resolved_points(op, embedding, field)


def resolve_update_vectors(req: UpdateVectors, embedding: Optional[dict[str, Any]], field: str) -> UpdateVectors:
    return _resolved_points(req, embedding, field)


def _resolved_points(req: Any, embedding: Optional[dict[str, Any]], field: str) -> Any:
    """``req`` (a points list or a vector update: both hold ``points`` with a ``vector``) with its texts embedded."""
    if not any(_holds_document(p.vector) for p in req.points):
        return req
    return _resolved(
        lambda visit: req.model_copy(
            update={
                "points": [
                    p.model_copy(update={"vector": _map_struct(p.vector, visit, f"{field}[{i}].vector")})
                    for i, p in enumerate(req.points)
                ]
            }
        ),
        embedding,
    )


def resolve_queries(reqs: list[QueryRequest], embedding: Optional[dict[str, Any]]) -> list[QueryRequest]:
    """Queries with their texts embedded, all of a batch in one model call."""
    if not any(
        isinstance(r.query, Document) or (isinstance(r.query, NearestQuery) and isinstance(r.query.nearest, Document))
        for r in reqs
    ):
        return reqs

    def rebuild(visit: Visit) -> list[QueryRequest]:
        out = []
        for i, req in enumerate(reqs):
            field = "query" if len(reqs) == 1 else f"searches[{i}].query"
            query, name = req.query, req.using or DEFAULT_VECTOR
            if isinstance(query, NearestQuery) and isinstance(query.nearest, Document):
                nearest = visit(query.nearest, name, f"{field}.nearest")
                req = req.model_copy(update={"query": query.model_copy(update={"nearest": nearest})})
            elif isinstance(query, Document):
                req = req.model_copy(update={"query": visit(query, name, field)})
            out.append(req)
        return out

    return _resolved(rebuild, embedding)


def _resolved(rebuild: Callable[[Visit], Any], embedding: Optional[dict[str, Any]]) -> Any:
    """Walk once to find the documents (nothing to do without any), embed them in one call,
    then walk again putting each one's vector in its place."""
    found: list[tuple[Document, str]] = []

    def collect(doc: Document, name: str, path: str) -> Document:
        _check(doc, name, path, embedding)
        found.append((doc, path))
        return doc

    rebuild(collect)
    assert embedding is not None and found
    rows = iter(embed_texts(embedding["model"], [d.text for d, _ in found], found[0][1]).tolist())
    return rebuild(lambda doc, name, path: next(rows))


def _check(doc: Document, name: str, path: str, embedding: Optional[dict[str, Any]]) -> None:
    if embedding is None:
        raise InvalidInput(
            f"{path}: a text document needs a collection created with an embedding model "
            '("embedding": {"model": "all-MiniLM-L6-v2"})'
        )
    if name != embedding["vector"]:
        raise InvalidInput(
            f"{path}: vector {name!r} has no embedding model; the collection embeds text "
            f"into vector {embedding['vector']!r}"
        )
    if doc.model is not None and model_spec(doc.model, f"{path}.model").name != embedding["model"]:
        raise InvalidInput(f"{path}.model: the collection embeds with {embedding['model']}, not {doc.model}")


def _holds_document(vec: Any) -> bool:
    return isinstance(vec, Document) or (isinstance(vec, dict) and any(isinstance(v, Document) for v in vec.values()))


def _map_struct(vec: Any, visit: Visit, path: str) -> Any:
    if isinstance(vec, Document):
        return visit(vec, DEFAULT_VECTOR, path)
    if isinstance(vec, dict):
        return {name: visit(v, name, f"{path}.{name}") if isinstance(v, Document) else v for name, v in vec.items()}
    return vec


def _map_batch(batch: Batch, visit: Visit, field: str) -> Batch:
    vectors = batch.vectors
    if isinstance(vectors, dict):
        new: Any = {
            name: [
                visit(v, name, f"{field}.vectors.{name}[{i}]") if isinstance(v, Document) else v
                for i, v in enumerate(column)
            ]
            for name, column in vectors.items()
        }
    else:
        new = [
            visit(v, DEFAULT_VECTOR, f"{field}.vectors[{i}]") if isinstance(v, Document) else v
            for i, v in enumerate(vectors)
        ]
    return batch.model_copy(update={"vectors": new})
