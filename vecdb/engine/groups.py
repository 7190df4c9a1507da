"""Grouped search: a query's best hits gathered by the values of a payload field (``points/query/groups``).

"Best chunk per document", "best memory per user": the query ranks points as usual, then hits are
walked best first and each joins the group of every distinct value its ``group_by`` field holds
(an array: several groups), until that group has ``group_size`` hits; groups come in the order of
their first hit and the first ``limit`` are returned. Only integers and strings make groups: a point
whose field holds any other value (a float, a bool, null, an object) joins none, as in Qdrant (its
``GroupId`` conversion fails for the whole point); a point without the field joins none either.

The first ``limit`` groups are those of the best hits, so the ranking is read only as deep as it
takes to meet ``limit`` distinct groups (x4 per round). Groups still short of ``group_size`` are then
completed from a ranking of their own points alone (the same query, filtered to those group values:
the same order as the whole ranking), deepened until each is full or holds all its points; a
chunk-per-document store so costs two small searches, not a ranking of the collection. Each round is
one consistent read of its own, and a group's hits all come from one round. Ranking stops at
:data:`MAX_RANKED` points (the query API's largest limit). A query over prefetches ranks with every
prefetch's limit raised to the collection's size, as qdrant-client's local mode does (a group may
need candidates a smaller prefetch would cut), and is only deepened.

The lookups of ``with_lookup`` (a group id read as a point id of another collection) are the
service's: it alone holds other collections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

from vecdb.engine.output import nothing_stored_wanted
from vecdb.filtering.keypath import parse_key_path
from vecdb.filtering.payload_ops import select_payload
from vecdb.filtering.values import extract_values
from vecdb.models.filters import Filter
from vecdb.models.query import (
    MAX_LIMIT,
    PointGroup,
    Prefetch,
    QueryGroupsRequest,
    QueryRequest,
    QueryResponse,
    ScoredPoint,
)

GroupId = Union[int, str]
MAX_RANKED = MAX_LIMIT
"""The deepest ranking a grouped query reads."""
FIRST_DEPTH = 64
"""The first round ranks ``max(FIRST_DEPTH, 4 x limit x group_size)`` points; each further round 4x more."""


def group_ids(payload: Optional[dict[str, Any]], key: str) -> list[GroupId]:
    """The distinct groups of one point, in payload order (none when any value cannot be a group id)."""
    if not payload:
        return []
    values = extract_values(payload, key)
    if any(type(value) not in (int, str) for value in values):
        return []
    return list(dict.fromkeys(values))


def grouped(points: list[ScoredPoint], key: str, group_size: int) -> dict[GroupId, list[ScoredPoint]]:
    """Hits by group, best first, at most ``group_size`` each; groups in the order of their first hit."""
    groups: dict[GroupId, list[ScoredPoint]] = {}
    for point in points:
        for gid in group_ids(point.payload, key):
            hits = groups.setdefault(gid, [])
            if len(hits) < group_size:
                hits.append(point)
    return groups


def _deep_prefetch(prefetch: list[Prefetch], limit: int) -> list[Prefetch]:
    """A copy of a prefetch tree with every stage's limit set to ``limit``."""
    return [
        stage.model_copy(
            update={
                "limit": limit,
                "prefetch": None if stage.prefetch is None else _deep_prefetch(stage.prefetch, limit),
            }
        )
        for stage in prefetch
    ]


def query_groups(
    run: Callable[[QueryRequest], QueryResponse], req: QueryGroupsRequest, points: int
) -> list[PointGroup]:
    """The first ``req.limit`` groups of the query ``req`` describes; ``run`` answers one query of the
    collection, which holds ``points`` live points. Lookups are left to the caller."""
    parse_key_path(req.group_by, "group_by")  # (a malformed key path is refused before any read)
    most = max(1, min(points, MAX_RANKED))
    query = QueryRequest(
        prefetch=None if req.prefetch is None else _deep_prefetch(req.prefetch, most),
        query=req.query,
        using=req.using,
        filter=req.filter,
        params=req.params,
        score_threshold=req.score_threshold,
        with_vector=req.with_vector,
        with_payload=True,  # (the group field is read from it; what is returned is selected below)
        lookup_from=req.lookup_from,
    )
    depth = min(most, max(FIRST_DEPTH, 4 * req.limit * req.group_size))
    while True:  # until the first `limit` groups are known: they are those of the best hits
        hits = run(query.model_copy(update={"limit": depth}))
        groups = grouped(hits.points, req.group_by, req.group_size)
        exhausted = len(hits.points) < depth or depth >= most
        if exhausted or (len(groups) >= req.limit and (req.prefetch is None or _full(groups, req))):
            break
        depth = min(most, depth * 4)
    first = dict(list(groups.items())[: req.limit])
    short = [gid for gid, members in first.items() if len(members) < req.group_size]
    if short and not exhausted and req.prefetch is None:
        _fill(run, query, req, first, short, most)
    _select_payloads([p for members in first.values() for p in members], req.with_payload)
    return [PointGroup(id=gid, hits=members) for gid, members in first.items()]


def _full(groups: dict[GroupId, list[ScoredPoint]], req: QueryGroupsRequest) -> bool:
    """Whether the first ``req.limit`` groups hold ``req.group_size`` hits each."""
    return all(len(members) >= req.group_size for members in list(groups.values())[: req.limit])


def _fill(
    run: Callable[[QueryRequest], QueryResponse],
    query: QueryRequest,
    req: QueryGroupsRequest,
    first: dict[GroupId, list[ScoredPoint]],
    short: list[GroupId],
    most: int,
) -> None:
    """Complete the groups in ``short`` from a ranking of their own points alone (the query with a
    filter on those group values): the same order as the whole ranking, without ranking the points
    of other groups. Deepened until each is full or holds all its points."""
    ints = [g for g in short if isinstance(g, int)]
    strs = [g for g in short if isinstance(g, str)]
    members: list[Any] = []
    if ints:
        members.append({"key": req.group_by, "match": {"any": ints}})
    if strs:
        members.append({"key": req.group_by, "match": {"any": strs}})
    only = Filter.model_validate({"must": [*([req.filter] if req.filter is not None else []), {"should": members}]})
    depth = min(most, max(FIRST_DEPTH, 4 * len(short) * req.group_size))
    while True:
        hits = run(query.model_copy(update={"limit": depth, "filter": only})).points
        groups = grouped(hits, req.group_by, req.group_size)
        if all(len(groups.get(g, ())) >= req.group_size for g in short) or len(hits) < depth or depth >= most:
            break
        depth = min(most, depth * 4)
    for gid in short:
        first[gid] = groups.get(gid, first[gid])


def _select_payloads(points: list[ScoredPoint], with_payload: Any) -> None:
    """Each hit's payload as ``with_payload`` asks (a hit in several groups is one object)."""
    if with_payload is True:
        return
    for point in {id(p): p for p in points}.values():
        if nothing_stored_wanted(with_payload) or point.payload is None:
            point.payload = None
        else:
            point.payload = select_payload(point.payload, with_payload)


__all__ = ["FIRST_DEPTH", "MAX_RANKED", "GroupId", "group_ids", "grouped", "query_groups"]
