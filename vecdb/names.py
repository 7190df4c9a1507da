"""Names of collections, aliases and snapshots: they become directory and file names, so one safe
alphabet is checked in one place, by the engine and by the remote client alike."""

from __future__ import annotations

import re

from vecdb.errors import InvalidInput

_NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}$")


def check_name(name: str, what: str = "collection") -> str:
    """Names become directory names, so only a safe alphabet is allowed (no '/', no leading '.')."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is invalid: use 1-255 characters from letters, digits, "
            "'_', '-' and '.', not starting with '.'"
        )
    return name
