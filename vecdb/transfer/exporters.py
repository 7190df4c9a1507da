"""Streaming writers for ``vecdb export``: pages of scrolled points to JSONL, .npy or Parquet.

Every writer writes to a temp file beside the output and renames it into
place when the export finished, so an interrupted export never leaves a file
that looks complete. The files read back with :mod:`vecdb.transfer.importers` into the
same points: vectors are written as float32 (what vecdb stores), so they
round-trip bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
from array import array
from pathlib import Path
from typing import Any, Optional

import numpy as np
import orjson

from vecdb.ids import PointId
from vecdb.models.points import Record
from vecdb.transfer.importers import DataFileError, detect_format, require_pyarrow

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("jsonl", "npy", "parquet")


def detect_export_format(path: Path, explicit: Optional[str] = None) -> str:
    """As the import names formats (``--format`` or the extension), limited to those an export writes."""
    try:
        fmt = detect_format(path, explicit)
    except DataFileError:
        fmt = ""
    if fmt not in EXPORT_FORMATS:
        raise DataFileError(
            f"{path}: cannot tell the export format from {explicit or path.suffix!r}; "
            f"use a .jsonl, .npy or .parquet name or pass --format"
        )
    return fmt


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _select(record: Record, vector_name: Optional[str]) -> Any:
    """The vector to write: the named one when asked, else the default (unnamed) one."""
    vector = record.vector
    if vector_name is not None:
        if not isinstance(vector, dict) or vector_name not in vector:
            raise DataFileError(f"point {record.id} has no vector named {vector_name!r}")
        return vector[vector_name]
    if isinstance(vector, dict):
        names = ", ".join(vector) or "none"
        raise DataFileError(
            f"point {record.id} has named vectors ({names}): pass --vector-name for "
            f".npy and Parquet, or export to JSONL"
        )
    return vector


def _float32(vector: Any) -> Any:
    """Lists of floats as float32 arrays: orjson then prints the shortest float32 spelling."""
    if isinstance(vector, dict):
        return {k: _float32(v) for k, v in vector.items()}
    if isinstance(vector, list) and vector and not isinstance(vector[0], dict):
        return np.asarray(vector, dtype=np.float32)
    return vector


class Writer:
    """``write(records)`` per scrolled page, then ``finish()`` (or ``abort()`` on failure)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = _tmp(path)
        self.rows = 0

    def write(self, records: list[Record]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class JsonlWriter(Writer):
    """``{"id": ..., "vector": ..., "payload": ...}`` per line: every vector (named ones too)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort

    def write(self, records: list[Record]) -> None:
        opts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
        self.file.write(
            b"".join(
                orjson.dumps({"id": r.id, "vector": _float32(r.vector), "payload": r.payload or {}}, option=opts)
                for r in records
            )
        )
        self.rows += len(records)

    def finish(self) -> None:
        self.file.close()
        super().finish()

    def abort(self) -> None:
        self.file.close()
        super().abort()


class NpyWriter(Writer):
    """Vectors as an ``(n, d)`` float32 ``.npy``; ids and payloads optionally to side files
    (``ids.npy``: uint64, or UUID strings; ``payloads.jsonl``: one object per row), the
    shapes ``vecdb import --ids --payloads`` reads back."""

    def __init__(
        self,
        path: Path,
        count: int,
        dim: int,
        vector_name: Optional[str] = None,
        ids_path: Optional[Path] = None,
        payloads_path: Optional[Path] = None,
    ) -> None:
        super().__init__(path)
        self.count, self.dim, self.vector_name = count, dim, vector_name
        self.matrix = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=(count, dim))
        self.ids_path = ids_path
        self.int_ids: Optional[array[int]] = array("Q")
        self.str_ids: Optional[list[str]] = None
        self.ids_are_rows = True
        self.payloads_path = payloads_path
        self.payloads = open(_tmp(payloads_path), "wb") if payloads_path else None  # noqa: SIM115

    def write(self, records: list[Record]) -> None:
        if self.rows + len(records) > self.count:
            raise DataFileError(
                f"the collection grew during the export (more than the {self.count} points counted "
                f"at the start); export again while no one writes to it"
            )
        rows = np.asarray([_select(r, self.vector_name) for r in records], dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise DataFileError(f"point {records[0].id}: vectors are not {self.dim}-dimensional dense vectors")
        self.matrix[self.rows : self.rows + len(records)] = rows
        self._add_ids([r.id for r in records])
        if self.payloads is not None:
            self.payloads.write(
                b"".join(orjson.dumps(r.payload or {}, option=orjson.OPT_APPEND_NEWLINE) for r in records)
            )
        self.rows += len(records)

    def _add_ids(self, ids: list[PointId]) -> None:
        """Note the ids of the page written at ``self.rows``: kept for ``--ids-output``, else only checked."""
        if self.ids_are_rows and ids != list(range(self.rows, self.rows + len(ids))):
            self.ids_are_rows = False
        if self.ids_path is None:
            return
        ints = [i for i in ids if isinstance(i, int)]
        if self.int_ids is not None and len(ints) == len(ids):
            self.int_ids.extend(ints)
            return
        if self.str_ids is None:  # the first UUID: ids become strings from here on
            self.str_ids = [str(x) for x in (self.int_ids or [])]
            self.int_ids = None
        self.str_ids.extend(str(i) for i in ids)

    def finish(self) -> None:
        self.matrix.flush()
        if self.rows < self.count:  # points were deleted meanwhile: cut the matrix to what was written
            cut = self.tmp.with_suffix(".cut")
            final = np.lib.format.open_memmap(cut, mode="w+", dtype=np.float32, shape=(self.rows, self.dim))
            final[:] = self.matrix[: self.rows]
            final.flush()
            del final
            os.replace(cut, self.tmp)
        del self.matrix
        if self.ids_path is not None:
            ids = np.frombuffer(self.int_ids, dtype=np.uint64) if self.int_ids is not None else np.asarray(self.str_ids)
            ids_tmp = _tmp(self.ids_path)
            with open(ids_tmp, "wb") as f:
                np.save(f, ids)
            os.replace(ids_tmp, self.ids_path)
        elif not self.ids_are_rows:
            log.warning("the exported ids are not the row numbers 0..n-1; pass --ids-output to keep them")
        if self.payloads is not None and self.payloads_path is not None:
            self.payloads.close()
            os.replace(_tmp(self.payloads_path), self.payloads_path)
        super().finish()

    def abort(self) -> None:
        self.matrix = None  # type: ignore[assignment]
        if self.payloads is not None and self.payloads_path is not None:
            self.payloads.close()
            with contextlib.suppress(FileNotFoundError):
                _tmp(self.payloads_path).unlink()
        super().abort()


class ParquetWriter(Writer):
    """Columns ``id`` (uint64, or string for UUID ids), ``vector`` (list<float32>) and ``payload``
    (JSON text), in row groups of about ``row_group_rows``."""

    def __init__(self, path: Path, vector_name: Optional[str] = None, row_group_rows: int = 65_536) -> None:
        super().__init__(path)
        self.pq = require_pyarrow()
        self.vector_name = vector_name
        self.row_group_rows = row_group_rows
        self.writer: Any = None
        self.id_type: Any = None
        self.pending: list[Record] = []

    def write(self, records: list[Record]) -> None:
        self.pending.extend(records)
        self.rows += len(records)
        if len(self.pending) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        records, self.pending = self.pending, []
        ids = [r.id for r in records]
        ints = sum(isinstance(i, int) for i in ids)
        kind = pa.uint64() if ints == len(ids) else pa.string() if ints == 0 else None
        if self.id_type is None:
            self.id_type = kind
        if kind is None or kind != self.id_type:
            raise DataFileError(
                "the collection mixes integer and UUID ids, which one Parquet id column cannot "
                "hold: export to JSONL instead"
            )
        vectors = np.asarray([_select(r, self.vector_name) for r in records], dtype=np.float32)
        if vectors.ndim != 2:
            raise DataFileError(f"point {records[0].id}: only dense vectors of one size go to Parquet; use JSONL")
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        offsets = pa.array(np.arange(0, vectors.size + 1, vectors.shape[1], dtype=np.int32))
        table = pa.table(
            {
                "id": pa.array(ids, type=self.id_type),
                "vector": pa.ListArray.from_arrays(offsets, flat),
                "payload": pa.array([orjson.dumps(r.payload or {}).decode() for r in records], type=pa.string()),
            }
        )
        if self.writer is None:
            self.writer = self.pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def finish(self) -> None:
        self._flush()
        if self.writer is None:  # nothing exported: still write a valid, empty file
            import pyarrow as pa

            schema = pa.schema([("id", pa.uint64()), ("vector", pa.list_(pa.float32())), ("payload", pa.string())])
            self.writer = self.pq.ParquetWriter(self.tmp, schema)
        self.writer.close()
        super().finish()

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        super().abort()


__all__ = ["EXPORT_FORMATS", "JsonlWriter", "NpyWriter", "ParquetWriter", "Writer", "detect_export_format"]
