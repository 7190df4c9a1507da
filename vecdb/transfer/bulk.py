"""Moving batches between files and a client: the loops behind ``vecdb import`` and ``vecdb export``.

They work on any :class:`~vecdb.client.base.ClientBase` (the embedded client
or the remote one), so the commands behave the same on ``--path`` and
``--url``. Progress and resume bookkeeping are callbacks: this module knows
neither tqdm nor state files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from vecdb.client.base import ClientBase
from vecdb.errors import InvalidInput, NotFound
from vecdb.models.points import Record
from vecdb.transfer.exporters import Writer
from vecdb.transfer.importers import Cursor, DataFileError, Reader, RowBatch

log = logging.getLogger(__name__)

_ROW_IN_MESSAGE = re.compile(r"^(?:points|batch(?:\.\w+)?)\[(\d+)\]")


@dataclass
class ImportResult:
    rows: int
    batches: int
    first_row: int
    created: bool


def vectors_config_for(batch: RowBatch, distance: str, vector_name: Optional[str]) -> dict[str, Any]:
    """The ``vectors`` config a new collection needs for these rows: size from the data."""
    if isinstance(batch.vectors, np.ndarray):
        params = {"size": int(batch.vectors.shape[1]), "distance": distance}
        return {vector_name: params} if vector_name else params
    first = batch.vectors[0]
    if (
        isinstance(first, dict)
        and first
        and all(isinstance(v, list) and v and not isinstance(v[0], list) for v in first.values())
    ):
        return {name: {"size": len(v), "distance": distance} for name, v in first.items()}
    raise DataFileError(
        f"{batch.where(0)}: cannot infer the vector size for --create from this row; create the collection first"
    )


def upsert_batch(client: ClientBase, collection: str, batch: RowBatch, vector_name: Optional[str] = None) -> None:
    """One upsert, acknowledged when durable; a rejected row is named by its line or row in the file."""
    vectors = batch.vectors
    try:
        if isinstance(vectors, np.ndarray) and vector_name is None:
            body: dict[str, Any] = {"ids": batch.ids, "vectors": vectors}
            if batch.payloads is not None:
                body["payloads"] = batch.payloads
            client.upsert(collection, body, wait=True)
        else:
            payloads = batch.payloads or [None] * len(batch)
            points = [
                {"id": i, "vector": {vector_name: v} if vector_name else v, "payload": p}
                for i, v, p in zip(batch.ids, vectors, payloads, strict=True)
            ]
            client.upsert(collection, points, wait=True)
    except InvalidInput as exc:
        message = str(exc)
        match = _ROW_IN_MESSAGE.match(message)
        if match and int(match.group(1)) < len(batch):
            where = batch.where(int(match.group(1)))
        else:
            where = f"{batch.where(0)} to {batch.where(len(batch) - 1)}"
        raise DataFileError(f"{where}: rejected by vecdb: {message}") from None


def run_import(
    client: ClientBase,
    collection: str,
    reader: Reader,
    *,
    cursor: Optional[Cursor] = None,
    batch_size: int = 1000,
    create_distance: Optional[str] = None,
    vector_name: Optional[str] = None,
    after_batch: Optional[Callable[[RowBatch, int], None]] = None,
) -> ImportResult:
    """Upsert every batch of ``reader`` from ``cursor`` on; ``after_batch(batch, rows_done)`` runs once
    the batch is acknowledged (record the resume point there).

    ``create_distance``: create the collection when it is missing, sized from the first batch;
    None means it must exist.
    """
    exists = client.collection_exists(collection)
    if not exists and create_distance is None:
        raise NotFound(f"collection {collection!r} does not exist: create it first or pass --create")
    first_row = int((cursor or {}).get("row", 0))
    rows = batches = 0
    created = False
    for batch in reader.batches(cursor, batch_size):
        if not exists:
            client.create_collection(collection, vectors_config_for(batch, create_distance or "Cosine", vector_name))
            exists = created = True
            log.info("created collection %s", collection)
        upsert_batch(client, collection, batch, vector_name)
        rows += len(batch)
        batches += 1
        if after_batch is not None:
            after_batch(batch, rows)
    return ImportResult(rows, batches, first_row, created)


def run_export(
    client: ClientBase,
    collection: str,
    writer: Writer,
    *,
    page_size: int = 1000,
    vector_name: Optional[str] = None,
    on_page: Optional[Callable[[list[Record]], None]] = None,
) -> int:
    """Scroll the whole collection (id order) into ``writer``; returns the points written.

    The writer is finished (renamed into place) only when the last page was
    written; on any error it is aborted and no output file appears.
    """
    offset: Any = None
    with_vectors: Any = [vector_name] if vector_name else True
    try:
        while True:
            points, offset = client.scroll(
                collection, limit=page_size, offset=offset, with_payload=True, with_vectors=with_vectors
            )
            if points:
                writer.write(points)
                if on_page is not None:
                    on_page(points)
            if offset is None:
                break
    except BaseException:
        writer.abort()
        raise
    writer.finish()
    return writer.rows


__all__ = ["ImportResult", "run_export", "run_import", "upsert_batch", "vectors_config_for"]
