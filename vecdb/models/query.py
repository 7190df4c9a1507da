"""Search requests and results: the universal Query API and the legacy search adapters (section 5)."""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import Field, StrictStr

from vecdb.models.base import RequestModel, ResponseModel
from vecdb.models.filters import Filter
from vecdb.models.points import (
    WITH_VECTOR_FIELD,
    DenseVector,
    Document,
    ExtendedPointId,
    MultiDenseVector,
    OutputVector,
    SparseVector,
    WithPayloadInterface,
    WithVector,
)

MAX_LIMIT = 100_000
"""Largest ``limit`` a search accepts; bigger result sets belong to scroll."""


class QuantizationSearchParams(RequestModel):
    ignore: Optional[bool] = False
    rescore: Optional[bool] = None
    oversampling: Optional[float] = Field(None, ge=1)


class SearchParams(RequestModel):
    """Per-query knobs: ``hnsw_ef`` widens the graph search, ``nprobe`` the IVF-PQ scan, ``exact`` forces a
    full exact scan; ``quantization`` steers IVF-PQ re-ranking (``rescore``, ``oversampling``, ``ignore``)."""

    hnsw_ef: Optional[int] = Field(None, ge=1, le=2**31 - 1, description="beyond the graph's size it visits no more")
    nprobe: Optional[int] = Field(
        None, ge=1, le=2**31 - 1, description="vecdb extension: IVF-PQ lists scanned per query"
    )
    exact: Optional[bool] = False
    quantization: Optional[QuantizationSearchParams] = None
    indexed_only: Optional[bool] = False
    acorn: Optional[dict[str, Any]] = None


VectorInput = Union[DenseVector, MultiDenseVector, SparseVector, Document, ExtendedPointId]
"""What a nearest query may search with: a vector, the id of a stored point, or text to embed."""


class Mmr(RequestModel):
    """Maximal marginal relevance (see :mod:`vecdb.engine.mmr`): 0 diversity is plain relevance."""

    diversity: Optional[float] = Field(None, ge=0, le=1)
    candidates_limit: Optional[int] = Field(None, ge=0, le=16384)


class NearestQuery(RequestModel):
    nearest: VectorInput
    mmr: Optional[Mmr] = None


QueryInterface = Union[NearestQuery, VectorInput, dict[str, Any]]
"""Raw vector or id (shorthand for nearest), ``{"nearest": ...}``, or another Qdrant query kind
(parsed as a dict so the error can name it as unsupported)."""


class LookupLocation(RequestModel):
    collection: str
    vector: Optional[str] = None
    shard_key: Optional[Any] = None


class QueryRequest(RequestModel):
    prefetch: Optional[Union[list[dict[str, Any]], dict[str, Any]]] = None
    query: Optional[QueryInterface] = None
    using: Optional[StrictStr] = None
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    score_threshold: Optional[float] = None
    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)
    with_vector: WithVector = WITH_VECTOR_FIELD
    with_payload: Optional[WithPayloadInterface] = None
    lookup_from: Optional[LookupLocation] = None
    shard_key: Optional[Any] = None
    explain: Optional[bool] = Field(
        None, description="vecdb extension: also return the query plan (plan, candidates, ef, time per stage)"
    )


class QueryRequestBatch(RequestModel):
    searches: list[QueryRequest]


class NamedVector(RequestModel):
    name: str
    vector: DenseVector


class SearchRequest(RequestModel):
    """Legacy ``points/search`` body, translated into a QueryRequest."""

    vector: Union[DenseVector, NamedVector, dict[str, Any]]
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    limit: int = Field(..., ge=1, le=MAX_LIMIT)
    offset: Optional[int] = Field(None, ge=0)
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    score_threshold: Optional[float] = None
    shard_key: Optional[Any] = None


class SearchRequestBatch(RequestModel):
    searches: list[SearchRequest]


class ScoredPoint(ResponseModel):
    id: Union[int, str]
    version: int = 0
    score: float
    payload: Optional[dict[str, Any]] = None
    vector: Optional[OutputVector] = None
    shard_key: Optional[Any] = None
    order_value: Optional[Any] = None


class QueryResponse(ResponseModel):
    points: list[ScoredPoint]
    explain: Optional[dict[str, Any]] = Field(None, description="vecdb extension: the plan, when asked for")
