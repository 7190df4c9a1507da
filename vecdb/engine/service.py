"""``LocalService``: the service interface over a database opened in this process.

The composition roots (the app factory, ``vecdb.Client``, ``vecdb serve``) build one of these
around a :class:`~vecdb.engine.database.Database`; transports only ever see the
:class:`~vecdb.service.VectorService` it implements.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Optional, TypeVar

from vecdb import __version__
from vecdb.engine.backup.archive import COPY_CHUNK
from vecdb.engine.backup.store import check_checksum
from vecdb.engine.database import Database
from vecdb.engine.vector_names import Removal, with_vector, without_vector
from vecdb.errors import NotFound
from vecdb.ids import PointId
from vecdb.models.collections import (
    ChangeAliasesOperation,
    CollectionDescription,
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
from vecdb.models.stats import CollectionStats
from vecdb.service import (
    QDRANT_COMPAT_VERSION,
    VectorService,
    look_up_groups,
    matrix_offsets,
    matrix_pairs,
    search_as_query,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _done(operation_id: int) -> UpdateResult:
    return UpdateResult(operation_id=operation_id, status="completed")


class LocalService(VectorService):
    """The service over a data directory opened in this process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._background: set[threading.Thread] = set()
        self._background_lock = threading.Lock()

    def root_info(self) -> dict[str, Any]:
        return {
            "title": "qdrant - vector search engine",
            "version": QDRANT_COMPAT_VERSION,
            "commit": "0" * 40,
            "vecdb_version": __version__,
        }

    def get_collections(self) -> CollectionsResponse:
        return CollectionsResponse(collections=[CollectionDescription(name=n) for n in self.db.names()])

    def collection_exists(self, name: str) -> CollectionExistence:
        return CollectionExistence(exists=self.db.exists(name))

    def get_collection(self, name: str) -> CollectionInfo:
        with self.db.use(name) as coll:
            return coll.info()

    def collection_stats(self) -> list[CollectionStats]:
        out = []
        for name in self.db.names():
            with contextlib.suppress(NotFound), self.db.use(name) as coll:  # (deleted since names() answered)
                out.append(coll.stats())
        return out

    def unindexed_bytes(self, name: str, catch_up: bool = False) -> int:
        if catch_up:
            try:
                with self.db.use(name) as coll:
                    return coll.unindexed_bytes()
            except NotFound:
                return 0  # (the request itself answers the 404)
        seen = self.db.peek(name)
        return 0 if seen is None else seen.unindexed_bytes()

    def create_collection(self, name: str, req: CreateCollection) -> bool:
        self.db.create(name, req)
        return True

    def update_collection(self, name: str, req: UpdateCollection) -> bool:
        with self.db.use(name) as coll:
            coll.update(req)
        return True

    def delete_collection(self, name: str) -> bool:
        return self.db.delete(name)

    def create_vector_name(self, name: str, vector_name: str, req: CreateVectorName) -> UpdateResult:
        return _done(self.db.change_vectors(name, lambda settings: (with_vector(settings, vector_name, req), None)))

    def delete_vector_name(self, name: str, vector_name: str) -> UpdateResult:
        def change(settings: dict[str, Any]) -> tuple[Optional[dict[str, Any]], Optional[Removal]]:
            found = without_vector(settings, vector_name)
            return (None, None) if found is None else found

        return _done(self.db.change_vectors(name, change))

    def update_aliases(self, req: ChangeAliasesOperation) -> bool:
        self.db.change_aliases(req)
        return True

    def get_aliases(self) -> CollectionsAliasesResponse:
        return CollectionsAliasesResponse(aliases=self.db.aliases())

    def get_collection_aliases(self, name: str) -> CollectionsAliasesResponse:
        return CollectionsAliasesResponse(aliases=self.db.aliases(name))

    def create_field_index(self, name: str, req: CreateFieldIndex) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.create_payload_index(req))

    def delete_field_index(self, name: str, field_name: str) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.delete_payload_index(field_name))

    def upsert_points(self, name: str, req: PointInsertOperations) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.upsert(req))

    def get_points(self, name: str, req: PointRequest) -> list[Record]:
        with self.db.use(name) as coll:
            return coll.retrieve(req)

    def get_point(self, name: str, point_id: PointId) -> Record:
        with self.db.use(name) as coll:
            found = coll.retrieve(PointRequest(ids=[point_id], with_payload=True, with_vector=True))
        if not found:
            raise NotFound(f"No point with id {point_id} found")
        return found[0]

    def delete_points(self, name: str, req: PointsSelector) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.delete(req))

    def set_payload(self, name: str, req: SetPayload) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.set_payload(req))

    def overwrite_payload(self, name: str, req: SetPayload) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.set_payload(req, overwrite=True))

    def delete_payload(self, name: str, req: DeletePayload) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.delete_payload(req))

    def clear_payload(self, name: str, req: PointsSelector) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.clear_payload(req))

    def update_vectors(self, name: str, req: UpdateVectors) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.update_vectors(req))

    def delete_vectors(self, name: str, req: DeleteVectors) -> UpdateResult:
        with self.db.use(name) as coll:
            return _done(coll.delete_vectors(req))

    def batch_update(self, name: str, req: UpdateOperations) -> list[UpdateResult]:
        with self.db.use(name) as coll:
            seq = coll.batch(req.operations)
        return [_done(seq) for _ in req.operations]

    def scroll_points(self, name: str, req: ScrollRequest) -> ScrollResult:
        with self.db.use(name) as coll:
            return coll.scroll(req)

    def count_points(self, name: str, req: CountRequest) -> CountResult:
        with self.db.use(name) as coll:
            return CountResult(count=coll.count(req))

    def facet(self, name: str, req: FacetRequest) -> FacetResponse:
        with self.db.use(name) as coll:
            return coll.facet(req)

    def query_points(self, name: str, req: QueryRequest) -> QueryResponse:
        with self.db.use(name) as coll:
            return coll.query(req)

    def search_matrix_pairs(self, name: str, req: SearchMatrixRequest) -> SearchMatrixPairsResponse:
        with self.db.use(name) as coll:
            return matrix_pairs(*coll.distance_matrix(req))

    def search_matrix_offsets(self, name: str, req: SearchMatrixRequest) -> SearchMatrixOffsetsResponse:
        with self.db.use(name) as coll:
            return matrix_offsets(*coll.distance_matrix(req))

    def query_groups(self, name: str, req: QueryGroupsRequest) -> GroupsResult:
        with self.db.use(name) as coll:
            groups = coll.query_groups(req)
        if req.with_lookup is not None and groups:
            look_up_groups(groups, req.with_lookup, self._retrieve)
        return GroupsResult(groups=groups)

    def _retrieve(self, name: str, req: PointRequest) -> list[Record]:
        with self.db.use(name) as coll:
            return coll.retrieve(req)

    def query_batch_points(self, name: str, req: QueryRequestBatch) -> list[QueryResponse]:
        with self.db.use(name) as coll:
            return coll.query_batch(req.searches)

    def search_points(self, name: str, req: SearchRequest) -> list[ScoredPoint]:
        with self.db.use(name) as coll:
            return coll.query(search_as_query(req)).points

    def search_batch_points(self, name: str, req: SearchRequestBatch) -> list[list[ScoredPoint]]:
        with self.db.use(name) as coll:
            found = coll.query_batch([search_as_query(r) for r in req.searches])
        return [r.points for r in found]

    # --- snapshots -------------------------------------------------------------------------

    def create_snapshot(self, name: str, wait: bool = True) -> Optional[SnapshotDescription]:
        self.db.get(name)  # with wait=false too, a missing collection is a 404 now, not a log line later
        return self._run(wait, f"snapshot of collection {name}", lambda: self.db.create_snapshot(name))

    def list_snapshots(self, name: str) -> list[SnapshotDescription]:
        return self.db.list_snapshots(name)

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        return self.db.delete_snapshot(name, snapshot)

    def open_snapshot(self, name: str, snapshot: str) -> BinaryIO:
        return self.db.open_snapshot(name, snapshot)

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        with self.db.open_snapshot(name, snapshot) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        return dest

    def recover_snapshot(self, name: str, req: SnapshotRecover, wait: bool = True) -> Optional[bool]:
        checksum = check_checksum(req.checksum)  # mistakes in the request are answered now, even with wait=false
        archive = self.db.locate_snapshot(name, req.location)
        label = f"`{req.location}`"
        return self._run(
            wait, f"recovery of collection {name}", lambda: self.db.restore_snapshot(name, archive, checksum, label)
        )

    def upload_snapshot(
        self,
        name: str,
        source: BinaryIO,
        checksum: Optional[str] = None,
        wait: bool = True,
    ) -> Optional[bool]:
        checksum = check_checksum(checksum)
        staged = self.db.snapshots.stage_upload(source)

        def restore() -> bool:
            try:
                return self.db.restore_snapshot(name, staged, checksum, "`<uploaded file>`")
            finally:
                staged.unlink(missing_ok=True)

        return self._run(wait, f"recovery of collection {name} from an upload", restore)

    def _run(self, wait: bool, what: str, work: Callable[[], T]) -> Optional[T]:
        """``work()`` now; or, with ``wait=False``, on a thread that :meth:`close` waits for (so the
        store never closes under it), returning None at once."""
        if wait:
            return work()

        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("%s failed", what)
            finally:
                with self._background_lock:
                    self._background.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"vecdb-{what}", daemon=True)
        with self._background_lock:
            self._background.add(thread)
        thread.start()
        return None

    def close(self) -> None:
        with self._background_lock:
            pending = list(self._background)
        for thread in pending:
            thread.join()
        self.db.close()


__all__ = ["LocalService"]
