"""Search requests and results: the universal Query API and the legacy search adapters (section 5)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Field, SkipValidation, StrictInt, StrictStr, Tag, field_validator

from vecdb.models.base import TAG_MARK, RequestModel, ResponseModel
from vecdb.models.expressions import FormulaQuery
from vecdb.models.filters import Filter
from vecdb.models.points import (
    WITH_VECTOR_FIELD,
    DenseVector,
    Document,
    ExtendedPointId,
    MultiDenseVector,
    OrderBy,
    OutputVector,
    Record,
    SparseVector,
    WithPayloadInterface,
    WithVector,
)
from vecdb.models.text import TextQuery

MAX_LIMIT = 100_000
"""Largest ``limit`` a search accepts; bigger result sets belong to scroll."""
MAX_MATRIX_SAMPLE = 10_000
"""Largest ``sample`` of the distance matrix (its scores are computed in blocks, all pairs)."""


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


class Fusion(str, Enum):
    """Rank fusion of the prefetches' results: reciprocal rank (``rrf``) or distribution-based score (``dbsf``)."""

    RRF = "rrf"
    DBSF = "dbsf"


class FusionQuery(RequestModel):
    fusion: Fusion


class Rrf(RequestModel):
    """Reciprocal rank fusion with its constant ``k`` (default 2) and one weight per prefetch (default 1)."""

    k: Optional[int] = Field(None, ge=1)
    weights: Optional[list[float]] = None


class RrfQuery(RequestModel):
    rrf: Rrf


class OrderByQuery(RequestModel):
    """Points in the order of a payload field's values (as scroll's ``order_by``), every score 0."""

    order_by: Union[StrictStr, OrderBy]


class RecommendInput(RequestModel):
    """Examples to recommend from: points (ids) or vectors liked (``positive``) and disliked (``negative``)."""

    positive: Optional[list[VectorInput]] = None
    negative: Optional[list[VectorInput]] = None
    strategy: Optional[Literal["average_vector", "best_score", "sum_scores"]] = None


class RecommendQuery(RequestModel):
    recommend: RecommendInput


class ContextPair(RequestModel):
    positive: VectorInput
    negative: VectorInput


class DiscoverInput(RequestModel):
    """A target to approach, within the regions the context pairs prefer."""

    target: VectorInput
    context: Optional[Union[ContextPair, list[ContextPair]]] = None


class DiscoverQuery(RequestModel):
    discover: DiscoverInput


class ContextQuery(RequestModel):
    """Points on the preferred side of every pair (no target): exploration."""

    context: Union[ContextPair, list[ContextPair]]


class SampleQuery(RequestModel):
    sample: Literal["random"]


ExampleQuery = (RecommendQuery, DiscoverQuery, ContextQuery)
"""Query kinds that score points against example points or vectors."""

_QUERY_KINDS: dict[str, type[RequestModel]] = {
    "nearest": NearestQuery,
    "fusion": FusionQuery,
    "rrf": RrfQuery,
    "formula": FormulaQuery,
    "order_by": OrderByQuery,
    "recommend": RecommendQuery,
    "discover": DiscoverQuery,
    "context": ContextQuery,
    "sample": SampleQuery,
}
_QUERY_TAGS = {model: key for key, model in _QUERY_KINDS.items()}
_VECTOR_KEYS = ("indices", "values", "text")  # a sparse vector or a document (text to embed)


def _query_tag(value: Any) -> str:
    """Which query kind an input is, from its key: so errors name that kind's fields only."""
    if isinstance(value, dict):
        kind = next((key for key in _QUERY_KINDS if key in value), None)
        if kind is not None:
            return TAG_MARK + kind
        if isinstance(value.get("text"), dict):
            return TAG_MARK + "text"  # BM25 over a payload field ({"text": "..."} stays a Document until planned)
        return TAG_MARK + ("vector" if any(key in value for key in _VECTOR_KEYS) else "other")
    if isinstance(value, TextQuery):
        return TAG_MARK + "text"
    return TAG_MARK + _QUERY_TAGS.get(type(value), "vector")


QueryInterface = Annotated[
    Union[
        Annotated[NearestQuery, Tag(TAG_MARK + "nearest")],
        Annotated[FusionQuery, Tag(TAG_MARK + "fusion")],
        Annotated[RrfQuery, Tag(TAG_MARK + "rrf")],
        Annotated[FormulaQuery, Tag(TAG_MARK + "formula")],
        Annotated[OrderByQuery, Tag(TAG_MARK + "order_by")],
        Annotated[RecommendQuery, Tag(TAG_MARK + "recommend")],
        Annotated[DiscoverQuery, Tag(TAG_MARK + "discover")],
        Annotated[ContextQuery, Tag(TAG_MARK + "context")],
        Annotated[SampleQuery, Tag(TAG_MARK + "sample")],
        Annotated[TextQuery, Tag(TAG_MARK + "text")],
        Annotated[VectorInput, Tag(TAG_MARK + "vector")],
        Annotated[dict[str, Any], Tag(TAG_MARK + "other")],
    ],
    Discriminator(_query_tag),
]
"""Raw vector or id (shorthand for nearest), ``{"nearest": ...}``, a fusion or formula over prefetches, or another
Qdrant query kind (parsed as a dict so the error can name it as unsupported)."""

MergingQuery = (FusionQuery, RrfQuery, FormulaQuery)
"""Query kinds that only combine prefetches' results."""


def _one_or_many(value: Any) -> Any:
    """Qdrant takes one prefetch or a list; stored as a list so consumers see one shape."""
    return value if value is None or isinstance(value, list) else [value]


class LookupLocation(RequestModel):
    collection: str
    vector: Optional[str] = None
    shard_key: Optional[Any] = None


class Prefetch(RequestModel):
    """One stage under a query: its own search (or fusion of its own prefetches), filter and depth."""

    prefetch: Optional[list[Prefetch]] = None
    query: Optional[QueryInterface] = None
    using: Optional[StrictStr] = None
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    score_threshold: Optional[float] = None
    limit: Optional[int] = Field(None, ge=1, le=MAX_LIMIT, description="candidates this stage passes up (default 10)")
    lookup_from: Optional[LookupLocation] = None

    @field_validator("prefetch", mode="before")
    @classmethod
    def _prefetch_list(cls, value: Any) -> Any:
        return _one_or_many(value)


class _QueryFields(RequestModel):
    """What a query and a grouped query share: the search itself and what each hit returns."""

    prefetch: Optional[list[Prefetch]] = None
    query: Optional[QueryInterface] = None
    using: Optional[StrictStr] = None
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    score_threshold: Optional[float] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    with_payload: Optional[WithPayloadInterface] = None
    lookup_from: Optional[LookupLocation] = None
    shard_key: Optional[Any] = None

    @field_validator("prefetch", mode="before")
    @classmethod
    def _prefetch_list(cls, value: Any) -> Any:
        return _one_or_many(value)


class QueryRequest(_QueryFields):
    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)
    explain: Optional[bool] = Field(
        None, description="vecdb extension: also return the query plan (plan, candidates, ef, time per stage)"
    )


class WithLookup(RequestModel):
    """Where a group's id is looked up as a point id (``with_lookup``), and what of that point to return."""

    collection: StrictStr
    with_payload: Optional[WithPayloadInterface] = None
    with_vectors: Optional[WithVector] = None


class _GroupsFields(RequestModel):
    group_by: StrictStr = Field(..., description="payload key whose values (integers or strings) are the groups")
    group_size: int = Field(3, ge=1, le=MAX_LIMIT, description="best hits per group")
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description="groups returned")
    with_lookup: Optional[Union[StrictStr, WithLookup]] = None


class QueryGroupsRequest(_QueryFields, _GroupsFields):
    """``points/query/groups``: a query whose best hits are grouped by a payload field."""


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


class SearchGroupsRequest(_GroupsFields):
    """Legacy ``points/search/groups`` body (Qdrant requires ``group_size`` and ``limit`` there)."""

    vector: Union[DenseVector, NamedVector, dict[str, Any]]
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    score_threshold: Optional[float] = None
    group_size: int = Field(..., ge=1, le=MAX_LIMIT, description="best hits per group")
    limit: int = Field(..., ge=1, le=MAX_LIMIT, description="groups returned")
    shard_key: Optional[Any] = None


class _RecommendFields(RequestModel):
    """What the legacy recommend bodies share (``points/recommend`` and ``points/recommend/groups``)."""

    positive: list[VectorInput] = Field(default_factory=list)
    negative: list[VectorInput] = Field(default_factory=list)
    strategy: Optional[Literal["average_vector", "best_score", "sum_scores"]] = None
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    score_threshold: Optional[float] = None
    using: Optional[StrictStr] = None
    lookup_from: Optional[LookupLocation] = None
    shard_key: Optional[Any] = None


class RecommendRequest(_RecommendFields):
    """Legacy ``points/recommend`` body, translated into a ``recommend`` query."""

    limit: int = Field(..., ge=1, le=MAX_LIMIT)
    offset: Optional[int] = Field(None, ge=0)


class RecommendRequestBatch(RequestModel):
    searches: list[RecommendRequest]


class RecommendGroupsRequest(_RecommendFields, _GroupsFields):
    """Legacy ``points/recommend/groups`` body: a recommendation whose hits are grouped (Qdrant requires
    ``group_size`` and ``limit`` there)."""

    group_size: int = Field(..., ge=1, le=MAX_LIMIT, description="best hits per group")
    limit: int = Field(..., ge=1, le=MAX_LIMIT, description="groups returned")


class DiscoverRequest(RequestModel):
    """Legacy ``points/discover`` body, translated into a ``discover`` (or, without target, ``context``) query."""

    target: Optional[VectorInput] = None
    context: Optional[list[ContextPair]] = None
    filter: Optional[Filter] = None
    params: Optional[SearchParams] = None
    limit: int = Field(..., ge=1, le=MAX_LIMIT)
    offset: Optional[int] = Field(None, ge=0)
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    using: Optional[StrictStr] = None
    lookup_from: Optional[LookupLocation] = None
    shard_key: Optional[Any] = None


class DiscoverRequestBatch(RequestModel):
    searches: list[DiscoverRequest]


class SearchMatrixRequest(RequestModel):
    """A random sample of points and each one's nearest among the others (``points/search/matrix/*``)."""

    filter: Optional[Filter] = None
    sample: int = Field(
        10, ge=2, le=MAX_MATRIX_SAMPLE, description="points drawn (at random, among those passing filter)"
    )
    limit: int = Field(3, ge=1, le=MAX_MATRIX_SAMPLE, description="nearest other sampled points kept per sampled point")
    using: Optional[StrictStr] = None
    shard_key: Optional[Any] = None


class SearchRequestBatch(RequestModel):
    searches: list[SearchRequest]


class ScoredPoint(ResponseModel):
    id: Union[int, str]
    version: int = 0
    score: float
    payload: SkipValidation[Optional[dict[str, Any]]] = None
    """(not validated: vecdb builds it from stored JSON, and a query's hits are built by the ten)"""
    vector: Optional[OutputVector] = None
    shard_key: Optional[Any] = None
    order_value: Optional[Any] = None


class SearchMatrixPair(ResponseModel):
    a: Union[StrictInt, StrictStr]
    b: Union[StrictInt, StrictStr]
    score: float


class SearchMatrixPairsResponse(ResponseModel):
    pairs: list[SearchMatrixPair]


class SearchMatrixOffsetsResponse(ResponseModel):
    offsets_row: list[int]
    offsets_col: list[int]
    scores: list[float]
    ids: list[Union[StrictInt, StrictStr]]


class PointGroup(ResponseModel):
    id: Union[StrictInt, StrictStr]
    hits: list[ScoredPoint]
    lookup: Optional[Record] = None


class GroupsResult(ResponseModel):
    groups: list[PointGroup]


class QueryResponse(ResponseModel):
    points: list[ScoredPoint]
    explain: Optional[dict[str, Any]] = Field(None, description="vecdb extension: the plan, when asked for")
