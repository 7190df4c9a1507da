"""Payload edits and projections by key path (``a.b``, ``a[]``, ``a[0]``), as Qdrant's payload API defines them.

Every key here (``with_payload`` selectors, ``set_payload``'s ``key``, ``delete_payload``'s
``keys``) is parsed by :func:`vecdb.filtering.keypath.parse_key_path`, the grammar filters
use, so a key a filter rejects is rejected here too, with an error naming the input.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Optional

from vecdb.filtering.keypath import KeyPath, Step, parse_key_path
from vecdb.models.points import PayloadSelectorExclude, PayloadSelectorInclude

SELECTOR_KEY = "with_payload key"
SET_KEY = "set_payload key"
DELETE_KEY = "delete_payload keys"


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


def _selector_tree(keys: list[str]) -> dict[Step, Any]:
    """``["a.b", "c[]"]`` -> ``{"a": {"b": True}, "c": {None: True}}``; a shorter path wins over a longer one."""
    tree: dict[Step, Any] = {}
    for key in keys:
        *parents, last = parse_key_path(key, SELECTOR_KEY)
        node: Any = tree
        for part in parents:
            node = node.setdefault(part, {})
            if node is _ALL:
                break
        else:
            node[last] = _ALL
    return tree


def _include(value: Any, tree: dict[Step, Any]) -> Any:
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


def _exclude(value: Any, tree: dict[Step, Any]) -> Any:
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


# --------------------------------------------------------------------------- set_payload
#
# Qdrant's ``JsonPath::value_set`` (lib/segment/src/json_path/mod.rs), which local mode's
# ``payload_value_setter`` mirrors: the path is forced into existence, a step of the
# wrong kind replaces what is there (an object step turns a scalar or array into ``{}``,
# an array step turns a non-array into ``[]``, which then has no element to descend
# into), an index past the end writes nothing, and the values are merged into the
# object the path ends at (a non-object there is replaced by one). A null value
# removes its key instead of storing null, with or without a ``key``: the server's
# ``merge_map``. (An older server grew arrays with nulls up to an index past the end;
# the newer one and local mode do not, and neither does this.)


def _merge(dest: dict[str, Any], values: dict[str, Any]) -> None:
    """Qdrant's merge_map: each value replaces its key; a null value deletes the key."""
    for name, value in values.items():
        if value is None:
            dest.pop(name, None)
        else:
            dest[name] = copy.deepcopy(value)


def _set_in(mapping: dict[str, Any], name: str, rest: KeyPath, values: dict[str, Any]) -> None:
    mapping[name] = _set_value(rest, mapping.get(name), values)


def _set_value(path: KeyPath, dest: Any, values: dict[str, Any]) -> Any:
    """``dest`` with ``values`` set along ``path``: the same object edited in place when its
    kind fits the next step, else its replacement."""
    if not path:
        if not isinstance(dest, dict):
            dest = {}
        _merge(dest, values)
        return dest
    step, rest = path[0], path[1:]
    if isinstance(step, str):
        if not isinstance(dest, dict):
            dest = {}
        _set_in(dest, step, rest, values)
        return dest
    if step is None:
        if not isinstance(dest, list):
            return []
        for position, item in enumerate(dest):
            dest[position] = _set_value(rest, item, values)
        return dest
    if not isinstance(dest, list):
        return []
    if step < len(dest):
        dest[step] = _set_value(rest, dest[step], values)
    return dest


def payload_setter(
    key: Optional[str], values: dict[str, Any], overwrite: bool = False
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``set_payload``'s edit as a function of the old payload (returning a new one);
    with ``overwrite`` and no key, ``overwrite_payload``'s: the values, nulls included,
    become the whole payload (the server stores that payload as given).

    The key is parsed here, once, so a malformed ``key`` is InvalidInput for the request
    even when it selects no point (the server rejects the request body).
    """
    if key is None and overwrite:
        return lambda payload: copy.deepcopy(values)
    if key is None:

        def merge_top(payload: dict[str, Any]) -> dict[str, Any]:
            result = copy.deepcopy(payload)
            _merge(result, values)
            return result

        return merge_top
    steps = parse_key_path(key, SET_KEY)
    first = steps[0]
    assert isinstance(first, str)  # the grammar starts every path with a key

    def set_at(payload: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(payload)
        _set_in(result, first, steps[1:], values)
        return result

    return set_at


def set_at_key(payload: dict[str, Any], key: Optional[str], values: dict[str, Any]) -> dict[str, Any]:
    """Merge ``values`` into a copy of the payload, or into the object at ``key``: see
    :func:`payload_setter` (this is one call of it)."""
    return payload_setter(key, values)(payload)


# --------------------------------------------------------------------------- delete_payload
#
# Qdrant's ``JsonPath::value_remove``: a key removes that key, a trailing ``[]`` empties
# the array, and a trailing ``[i]`` removes nothing (the server declines it, deleting by
# index not being idempotent; an older server removed the element). Missing paths and
# steps of the wrong kind are ignored.


def _remove(step: Step, rest: KeyPath, value: Any) -> None:
    if rest:
        if isinstance(step, str):
            if isinstance(value, dict) and step in value:
                _remove(rest[0], rest[1:], value[step])
        elif step is None:
            if isinstance(value, list):
                for item in value:
                    _remove(rest[0], rest[1:], item)
        elif isinstance(value, list) and step < len(value):
            _remove(rest[0], rest[1:], value[step])
        return
    if isinstance(step, str):
        if isinstance(value, dict):
            value.pop(step, None)
    elif step is None and isinstance(value, list):
        value.clear()


def payload_deleter(keys: Sequence[str]) -> Callable[[dict[str, Any]], None]:
    """``delete_payload``'s edit of one payload in place, for every key of ``keys``.

    All keys are parsed here, once, so a malformed one is InvalidInput naming its
    position even when the request selects no point.
    """
    paths = [parse_key_path(key, f"{DELETE_KEY}[{position}]") for position, key in enumerate(keys)]

    def delete(payload: dict[str, Any]) -> None:
        for steps in paths:
            first = steps[0]
            assert isinstance(first, str)
            if len(steps) == 1:
                payload.pop(first, None)
            elif first in payload:
                _remove(steps[1], steps[2:], payload[first])

    return delete


def delete_path(payload: dict[str, Any], key: str) -> None:
    """Remove the value(s) at ``key`` in place: one key of :func:`payload_deleter`."""
    payload_deleter([key])(payload)
