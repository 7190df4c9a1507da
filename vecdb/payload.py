"""Payload edits and projections by key path (``a.b``, ``a[]``, ``a[0]``), as Qdrant's payload API defines them."""

from __future__ import annotations

import copy
from typing import Any, Optional, Union

from vecdb.errors import InvalidInput
from vecdb.models.points import PayloadSelectorExclude, PayloadSelectorInclude

Segment = Union[str, int, None]
"""A path step: an object key, an array index, or None for 'every array element' (``[]``)."""


def parse_path(path: str) -> list[Segment]:
    """Split ``a.b[].c[0]`` (and quoted ``"a.b"`` literal keys) into steps."""
    out: list[Segment] = []
    i, n = 0, len(path)
    if not path:
        raise InvalidInput("payload key path must not be empty")
    while i < n:
        if path[i] == '"':
            end = path.find('"', i + 1)
            if end < 0:
                raise InvalidInput(f"payload key path {path!r} has an unclosed quote")
            out.append(path[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and path[j] not in ".[":
                j += 1
            if j > i:
                out.append(path[i:j])
            i = j
        while i < n and path[i] == "[":
            end = path.find("]", i)
            if end < 0:
                raise InvalidInput(f"payload key path {path!r} has an unclosed '['")
            inner = path[i + 1 : end]
            if inner == "":
                out.append(None)
            elif inner.isdigit():
                out.append(int(inner))
            else:
                raise InvalidInput(f"payload key path {path!r}: array index must be a number or empty")
            i = end + 1
        if i < n:
            if path[i] != ".":
                raise InvalidInput(f"payload key path {path!r} is malformed at position {i}")
            i += 1
            if i == n:
                raise InvalidInput(f"payload key path {path!r} ends with '.'")
    return out


def select_payload(payload: dict[str, Any], selector: Any) -> Optional[dict[str, Any]]:
    """Apply a ``with_payload`` value: bool, list of keys, include or exclude selector."""
    if selector is True:
        return payload
    if selector is False or selector is None:
        return None
    if isinstance(selector, PayloadSelectorExclude):
        result = copy.deepcopy(payload)
        for key in selector.exclude:
            delete_path(result, key)
        return result
    keys = selector.include if isinstance(selector, PayloadSelectorInclude) else selector
    result = {}
    for key in keys:
        _copy_path(payload, result, parse_path(key))
    return result


def _copy_path(src: Any, dst: dict[str, Any], steps: list[Segment]) -> None:
    head = steps[0]
    if not isinstance(head, str) or not isinstance(src, dict) or head not in src:
        return
    if len(steps) == 1 or not isinstance(src[head], dict):
        if len(steps) == 1:
            dst[head] = src[head]
        return
    child = dst.setdefault(head, {})
    if isinstance(child, dict):
        _copy_path(src[head], child, steps[1:])


def set_at_key(payload: dict[str, Any], key: Optional[str], values: dict[str, Any]) -> dict[str, Any]:
    """Merge ``values`` into the payload, or into the object at ``key`` (created if missing)."""
    result = copy.deepcopy(payload)
    if key is None:
        result.update(values)
        return result
    targets = [result]
    for step in parse_path(key):
        nxt: list[Any] = []
        for node in targets:
            if isinstance(step, str) and isinstance(node, dict):
                if not isinstance(node.get(step), (dict, list)):
                    node[step] = {}
                nxt.append(node[step])
            elif step is None and isinstance(node, list):
                nxt.extend(node)
            elif isinstance(step, int) and isinstance(node, list) and step < len(node):
                nxt.append(node[step])
        targets = nxt
    for node in targets:
        if isinstance(node, dict):
            node.update(copy.deepcopy(values))
    return result


def delete_path(payload: dict[str, Any], key: str) -> None:
    """Remove the value(s) at ``key`` in place; missing paths are ignored."""
    steps = parse_path(key)
    parents: list[Any] = [payload]
    for step in steps[:-1]:
        nxt: list[Any] = []
        for node in parents:
            if isinstance(step, str) and isinstance(node, dict) and step in node:
                nxt.append(node[step])
            elif step is None and isinstance(node, list):
                nxt.extend(node)
            elif isinstance(step, int) and isinstance(node, list) and step < len(node):
                nxt.append(node[step])
        parents = nxt
    last = steps[-1]
    for node in parents:
        if isinstance(last, str) and isinstance(node, dict):
            node.pop(last, None)
        elif isinstance(last, int) and isinstance(node, list) and last < len(node):
            del node[last]
        elif last is None and isinstance(node, list):
            node.clear()
