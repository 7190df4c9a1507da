"""Collection snapshot routes (qdrant-api.md, "Snapshots"): create, list, download, delete, recover, upload.

``?wait=false`` answers 202 ``{"status": "accepted", "time": ..}`` with no
``result``, as Qdrant does, and the work goes on in the background.
Snapshot names are taken as ``{snapshot_name:path}`` so that a name with a
'/' in it reaches the service and is refused naming it, instead of falling
through to "no route".
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import BinaryIO, Optional

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from vecdb.api.deps import service, started
from vecdb.api.envelope import ok
from vecdb.api.json_body import JsonRoute
from vecdb.errors import InvalidInput, Unsupported
from vecdb.models.snapshots import SnapshotPriority, SnapshotRecover
from vecdb.service import VectorService

router = APIRouter(tags=["snapshots"], route_class=JsonRoute)
Svc = Depends(service)
T0 = Depends(started)
UPLOAD_FIELD = "snapshot"
"""The multipart field qdrant-client's ``recover_from_uploaded_snapshot`` sends the file in."""
CHUNK = 1 << 20


def accepted(t0: float) -> Response:
    body = orjson.dumps({"status": "accepted", "time": time.perf_counter() - t0})
    return Response(body, status_code=202, media_type="application/json")


def _answer(result: object, wait: bool, t0: float) -> Response:
    return ok(result, t0) if wait else accepted(t0)


@router.get("/collections/{collection_name}/snapshots")
def list_snapshots(collection_name: str, svc: VectorService = Svc, t0: float = T0) -> Response:
    return ok(svc.list_snapshots(collection_name), t0)


@router.post("/collections/{collection_name}/snapshots")
def create_snapshot(collection_name: str, wait: bool = True, svc: VectorService = Svc, t0: float = T0) -> Response:
    return _answer(svc.create_snapshot(collection_name, wait=wait), wait, t0)


@router.put("/collections/{collection_name}/snapshots/recover")
def recover_snapshot(
    collection_name: str,
    body: SnapshotRecover,
    wait: bool = True,
    svc: VectorService = Svc,
    t0: float = T0,
) -> Response:
    return _answer(svc.recover_snapshot(collection_name, body, wait=wait), wait, t0)


@router.post("/collections/{collection_name}/snapshots/upload")
async def upload_snapshot(
    request: Request,
    collection_name: str,
    wait: bool = True,
    priority: Optional[SnapshotPriority] = None,
    checksum: Optional[str] = None,
    svc: VectorService = Svc,
    t0: float = T0,
) -> Response:
    """Multipart upload (field ``snapshot``); the file is restored into the collection, replacing it."""
    try:
        import python_multipart  # noqa: F401  (starlette parses forms with it)
    except ImportError:
        raise Unsupported(
            "snapshot upload needs the python-multipart package on the server; recover from a file:// location instead"
        ) from None
    form = await request.form(max_files=1, max_fields=8)
    try:
        upload = form.get(UPLOAD_FIELD)
        if not isinstance(upload, UploadFile):
            raise InvalidInput(f"multipart field `{UPLOAD_FIELD}` with the snapshot file is missing")
        result = await run_in_threadpool(svc.upload_snapshot, collection_name, upload.file, checksum, wait)
    finally:
        await form.close()
    return _answer(result, wait, t0)


@router.get("/collections/{collection_name}/snapshots/{snapshot_name:path}")
def download_snapshot(collection_name: str, snapshot_name: str, svc: VectorService = Svc) -> Response:
    """The archive itself, streamed in chunks (the body is not the JSON envelope, as in Qdrant).

    The file is opened before answering, so a delete racing the download cannot fail it halfway.
    """
    f = svc.open_snapshot(collection_name, snapshot_name)
    size = os.fstat(f.fileno()).st_size
    headers = {"content-length": str(size), "content-disposition": f'attachment; filename="{snapshot_name}"'}
    return StreamingResponse(_chunks(f), media_type="application/octet-stream", headers=headers)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


@router.delete("/collections/{collection_name}/snapshots/{snapshot_name:path}")
def delete_snapshot(
    collection_name: str,
    snapshot_name: str,
    wait: bool = True,
    svc: VectorService = Svc,
    t0: float = T0,
) -> Response:
    """Deleting is quick, so it is done before answering even with ``wait=false`` (202 then)."""
    return _answer(svc.delete_snapshot(collection_name, snapshot_name), wait, t0)
