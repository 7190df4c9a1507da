"""Streaming readers for ``vecdb import``: .npy, .fvecs, JSONL and Parquet files as batches of points.

Every reader walks its file in bounded memory (a memory map for .npy and
.fvecs, line by line for JSONL, record batches for Parquet), so a 10 GB file
imports with a few batches in memory. Each batch carries a *cursor*: the
position just after it (row number, plus the byte offsets a text file needs to
seek back there), which the import stores after the server acknowledged the
batch so that an interrupted import resumes where it stopped instead of
re-reading the file from the start.

A bad row raises :class:`DataFileError` naming the file and its line (text
files, 1-based) or row (binary files, 0-based, as numpy and pyarrow count).

Why one module of this size: the four readers share the cursor, batch and id-checking code and
differ only in how they walk a file; each is short, and together they are the import's one format
switch (``open_reader``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import orjson

from vecdb.errors import InvalidInput, VecdbError
from vecdb.ids import PointId, parse_point_id

log = logging.getLogger(__name__)

FORMATS = ("npy", "fvecs", "jsonl", "parquet")
_EXTENSIONS = {
    ".npy": "npy",
    ".fvecs": "fvecs",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

Cursor = dict[str, int]
"""Where a reader resumes: always ``{"row": n}``, plus format-specific byte offsets."""


class DataFileError(VecdbError):
    """A data file cannot be read as asked: the message names the file and the line or row."""


def detect_format(path: Path, explicit: Optional[str] = None) -> str:
    """The format named by ``--format``, else by the file's extension (``.jsonl.gz`` is not supported)."""
    if explicit:
        fmt = explicit.lower().lstrip(".")
        fmt = "jsonl" if fmt == "ndjson" else fmt
        if fmt not in FORMATS:
            raise DataFileError(f"--format {explicit!r}: expected one of {', '.join(FORMATS)}")
        return fmt
    fmt_ = _EXTENSIONS.get(path.suffix.lower())
    if fmt_ is None:
        raise DataFileError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; pass --format ({', '.join(FORMATS)})"
        )
    return fmt_


def file_signature(path: Path) -> dict[str, Any]:
    """Size and modification time: enough to notice that a file changed between two runs."""
    st = os.stat(path)
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class RowBatch:
    """Consecutive rows of a file, ready to upsert.

    ``vectors`` is a float32 ``(n, d)`` matrix when every row holds one unnamed
    dense vector (the fast path: no per-float validation), otherwise the rows'
    vector values as parsed (named vectors, multi-vectors), validated by the
    client like any other upsert.
    """

    first_row: int
    ids: list[PointId]
    vectors: Union[np.ndarray, list[Any]]
    payloads: Optional[list[Optional[dict[str, Any]]]]
    cursor: Cursor
    lines: Optional[list[int]] = None
    """1-based line of each row, for text files."""

    def __len__(self) -> int:
        return len(self.ids)

    def where(self, i: int) -> str:
        """How an error names row ``i`` of this batch."""
        return f"line {self.lines[i]}" if self.lines is not None else f"row {self.first_row + i}"


@dataclass
class ImportOptions:
    """Everything besides the file that decides which point each row becomes (recorded for resuming)."""

    id_offset: int = 0
    ids_path: Optional[Path] = None
    payloads_path: Optional[Path] = None
    id_column: str = "id"
    vector_column: str = "vector"
    payload_column: str = "payload"

    def fingerprint(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id_offset": self.id_offset,
            "id_column": self.id_column,
            "vector_column": self.vector_column,
            "payload_column": self.payload_column,
        }
        out["ids"] = file_signature(self.ids_path) if self.ids_path else None
        out["payloads"] = file_signature(self.payloads_path) if self.payloads_path else None
        return out


@dataclass
class Reader:
    """Base of the readers: ``batches(cursor, size)`` yields :class:`RowBatch` from ``cursor`` on."""

    path: Path
    options: ImportOptions = field(default_factory=ImportOptions)
    format = "?"
    progress_unit = "points"
    progress_key = "row"
    """The cursor entry that counts progress, in ``progress_unit`` (rows, or bytes for JSONL)."""
    progress_total: Optional[int] = None

    def __post_init__(self) -> None:
        """Subclasses open their file here (dataclass inits call it)."""

    def batches(self, cursor: Optional[Cursor], batch_size: int) -> Iterator[RowBatch]:
        raise NotImplementedError

    def close(self) -> None:
        """Release memory maps and file handles."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, where: str, message: str) -> DataFileError:
        return DataFileError(f"{self.path}, {where}: {message}")

    def progress(self, cursor: Optional[Cursor]) -> int:
        """How far ``cursor`` is into the file, in the units of ``progress_total``."""
        return int((cursor or {}).get(self.progress_key, 0))

    def _row_ids(self, first_row: int, n: int) -> list[PointId]:
        """Ids for a file without ids: the row numbers plus ``--id-offset``."""
        lo = first_row + self.options.id_offset
        if lo < 0 or lo + n - 1 >= 2**64:
            raise self.error(f"row {first_row}", f"--id-offset {self.options.id_offset} gives ids outside 0..2^64-1")
        return list(range(lo, lo + n))


def _point_ids(values: Union[np.ndarray, Sequence[Any]], path: Path, first_row: int, id_field: str) -> list[PointId]:
    """The ids of consecutive rows, checked as ``parse_point_id`` does; a bad one is named by its row.

    An integer array is checked in one numpy pass (all that can be wrong with it is a negative id).
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "u" or (values.dtype.kind == "i" and (values >= 0).all()):
            return values.tolist()
        values = values.tolist()
    out = []
    for i, value in enumerate(values):
        try:
            out.append(parse_point_id(value, id_field))
        except InvalidInput as exc:
            raise DataFileError(f"{path}, row {first_row + i}: {exc}") from None
    return out


def _finite_rows(reader: Reader, matrix: np.ndarray, first_row: int, lines: Optional[list[int]] = None) -> None:
    """NaN or infinity cannot travel as JSON; name the first bad row rather than let the server guess."""
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        where = f"line {lines[i]}" if lines is not None else f"row {first_row + i}"
        raise reader.error(where, "vector contains NaN or infinite components (after conversion to float32)")


# --- sidecar files of the matrix formats -------------------------------------------------------


class _IdsFile:
    """``--ids ids.npy``: one id per row, unsigned integers or UUID strings."""

    def __init__(self, path: Path, rows: int, data_path: Path) -> None:
        self.path = path
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{path}: cannot read as .npy: {exc}") from None
        if self.array.ndim != 1:
            raise DataFileError(f"{path}: ids must be a 1-D array, got shape {self.array.shape}")
        if self.array.dtype.kind not in "iuUS":
            raise DataFileError(f"{path}: ids must be integers or UUID strings, got dtype {self.array.dtype}")
        if len(self.array) != rows:
            raise DataFileError(f"{path} holds {len(self.array)} ids but {data_path} has {rows} rows")

    def take(self, lo: int, hi: int) -> list[PointId]:
        chunk = np.asarray(self.array[lo:hi])
        if chunk.dtype.kind == "S":
            chunk = np.char.decode(chunk, "ascii", "replace")
        return _point_ids(chunk, self.path, lo, "id")


class _PayloadLines:
    """``--payloads payloads.jsonl``: line i holds the payload of row i (a JSON object, ``null`` or empty)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the reader
        self.line = 0

    def seek(self, byte: int, line: int) -> None:
        self.file.seek(byte)
        self.line = line

    def take(self, n: int) -> list[Optional[dict[str, Any]]]:
        out: list[Optional[dict[str, Any]]] = []
        for _ in range(n):
            raw = self.file.readline()
            if not raw:
                raise DataFileError(f"{self.path} ends at line {self.line}: fewer payload lines than vector rows")
            self.line += 1
            text = raw.strip()
            if not text:
                out.append(None)
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise DataFileError(
                    f"{self.path}, line {self.line}: invalid JSON: {exc.msg} (at character {exc.pos + 1})"
                ) from None
            if value is not None and not isinstance(value, dict):
                raise DataFileError(
                    f"{self.path}, line {self.line}: a payload must be a JSON object or null, "
                    f"got {type(value).__name__}"
                )
            out.append(value)
        return out

    @property
    def byte(self) -> int:
        return self.file.tell()

    def leftover(self) -> bool:
        """Whether non-empty lines remain after the last row (probably the wrong file)."""
        pos = self.file.tell()
        rest = any(line.strip() for line in self.file)
        self.file.seek(pos)
        return rest

    def close(self) -> None:
        self.file.close()


class _MatrixReader(Reader):
    """Shared by .npy and .fvecs: a row-major matrix with optional ids and payload side files."""

    def __post_init__(self) -> None:
        self.matrix = self._open_matrix()
        self.rows = int(self.matrix.shape[0])
        self.progress_total = self.rows
        self.ids = _IdsFile(self.options.ids_path, self.rows, self.path) if self.options.ids_path else None
        self.payloads = _PayloadLines(self.options.payloads_path) if self.options.payloads_path else None

    def _open_matrix(self) -> np.ndarray:
        raise NotImplementedError

    def _rows(self, lo: int, hi: int) -> np.ndarray:
        return np.array(self.matrix[lo:hi], dtype=np.float32, order="C")

    def batches(self, cursor: Optional[Cursor], batch_size: int) -> Iterator[RowBatch]:
        start = int((cursor or {}).get("row", 0))
        if self.payloads is not None:
            self.payloads.seek(int((cursor or {}).get("payloads_byte", 0)), int((cursor or {}).get("payloads_line", 0)))
        for lo in range(start, self.rows, batch_size):
            hi = min(lo + batch_size, self.rows)
            vectors = self._rows(lo, hi)
            _finite_rows(self, vectors, lo)
            ids = self.ids.take(lo, hi) if self.ids else self._row_ids(lo, hi - lo)
            next_cursor: Cursor = {"row": hi}
            payloads = None
            if self.payloads is not None:
                payloads = self.payloads.take(hi - lo)
                next_cursor.update(payloads_byte=self.payloads.byte, payloads_line=self.payloads.line)
            yield RowBatch(lo, ids, vectors, payloads, next_cursor)
        if self.payloads is not None and self.payloads.leftover():
            log.warning(
                "%s has more payload lines than %s has rows; the extra lines were ignored",
                self.payloads.path,
                self.path,
            )

    def close(self) -> None:
        if self.payloads is not None:
            self.payloads.close()
        self.matrix = None  # type: ignore[assignment]  # drops the memory map


class NpyReader(_MatrixReader):
    """A 2-D numeric ``.npy`` matrix, memory-mapped: rows are copied to float32 a batch at a time."""

    format = "npy"

    def _open_matrix(self) -> np.ndarray:
        try:
            matrix = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{self.path}: cannot read as .npy: {exc}") from None
        if matrix.ndim != 2:
            raise DataFileError(f"{self.path}: expected a 2-D array (rows x dimension), got shape {matrix.shape}")
        if matrix.dtype.kind not in "fiu":
            raise DataFileError(f"{self.path}: expected a numeric array, got dtype {matrix.dtype}")
        return matrix


class FvecsReader(_MatrixReader):
    """TEXMEX ``.fvecs``: each row is an int32 dimension followed by that many float32 (little-endian)."""

    format = "fvecs"

    def _open_matrix(self) -> np.ndarray:
        size = self.path.stat().st_size
        if size == 0:
            self.dim = 0
            return np.zeros((0, 0), dtype=np.float32)
        with open(self.path, "rb") as f:
            head = f.read(4)
        dim = int(np.frombuffer(head, dtype="<i4")[0]) if len(head) == 4 else 0
        row_bytes = 4 * (dim + 1)
        if dim <= 0 or size % row_bytes:
            raise DataFileError(
                f"{self.path}: not an .fvecs file (first row says dimension {dim}, but "
                f"the size {size} is not a multiple of {row_bytes} bytes)"
            )
        self.dim = dim
        return np.memmap(self.path, dtype="<i4", mode="r", shape=(size // row_bytes, dim + 1))

    def _rows(self, lo: int, hi: int) -> np.ndarray:
        chunk = np.asarray(self.matrix[lo:hi])
        bad = np.flatnonzero(chunk[:, 0] != self.dim)
        if len(bad):
            i = int(bad[0])
            raise self.error(f"row {lo + i}", f"dimension field says {int(chunk[i, 0])}, row 0 says {self.dim}")
        return np.ascontiguousarray(chunk[:, 1:]).view("<f4").astype(np.float32)


class JsonlReader(Reader):
    """One JSON object per line: ``{"id": ..., "vector": [...] or {"name": [...]}, "payload": {...}}``.

    ``id`` may be left out (the row number plus ``--id-offset``); blank lines are
    skipped. Progress is counted in bytes, since the line count is unknown
    without reading the whole file first.
    """

    format = "jsonl"
    progress_unit = "B"
    progress_key = "byte"

    def __post_init__(self) -> None:
        self.progress_total = self.path.stat().st_size
        self.file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self.dim: Optional[int] = None

    def batches(self, cursor: Optional[Cursor], batch_size: int) -> Iterator[RowBatch]:
        cursor = cursor or {}
        row, line, byte = int(cursor.get("row", 0)), int(cursor.get("line", 0)), int(cursor.get("byte", 0))
        self.file.seek(byte)
        o = self.options
        while True:
            first_row = row
            ids: list[PointId] = []
            vectors: list[Any] = []
            payloads: list[Optional[dict[str, Any]]] = []
            lines: list[int] = []
            while len(ids) < batch_size:
                raw = self.file.readline()
                if not raw:
                    break
                line += 1
                byte += len(raw)
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise self.error(f"line {line}", f"invalid JSON: {exc.msg} (at character {exc.pos + 1})") from None
                if not isinstance(obj, dict):
                    raise self.error(f"line {line}", f"expected a JSON object, got {type(obj).__name__}")
                if o.vector_column not in obj:
                    raise self.error(f"line {line}", f"no {o.vector_column!r} field (keys: {', '.join(obj) or 'none'})")
                raw_id = obj.get(o.id_column)
                try:
                    ids.append(parse_point_id(row + o.id_offset if raw_id is None else raw_id, o.id_column))
                except InvalidInput as exc:
                    raise self.error(f"line {line}", str(exc)) from None
                payload = obj.get(o.payload_column)
                if payload is not None and not isinstance(payload, dict):
                    raise self.error(
                        f"line {line}",
                        f"{o.payload_column!r} must be a JSON object or null, got {type(payload).__name__}",
                    )
                vectors.append(obj[o.vector_column])
                payloads.append(payload)
                lines.append(line)
                row += 1
            if not ids:
                return
            yield RowBatch(
                first_row, ids, self._vectors(vectors, lines), payloads, {"row": row, "line": line, "byte": byte}, lines
            )

    def _vectors(self, values: list[Any], lines: list[int]) -> Union[np.ndarray, list[Any]]:
        """A float32 matrix when every row is a flat list of numbers of one length; else the values as given."""
        if not all(isinstance(v, list) for v in values):
            return values  # named vectors: the client validates them and the error is mapped to a line
        for v, line in zip(values, lines, strict=True):
            if not v or isinstance(v[0], list):
                return values  # empty or multi-vectors: let the client say what is wrong
            if self.dim is None:
                self.dim = len(v)
            if len(v) != self.dim:
                raise self.error(f"line {line}", f"vector has {len(v)} components, earlier rows have {self.dim}")
        try:
            matrix = np.asarray(values)
        except (ValueError, TypeError):
            matrix = None
        if matrix is None or matrix.ndim != 2 or matrix.dtype.kind not in "fiu":
            for v, line in zip(values, lines, strict=True):
                bad = next((x for x in v if isinstance(x, bool) or not isinstance(x, (int, float))), None)
                if bad is not None:
                    raise self.error(f"line {line}", f"vector components must be numbers, got {bad!r}")
            return values
        with np.errstate(over="ignore"):
            matrix = matrix.astype(np.float32)
        _finite_rows(self, matrix, 0, lines)
        return matrix

    def close(self) -> None:
        self.file.close()


def require_pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(
            "Parquet files need pyarrow: pip install 'vecdb[parquet]' (or pip install pyarrow)"
        ) from None
    return pq


class ParquetReader(Reader):
    """Columns ``id`` (integers or UUID strings; optional), ``vector`` (list of floats) and ``payload``
    (JSON string or struct; optional), read one record batch at a time."""

    format = "parquet"

    def __post_init__(self) -> None:
        pq = require_pyarrow()
        try:
            self.file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError with its own text
            raise DataFileError(f"{self.path}: cannot read as Parquet: {exc}") from None
        names = self.file.schema_arrow.names
        o = self.options
        if o.vector_column not in names:
            raise DataFileError(
                f"{self.path}: no column {o.vector_column!r} (columns: {', '.join(names)}); pass --vector-column"
            )
        self.columns = [c for c in (o.id_column, o.vector_column, o.payload_column) if c in names]
        self.progress_total = self.file.metadata.num_rows

    def batches(self, cursor: Optional[Cursor], batch_size: int) -> Iterator[RowBatch]:
        import pyarrow as pa

        start = int((cursor or {}).get("row", 0))
        meta = self.file.metadata
        group, group_start = 0, 0
        while group < meta.num_row_groups and group_start + meta.row_group(group).num_rows <= start:
            group_start += meta.row_group(group).num_rows
            group += 1
        if group >= meta.num_row_groups:
            return
        skip = start - group_start
        pending: list[Any] = []
        pending_rows = 0
        row = start
        stream = self.file.iter_batches(
            batch_size=batch_size, row_groups=list(range(group, meta.num_row_groups)), columns=self.columns
        )
        for record_batch in stream:
            if skip:
                cut = min(skip, record_batch.num_rows)
                record_batch, skip = record_batch.slice(cut), skip - cut
            if record_batch.num_rows == 0:
                continue
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while pending_rows >= batch_size:
                table = pa.Table.from_batches(pending).combine_chunks()
                yield self._convert(table.slice(0, batch_size), row)
                row += batch_size
                rest = table.slice(batch_size)
                pending, pending_rows = (rest.to_batches() if rest.num_rows else []), rest.num_rows
        if pending_rows:
            yield self._convert(pa.Table.from_batches(pending), row)

    def _convert(self, table: Any, first_row: int) -> RowBatch:
        import pyarrow as pa
        import pyarrow.compute as pc

        o, n = self.options, table.num_rows
        column = table.column(o.vector_column).combine_chunks()
        if column.null_count:
            raise self.error(f"row {first_row + _first_true(column.is_null())}", f"{o.vector_column!r} is null")
        kind = column.type
        if pa.types.is_fixed_size_list(kind):
            dim = kind.list_size
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
            dim = int(lengths[0]) if n else 0
            bad = np.flatnonzero(lengths != dim)
            if len(bad):
                i = int(bad[0])
                raise self.error(
                    f"row {first_row + i}", f"vector has {int(lengths[i])} components, row {first_row} has {dim}"
                )
        else:
            raise DataFileError(f"{self.path}: column {o.vector_column!r} must be a list of floats, got {kind}")
        values = column.flatten()
        if values.null_count:
            where = _first_true(values.is_null()) // max(dim, 1)
            raise self.error(f"row {first_row + where}", "vector has a null component")
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise DataFileError(f"{self.path}: column {o.vector_column!r} must hold numbers, got {values.type}")
        matrix = values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, dim)
        _finite_rows(self, matrix, first_row)
        ids = self._ids(table, first_row) if o.id_column in table.column_names else self._row_ids(first_row, n)
        payloads = self._payloads(table, first_row) if o.payload_column in table.column_names else None
        return RowBatch(first_row, ids, matrix, payloads, {"row": first_row + n})

    def _ids(self, table: Any, first_row: int) -> list[PointId]:
        import pyarrow as pa

        column = table.column(self.options.id_column).combine_chunks()
        if column.null_count:
            raise self.error(f"row {first_row + _first_true(column.is_null())}", "id is null")
        values = column.to_numpy() if pa.types.is_integer(column.type) else column.to_pylist()
        return _point_ids(values, self.path, first_row, self.options.id_column)

    def _payloads(self, table: Any, first_row: int) -> list[Optional[dict[str, Any]]]:
        out: list[Optional[dict[str, Any]]] = []
        for i, value in enumerate(table.column(self.options.payload_column).to_pylist()):
            if isinstance(value, (str, bytes)):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise self.error(f"row {first_row + i}", f"payload is not valid JSON: {exc.msg}") from None
            elif isinstance(value, list) and all(isinstance(x, tuple) and len(x) == 2 for x in value):
                value = dict(value)  # a Parquet map column
            if value is not None and not isinstance(value, dict):
                raise self.error(f"row {first_row + i}", f"payload must be a JSON object, got {type(value).__name__}")
            out.append(value)
        return out


def _first_true(mask: Any) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


_READERS: dict[str, type[Reader]] = {
    "npy": NpyReader,
    "fvecs": FvecsReader,
    "jsonl": JsonlReader,
    "parquet": ParquetReader,
}


def open_reader(path: Path, fmt: str, options: ImportOptions) -> Reader:
    """A reader for ``path`` in format ``fmt``; side files (--ids, --payloads) only go with .npy and .fvecs."""
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    if fmt not in ("npy", "fvecs") and (options.ids_path or options.payloads_path):
        raise DataFileError(
            "--ids and --payloads go with .npy and .fvecs files; JSONL and Parquet rows carry "
            "their own ids and payloads"
        )
    for side in (options.ids_path, options.payloads_path):
        if side is not None and not side.is_file():
            raise DataFileError(f"{side}: no such file")
    return _READERS[fmt](path, options)


__all__ = [
    "FORMATS",
    "DataFileError",
    "ImportOptions",
    "Reader",
    "RowBatch",
    "detect_format",
    "file_signature",
    "open_reader",
    "require_pyarrow",
]
