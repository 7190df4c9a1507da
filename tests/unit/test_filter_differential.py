"""Differential tests against qdrant-client's local mode: key paths, filters, payload edits.

Local mode (``qdrant_client/local/`` in site-packages) mirrors the server in plain Python,
so it is the reference. Hypothesis generates payloads built from the shapes that make key
paths interesting (arrays, arrays of objects, nested objects, nulls, empty arrays,
missing keys) over a three-letter key alphabet, so paths such as ``a[].b[].c`` hit, and
compares:

* the key grammar: :func:`vecdb.filtering.keypath.parse_key_path` against local mode's
  ``parse_json_path`` on generated strings;
* filters: the ids that ``compile_filter`` passes, and those a ``PayloadIndex`` with
  indexes on the keys answers, against local mode's ``check_filter``;
* payload edits: ``set_payload`` with and without a nested ``key`` and ``delete_payload``
  through the embedded client (``vecdb.Client(path=...)``) against ``QdrantClient(":memory:")``.

The explicit cases at the end are the disagreements these tests found, pinned one by one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient
from qdrant_client.http import models as qm
from qdrant_client.local.json_path_parser import JsonPathItemType, parse_json_path
from qdrant_client.local.payload_filters import check_filter

import vecdb
from tests.helpers import FakePoint
from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.keypath import parse_key_path
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.filtering.payload_ops import payload_deleter, payload_setter, select_payload

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NAMES = ["a", "b", "c"]
FILTER_KEYS = ["a", "b", "a.b", "a[]", "a[].b", "a[0]", "a[1].b", "a[].b[].c", "a.b[0]", "a.b.c", '"a"', "c[].a"]
EDIT_KEYS = ["a", "b", "a.b", "a[]", "a[].b", "a[0]", "a[1]", "a[0].b", "a.b[]", "a[].b[].c", "a.b.c", '"a".b']

# --------------------------------------------------------------------------- strategies

# few distinct leaves, so that match and range conditions hit often; 1 / 1.0 / true stay distinct
scalars = st.sampled_from([None, True, False, 0, 1, 2, -1, 1.0, 1.5, "x", "y", ""])
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
    max_leaves=8,
)
# values shaped for the paths under test (a[].b, a[].b[].c, a.b[0]) as well as anything
shaped = st.recursive(
    st.one_of(scalars, st.lists(scalars, max_size=3)),
    lambda children: (
        st.lists(st.dictionaries(st.sampled_from(NAMES), children, max_size=2), max_size=3)
        | st.dictionaries(st.sampled_from(NAMES), children, max_size=2)
    ),
    max_leaves=8,
)
payloads = st.fixed_dictionaries(
    {}, optional={"a": st.one_of(shaped, shaped, json_values), "b": json_values, "c": st.one_of(shaped, json_values)}
)
bound_ops = st.sampled_from(["lt", "gt", "gte", "lte"])


@st.composite
def bounds(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """One or two of lt/gt/gte/lte."""
    ops = draw(st.lists(bound_ops, min_size=1, max_size=2, unique=True))
    return {op: draw(values) for op in ops}


match_values = st.sampled_from([0, 1, 2, -1, True, False, "x", "y", ""])
match_lists = st.one_of(
    st.lists(st.sampled_from([0, 1, 2, -1]), min_size=1, max_size=3),
    st.lists(st.sampled_from(["x", "y", ""]), min_size=1, max_size=2),
)
matches = st.one_of(
    st.builds(lambda v: {"value": v}, match_values),
    st.builds(lambda v: {"any": v}, match_lists),
    st.builds(lambda v: {"except": v}, match_lists),
)
ranges = bounds(st.sampled_from([-1, 0, 0.5, 1, 1.5, 2]))


@st.composite
def field_conditions(draw: st.DrawFn, keys: list[str] = FILTER_KEYS) -> dict[str, Any]:
    key = draw(st.sampled_from(keys))
    kind = draw(st.sampled_from(["values_count", "is_null", "is_empty", "match", "range", "null_cond", "empty_cond"]))
    if kind == "values_count":
        return {"key": key, "values_count": draw(bounds(st.integers(0, 3)))}
    if kind in ("is_null", "is_empty"):
        return {"key": key, kind: draw(st.booleans())}
    if kind == "null_cond":
        return {"is_null": {"key": key}}
    if kind == "empty_cond":
        return {"is_empty": {"key": key}}
    if kind == "match":
        return {"key": key, "match": draw(matches)}
    return {"key": key, "range": draw(ranges)}


@st.composite
def filters(draw: st.DrawFn, conditions: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """must / must_not / should clauses of a few conditions, sometimes a nested filter inside."""
    clause = st.lists(st.one_of(conditions, conditions, nested_conditions(conditions)), min_size=1, max_size=2)
    names = draw(st.lists(st.sampled_from(["must", "must_not", "should"]), min_size=1, max_size=2, unique=True))
    return {name: draw(clause) for name in names}


@st.composite
def nested_conditions(draw: st.DrawFn, conditions: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    return {"nested": {"key": draw(st.sampled_from(["a", "a[]", "a.b"])), "filter": {"must": [draw(conditions)]}}}


def local_ids(flt: dict[str, Any], points: list[dict[str, Any]]) -> set[int]:
    parsed = qm.Filter.model_validate(flt)
    return {i for i, payload in enumerate(points) if check_filter(parsed, payload, i, {})}


def vecdb_ids(flt: dict[str, Any], points: list[dict[str, Any]]) -> set[int]:
    predicate = compile_filter(flt)
    return {i for i, payload in enumerate(points) if predicate is None or predicate(FakePoint(i, payload))}


# --------------------------------------------------------------------------- key grammar

key_texts = st.text(alphabet=list('ab_-.[]0"9 é'), max_size=9) | st.sampled_from(
    ["a", "a.b", "a[]", "a[0]", "a[].b[].c", '"a.b"', 'a."b c"[1]', '""', "a[18446744073709551616]", "a[٣]"]
)


def _local_steps(key: str) -> Optional[tuple[Any, ...]]:
    try:
        items = parse_json_path(key)
    except ValueError:
        return None
    return tuple(
        item.key
        if item.item_type == JsonPathItemType.KEY
        else (None if item.item_type == JsonPathItemType.WILDCARD_INDEX else item.index)
        for item in items
    )


@SETTINGS
@given(key_texts)
def test_key_grammar_matches_local_mode(key: str) -> None:
    """Same accepted keys, same steps (backslashes, where the two differ, are not generated)."""
    want = _local_steps(key)
    try:
        got: Optional[tuple[Any, ...]] = parse_key_path(key, "filter key")
    except InvalidInput as error:
        assert f"filter key {key!r}" in str(error)
        got = None
    assert got == want, key


@pytest.mark.parametrize("key", ['"a\\b"', 'x."\\\\"'])
def test_backslash_in_quoted_key_is_rejected_as_the_server_does(key: str) -> None:
    with pytest.raises(InvalidInput, match="cannot contain"):
        parse_key_path(key)


# --------------------------------------------------------------------------- filters


@SETTINGS
@given(st.lists(payloads, min_size=3, max_size=8), st.lists(filters(field_conditions()), min_size=3, max_size=3))
def test_filter_matches_local_mode(points: list[dict[str, Any]], flts: list[dict[str, Any]]) -> None:
    for flt in flts:
        assert vecdb_ids(flt, points) == local_ids(flt, points), flt


INDEX_TYPES = ["integer", "float", "keyword", "bool"]
INDEXED_KEYS = ["a", "a.b", "a[].b", "a[0]", "a[].b[].c"]

# payloads shaped for INDEXED_KEYS, so that indexed conditions select some points and not others
_leaves = st.one_of(scalars, scalars, st.lists(scalars, max_size=3))
_c_objects = st.lists(st.one_of(st.builds(lambda v: {"c": v}, _leaves), scalars), max_size=3)
_b_objects = st.builds(lambda v: {"b": v}, st.one_of(_leaves, _c_objects))
index_payloads = st.one_of(
    st.builds(lambda v: {"a": v}, _leaves),  # a, a[0]
    st.builds(lambda v: {"a": v}, _b_objects),  # a.b
    st.builds(lambda v: {"a": v}, st.lists(st.one_of(_b_objects, scalars), max_size=3)),  # a[].b, a[].b[].c
    payloads,  # anything else, missing keys included
)
_MATCHES_FOR = {  # what an index of each type answers
    "keyword": st.one_of(
        st.builds(lambda v: {"value": v}, st.sampled_from(["x", "y", ""])),
        st.builds(lambda v: {"any": v}, st.lists(st.sampled_from(["x", "y", ""]), min_size=1, max_size=2)),
        st.builds(lambda v: {"except": v}, st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2)),
    ),
    "integer": st.one_of(
        st.builds(lambda v: {"value": v}, st.sampled_from([0, 1, 2, -1])),
        st.builds(lambda v: {"any": v}, st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=2)),
        st.builds(lambda v: {"except": v}, st.lists(st.sampled_from([0, 1]), min_size=1, max_size=2)),
    ),
    "bool": st.builds(lambda v: {"value": v}, st.booleans()),
}


@st.composite
def indexed_conditions(draw: st.DrawFn, schema: dict[str, str]) -> dict[str, Any]:
    """A match or range on an indexed key, of a kind that key's index answers."""
    key = draw(st.sampled_from(sorted(schema)))
    kind = schema[key]
    if kind in ("integer", "float") and (kind == "float" or draw(st.booleans())):
        return {"key": key, "range": draw(ranges)}
    return {"key": key, "match": draw(_MATCHES_FOR[kind])}


@st.composite
def index_filters(draw: st.DrawFn, schema: dict[str, str]) -> dict[str, Any]:
    """Filters the index answers whole (match and range on indexed keys), or with any condition mixed in."""
    indexed = indexed_conditions(schema)
    conditions = draw(st.sampled_from([indexed, st.one_of(indexed, indexed, field_conditions())]))
    names = draw(st.lists(st.sampled_from(["must", "must_not", "should"]), min_size=1, max_size=2, unique=True))
    return {name: draw(st.lists(conditions, min_size=1, max_size=2)) for name in names}


@settings(SETTINGS, max_examples=150)
@given(
    st.lists(index_payloads, min_size=3, max_size=8),
    st.lists(st.sampled_from(INDEX_TYPES), min_size=len(INDEXED_KEYS), max_size=len(INDEXED_KEYS)),
    st.data(),
)
def test_payload_index_matches_local_mode(points: list[dict[str, Any]], types: list[str], data: st.DataObject) -> None:
    """Match and range on indexed keys, answered from the index (``filter_mask``); where the index
    cannot answer the whole filter, ``candidates_mask`` must still hold every matching point."""
    schema = dict(zip(INDEXED_KEYS, types, strict=True))
    index = PayloadIndex(schema)
    index.update_many(list(range(len(points))), points)
    for flt in data.draw(st.lists(index_filters(schema), min_size=3, max_size=3)):
        want = local_ids(flt, points)
        mask = index.filter_mask(flt, len(points))
        if mask is not None:
            assert {int(i) for i in mask.nonzero()[0]} == want, flt
        candidates = index.candidates_mask(flt, len(points))
        if candidates is not None:
            assert want <= {int(i) for i in candidates.nonzero()[0]}, flt


# --------------------------------------------------------------------------- payload edits

set_values = st.dictionaries(st.sampled_from(NAMES), st.one_of(st.none(), json_values), min_size=1, max_size=2)
edit_keys = st.one_of(st.none(), st.sampled_from(EDIT_KEYS))


@pytest.fixture(scope="module")
def local() -> Iterator[QdrantClient]:
    """Local mode with one collection ``c``; each use rewrites point 1 first."""
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config=qm.VectorParams(size=2, distance=qm.Distance.DOT))
    yield client
    client.close()


def _reset(clients: tuple[Any, ...], payload: dict[str, Any]) -> None:
    for client in clients:
        client.upsert("c", [qm.PointStruct(id=1, vector=[1.0, 0.0], payload=copy.deepcopy(payload))])


def _payloads(clients: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [client.retrieve("c", [1])[0].payload or {} for client in clients]


def local_set(local: QdrantClient, payload: dict[str, Any], key: Optional[str], values: dict[str, Any]) -> Any:
    _reset((local,), payload)
    local.set_payload("c", payload=copy.deepcopy(values), points=[1], key=key)
    return _payloads((local,))[0]


@SETTINGS
@given(payload=payloads, key=edit_keys, values=set_values)
def test_payload_setter_matches_local_mode(
    local: QdrantClient, payload: dict[str, Any], key: Optional[str], values: dict[str, Any]
) -> None:
    before = copy.deepcopy(payload)
    assert payload_setter(key, values)(payload) == local_set(local, payload, key, values), (payload, key, values)
    assert payload == before  # the old payload is not edited in place


@SETTINGS
@given(payload=payloads, keys=st.lists(st.sampled_from(EDIT_KEYS), min_size=1, max_size=3))
def test_payload_deleter_matches_local_mode(local: QdrantClient, payload: dict[str, Any], keys: list[str]) -> None:
    _reset((local,), payload)
    local.delete_payload("c", keys=keys, points=[1])
    mine = copy.deepcopy(payload)
    payload_deleter(keys)(mine)
    assert mine == _payloads((local,))[0], (payload, keys)


@pytest.fixture
def clients(tmp_path: Path, local: QdrantClient) -> Iterator[tuple[Any, QdrantClient]]:
    """The embedded vecdb client and local mode, each with one collection ``c``."""
    mine = vecdb.Client(path=tmp_path / "data")
    mine.create_collection("c", vectors_config={"size": 2, "distance": "Dot"})
    yield mine, local
    mine.close()


@settings(SETTINGS, max_examples=60)
@given(payload=payloads, key=edit_keys, values=set_values)
def test_set_payload_through_the_embedded_client(
    clients: tuple[Any, QdrantClient], payload: dict[str, Any], key: Optional[str], values: dict[str, Any]
) -> None:
    _reset(clients, payload)
    for client in clients:
        client.set_payload("c", payload=copy.deepcopy(values), points=[1], key=key)
    mine, theirs = _payloads(clients)
    assert mine == theirs, (payload, key, values)


@settings(SETTINGS, max_examples=60)
@given(payload=payloads, keys=st.lists(st.sampled_from(EDIT_KEYS), min_size=1, max_size=3))
def test_delete_payload_through_the_embedded_client(
    clients: tuple[Any, QdrantClient], payload: dict[str, Any], keys: list[str]
) -> None:
    _reset(clients, payload)
    for client in clients:
        client.delete_payload("c", keys=keys, points=[1])
    mine, theirs = _payloads(clients)
    assert mine == theirs, (payload, keys)


def test_overwrite_payload_keeps_nulls(clients: tuple[Any, QdrantClient]) -> None:
    """Only a merge drops null values; an overwrite stores the payload as given."""
    _reset(clients, {"a": 1})
    for client in clients:
        client.overwrite_payload("c", payload={"b": None, "c": 2}, points=[1])
    mine, theirs = _payloads(clients)
    assert mine == theirs == {"b": None, "c": 2}


# --------------------------------------------------------------------------- one grammar for every key


@pytest.mark.parametrize("key", ["a b", "a..b", ".a", "[0]", "a.", "a/b", "a[x]", '"a', "a[0]x"])
def test_edit_keys_a_filter_rejects_are_rejected(clients: tuple[Any, QdrantClient], key: str) -> None:
    """set_payload's key and delete_payload's keys share the filter grammar, and a bad key is
    an error even when the request selects no point (local mode and the server reject the body)."""
    mine, theirs = clients
    with pytest.raises(InvalidInput) as raised:
        mine.set_payload("c", payload={"x": 1}, points={"must": [{"has_id": [42]}]}, key=key)
    assert "set_payload key" in str(raised.value) and repr(key) in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        mine.delete_payload("c", keys=["ok", key], points={"must": [{"has_id": [42]}]})
    assert "delete_payload keys[1]" in str(raised.value) and repr(key) in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        compile_filter({"must": [{"key": key, "match": {"value": 1}}]})
    assert "filter key" in str(raised.value)
    with pytest.raises(ValueError):
        theirs.set_payload("c", payload={"x": 1}, points=[], key=key)


def test_with_payload_selector_uses_the_same_grammar() -> None:
    assert select_payload({"a b": 1, "a": {"b": 2}}, ['"a b"', "a.b"]) == {"a b": 1, "a": {"b": 2}}
    with pytest.raises(InvalidInput, match="with_payload key 'a b'"):
        select_payload({"a b": 1}, ["a b"])


# --------------------------------------------------------------------------- the disagreements found, pinned
#
# (payload, key, values) -> what local mode (and the server) store; vecdb stored otherwise before.
SET_CASES = [
    # a null value removes its key (the server's merge_map); vecdb stored null
    ({"a": 1, "b": 2}, None, {"a": None}, {"b": 2}),
    ({"a": {"x": 1}}, "a", {"x": None, "y": 2}, {"a": {"y": 2}}),
    # an array step on a missing or non-array value makes it []; vecdb made {}
    ({}, "a[0]", {"x": 1}, {"a": []}),
    ({}, "a[].b", {"x": 1}, {"a": []}),
    ({"a": {"c": 1}}, "a[]", {"x": 1}, {"a": []}),
    ({"a": 5}, "a.b[]", {"x": 1}, {"a": {"b": []}}),
    # an object step through an array or scalar replaces it with an object; vecdb left it alone
    ({"a": [1, 2]}, "a.b", {"x": 1}, {"a": {"b": {"x": 1}}}),
    ({"a": [{"b": 1}], "c": 0}, "a.b", {"x": 1}, {"a": {"b": {"x": 1}}, "c": 0}),
    # the path ends at a non-object (here an array): it becomes the values; vecdb left it alone
    ({"a": [1, 2]}, "a", {"x": 1}, {"a": {"x": 1}}),
    ({"a": ["s", {"k": 1}]}, "a[0]", {"x": 1}, {"a": [{"x": 1}, {"k": 1}]}),
    # [] over elements that are not objects replaces each with the values; vecdb skipped them
    ({"a": [1, {"k": 1}, [2]]}, "a[]", {"x": 1}, {"a": [{"x": 1}, {"k": 1, "x": 1}, {"x": 1}]}),
    ({"a": ["s", None]}, "a[].b", {"x": 1}, {"a": [{"b": {"x": 1}}, {"b": {"x": 1}}]}),
]


@pytest.mark.parametrize(("payload", "key", "values", "want"), SET_CASES)
def test_set_payload_disagreements_found(
    local: QdrantClient, payload: dict[str, Any], key: Optional[str], values: dict[str, Any], want: dict[str, Any]
) -> None:
    assert local_set(local, payload, key, values) == want  # the reference says so
    assert payload_setter(key, values)(payload) == want


DELETE_CASES = [
    # a trailing index deletes nothing (the server declines it: not idempotent); vecdb removed the element
    ({"a": [1, 2, 3]}, ["a[0]"], {"a": [1, 2, 3]}),
    ({"a": [{"b": [1, 2]}]}, ["a[].b[1]"], {"a": [{"b": [1, 2]}]}),
    # what does delete, as before
    ({"a": [{"b": 1, "c": 2}, {"b": 3}]}, ["a[].b"], {"a": [{"c": 2}, {}]}),
    ({"a": [1, 2], "b": 1}, ["a[]", "b"], {"a": []}),
]


@pytest.mark.parametrize(("payload", "keys", "want"), DELETE_CASES)
def test_delete_payload_disagreements_found(payload: dict[str, Any], keys: list[str], want: dict[str, Any]) -> None:
    mine = copy.deepcopy(payload)
    payload_deleter(keys)(mine)
    assert mine == want
