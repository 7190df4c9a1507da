"""One grammar for payload key paths: filter keys, payload index fields, set/delete keys, selectors.

Qdrant parses every key path of its API with one ``JsonPath`` grammar
(``lib/segment/src/json_path/parse.rs``; qdrant-client's local mode copies it in
``qdrant_client/local/json_path_parser.py``), so a key that one request accepts,
another accepts too, and means the same steps there::

    path   := key ( "." key | "[" digits "]" | "[]" )*
    key    := raw | quoted
    raw    := one or more alphanumerics (Unicode), "_" or "-"
    quoted := '"' any characters but '"' and '\\' '"'   (may be empty)
    digits := ASCII digits, at most 2**64 - 1

A path therefore always starts with an object key; ``[]`` selects every element of
an array, ``[i]`` one element. Where local mode and the server differ, the server
wins: local mode takes a backslash inside quotes literally, the server rejects it,
and so does this parser.

Parsing is cached: filters are compiled per request and payload edits run per point,
on the same few keys.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Union

from vecdb.errors import InvalidInput

Step = Union[str, int, None]
"""A path step: an object key (str), an array index (int), or every array element (None, ``[]``)."""

KeyPath = tuple[Step, ...]
"""A parsed key path; its first step is always an object key."""

_RAW_KEY = re.compile(r"[\w-]+")  # str.isalnum() characters, "_" and "-": as qdrant-client, near Rust's is_alphanumeric
_INDEX = re.compile(r"[0-9]+")
_U64_MAX = 2**64 - 1


@lru_cache(maxsize=4096)
def parse_key_path(key: str, field: str = "key") -> KeyPath:
    """Split a payload key path into steps: ``a.b`` -> ``("a", "b")``, ``a[].b[0]`` ->
    ``("a", None, "b", 0)``, ``"a.b"`` -> ``("a.b",)``.

    ``field`` names where the key came from (``filter key``, ``set_payload key``,
    ``delete_payload keys[1]``, ...) so that the InvalidInput raised for a malformed
    path says which input to fix, and what is wrong at which position.
    """

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"{field} {key!r} is not a valid payload key path: {why}")

    if not key:
        raise bad("it is empty")
    steps: list[Step] = []
    at = 0
    end = len(key)
    expect_key = True  # at the start, and after each "."
    while True:
        if expect_key:
            if at == end:
                raise bad("it ends with '.'")
            if key[at] == '"':
                close = key.find('"', at + 1)
                if close == -1:
                    raise bad(f"the quote at position {at} is not closed")
                name = key[at + 1 : close]
                if "\\" in name:
                    raise bad("a quoted key cannot contain '\\'")
                steps.append(name)
                at = close + 1
            else:
                found = _RAW_KEY.match(key, at)
                if found is None:
                    raise bad(f"expected a key at position {at}, found {key[at : at + 10]!r}")
                steps.append(found.group(0))
                at = found.end()
            expect_key = False
        if at == end:
            return tuple(steps)
        char = key[at]
        if char == ".":
            at += 1
            expect_key = True
        elif char == "[":
            close = key.find("]", at + 1)
            if close == -1:
                raise bad(f"the '[' at position {at} is not closed")
            inner = key[at + 1 : close]
            if inner == "":
                steps.append(None)
            elif _INDEX.fullmatch(inner) is None:
                raise bad(f"array index {inner!r} is not a non-negative integer")
            elif int(inner) > _U64_MAX:
                raise bad(f"array index {inner} is too large")
            else:
                steps.append(int(inner))
            at = close + 1
        else:
            raise bad(f"expected '.' or '[' at position {at}, found {key[at : at + 10]!r}")


__all__ = ["KeyPath", "Step", "parse_key_path"]
