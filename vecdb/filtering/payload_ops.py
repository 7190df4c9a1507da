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
    """Apply a ``with_payload`` value: bool, list of keys, include or exclude selector.

    Keys are merged into a prefix tree first, as Qdrant core does: ``a[]`` applies
    to every element of an array (``objs[].k`` keeps ``k`` in each object),
    ``a[0]`` selects nothing inside an array, and a path that runs into a scalar
    keeps the scalar (``a.b`` on ``{"a": 1}`` includes ``a``).
    """
    if selector is True:
        return payload
    if selector is False or selector is None:
        return None
    if isinstance(selector, PayloadSelectorExclude):
        return _exclude(payload, _selector_tree(selector.exclude))  # type: ignore[no-any-return]
    keys = selector.include if isinstance(selector, PayloadSelectorInclude) else selector
    return _include(payload, _selector_tree(keys))  # type: ignore[no-any-return]


_ALL = True
"""A selector-tree leaf: everything below this point."""


def _selector_tree(keys: list[str]) -> dict[Segment, Any]:
    """``["a.b", "c[]"]`` -> ``{"a": {"b": True}, "c": {None: True}}``; a shorter path wins over a longer one."""
    tree: dict[Segment, Any] = {}
    for key in keys:
        *parents, last = parse_path(key)
        node: Any = tree
        for part in parents:
            node = node.setdefault(part, {})
            if node is _ALL:
                break
        else:
            node[last] = _ALL
    return tree


def _include(value: Any, tree: dict[Segment, Any]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in tree:
                sub = tree[key]
                out[key] = copy.deepcopy(item) if sub is _ALL else _include(item, sub)
        return out
    if isinstance(value, list):
        if None not in tree:  # only ``[]`` reaches into arrays
            return []
        sub = tree[None]
        return copy.deepcopy(value) if sub is _ALL else [_include(item, sub) for item in value]
    return value


def _exclude(value: Any, tree: dict[Segment, Any]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key not in tree:
                out[key] = copy.deepcopy(item)
            elif tree[key] is not _ALL:
                out[key] = _exclude(item, tree[key])
        return out
    if isinstance(value, list):
        if None not in tree:
            return copy.deepcopy(value)
        sub = tree[None]
        return [] if sub is _ALL else [_exclude(item, sub) for item in value]
    return value


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
