"""Point models: ids, vectors, payloads and the write/read requests around them (section 4).

Ids are normalised at parse time (``ExtendedPointId``), so every layer below
sees only canonical ids: an int in [0, 2^64) or a lowercase hyphenated UUID.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    AllowInfNan,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_serializer,
)

from vecdb.errors import InvalidInput
from vecdb.ids import PointId, parse_point_id
from vecdb.models.base import RequestModel, ResponseModel, keyed_union
from vecdb.models.filters import Filter


def _canonical_id(value: object) -> PointId:
    try:
        return parse_point_id(value)
    except InvalidInput as exc:  # pydantic turns ValueError into a located validation error
        raise ValueError(exc.message.removeprefix("id: ")) from None


if TYPE_CHECKING:  # what a parsed model holds: the validator has made every spelling canonical
    ExtendedPointId = PointId
else:
    ExtendedPointId = Annotated[Union[StrictInt, StrictStr, uuid.UUID], AfterValidator(_canonical_id)]
"""A point id in any spelling Qdrant accepts, normalised on parse."""

FiniteFloat = Annotated[StrictFloat, AllowInfNan(False)]
"""A vector component: a JSON number, never a bool, a string, NaN or infinity."""
DenseVector = list[FiniteFloat]
MultiDenseVector = list[list[FiniteFloat]]


class SparseVector(RequestModel):
    """A sparse vector: term ids (u32) and their weights, pairwise (validated in the engine, naming the field)."""

    indices: list[StrictInt]
    values: list[FiniteFloat]


class Document(RequestModel):
    """Text that vecdb turns into a vector on the server (Qdrant's inference ``Document``).

    For a dense vector: the collection's model (created with ``"embedding": {"model": ..}``;
    ``model``, when given, must name it). For a sparse vector: ``"model": "qdrant/bm25"``, with
    its ``options`` (BM25 weights and the full-text index's tokenizer settings)."""

    text: StrictStr
    model: Optional[StrictStr] = None
    options: Optional[dict[str, Any]] = None


VectorValue = Union[DenseVector, MultiDenseVector, SparseVector, Document]
VectorStruct = Union[DenseVector, MultiDenseVector, Document, dict[StrictStr, VectorValue]]
"""A point's vectors: one dense list (or a text document) for the default vector, or a map of name -> vector."""


class PointStruct(RequestModel):
    id: ExtendedPointId
    vector: VectorStruct
    payload: Optional[dict[str, Any]] = None


class Batch(RequestModel):
    ids: list[ExtendedPointId]
    vectors: Union[
        list[DenseVector],
        list[MultiDenseVector],
        list[Union[DenseVector, Document]],
        dict[StrictStr, list[VectorValue]],
    ]
    payloads: Optional[list[Optional[dict[str, Any]]]] = None


class PointsList(RequestModel):
    points: list[PointStruct]
    shard_key: Optional[Any] = None
    update_filter: Optional[Filter] = None
    update_mode: Optional[str] = None


class PointsBatch(RequestModel):
    batch: Batch
    shard_key: Optional[Any] = None
    update_filter: Optional[Filter] = None
    update_mode: Optional[str] = None


if TYPE_CHECKING:  # (keyed unions are built at run time; type checkers see the plain union)
    PointInsertOperations = Union[PointsList, PointsBatch]
else:
    PointInsertOperations = keyed_union(("points", PointsList), ("batch", PointsBatch))


class PayloadSelectorInclude(RequestModel):
    include: list[str]


class PayloadSelectorExclude(RequestModel):
    exclude: list[str]


WithPayloadInterface = Union[StrictBool, list[StrictStr], PayloadSelectorInclude, PayloadSelectorExclude]
WithVector = Union[StrictBool, list[StrictStr]]
WITH_VECTOR_FIELD: Any = Field(False, validation_alias=AliasChoices("with_vector", "with_vectors"))
"""Qdrant's server also accepts the plural spelling ``with_vectors``."""


class PointRequest(RequestModel):
    ids: list[ExtendedPointId]
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    shard_key: Optional[Any] = None


class PointIdsList(RequestModel):
    points: list[ExtendedPointId]
    shard_key: Optional[Any] = None


class FilterSelector(RequestModel):
    filter: Filter
    shard_key: Optional[Any] = None


if TYPE_CHECKING:
    PointsSelector = Union[PointIdsList, FilterSelector]
else:
    PointsSelector = keyed_union(("points", PointIdsList), ("filter", FilterSelector))


class SetPayload(RequestModel):
    payload: dict[str, Any]
    points: Optional[list[ExtendedPointId]] = None
    filter: Optional[Filter] = None
    shard_key: Optional[Any] = None
    key: Optional[str] = None


class DeletePayload(RequestModel):
    keys: list[str]
    points: Optional[list[ExtendedPointId]] = None
    filter: Optional[Filter] = None
    shard_key: Optional[Any] = None


class PointVectors(RequestModel):
    id: ExtendedPointId
    vector: VectorStruct


class UpdateVectors(RequestModel):
    points: list[PointVectors]
    shard_key: Optional[Any] = None
    update_filter: Optional[Filter] = None


class DeleteVectors(RequestModel):
    points: Optional[list[ExtendedPointId]] = None
    filter: Optional[Filter] = None
    vector: list[str]
    shard_key: Optional[Any] = None


class UpsertOperation(RequestModel):
    upsert: PointInsertOperations


class DeleteOperation(RequestModel):
    delete: PointsSelector


class SetPayloadOperation(RequestModel):
    set_payload: SetPayload


class OverwritePayloadOperation(RequestModel):
    overwrite_payload: SetPayload


class DeletePayloadOperation(RequestModel):
    delete_payload: DeletePayload


class ClearPayloadOperation(RequestModel):
    clear_payload: PointsSelector


class UpdateVectorsOperation(RequestModel):
    update_vectors: UpdateVectors


class DeleteVectorsOperation(RequestModel):
    delete_vectors: DeleteVectors


if TYPE_CHECKING:
    UpdateOperation = Union[
        UpsertOperation,
        DeleteOperation,
        SetPayloadOperation,
        OverwritePayloadOperation,
        DeletePayloadOperation,
        ClearPayloadOperation,
        UpdateVectorsOperation,
        DeleteVectorsOperation,
    ]
else:
    UpdateOperation = keyed_union(
        ("upsert", UpsertOperation),
        ("delete", DeleteOperation),
        ("set_payload", SetPayloadOperation),
        ("overwrite_payload", OverwritePayloadOperation),
        ("delete_payload", DeletePayloadOperation),
        ("clear_payload", ClearPayloadOperation),
        ("update_vectors", UpdateVectorsOperation),
        ("delete_vectors", DeleteVectorsOperation),
    )


class UpdateOperations(RequestModel):
    operations: list[UpdateOperation]


class OrderBy(RequestModel):
    """Order points by the values of a payload field with a range index (integer, float, datetime)."""

    key: StrictStr
    direction: Optional[Literal["asc", "desc"]] = None
    start_from: Optional[Union[StrictInt, StrictFloat, datetime, date, StrictStr]] = Field(
        None, description="the first value of the page, inclusive: a number, or an RFC 3339 datetime"
    )


class ScrollRequest(RequestModel):
    offset: Optional[ExtendedPointId] = None
    limit: Optional[int] = Field(None, ge=1)
    filter: Optional[Filter] = None
    with_payload: Optional[WithPayloadInterface] = None
    with_vector: WithVector = WITH_VECTOR_FIELD
    order_by: Optional[Union[str, OrderBy]] = None
    shard_key: Optional[Any] = None


class FacetRequest(RequestModel):
    """Counts of a payload field's values among the points passing ``filter`` (most frequent first)."""

    key: StrictStr
    filter: Optional[Filter] = None
    limit: int = Field(10, ge=1, description="values returned at most (no upper bound: the answer holds one per value)")
    exact: bool = False
    shard_key: Optional[Any] = None


class CountRequest(RequestModel):
    filter: Optional[Filter] = None
    exact: bool = True
    shard_key: Optional[Any] = None


# --- responses -----------------------------------------------------------------------------


class SparseVectorOut(ResponseModel):
    """A stored sparse vector as returned: indices ascending, as Qdrant sorts them."""

    indices: list[int]
    values: list[float]


OutputVector = Union[list[float], list[list[float]], dict[str, Union[list[float], list[list[float]], SparseVectorOut]]]


class Record(ResponseModel):
    id: Union[int, str]
    payload: Optional[dict[str, Any]] = None
    vector: Optional[OutputVector] = None
    shard_key: Optional[Any] = None
    order_value: Optional[Any] = None


class ScrollResult(ResponseModel):
    points: list[Record]
    next_page_offset: Optional[Union[int, str]] = None

    @model_serializer(mode="wrap")
    def _keep_offset(self, handler: Any) -> dict[str, Any]:
        # Qdrant always sends the key, null on the last page; exclude_none must not drop it.
        data = handler(self)
        data["next_page_offset"] = self.next_page_offset
        return data


class CountResult(ResponseModel):
    count: int


class FacetValueHit(ResponseModel):
    value: Union[StrictBool, StrictInt, StrictStr]
    count: int


class FacetResponse(ResponseModel):
    hits: list[FacetValueHit]


class UpdateResult(ResponseModel):
    operation_id: Optional[int] = None
    status: str = "completed"
