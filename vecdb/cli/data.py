"""``vecdb import``, ``vecdb export`` and ``vecdb collections``: data in and out of a running server or a
data directory, from the shell.

The commands are thin: argument parsing, the progress bar and the messages.
Reading files is :mod:`vecdb.transfer.importers`, writing them :mod:`vecdb.transfer.exporters`,
the loops :mod:`vecdb.transfer.bulk` and the resume record :mod:`vecdb.transfer.import_state`.
Heavy modules are imported inside the commands so that ``vecdb serve`` does
not pay for them. (Its length is typer's option declarations, one block per flag.)
"""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from vecdb.cli.target import API_KEY_OPTION, PATH_OPTION, URL_OPTION, Target, reported_errors


class DistanceName(str, Enum):
    """--distance choices (vecdb's Distance values)."""

    Cosine = "Cosine"
    Euclid = "Euclid"
    Dot = "Dot"
    Manhattan = "Manhattan"


class _NoBar:
    """Stands in for tqdm where it is not installed: counts, prints nothing."""

    def __init__(self, initial: int) -> None:
        self.n = initial

    def update(self, k: int) -> None:
        self.n += k

    def close(self) -> None:
        pass


def _progress(total: Optional[int], initial: int, unit: str, desc: str, disable: bool) -> Any:
    """A tqdm bar on stderr (stdout stays clean for --json output and pipes)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar(initial)
    scale = unit == "B"
    return tqdm(
        total=total,
        initial=initial,
        unit=unit,
        unit_scale=scale,
        unit_divisor=1024 if scale else 1000,
        desc=desc,
        file=sys.stderr,
        disable=disable,
        dynamic_ncols=True,
        leave=True,
    )


# --- import ------------------------------------------------------------------------------------


def import_command(
    file: Path = typer.Argument(..., help="Data file: .npy, .fvecs, .jsonl/.ndjson or .parquet.", show_default=False),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection to upsert into."),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="npy, fvecs, jsonl or parquet (default: from the file's extension)."
    ),
    create: bool = typer.Option(
        False, "--create", help="Create the collection when missing (vector size from the data)."
    ),
    distance: DistanceName = typer.Option(
        DistanceName.Cosine, "--distance", case_sensitive=False, help="Distance of a collection made by --create."
    ),
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, help="Points per upsert (each one durable before the next)."
    ),
    id_offset: int = typer.Option(0, "--id-offset", help="Ids are row number + this, where the file has no ids."),
    ids: Optional[Path] = typer.Option(
        None, "--ids", help=".npy/.fvecs: a 1-D .npy of ids, one per row (integers or UUID strings)."
    ),
    payloads: Optional[Path] = typer.Option(
        None, "--payloads", help=".npy/.fvecs: a JSONL file with one payload object per row."
    ),
    id_column: str = typer.Option("id", "--id-column", help="JSONL key / Parquet column of the ids."),
    vector_column: str = typer.Option("vector", "--vector-column", help="JSONL key / Parquet column of the vectors."),
    payload_column: str = typer.Option(
        "payload", "--payload-column", help="JSONL key / Parquet column of the payloads."
    ),
    vector_name: Optional[str] = typer.Option(
        None, "--vector-name", help="Store the vectors under this name (collections with named vectors)."
    ),
    state: Optional[Path] = typer.Option(
        None, "--state", help="Resume file (default <FILE>.vecdb-import-<collection>.json)."
    ),
    restart: bool = typer.Option(False, "--restart", help="Ignore a recorded resume point; import from row 0."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    url: str = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
    path: Optional[Path] = PATH_OPTION,
) -> None:
    """Upsert the points of FILE into a collection, in batches, resuming where an interrupted run stopped.

    After each acknowledged batch the next row is recorded in a small state
    file; running the same command again continues from there (the file must
    be unchanged). The state file is removed when the import completes.
    """
    from vecdb.transfer.bulk import run_import
    from vecdb.transfer.import_state import ImportState, ResumeRefused, default_state_path
    from vecdb.transfer.importers import ImportOptions, detect_format, file_signature, open_reader

    where = Target(url, api_key, path)
    resumable: Optional[ImportState] = None  # the state file the hint after a failure points to

    def resume_hint() -> str:
        if resumable is None or not resumable.path.exists():
            return ""
        record = json.loads(resumable.path.read_text())
        return (
            f"{record.get('rows_done', 0)} points are stored. The same command resumes at row "
            f"{record['cursor'].get('row', 0)} (state file {resumable.path}); after editing the file, add "
            f"--restart."
        )

    with reported_errors("import", url, hint=resume_hint):
        fmt_ = detect_format(file, fmt)
        options = ImportOptions(
            id_offset=id_offset,
            ids_path=ids,
            payloads_path=payloads,
            id_column=id_column,
            vector_column=vector_column,
            payload_column=payload_column,
        )
        with open_reader(file, fmt_, options) as reader:
            identity = {
                "file": file_signature(file),
                "collection": collection,
                "target": where.describe(),
                "format": fmt_,
                "options": {**options.fingerprint(), "vector_name": vector_name},
            }
            import_state = ImportState(state or default_state_path(file, collection), identity)
            if restart:
                import_state.remove()
            record = import_state.load()
            resumable = import_state
            cursor = record["cursor"] if record else None
            done_before = int(record.get("rows_done", 0)) if record else 0
            if cursor:
                typer.echo(
                    f"resuming at row {cursor.get('row', 0)} ({done_before} points imported by an earlier "
                    f"run; state file {import_state.path})",
                    err=True,
                )
            bar = _progress(
                reader.progress_total,
                reader.progress(cursor),
                reader.progress_unit,
                f"import {collection}",
                no_progress,
            )
            t0 = time.perf_counter()

            def after_batch(batch: Any, rows_done: int) -> None:
                import_state.save(batch.cursor, done_before + rows_done)
                bar.update(reader.progress(batch.cursor) - bar.n)

            try:
                with where.client(must_exist=not create) as client:
                    if cursor and not client.collection_exists(collection):
                        resumable = None  # no "the same command resumes" hint: it would not
                        raise ResumeRefused(
                            f"{import_state.path} records {done_before} points imported into "
                            f"{collection}, which no longer exists; pass --restart to import the "
                            f"whole file again"
                        )
                    result = run_import(
                        client,
                        collection,
                        reader,
                        cursor=cursor,
                        batch_size=batch_size,
                        create_distance=distance.value if create else None,
                        vector_name=vector_name,
                        after_batch=after_batch,
                    )
            finally:
                bar.close()
        import_state.remove()
        if result.batches == 0:
            after = f" after row {result.first_row}" if result.first_row else ""
            typer.echo(f"no rows to import from {file}{after}", err=True)
            return
        elapsed = time.perf_counter() - t0
        rate = result.rows / elapsed if elapsed > 0 else 0.0
        made = " (created)" if result.created else ""
        typer.echo(
            f"imported {result.rows} points into {collection}{made} from {file} in {elapsed:.1f} s "
            f"({rate:,.0f} points/s; {result.batches} batches from row {result.first_row})",
            err=True,
        )


# --- export ------------------------------------------------------------------------------------


def export_command(
    collection: str = typer.Option(..., "--collection", "-c", help="Collection to export."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .jsonl, .npy or .parquet."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, npy or parquet (default: from the name)."),
    ids_output: Optional[Path] = typer.Option(
        None, "--ids-output", help=".npy export: also write the ids (a 1-D .npy) here."
    ),
    payloads_output: Optional[Path] = typer.Option(
        None, "--payloads-output", help=".npy export: also write the payloads (JSONL) here."
    ),
    vector_name: Optional[str] = typer.Option(
        None, "--vector-name", help="Export this named vector (.npy and Parquet hold one vector per point)."
    ),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Points per scrolled page."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    url: str = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
    path: Optional[Path] = PATH_OPTION,
) -> None:
    """Write every point of a collection (ids, vectors, payloads) to a file that `vecdb import` reads back."""
    from vecdb.transfer.bulk import run_export
    from vecdb.transfer.exporters import JsonlWriter, NpyWriter, ParquetWriter, Writer, detect_export_format
    from vecdb.transfer.importers import DataFileError

    where = Target(url, api_key, path)
    with reported_errors("export", url):
        fmt_ = detect_export_format(output, fmt)
        if fmt_ != "npy" and (ids_output or payloads_output):
            raise DataFileError(
                "--ids-output and --payloads-output go with a .npy export (JSONL and Parquet hold "
                "ids and payloads themselves)"
            )
        for out in (output, ids_output, payloads_output):
            if out is not None and out.exists() and not force:
                raise DataFileError(f"{out} exists; pass --force to overwrite it")
        with where.client() as client:
            count = client.count(collection).count
            writer: Writer
            if fmt_ == "jsonl":
                writer = JsonlWriter(output)
            elif fmt_ == "parquet":
                writer = ParquetWriter(output, vector_name=vector_name)
            else:
                writer = NpyWriter(
                    output, count, _dimension(client, collection, vector_name), vector_name, ids_output, payloads_output
                )
            bar = _progress(count, 0, "points", f"export {collection}", no_progress)
            t0 = time.perf_counter()
            try:
                rows = run_export(
                    client,
                    collection,
                    writer,
                    page_size=batch_size,
                    vector_name=vector_name,
                    on_page=lambda page: bar.update(len(page)),
                )
            finally:
                bar.close()
        typer.echo(f"exported {rows} points of {collection} to {output} in {time.perf_counter() - t0:.1f} s", err=True)


def _dimension(client: Any, collection: str, vector_name: Optional[str]) -> int:
    """The size of the exported vector, from the collection's config (a .npy needs it up front)."""
    from vecdb.transfer.importers import DataFileError

    vectors: dict[str, Any] = client.get_collection(collection).config.params.vectors
    if "size" in vectors:  # one unnamed vector
        if vector_name is None:
            return int(vectors["size"])
        raise DataFileError(f"collection {collection} has no vector {vector_name!r}")
    names = ", ".join(vectors)
    if vector_name is None and names:
        raise DataFileError(f"collection {collection} has named vectors ({names}): pass --vector-name")
    if vector_name is not None and isinstance(vectors.get(vector_name), dict):
        return int(vectors[vector_name]["size"])
    raise DataFileError(
        f"collection {collection} has no vector {vector_name!r}" + (f" (it has {names})" if names else "")
    )


# --- collections -------------------------------------------------------------------------------

collections_app = typer.Typer(help="List, describe and delete collections.", no_args_is_help=True)


def _vectors_text(vectors: Any) -> str:
    if isinstance(vectors, dict) and "size" in vectors:
        return f"{vectors['size']} {vectors.get('distance')}"
    if isinstance(vectors, dict):
        return ", ".join(f"{name}: {v.get('size')} {v.get('distance')}" for name, v in vectors.items()) or "-"
    return str(vectors)


def _summary(name: str, info: Any) -> dict[str, Any]:
    return {
        "name": name,
        "status": str(getattr(info.status, "value", info.status)),
        "points": info.points_count,
        "indexed_vectors": info.indexed_vectors_count,
        "vectors": _vectors_text(info.config.params.vectors),
    }


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@collections_app.command("list")
def list_collections(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    url: str = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
    path: Optional[Path] = PATH_OPTION,
) -> None:
    """The collections, with their point counts, vectors and status."""
    with reported_errors("collections list", url), Target(url, api_key, path).client() as client:
        names = sorted(c.name for c in client.get_collections().collections)
        rows = [_summary(n, client.get_collection(n)) for n in names]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif rows:
        typer.echo(_table(rows, ["name", "points", "vectors", "status", "indexed_vectors"]))
    else:
        typer.echo("no collections", err=True)


@collections_app.command("info")
def collection_info(
    name: str = typer.Argument(..., help="Collection name."),
    as_json: bool = typer.Option(False, "--json", help="Print the full collection info as JSON."),
    url: str = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
    path: Optional[Path] = PATH_OPTION,
) -> None:
    """Points, vectors config, status, indexed vectors, segments and payload indexes of one collection."""
    with reported_errors("collections info", url), Target(url, api_key, path).client() as client:
        info = client.get_collection(name)
    if as_json:
        typer.echo(json.dumps({"name": name, **info.model_dump(mode="json")}, indent=2))
        return
    config = info.config
    index = (config.index or {}).get("type", "hnsw")
    fields = [
        ("name", name),
        ("status", getattr(info.status, "value", info.status)),
        ("optimizer", info.optimizer_status),
        ("points", info.points_count),
        ("indexed vectors", info.indexed_vectors_count),
        ("segments", info.segments_count),
        ("vectors", _vectors_text(config.params.vectors)),
        (
            "index",
            f"{index} (m={config.hnsw_config.m}, ef_construct={config.hnsw_config.ef_construct})"
            if index == "hnsw"
            else index,
        ),
        (
            "payload indexes",
            ", ".join(f"{k} ({v.data_type}, {v.points} points)" for k, v in info.payload_schema.items()) or "-",
        ),
    ]
    width = max(len(k) for k, _ in fields)
    typer.echo("\n".join(f"{k.ljust(width)}  {v}" for k, v in fields))


@collections_app.command("delete")
def delete_collection(
    name: str = typer.Argument(..., help="Collection name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    url: str = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
    path: Optional[Path] = PATH_OPTION,
) -> None:
    """Delete a collection and all its points (asks first unless --yes)."""
    from vecdb.errors import NotFound

    with reported_errors("collections delete", url), Target(url, api_key, path).client() as client:
        if not client.collection_exists(name):
            raise NotFound(f"collection {name!r} does not exist")
        if not yes:
            points = client.count(name).count
            if not typer.confirm(f"Delete collection {name!r} and its {points} points?", err=True):
                typer.echo("not deleted", err=True)
                raise typer.Exit(1)
        client.delete_collection(name)
    typer.echo(f"deleted collection {name}", err=True)


__all__ = ["collections_app", "export_command", "import_command"]
