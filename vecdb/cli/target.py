"""Which database a data command talks to, and how its failures reach the terminal.

Every data command (import, export, collections) takes the same three
options: ``--url`` (a running server, through the remote client; the default),
``--api-key``, or ``--path`` (the data directory opened embedded, which fails
with the lock's message while a server holds it). Failures the user can act
on (a bad row, an unreachable server, a locked directory) become one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from vecdb.errors import VecdbError

DEFAULT_URL = "http://127.0.0.1:6333"

URL_OPTION: Any = typer.Option(
    DEFAULT_URL, "--url", envvar="VECDB_URL", help="vecdb server to talk to (ignored with --path)."
)
API_KEY_OPTION: Any = typer.Option(None, "--api-key", envvar="VECDB_API_KEY", help="API key of the server.")
PATH_OPTION: Any = typer.Option(
    None,
    "--path",
    help="Open this data directory in-process instead of talking to a server (it must not be in use by a server).",
)


@dataclass(frozen=True)
class Target:
    url: str = DEFAULT_URL
    api_key: Optional[str] = None
    path: Optional[Path] = None

    def describe(self) -> str:
        """What the state file records and messages name: the directory, or the server URL."""
        return f"path:{self.path.resolve()}" if self.path is not None else f"url:{self.url.rstrip('/')}"

    @contextlib.contextmanager
    def client(self, must_exist: bool = True) -> Iterator[Any]:
        """The embedded client on ``path``, else the remote client on ``url``; closed on exit.

        ``must_exist``: refuse to create an empty data directory where none is (a typo in --path
        should not look like an empty database).
        """
        if self.path is not None:
            from vecdb.client.embedded import Client

            if must_exist and not self.path.is_dir():
                raise VecdbError(f"no data directory at {self.path}")
            client: Any = Client(path=self.path)
        else:
            from vecdb_client import RemoteClient

            client = RemoteClient(self.url, api_key=self.api_key)
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def reported_errors(command: str, url: str = DEFAULT_URL, hint: Optional[Callable[[], str]] = None) -> Iterator[None]:
    """Turn expected failures into ``vecdb COMMAND: error: ...`` on stderr and exit code 1.

    ``hint()`` (say, how to resume) is printed after the error or interruption
    when it returns text. Anything else still raises with its traceback: that
    is a bug to report.
    """
    import httpx

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        typer.echo(f"vecdb {command}: interrupted", err=True)
        _hint(hint)
        raise typer.Exit(130) from None
    except VecdbError as exc:
        status = getattr(exc, "status_code", None)
        message = str(exc)
        if status in (401, 403):
            message += " (pass --api-key or set VECDB_API_KEY)"
        elif status == 413:
            message += " (lower --batch-size)"
        _fail(command, message, hint)
    except httpx.TransportError as exc:
        _fail(
            command,
            f"cannot reach the vecdb server at {url} ({exc}); start it with `vecdb serve`, or pass "
            f"--path DIR to open a data directory directly",
            hint,
        )
    except OSError as exc:
        _fail(command, str(exc), hint)


def _hint(hint: Optional[Callable[[], str]]) -> None:
    text = hint() if hint is not None else ""
    if text:
        typer.echo(text, err=True)


def _fail(command: str, message: str, hint: Optional[Callable[[], str]]) -> None:
    typer.echo(f"vecdb {command}: error: {message}", err=True)
    _hint(hint)
    raise typer.Exit(1)


__all__ = ["API_KEY_OPTION", "DEFAULT_URL", "PATH_OPTION", "URL_OPTION", "Target", "reported_errors"]
