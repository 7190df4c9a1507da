"""The VectorService interface implemented over HTTP with httpx.

Errors come back as the same :mod:`vecdb.errors` classes the embedded client
raises, read back from the status and prefix each class carries
(:func:`vecdb.errors.error_class_for`, the table the server answers from), so code
handles both clients alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Optional, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import orjson
from pydantic import BaseModel, TypeAdapter

from vecdb.client.base import ClientBase
from vecdb.errors import InvalidInput, VecdbError, error_class_for
from vecdb.ids import PointId
from vecdb.models.collections import (
    ChangeAliasesOperation,
    CollectionExistence,
    CollectionInfo,
    CollectionsAliasesResponse,
    CollectionsResponse,
    CreateCollection,
    CreateFieldIndex,
    CreateVectorName,
    UpdateCollection,
)
from vecdb.models.points import (
    CountRequest,
    CountResult,
    DeletePayload,
    DeleteVectors,
    FacetRequest,
    FacetResponse,
    PointInsertOperations,
    PointRequest,
    PointsSelector,
    Record,
    ScrollRequest,
    ScrollResult,
    SetPayload,
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
    ScoredPoint,
    SearchMatrixOffsetsResponse,
    SearchMatrixPairsResponse,
    SearchMatrixRequest,
    SearchRequest,
    SearchRequestBatch,
)
from vecdb.models.snapshots import SnapshotDescription, SnapshotRecover
from vecdb.names import check_name
from vecdb.service import VectorService

T = TypeVar("T")


class RemoteError(VecdbError):
    """The server answered with an error status that has no more specific class."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def _error_for(status: int, message: str) -> VecdbError:
    """The error class the server raised (``message`` keeps its prefix), else a :class:`RemoteError`."""
    cls = error_class_for(status, message)
    return RemoteError(message, status) if cls is None else cls(message)


class RemoteService(VectorService):
    def __init__(self, url: str = "http://127.0.0.1:6333", api_key: Optional[str] = None, timeout: float = 60.0):
        headers = {"api-key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    # --- transport -----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, result_type: Any = None) -> Any:
        content = None
        if body is not None:
            if isinstance(body, BaseModel):  # python mode + orjson: numpy vectors serialise without a copy to lists
                data = body.model_dump(by_alias=True, exclude_unset=True, warnings=False)
            else:
                data = body
            content = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
        response = self._http.request(
            method, path, content=content, headers={"content-type": "application/json"} if content else None
        )
        return self._result(response, result_type)

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code >= 400:
            try:
                message = response.json()["status"]["error"]
            except Exception:
                message = response.text
            raise _error_for(response.status_code, message)

    def _result(self, response: httpx.Response, result_type: Any = None) -> Any:
        self._raise_for(response)
        payload = orjson.loads(response.content)
        result = payload["result"] if isinstance(payload, dict) and "result" in payload else payload
        return result if result_type is None else TypeAdapter(result_type).validate_python(result)

    @staticmethod
    def _c(name: str) -> str:
        return "/collections/" + quote(name, safe="")

    def close(self) -> None:
        self._http.close()

    # --- service -------------------------------------------------------------------------

    def root_info(self) -> dict[str, Any]:
        return self._call("GET", "/")  # type: ignore[no-any-return]

    def get_collections(self) -> CollectionsResponse:
        return self._call("GET", "/collections", result_type=CollectionsResponse)  # type: ignore[no-any-return]

    def collection_exists(self, name: str) -> CollectionExistence:
        return self._call("GET", self._c(name) + "/exists", result_type=CollectionExistence)  # type: ignore[no-any-return]

    def get_collection(self, name: str) -> CollectionInfo:
        return self._call("GET", self._c(name), result_type=CollectionInfo)  # type: ignore[no-any-return]

    def create_collection(self, name: str, req: CreateCollection) -> bool:
        check_name(name)  # a '/' in the name could not even reach the route; say why here
        return bool(self._call("PUT", self._c(name), req))

    def update_collection(self, name: str, req: UpdateCollection) -> bool:
        return bool(self._call("PATCH", self._c(name), req))

    def create_vector_name(self, name: str, vector_name: str, req: CreateVectorName) -> UpdateResult:
        path = self._c(name) + "/vectors/" + quote(vector_name, safe="") + "?wait=true"
        return self._call("PUT", path, req, UpdateResult)  # type: ignore[no-any-return]

    def delete_vector_name(self, name: str, vector_name: str) -> UpdateResult:
        path = self._c(name) + "/vectors/" + quote(vector_name, safe="") + "?wait=true"
        return self._call("DELETE", path, result_type=UpdateResult)  # type: ignore[no-any-return]

    def delete_collection(self, name: str) -> bool:
        return bool(self._call("DELETE", self._c(name)))

    def update_aliases(self, req: ChangeAliasesOperation) -> bool:
        return bool(self._call("POST", "/collections/aliases", req))

    def get_aliases(self) -> CollectionsAliasesResponse:
        return self._call("GET", "/aliases", result_type=CollectionsAliasesResponse)  # type: ignore[no-any-return]

    def get_collection_aliases(self, name: str) -> CollectionsAliasesResponse:
        return self._call("GET", self._c(name) + "/aliases", result_type=CollectionsAliasesResponse)  # type: ignore[no-any-return]

    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult:
        return self._call("PUT", self._c(name) + "/index?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def delete_field_index(self, name: str, field_name: str) -> UpdateResult:
        path = self._c(name) + "/index/" + quote(field_name, safe="") + "?wait=true"
        return self._call("DELETE", path, result_type=UpdateResult)  # type: ignore[no-any-return]

    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult:
        return self._call("PUT", self._c(name) + "/points?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def get_points(self, name: str, req: PointRequest) -> list[Record]:
        return self._call("POST", self._c(name) + "/points", req, list[Record])  # type: ignore[no-any-return]

    def get_point(self, name: str, point_id: PointId) -> Record:
        return self._call("GET", self._c(name) + f"/points/{point_id}", result_type=Record)  # type: ignore[no-any-return]

    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult:
        return self._call("POST", self._c(name) + "/points/delete?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def set_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._call("POST", self._c(name) + "/points/payload?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult:
        return self._call("PUT", self._c(name) + "/points/payload?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult:
        return self._call("POST", self._c(name) + "/points/payload/delete?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult:
        return self._call("POST", self._c(name) + "/points/payload/clear?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult:
        return self._call("PUT", self._c(name) + "/points/vectors?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult:
        return self._call("POST", self._c(name) + "/points/vectors/delete?wait=true", req, UpdateResult)  # type: ignore[no-any-return]

    def batch_update(self, name: str, req: UpdateOperations) -> list[UpdateResult]:
        return self._call("POST", self._c(name) + "/points/batch?wait=true", req, list[UpdateResult])  # type: ignore[no-any-return]

    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult:
        return self._call("POST", self._c(name) + "/points/scroll", req, ScrollResult)  # type: ignore[no-any-return]

    def count_points(self, name: str, req: CountRequest) -> CountResult:
        return self._call("POST", self._c(name) + "/points/count", req, CountResult)  # type: ignore[no-any-return]

    def facet(self, name: str, req: FacetRequest) -> FacetResponse:
        return self._call("POST", self._c(name) + "/facet", req, FacetResponse)  # type: ignore[no-any-return]

    def query_points(self, name: str, req: QueryRequest) -> QueryResponse:
        if isinstance(req.query, np.ndarray) and not np.isfinite(req.query).all():
            # (JSON has no NaN: refused here with the message the embedded engine gives)
            raise InvalidInput("query: vector contains NaN or infinite components")
        return self._call("POST", self._c(name) + "/points/query", req, QueryResponse)  # type: ignore[no-any-return]

    def query_batch_points(self, name: str, req: QueryRequestBatch) -> list[QueryResponse]:
        return self._call("POST", self._c(name) + "/points/query/batch", req, list[QueryResponse])  # type: ignore[no-any-return]

    def search_matrix_pairs(self, name: str, req: SearchMatrixRequest) -> SearchMatrixPairsResponse:
        return self._call("POST", self._c(name) + "/points/search/matrix/pairs", req, SearchMatrixPairsResponse)  # type: ignore[no-any-return]

    def search_matrix_offsets(self, name: str, req: SearchMatrixRequest) -> SearchMatrixOffsetsResponse:
        return self._call("POST", self._c(name) + "/points/search/matrix/offsets", req, SearchMatrixOffsetsResponse)  # type: ignore[no-any-return]

    def query_groups(self, name: str, req: QueryGroupsRequest) -> GroupsResult:
        return self._call("POST", self._c(name) + "/points/query/groups", req, GroupsResult)  # type: ignore[no-any-return]

    def search_points(self, name: str, req: SearchRequest) -> list[ScoredPoint]:
        return self._call("POST", self._c(name) + "/points/search", req, list[ScoredPoint])  # type: ignore[no-any-return]

    def search_batch_points(self, name: str, req: SearchRequestBatch) -> list[list[ScoredPoint]]:
        return self._call("POST", self._c(name) + "/points/search/batch", req, list[list[ScoredPoint]])  # type: ignore[no-any-return]

    # --- snapshots -----------------------------------------------------------------------

    @staticmethod
    def _snap(name: str, snapshot: str) -> str:
        return RemoteService._c(name) + "/snapshots/" + quote(snapshot, safe="")

    @staticmethod
    def _wait(wait: bool) -> str:
        return "?wait=" + ("true" if wait else "false")

    def create_snapshot(self, name: str, wait: bool = True) -> Optional[SnapshotDescription]:
        path = self._c(name) + "/snapshots" + self._wait(wait)
        if not wait:
            self._call("POST", path)
            return None
        return self._call("POST", path, result_type=SnapshotDescription)  # type: ignore[no-any-return]

    def list_snapshots(self, name: str) -> list[SnapshotDescription]:
        return self._call("GET", self._c(name) + "/snapshots", result_type=list[SnapshotDescription])  # type: ignore[no-any-return]

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        return bool(self._call("DELETE", self._snap(name, snapshot) + "?wait=true"))

    def recover_snapshot(self, name: str, req: SnapshotRecover, wait: bool = True) -> Optional[bool]:
        result = self._call("PUT", self._c(name) + "/snapshots/recover" + self._wait(wait), req)
        return bool(result) if wait else None

    def upload_snapshot(
        self,
        name: str,
        source: BinaryIO,
        checksum: Optional[str] = None,
        wait: bool = True,
    ) -> Optional[bool]:
        params = {"wait": "true" if wait else "false", **({"checksum": checksum} if checksum else {})}
        response = self._http.post(
            self._c(name) + "/snapshots/upload",
            params=params,
            files={"snapshot": ("upload.snapshot", source, "application/octet-stream")},
        )
        result = self._result(response)
        return bool(result) if wait else None

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        """Stream the archive to ``dest`` (through a temp file beside it, renamed when complete)."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self._http.stream("GET", self._snap(name, snapshot)) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response)
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest


class RemoteClient(ClientBase):
    """qdrant-client's high-level methods against a vecdb server."""

    def __init__(self, url: str = "http://127.0.0.1:6333", api_key: Optional[str] = None, timeout: float = 60.0):
        self._service = RemoteService(url, api_key=api_key, timeout=timeout)
