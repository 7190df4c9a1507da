"""Replace ``{"text": ..}`` documents in a write or a query by the vectors their model makes.

A document for a dense vector is embedded with the collection's model
(``"embedding": {"model": ..}``); one for a sparse vector names ``qdrant/bm25``
(:mod:`vecdb.engine.bm25_model`), which needs no collection setting: stored
documents get BM25 term weights, queries 1.0 per term.

Writes are rewritten before they are prepared (outside the write lock: a model
takes milliseconds per text), all the dense texts of one request embedded in one call;
what reaches storage is an ordinary request with float and sparse vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from vecdb.engine.bm25_model import MODEL_NAME, bm25_model, is_bm25
from vecdb.engine.embed import embed_texts, model_spec
from vecdb.engine.settings import DEFAULT_VECTOR
from vecdb.errors import InvalidInput
from vecdb.models.points import Batch, Document, PointInsertOperations, PointsBatch, SparseVector, UpdateVectors
from vecdb.models.query import NearestQuery, QueryRequest

Visit = Callable[[Document, str, str], Any]
"""(document, vector name, field path) -> what replaces it."""


@dataclass(frozen=True)
class _Targets:
    """What a collection's documents may become: its embedding (dense), its sparse vector names."""

    embedding: Optional[dict[str, Any]]
    sparse: frozenset[str]
    query: bool = False
    """Queries get bm25's query weights (1.0 per term), stored points its document weights."""


def _targets(settings: dict[str, Any], query: bool = False) -> _Targets:
    sparse = frozenset(s["name"] for s in settings.get("sparse") or [])
    return _Targets(settings.get("embedding"), sparse, query)


def resolve_insert(op: PointInsertOperations, settings: dict[str, Any], field: str) -> PointInsertOperations:
    """``op`` with its documents replaced (``settings``: the collection's stored settings)."""
    targets = _targets(settings)
    if isinstance(op, PointsBatch):
        vectors = op.batch.vectors
        columns = vectors.values() if isinstance(vectors, dict) else [vectors]
        if isinstance(vectors, np.ndarray) or not any(isinstance(v, Document) for c in columns for v in c):
            return op  # (the embedded client's array fast path never holds text)
        return _resolved(lambda visit: op.model_copy(update={"batch": _map_batch(op.batch, visit, field)}), targets)
    return _resolved_points(op, targets, field)


def resolve_update_vectors(req: UpdateVectors, settings: dict[str, Any], field: str) -> UpdateVectors:
    return _resolved_points(req, _targets(settings), field)


def _resolved_points(req: Any, targets: _Targets, field: str) -> Any:
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
        targets,
    )


def resolve_queries(
    reqs: list[QueryRequest], settings: dict[str, Any], paths: Optional[list[str]] = None
) -> list[QueryRequest]:
    """Queries with their texts embedded, all of a batch in one model call; ``paths`` (errors name
    them) says where each request's ``query`` is in the body."""
    if not any(
        isinstance(r.query, Document) or (isinstance(r.query, NearestQuery) and isinstance(r.query.nearest, Document))
        for r in reqs
    ):
        return reqs

    def rebuild(visit: Visit) -> list[QueryRequest]:
        out = []
        for i, req in enumerate(reqs):
            field = paths[i] if paths is not None else "query" if len(reqs) == 1 else f"searches[{i}].query"
            query, name = req.query, req.using or DEFAULT_VECTOR
            if isinstance(query, NearestQuery) and isinstance(query.nearest, Document):
                nearest = visit(query.nearest, name, f"{field}.nearest")
                req = req.model_copy(update={"query": query.model_copy(update={"nearest": nearest})})
            elif isinstance(query, Document):
                req = req.model_copy(update={"query": visit(query, name, field)})
            out.append(req)
        return out

    return _resolved(rebuild, _targets(settings, query=True))


def _resolved(rebuild: Callable[[Visit], Any], targets: _Targets) -> Any:
    """Walk once to find the documents (nothing to do without any) and check them all, embed the
    dense ones in one call, then walk again putting each one's vector in its place."""
    dense: list[tuple[Document, str]] = []
    sparse: list[SparseVector] = []

    def collect(doc: Document, name: str, path: str) -> Document:
        if name in targets.sparse:
            sparse.append(_sparse_vector(doc, name, path, targets.query))
        else:
            _check(doc, name, path, targets.embedding)
            dense.append((doc, path))
        return doc

    rebuild(collect)
    rows: Any = iter(())
    if dense:
        assert targets.embedding is not None
        rows = iter(embed_texts(targets.embedding["model"], [d.text for d, _ in dense], dense[0][1]).tolist())
    sparse_rows = iter(sparse)
    return rebuild(lambda doc, name, path: next(sparse_rows) if name in targets.sparse else next(rows))


def _sparse_vector(doc: Document, name: str, path: str, query: bool) -> SparseVector:
    """The bm25 vector of a document for the sparse vector ``name`` (400 naming the field when it
    names no model, another model, or options bm25 cannot honour)."""
    if not is_bm25(doc.model):
        if doc.model is None:
            problem = "a text document for it must name its model"
        elif _is_dense_model(doc.model):
            problem = f"{doc.model} makes dense vectors"
        else:
            problem = f"unknown sparse model {doc.model!r}"
        raise InvalidInput(f"{path}.model: vector {name!r} is sparse: {problem}; sparse vectors take {MODEL_NAME!r}")
    model = bm25_model(doc.options, f"{path}.options")
    indices, values = model.query(doc.text) if query else model.document(doc.text)
    return SparseVector.model_construct(indices=indices, values=values)


def _is_dense_model(name: str) -> bool:
    try:
        model_spec(name)
    except InvalidInput:
        return False
    return True


def _check(doc: Document, name: str, path: str, embedding: Optional[dict[str, Any]]) -> None:
    if is_bm25(doc.model):
        raise InvalidInput(f"{path}.model: {MODEL_NAME} makes sparse vectors; vector {name!r} is not a sparse vector")
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
