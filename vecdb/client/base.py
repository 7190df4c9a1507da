"""qdrant-client's high-level methods, written once over :class:`~vecdb.service.VectorService`.

Code moves between ``QdrantClient(path=...)`` and ``vecdb.Client(path=...)`` by
changing one line: method names, argument names and return types follow
qdrant-client. Arguments may be vecdb models or plain dicts (and numpy arrays
for vectors); a dict that does not fit raises :class:`vecdb.errors.InvalidInput`
naming the field.

Why one module of this size: it is qdrant-client's method surface (some forty methods, each a
few lines of argument coercion), kept together so that its names and defaults read against
qdrant-client's own ``QdrantClient`` in one place; both the embedded and the remote client
inherit it.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Optional, TypeVar, Union

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from vecdb.errors import InvalidInput, Unsupported
from vecdb.ids import PointId
from vecdb.models.base import error_location, most_telling
from vecdb.models.collections import (
    AliasDescription,
    ChangeAliasesOperation,
    CollectionInfo,
    CollectionsResponse,
    CreateCollection,
    CreateFieldIndex,
    CreateVectorName,
    UpdateCollection,
)
from vecdb.models.columns import as_columns, batch_with_matrix
from vecdb.models.filters import Filter
from vecdb.models.points import (
    Batch,
    CountRequest,
    CountResult,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    FilterSelector,
    PointIdsList,
    PointRequest,
    PointsBatch,
    PointsList,
    PointsSelector,
    PointStruct,
    PointVectors,
    Record,
    ScrollRequest,
    SetPayload,
    UpdateOperation,
    UpdateOperations,
    UpdateResult,
    UpdateVectors,
)
from vecdb.models.query import (
    GroupsResult,
    QueryGroupsRequest,
    QueryRequest,
    QueryRequestBatch,
    QueryResponse,
    SearchMatrixOffsetsResponse,
    SearchMatrixPairsResponse,
    SearchMatrixRequest,
    SearchParams,
)
from vecdb.models.snapshots import SnapshotDescription, SnapshotRecover
from vecdb.service import VectorService

M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], value: Any, field: str) -> M:
    """Accept a model instance or a plain dict; turn pydantic's error into InvalidInput."""
    if isinstance(value, model):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_unset=True, by_alias=True)
    try:
        return model.model_validate(_plain(value))
    except ValidationError as exc:
        raise InvalidInput(f"{field}: {format_validation_error(exc)}") from None


def parse_as(annotation: Any, value: Any, field: str) -> Any:
    try:
        return TypeAdapter(annotation).validate_python(_plain(value))
    except ValidationError as exc:
        raise InvalidInput(f"{field}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """The three most telling errors (:func:`vecdb.models.base.most_telling`)."""
    parts = []
    for err in most_telling(list(exc.errors()))[:3]:
        loc = error_location(err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars become lists and numbers; UUID objects stay (the models accept them)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True, by_alias=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) in _JSON_SCALARS for v in value):  # (a sparse query's indices and values)
            return value if isinstance(value, list) else list(value)
        return [_plain(v) for v in value]
    return value


_JSON_SCALARS = frozenset((int, float, str, bool))


def _matrix_batch(points: dict[str, Any], extra: dict[str, Any]) -> PointsBatch:
    """A batch whose vectors are a float matrix skips per-float pydantic validation
    (:mod:`vecdb.models.columns`); NaN is refused here, since JSON has none to send."""
    vectors: np.ndarray = points["vectors"]
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():  # JSON has no NaN: say so here rather than let it become null on the wire
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidInput(f"batch.vectors[{bad}]: vector contains NaN or infinite components")
    payloads = points.get("payloads")
    plain_payloads = isinstance(payloads, list) and all(p is None or isinstance(p, dict) for p in payloads)
    plain = {k: v if k == "vectors" or (k == "payloads" and plain_payloads) else _plain(v) for k, v in points.items()}
    try:
        return batch_with_matrix(plain, {k: _plain(v) for k, v in extra.items()})
    except ValidationError as exc:
        raise InvalidInput(f"batch: {format_validation_error(exc)}") from None


def _selector(points: Any, field: str = "points_selector") -> PointsSelector:
    if isinstance(points, (PointIdsList, FilterSelector)):
        return points
    if isinstance(points, Filter):
        return FilterSelector(filter=points)
    if isinstance(points, BaseModel):  # qdrant-client's PointIdsList, FilterSelector or Filter
        points = points.model_dump(exclude_unset=True, by_alias=True)
    if isinstance(points, dict):
        if "points" in points:
            return parse_model(PointIdsList, points, field)
        if "filter" in points:
            return parse_model(FilterSelector, points, field)
        return FilterSelector(filter=parse_model(Filter, points, field))
    return parse_model(PointIdsList, {"points": list(points)}, field)


def _ids_or_filter(points: Any) -> dict[str, Any]:
    sel = _selector(points, "points")
    return {"points": sel.points} if isinstance(sel, PointIdsList) else {"filter": sel.filter}


INERT_OPTIONS = frozenset({"timeout", "consistency", "ordering", "max_retries", "method", "parallel"})
"""qdrant-client's per-call options that change nothing in one process: every call is synchronous and
durable when it returns, reads see the last write, writes apply in call order."""


def _checked_options(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` refusing what it would otherwise swallow: a keyword argument neither it nor qdrant-client
    takes is a TypeError (a misspelt ``query_filter`` must not silently filter nothing), and a
    ``shard_key_selector`` is refused (one shard per collection)."""
    named = set(inspect.signature(method).parameters) - {"_"}

    @functools.wraps(method)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        for key in kwargs.keys() - named:
            if key == "shard_key_selector":
                if kwargs[key] is not None:
                    raise Unsupported("shard_key_selector: shard keys are not supported yet (one shard per collection)")
            elif key not in INERT_OPTIONS:
                raise TypeError(f"{method.__name__}() got an unexpected keyword argument {key!r}")
        return method(self, *args, **kwargs)

    return checked


def checks_options(cls: type) -> type:
    """Wrap every public method of ``cls`` that ends in ``**_`` with :func:`_checked_options`."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        variadic = [p for p in inspect.signature(member).parameters.values() if p.kind is p.VAR_KEYWORD]
        if variadic and variadic[0].name == "_":
            setattr(cls, name, _checked_options(member))
    return cls


@checks_options
class ClientBase:
    """The high-level API; subclasses provide ``self._service``."""

    _service: VectorService

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> ClientBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self, **_: Any) -> dict[str, Any]:
        return self._service.root_info()

    # --- collections ---------------------------------------------------------------------

    def get_collections(self) -> CollectionsResponse:
        return self._service.get_collections()

    def get_collection(self, collection_name: str) -> CollectionInfo:
        return self._service.get_collection(collection_name)

    def collection_exists(self, collection_name: str) -> bool:
        return self._service.collection_exists(collection_name).exists

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Any = None,
        sparse_vectors_config: Any = None,
        shard_number: Optional[int] = None,
        sharding_method: Optional[str] = None,
        replication_factor: Optional[int] = None,
        write_consistency_factor: Optional[int] = None,
        on_disk_payload: Optional[bool] = None,
        hnsw_config: Any = None,
        optimizers_config: Any = None,
        wal_config: Any = None,
        quantization_config: Any = None,
        timeout: Optional[int] = None,
        strict_mode_config: Any = None,
        metadata: Optional[dict[str, Any]] = None,
        index: Any = None,
        embedding: Any = None,
        payload: Any = None,
        id_tracker: Any = None,
        **_: Any,
    ) -> bool:
        """qdrant-client's ``create_collection`` (its newer ``payload`` and ``id_tracker`` settings are
        refused when given: 400 naming them); ``index`` (vecdb) picks the ANN index:
        ``{"type": "hnsw" | "flat" | "ivf_pq", "nlist", "pq_m", "pq_bits", "device"}``; ``embedding``
        (vecdb) ``{"model": .., "vector": ..}`` makes the collection take ``{"text": ..}`` documents."""
        body = {
            "vectors": vectors_config,
            "sparse_vectors": sparse_vectors_config,
            "shard_number": shard_number,
            "sharding_method": sharding_method,
            "replication_factor": replication_factor,
            "write_consistency_factor": write_consistency_factor,
            "on_disk_payload": on_disk_payload,
            "hnsw_config": hnsw_config,
            "optimizers_config": optimizers_config,
            "wal_config": wal_config,
            "quantization_config": quantization_config,
            "strict_mode_config": strict_mode_config,
            "metadata": metadata,
            "index": index,
            "embedding": embedding,
            "payload": payload,
            "id_tracker": id_tracker,
        }
        req = parse_model(CreateCollection, {k: v for k, v in body.items() if v is not None}, "create_collection")
        return self._service.create_collection(collection_name, req)

    def recreate_collection(self, collection_name: str, vectors_config: Any = None, **kwargs: Any) -> bool:
        self.delete_collection(collection_name)
        return self.create_collection(collection_name, vectors_config, **kwargs)

    def create_vector_name(
        self, collection_name: str, vector_name: str, vector_name_config: Any, wait: bool = True, **_: Any
    ) -> UpdateResult:
        """qdrant-client's ``create_vector_name``: ``{"dense": {"size", "distance", "multivector_config"}}``
        or ``{"sparse": {"modifier"}}`` (its ``DenseVectorNameConfig`` / ``SparseVectorNameConfig``)."""
        req = parse_model(CreateVectorName, vector_name_config, "vector_name_config")
        return self._service.create_vector_name(collection_name, vector_name, req)

    def delete_vector_name(self, collection_name: str, vector_name: str, wait: bool = True, **_: Any) -> UpdateResult:
        return self._service.delete_vector_name(collection_name, vector_name)

    def update_collection(
        self,
        collection_name: str,
        optimizers_config: Any = None,
        collection_params: Any = None,
        vectors_config: Any = None,
        hnsw_config: Any = None,
        quantization_config: Any = None,
        timeout: Optional[int] = None,
        sparse_vectors_config: Any = None,
        strict_mode_config: Any = None,
        metadata: Optional[dict[str, Any]] = None,
    ) -> bool:
        body = {
            "optimizers_config": optimizers_config,
            "params": collection_params,
            "vectors": vectors_config,
            "hnsw_config": hnsw_config,
            "quantization_config": quantization_config,
            "sparse_vectors": sparse_vectors_config,
            "strict_mode_config": strict_mode_config,
            "metadata": metadata,
        }
        req = parse_model(UpdateCollection, {k: v for k, v in body.items() if v is not None}, "update_collection")
        return self._service.update_collection(collection_name, req)

    def delete_collection(self, collection_name: str, timeout: Optional[int] = None) -> bool:
        return self._service.delete_collection(collection_name)

    def update_collection_aliases(
        self, change_aliases_operations: Sequence[Any], timeout: Optional[int] = None
    ) -> bool:
        req = parse_model(ChangeAliasesOperation, {"actions": list(change_aliases_operations)}, "actions")
        return self._service.update_aliases(req)

    def get_aliases(self) -> list[AliasDescription]:
        return self._service.get_aliases().aliases

    def get_collection_aliases(self, collection_name: str) -> list[AliasDescription]:
        return self._service.get_collection_aliases(collection_name).aliases

    def create_payload_index(
        self,
        collection_name: str,
        field_name: str,
        field_schema: Any = None,
        field_type: Any = None,
        wait: bool = True,
        **_: Any,
    ) -> UpdateResult:
        """qdrant-client's ``create_payload_index`` (``field_type``: its older name for ``field_schema``)."""
        schema = field_schema if field_schema is not None else field_type
        req = parse_model(CreateFieldIndex, {"field_name": field_name, "field_schema": schema}, "index")
        return self._service.create_field_index(collection_name, req)

    def delete_payload_index(self, collection_name: str, field_name: str, wait: bool = True, **_: Any) -> UpdateResult:
        return self._service.delete_field_index(collection_name, field_name)

    # --- points --------------------------------------------------------------------------

    def upsert(
        self,
        collection_name: str,
        points: Union[Batch, Sequence[Any], dict[str, Any]],
        wait: bool = True,
        update_filter: Any = None,
        update_mode: Any = None,
        **_: Any,
    ) -> UpdateResult:
        extra: dict[str, Any] = {} if update_filter is None else {"update_filter": update_filter}
        if update_mode is not None:
            extra["update_mode"] = getattr(update_mode, "value", update_mode)
        if isinstance(points, BaseModel) and not isinstance(points, Batch) and "ids" in type(points).model_fields:
            points = points.model_dump(exclude_unset=True, by_alias=True)  # qdrant-client's Batch
        if not isinstance(points, (dict, Batch)):
            points = list(points)
            columns = as_columns(points)
            if columns is not None:
                finite = np.isfinite(columns["vectors"]).all(axis=1)
                if not finite.all():
                    bad = int(np.flatnonzero(~finite)[0])
                    raise InvalidInput(f"points[{bad}].vector: vector contains NaN or infinite components")
                try:
                    return self._service.upsert_points(collection_name, _matrix_batch(columns, extra))
                except InvalidInput:
                    pass  # validate again point by point, so that the error names points[i]
            req: Any = parse_model(PointsList, {"points": points, **extra}, "points")
        elif isinstance(points, dict) and isinstance(points.get("vectors"), np.ndarray) and points["vectors"].ndim == 2:
            req = _matrix_batch(points, extra)
        else:
            req = parse_model(PointsBatch, {"batch": points, **extra}, "batch")
        return self._service.upsert_points(collection_name, req)

    def upload_points(
        self,
        collection_name: str,
        points: Iterable[Any],
        batch_size: int = 64,
        wait: bool = True,
        update_filter: Any = None,
        update_mode: Any = None,
        **_: Any,
    ) -> None:
        batch: list[Any] = []
        for point in points:
            batch.append(point)
            if len(batch) >= batch_size:
                self.upsert(collection_name, batch, update_filter=update_filter, update_mode=update_mode)
                batch = []
        if batch:
            self.upsert(collection_name, batch, update_filter=update_filter, update_mode=update_mode)

    def upload_collection(
        self,
        collection_name: str,
        vectors: Any,
        payload: Optional[Iterable[Any]] = None,
        ids: Optional[Iterable[Any]] = None,
        batch_size: int = 64,
        wait: bool = True,
        update_filter: Any = None,
        update_mode: Any = None,
        **_: Any,
    ) -> None:
        vectors = list(vectors)
        ids_list = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in vectors]
        payloads = list(payload) if payload is not None else [None] * len(vectors)
        for lo in range(0, len(vectors), batch_size):
            hi = lo + batch_size
            self.upsert(
                collection_name,
                {"ids": ids_list[lo:hi], "vectors": vectors[lo:hi], "payloads": payloads[lo:hi]},
                update_filter=update_filter,
                update_mode=update_mode,
            )

    def retrieve(
        self, collection_name: str, ids: Sequence[Any], with_payload: Any = True, with_vectors: Any = False, **_: Any
    ) -> list[Record]:
        req = parse_model(
            PointRequest, {"ids": list(ids), "with_payload": with_payload, "with_vector": with_vectors}, "retrieve"
        )
        return self._service.get_points(collection_name, req)

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True, **_: Any) -> UpdateResult:
        return self._service.delete_points(collection_name, _selector(points_selector))

    def set_payload(
        self,
        collection_name: str,
        payload: dict[str, Any],
        points: Any,
        key: Optional[str] = None,
        wait: bool = True,
        **_: Any,
    ) -> UpdateResult:
        req = parse_model(SetPayload, {"payload": payload, "key": key, **_ids_or_filter(points)}, "set_payload")
        return self._service.set_payload(collection_name, req)

    def overwrite_payload(
        self, collection_name: str, payload: dict[str, Any], points: Any, wait: bool = True, **_: Any
    ) -> UpdateResult:
        req = parse_model(SetPayload, {"payload": payload, **_ids_or_filter(points)}, "overwrite_payload")
        return self._service.overwrite_payload(collection_name, req)

    def delete_payload(
        self, collection_name: str, keys: Sequence[str], points: Any, wait: bool = True, **_: Any
    ) -> UpdateResult:
        req = parse_model(DeletePayload, {"keys": list(keys), **_ids_or_filter(points)}, "delete_payload")
        return self._service.delete_payload(collection_name, req)

    def clear_payload(self, collection_name: str, points_selector: Any, wait: bool = True, **_: Any) -> UpdateResult:
        return self._service.clear_payload(collection_name, _selector(points_selector))

    def update_vectors(
        self, collection_name: str, points: Sequence[Any], wait: bool = True, update_filter: Any = None, **_: Any
    ) -> UpdateResult:
        """qdrant-client's ``update_vectors``; with ``update_filter`` only the points passing it change."""
        body: dict[str, Any] = {"points": [parse_model(PointVectors, p, "points") for p in points]}
        if update_filter is not None:
            body["update_filter"] = update_filter
        req = parse_model(UpdateVectors, body, "update_vectors")
        return self._service.update_vectors(collection_name, req)

    def delete_vectors(
        self, collection_name: str, vectors: Sequence[str], points: Any, wait: bool = True, **_: Any
    ) -> UpdateResult:
        req = parse_model(DeleteVectors, {"vector": list(vectors), **_ids_or_filter(points)}, "delete_vectors")
        return self._service.delete_vectors(collection_name, req)

    def batch_update_points(
        self, collection_name: str, update_operations: Sequence[Any], wait: bool = True, **_: Any
    ) -> list[UpdateResult]:
        ops = parse_as(list[UpdateOperation], list(update_operations), "update_operations")
        return self._service.batch_update(collection_name, UpdateOperations(operations=ops))

    def scroll(
        self,
        collection_name: str,
        scroll_filter: Any = None,
        limit: int = 10,
        order_by: Any = None,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> tuple[list[Record], Optional[PointId]]:
        body = {
            "filter": scroll_filter,
            "limit": limit,
            "order_by": order_by,
            "offset": offset,
            "with_payload": with_payload,
            "with_vector": with_vectors,
        }
        req = parse_model(ScrollRequest, {k: v for k, v in body.items() if v is not None}, "scroll")
        result = self._service.scroll_points(collection_name, req)
        return result.points, result.next_page_offset

    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True, **_: Any) -> CountResult:
        body = {"filter": count_filter, "exact": exact}
        req = parse_model(CountRequest, {k: v for k, v in body.items() if v is not None}, "count")
        return self._service.count_points(collection_name, req)

    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: Any = None,
        limit: int = 10,
        exact: bool = False,
        **_: Any,
    ) -> FacetResponse:
        """qdrant-client's ``facet``: how many points hold each value of ``key`` (an indexed keyword,
        integer, bool or uuid field), most frequent first; vecdb always counts exactly."""
        body = {"key": key, "filter": facet_filter, "limit": limit, "exact": exact}
        req = parse_model(FacetRequest, {k: v for k, v in body.items() if v is not None}, "facet")
        return self._service.facet(collection_name, req)

    # --- search --------------------------------------------------------------------------

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: Optional[str] = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        offset: Optional[int] = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: Optional[float] = None,
        lookup_from: Any = None,
        explain: bool = False,
        **_: Any,
    ) -> QueryResponse:
        """qdrant-client's ``query_points``; ``explain=True`` (vecdb) also returns the query plan."""
        req = self._query_request(
            query,
            using,
            prefetch,
            query_filter,
            search_params,
            limit,
            offset,
            with_payload,
            with_vectors,
            score_threshold,
            lookup_from,
        )
        if explain:
            req.explain = True
        return self._service.query_points(collection_name, req)

    def query_batch_points(self, collection_name: str, requests: Sequence[Any], **_: Any) -> list[QueryResponse]:
        reqs = [parse_model(QueryRequest, r, f"requests[{i}]") for i, r in enumerate(requests)]
        return self._service.query_batch_points(collection_name, QueryRequestBatch(searches=reqs))

    def search_matrix_pairs(
        self,
        collection_name: str,
        query_filter: Any = None,
        limit: int = 3,
        sample: int = 10,
        using: Optional[str] = None,
        **_: Any,
    ) -> SearchMatrixPairsResponse:
        """qdrant-client's ``search_matrix_pairs``: ``sample`` random points passing the filter and, for
        each, its ``limit`` nearest among them, as pairs ``(a, b, score)``."""
        return self._service.search_matrix_pairs(
            collection_name, self._matrix_request(query_filter, limit, sample, using)
        )

    def search_matrix_offsets(
        self,
        collection_name: str,
        query_filter: Any = None,
        limit: int = 3,
        sample: int = 10,
        using: Optional[str] = None,
        **_: Any,
    ) -> SearchMatrixOffsetsResponse:
        """qdrant-client's ``search_matrix_offsets``: the same matrix as rows, columns and scores over ``ids``."""
        return self._service.search_matrix_offsets(
            collection_name, self._matrix_request(query_filter, limit, sample, using)
        )

    @staticmethod
    def _matrix_request(query_filter: Any, limit: int, sample: int, using: Optional[str]) -> SearchMatrixRequest:
        body = {"filter": query_filter, "limit": limit, "sample": sample, "using": using}
        return parse_model(SearchMatrixRequest, {k: v for k, v in body.items() if v is not None}, "search_matrix")

    def query_points_groups(
        self,
        collection_name: str,
        group_by: str,
        query: Any = None,
        using: Optional[str] = None,
        prefetch: Any = None,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        group_size: int = 3,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: Optional[float] = None,
        with_lookup: Any = None,
        lookup_from: Any = None,
        **_: Any,
    ) -> GroupsResult:
        """qdrant-client's ``query_points_groups``: the query's best hits grouped by the values of
        ``group_by`` (``group_size`` hits per group, ``limit`` groups), each group's id optionally
        looked up in another collection (``with_lookup``)."""
        ranked = self._query_request(
            query,
            using,
            prefetch,
            query_filter,
            search_params,
            1,
            None,
            with_payload,
            with_vectors,
            score_threshold,
            lookup_from,
        )
        body = {"group_by": group_by, "group_size": group_size, "limit": limit, "with_lookup": with_lookup}
        req = parse_model(QueryGroupsRequest, {k: v for k, v in body.items() if v is not None}, "query_points_groups")
        for field in ("prefetch", "query", "using", "filter", "params", "score_threshold", "with_payload"):
            setattr(req, field, getattr(ranked, field))
        req.with_vector, req.lookup_from = ranked.with_vector, ranked.lookup_from
        return self._service.query_groups(collection_name, req)

    def search_groups(
        self,
        collection_name: str,
        query_vector: Any,
        group_by: str,
        query_filter: Any = None,
        search_params: Any = None,
        limit: int = 10,
        group_size: int = 1,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: Optional[float] = None,
        with_lookup: Any = None,
        **_: Any,
    ) -> GroupsResult:
        """qdrant-client's ``search_groups`` (removed from it in 1.16): a grouped nearest search; a named
        vector as ``(name, vector)`` or ``{"name", "vector"}``."""
        using = None
        if isinstance(query_vector, tuple) and len(query_vector) == 2 and isinstance(query_vector[0], str):
            using, query_vector = query_vector
        elif isinstance(query_vector, dict) and "name" in query_vector:
            using, query_vector = query_vector["name"], query_vector.get("vector")
        elif hasattr(query_vector, "name") and hasattr(query_vector, "vector"):
            using, query_vector = query_vector.name, query_vector.vector
        return self.query_points_groups(
            collection_name,
            group_by,
            query=query_vector,
            using=using,
            query_filter=query_filter,
            search_params=search_params,
            limit=limit,
            group_size=group_size,
            with_payload=with_payload,
            with_vectors=with_vectors,
            score_threshold=score_threshold,
            with_lookup=with_lookup,
        )

    # --- snapshots -----------------------------------------------------------------------

    def create_snapshot(self, collection_name: str, wait: bool = True, **_: Any) -> Optional[SnapshotDescription]:
        """A consistent snapshot of the collection (writes go on meanwhile); None when ``wait=False``."""
        return self._service.create_snapshot(collection_name, wait=wait)

    def list_snapshots(self, collection_name: str, **_: Any) -> list[SnapshotDescription]:
        return self._service.list_snapshots(collection_name)

    def delete_snapshot(self, collection_name: str, snapshot_name: str, wait: bool = True, **_: Any) -> Optional[bool]:
        return self._service.delete_snapshot(collection_name, snapshot_name)

    def recover_snapshot(
        self,
        collection_name: str,
        location: str,
        api_key: Optional[str] = None,
        checksum: Optional[str] = None,
        priority: Any = None,
        wait: bool = True,
        **_: Any,
    ) -> Optional[bool]:
        """Restore ``collection_name`` (replacing it) from ``location``: ``file:///abs/path`` on the
        machine holding the data, or the name of a snapshot it holds. ``checksum``: sha256 to verify."""
        body = {"location": location, "api_key": api_key, "checksum": checksum, "priority": priority}
        req = parse_model(SnapshotRecover, {k: v for k, v in body.items() if v is not None}, "recover_snapshot")
        return self._service.recover_snapshot(collection_name, req, wait=wait)

    def upload_snapshot(
        self,
        collection_name: str,
        snapshot_path: str | Path,
        checksum: Optional[str] = None,
        wait: bool = True,
        **_: Any,
    ) -> Optional[bool]:
        """vecdb: restore ``collection_name`` from a snapshot file on this machine (uploaded to a server)."""
        with open(snapshot_path, "rb") as f:
            return self._service.upload_snapshot(collection_name, f, checksum=checksum, wait=wait)

    def download_snapshot(self, collection_name: str, snapshot_name: str, path: str | Path) -> Path:
        """vecdb: copy a snapshot's archive to ``path`` on this machine."""
        return self._service.download_snapshot(collection_name, snapshot_name, Path(path))

    @staticmethod
    def _query_request(
        query: Any,
        using: Optional[str],
        prefetch: Any,
        query_filter: Any,
        search_params: Any,
        limit: int,
        offset: Optional[int],
        with_payload: Any,
        with_vectors: Any,
        score_threshold: Optional[float],
        lookup_from: Any,
    ) -> QueryRequest:
        if isinstance(query, (PointStruct,)):
            raise InvalidInput("query: pass a vector, a point id or a NearestQuery")
        array = None
        if type(query).__name__ == "NearestQuery" and getattr(query, "mmr", None) is None:
            nearest = query.nearest  # (qdrant-client wraps every plain vector so: unwrapped, it takes the fast path)
            if isinstance(nearest, np.ndarray) or (
                isinstance(nearest, list) and nearest and type(nearest[0]) in (float, int)
            ):
                query = nearest
        if isinstance(query, np.ndarray) and query.ndim in (1, 2) and query.dtype.kind in "fiu":
            # One dense vector (or a multivector's matrix) as an array: not validated float by float by
            # pydantic; the collection checks it whole (size, NaN and infinities: vecdb.engine.views).
            array, query = query, None
        body = {
            "query": query,
            "using": using,
            "prefetch": prefetch,
            "filter": query_filter,
            "params": search_params,
            "limit": limit,
            "offset": offset,
            "with_payload": with_payload,
            "with_vector": with_vectors,
            "score_threshold": score_threshold,
            "lookup_from": lookup_from,
        }
        body = {k: v for k, v in body.items() if v is not None}
        try:  # plain dicts, lists and numbers (the common case) validate as they are, in one call
            req = QueryRequest.model_validate(body)
        except ValidationError:  # numpy values or other libraries' models: made plain first (_plain's walk)
            body.pop("params", None)  # validated on its own below, so that its errors name search_params
            try:
                req = QueryRequest.model_validate({k: _plain(v) for k, v in body.items()})
            except ValidationError as exc:
                raise InvalidInput(f"query: {format_validation_error(exc)}") from None
            if search_params is not None:
                req.params = parse_model(SearchParams, search_params, "search_params")
        if array is not None:
            req.query = array  # type: ignore[assignment]  # the collection takes arrays as they are
        return req


__all__ = ["ClientBase", "format_validation_error", "parse_model"]
