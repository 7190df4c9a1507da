"""Grouped search: a query's best hits gathered by the values of a payload field (``points/query/groups``).

"Best chunk per document", "best memory per user": the query ranks points as usual, then hits are
walked best first and each joins the group of every distinct value its ``group_by`` field holds
(an array: several groups), until that group has ``group_size`` hits; groups come in the order of
their first hit and the first ``limit`` are returned. Only integers and strings make groups: a point
whose field holds any other value (a float, a bool, null, an object) joins none, as in Qdrant (its
``GroupId`` conversion fails for the whole point); a point without the field joins none either.

How deep to rank is not known in advance (a few prolific groups can hold the best thousand hits), so
the ranking is repeated with a larger limit until the first ``limit`` groups are full or the ranking
is exhausted. Each round is one consistent read of its own and the answer is regrouped from the
last round alone, so a write between rounds cannot mix two states. Ranking stops at
:data:`MAX_RANKED` points (the query API's largest limit). A query over prefetches ranks with every
prefetch's limit raised to the collection's size, as qdrant-client's local mode does (a group may
need candidates a smaller prefetch would cut).

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
    while True:
        hits = run(query.model_copy(update={"limit": depth})).points
        groups = grouped(hits, req.group_by, req.group_size)
        first = list(groups.items())[: req.limit]
        full = len(first) == req.limit and all(len(members) == req.group_size for _, members in first)
        if full or len(hits) < depth or depth >= most:
            break
        depth = min(most, depth * 4)
    if nothing_stored_wanted(req.with_payload):
        for point in hits:
            point.payload = None
    elif req.with_payload is not True:
        for point in hits:
            point.payload = None if point.payload is None else select_payload(point.payload, req.with_payload)
    return [PointGroup(id=gid, hits=members) for gid, members in first]


__all__ = ["FIRST_DEPTH", "MAX_RANKED", "GroupId", "group_ids", "grouped", "query_groups"]
