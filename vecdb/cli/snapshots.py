"""``vecdb snapshots ...``: create, list, download, delete and restore collection snapshots.

Each command works either on a data directory opened in this process
(``--path``; no server may hold it: the directory's ownership lock says so) or
through a running server (``--url``). ``restore`` is how a snapshot moves to
another data directory: ``--path`` unpacks it offline, ``--url`` uploads it to
the server that holds the target directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import typer

from vecdb.cli.target import API_KEY_OPTION, DEFAULT_URL, Target

if TYPE_CHECKING:
    from vecdb.client.base import ClientBase
    from vecdb.models.snapshots import SnapshotDescription

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Collection snapshots: create, list, download, delete, restore (into any data directory).",
)

PATH_OPTION: Any = typer.Option(
    None, "--path", help="Data directory, opened by this command (no server may be using it)."
)
URL_OPTION: Any = typer.Option(None, "--url", help="A vecdb server to work through, e.g. http://127.0.0.1:6333.")


def _fail(message: str) -> NoReturn:
    typer.echo(f"vecdb: {message}", err=True)
    raise typer.Exit(code=1)


@contextmanager
def _client(
    path: Optional[Path],
    url: Optional[str],
    api_key: Optional[str],
    must_exist: bool = True,
) -> Iterator[ClientBase]:
    """The embedded client on ``path`` or the remote one on ``url``; errors become one line and exit 1."""
    import httpx

    from vecdb.errors import DataDirLocked, VecdbError

    if (path is None) == (url is None):
        _fail("give exactly one of --path DIR (a data directory) or --url URL (a server)")
    if must_exist and path is not None and not path.is_dir():
        _fail(f"data directory {path} does not exist")
    try:
        with Target(url or DEFAULT_URL, api_key, path).client(must_exist=False) as client:
            yield client
    except DataDirLocked as exc:
        _fail(f"{exc}. A server holds it: run this command with --url pointing at that server")
    except VecdbError as exc:
        _fail(str(exc))
    except httpx.HTTPError as exc:
        _fail(f"request to {url} failed: {exc}")


def _describe(d: SnapshotDescription) -> str:
    return f"{d.name}  {d.size} bytes  {d.creation_time or '-'}  sha256 {d.checksum or '-'}"


@app.command()
def create(
    collection: str = typer.Argument(..., help="Collection to snapshot."),
    path: Optional[Path] = PATH_OPTION,
    url: Optional[str] = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
) -> None:
    """Snapshot COLLECTION (a consistent copy, taken while writes go on)."""
    with _client(path, url, api_key) as client:
        desc = client.create_snapshot(collection)
        assert desc is not None
        typer.echo(f"created snapshot {_describe(desc)}")
        if path is not None:
            typer.echo(f"file: {path.resolve() / 'snapshots' / collection / desc.name}")


@app.command("list")
def list_(
    collection: str = typer.Argument(..., help="Collection whose snapshots to list."),
    path: Optional[Path] = PATH_OPTION,
    url: Optional[str] = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
) -> None:
    """List the snapshots of COLLECTION: name, size, creation time (UTC), sha256."""
    with _client(path, url, api_key) as client:
        found = client.list_snapshots(collection)
        if not found:
            typer.echo(f"collection {collection} has no snapshots")
        for desc in found:
            typer.echo(_describe(desc))


@app.command()
def delete(
    collection: str = typer.Argument(..., help="Collection the snapshot belongs to."),
    snapshot: str = typer.Argument(..., help="Snapshot name, as `list` shows it."),
    path: Optional[Path] = PATH_OPTION,
    url: Optional[str] = URL_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
) -> None:
    """Delete SNAPSHOT of COLLECTION."""
    with _client(path, url, api_key) as client:
        client.delete_snapshot(collection, snapshot)
        typer.echo(f"deleted snapshot {snapshot}")


@app.command()
def download(
    collection: str = typer.Argument(..., help="Collection the snapshot belongs to."),
    snapshot: str = typer.Argument(..., help="Snapshot name, as `list` shows it."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write it (default: ./SNAPSHOT)."),
    url: Optional[str] = URL_OPTION,
    path: Optional[Path] = PATH_OPTION,
    api_key: Optional[str] = API_KEY_OPTION,
) -> None:
    """Copy SNAPSHOT of COLLECTION to this machine, with its checksum beside it (FILE.sha256)."""
    dest = out if out is not None else Path.cwd() / Path(snapshot).name
    with _client(path, url, api_key) as client:
        checksum = next((d.checksum for d in client.list_snapshots(collection) if d.name == snapshot), None)
        client.download_snapshot(collection, snapshot, dest)
        if checksum:
            from vecdb.snapshot_files import file_sha256

            actual = file_sha256(dest)
            if actual != checksum:
                dest.unlink(missing_ok=True)
                _fail(f"downloaded {snapshot} has sha256 {actual}, but the server lists {checksum}; removed it")
            dest.with_name(dest.name + ".sha256").write_text(f"{checksum}  {dest.name}\n")
        typer.echo(f"downloaded {snapshot} to {dest} ({dest.stat().st_size} bytes, sha256 {checksum or '-'})")


@app.command()
def restore(
    snapshot_file: Path = typer.Argument(..., help="A snapshot file (.snapshot) on this machine."),
    path: Optional[Path] = typer.Option(
        None, "--path", help="Data directory to restore into (created if missing; no server may be using it)."
    ),
    url: Optional[str] = typer.Option(None, "--url", help="Restore through this server instead (uploads the file)."),
    collection: Optional[str] = typer.Option(
        None,
        "--collection",
        "-c",
        help="Collection to restore into (default: the snapshot's own name); an existing one is replaced.",
    ),
    checksum: Optional[str] = typer.Option(
        None, "--checksum", help="Expected sha256 (default: the FILE.sha256 beside it, if any)."
    ),
    api_key: Optional[str] = API_KEY_OPTION,
) -> None:
    """Restore a collection from SNAPSHOT_FILE into a data directory (offline) or a server."""
    from vecdb.errors import VecdbError
    from vecdb.snapshot_files import read_meta, stored_checksum

    if not snapshot_file.is_file():
        _fail(f"snapshot file {snapshot_file} does not exist")
    try:
        meta = read_meta(snapshot_file)
    except VecdbError as exc:
        _fail(str(exc))
    name = collection or str(meta["collection"])
    expected = checksum or stored_checksum(snapshot_file)
    with _client(path, url, api_key, must_exist=False) as client:
        if url is not None:
            client.upload_snapshot(name, snapshot_file, checksum=expected)
        else:
            client.recover_snapshot(name, snapshot_file.resolve().as_uri(), checksum=expected)
        info = client.get_collection(name)
        verified = "checksum verified" if expected else "no checksum to verify"
        typer.echo(f"restored collection {name} from {snapshot_file}: {info.points_count} points ({verified})")
