"""The command line: ``vecdb serve`` and the data, snapshot and bench commands (``main`` assembles them)."""

from vecdb.cli.main import app

__all__ = ["app"]
