"""Ranking by text: BM25 over a full-text payload index created with ``scoring: {"type": "bm25"}``.

The semantics are qdrant-client 1.20's local mode (``local/bm25.py``, ``_query_text``): the
corpus is every live point whose field has at least one token, whatever the request's
filter (the filter only hides points from the results); a repeated query term counts once;
document lengths are rounded as the server stores them (:func:`round_doc_len`);
``idf = ln((N - df + 0.5) / (df + 0.5) + 1)``; only points scoring above 0 rank. Scores are
computed in float64 and returned as float32 values, ordered best first, ties by lower
internal id. The index tokenizes the query with the field's own settings.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import ValidationError

from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.state import CollectionState
from vecdb.engine.top_k import best
from vecdb.engine.views import ReadView
from vecdb.errors import InvalidInput
from vecdb.filtering.fulltext import DEFAULT_B, DEFAULT_K1
from vecdb.models.base import error_location
from vecdb.models.points import Document
from vecdb.models.query import QueryRequest
from vecdb.models.text import TextQuery


def check_text_field(state: CollectionState, field: Optional[str]) -> str:
    """``field`` when it has a BM25-scored text index, else a 400 saying what is missing."""
    if not field:
        raise InvalidInput("using: a text query needs `using` to name the payload field to search")
    settings = state.payload_index.text_settings(field)
    if settings is None or not settings.bm25:
        raise InvalidInput(f"using: a text query needs a text index with `scoring` on {field!r}")
    return field


def parse_text_query(query: Any) -> tuple[str, float, float]:
    """(text, k1, b) of a ``{"text": ...}`` query (a dict or a :class:`TextQuery`); 400 when malformed."""
    if not isinstance(query, TextQuery):
        try:
            query = TextQuery.model_validate(query)
        except ValidationError as exc:
            problems = "; ".join(f"{error_location(e['loc']) or 'text'}: {e['msg']}" for e in exc.errors()[:3])
            raise InvalidInput(f"query.text: {problems}") from None
    text, k1, b = query.parts()
    return text, DEFAULT_K1 if k1 is None else k1, DEFAULT_B if b is None else b


def text_queries(reqs: list[QueryRequest], state: CollectionState) -> list[QueryRequest]:
    """``{"text": "..."}`` is both Qdrant's text query and vecdb's document to embed (its
    ``model`` is optional here): it is a text query when ``using`` names no vector space but a
    text-indexed payload field, or when the collection embeds nothing. Resolved before
    documents are embedded."""
    if not any(isinstance(req.query, Document) for req in reqs):
        return reqs  # the common case, on every query: nothing to tell apart
    fields = state.payload_index.fields
    embeds = state.settings.get("embedding") is not None
    vectors = {space.name for space in state.spaces} | {space.name for space in state.sparse_spaces}
    out = []
    for req in reqs:
        query = req.query
        if (
            isinstance(query, Document)
            and query.model is None
            and query.options is None
            and req.using is not None
            and req.using not in vectors
            and (fields.get(req.using) == "text" or not embeds)
        ):
            req = req.model_copy(update={"query": TextQuery(text=query.text)})
        out.append(req)
    return out


def text_top(
    state: CollectionState,
    view: ReadView,
    reader: ReadOnDemand,
    field: str,
    text: str,
    k1: float,
    b: float,
    k: int,
    mask: Optional[np.ndarray],
) -> list[tuple[float, int]]:
    """Top ``k`` ``(score, internal id)`` by BM25, best first, ties by lower internal id.

    ``mask`` is a bool array over internal ids ``< view.n`` (None: no filter); only live
    points of the view rank. Reads the in-memory index, then ``reader.check_index()`` so a
    write that touched it meanwhile makes the read retry.
    """
    iids, values = state.payload_index.bm25(check_text_field(state, field), text, k1, b)
    reader.check_index()
    if not len(iids) or k <= 0:
        return []
    keep = iids < view.n
    iids, values = iids[keep], values[keep]
    keep = view.alive[iids]
    if mask is not None:
        keep &= mask[iids]
    iids, values = iids[keep], values[keep]
    return [(float(np.float32(score)), iid) for score, iid in best(iids, values, k)]


__all__ = ["check_text_field", "parse_text_query", "text_queries", "text_top"]
