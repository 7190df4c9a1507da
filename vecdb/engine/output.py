"""Points as the API returns them: payload and vectors read only when the request asks for them.

The one place that decides what a hit or a record carries (``with_payload``, ``with_vector``),
so query, scroll and retrieve answer alike.
"""

from __future__ import annotations

from typing import Any, Optional

import lmdb
import orjson
from pydantic import TypeAdapter

from vecdb.engine.settings import DEFAULT_VECTOR
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView
from vecdb.filtering.payload_ops import select_payload
from vecdb.ids import PointId, id_to_key
from vecdb.models.points import Record
from vecdb.models.query import ScoredPoint
from vecdb.storage.points import StoredPoint

_POINTS = TypeAdapter(list[ScoredPoint])


def nothing_stored_wanted(selector: Any) -> bool:
    """``with_payload`` / ``with_vector`` that asks for nothing (an empty list still asks for ``{}``)."""
    return selector is None or selector is False


class PointOutput:
    """Builds records and scored points of one collection from its tables."""

    def __init__(self, state: CollectionState) -> None:
        self.state = state
        self.tables = state.tables

    def lookup(self, txn: lmdb.Transaction, point_id: PointId) -> Optional[StoredPoint]:
        iid = self.tables.iid_of(txn, id_to_key(point_id))
        return None if iid is None else self.tables.get(txn, iid)

    def scored_hits(
        self,
        txn_of: Any,
        view: ReadView,
        hits: list[tuple[float, int]],
        with_payload: Any,
        with_vector: Any,
    ) -> list[ScoredPoint]:
        """The API's points for ``(score, internal id)`` hits, best first. ``txn_of()`` opens the read
        transaction only when something stored is wanted."""
        iids = [iid for _, iid in hits]
        # ids and versions as of the search's view (no B-tree lookups, no record decoding); the
        # transaction, opened only when something stored is wanted, holds that same commit
        ids, versions = view.ids.ids_and_versions(iids)
        if nothing_stored_wanted(with_payload) and nothing_stored_wanted(with_vector):
            return _POINTS.validate_python(  # one validator call for all hits
                [
                    {"id": point_id, "version": version, "score": score}
                    for (score, _), point_id, version in zip(hits, ids, versions, strict=True)
                ]
            )
        txn = txn_of()
        raws: list[Optional[bytes]] = (
            self.tables.payloads_of(txn, iids) if not nothing_stored_wanted(with_payload) else [b"{}"] * len(iids)
        )
        payloads = payloads_of(raws, with_payload)
        points = [
            {"id": point_id, "version": version, "score": score, "payload": payload}
            for (score, _), point_id, version, raw, payload in zip(hits, ids, versions, raws, payloads, strict=True)
            if raw is not None  # (a consistent read finds every hit; kept as a guard)
        ]
        if not nothing_stored_wanted(with_vector):  # (no vector call per hit unless vectors are wanted)
            kept = [iid for (_, iid), raw in zip(hits, raws, strict=True) if raw is not None]
            for point, iid in zip(points, kept, strict=True):
                point["vector"] = self.vectors_out(txn, iid, with_vector)
        return _POINTS.validate_python(points)  # one validator call for all hits, not a model per hit

    def record(self, txn: lmdb.Transaction, point: StoredPoint, with_payload: Any, with_vector: Any) -> Record:
        return Record(
            id=point.id,
            payload=payload_out(point, with_payload),
            vector=self.vectors_out(txn, point.iid, with_vector),
        )

    def scored(
        self, txn: lmdb.Transaction, point: StoredPoint, score: float, with_payload: Any, with_vector: Any
    ) -> ScoredPoint:
        return ScoredPoint(
            id=point.id,
            version=point.version,
            score=score,
            payload=payload_out(point, with_payload),
            vector=self.vectors_out(txn, point.iid, with_vector),
        )

    def vectors_out(self, txn: lmdb.Transaction, iid: int, with_vector: Any) -> Any:
        """Stored vectors as Qdrant returns them: a plain list when only the default vector exists."""
        if nothing_stored_wanted(with_vector):
            return None
        wanted = None if with_vector is True else set(with_vector)
        out = {}
        for space in self.state.spaces:  # (read each time: settings are replaced whole)
            if wanted is not None and space.name not in wanted:
                continue
            row = self.tables.get_vector(txn, iid, space.index)
            if row is not None:
                out[space.name] = row.tolist()
        for sparse in self.state.sparse_spaces:
            if wanted is not None and sparse.name not in wanted:
                continue
            found = self.tables.get_sparse(txn, iid, sparse.index)
            if found is not None:  # stored sorted by index, as Qdrant returns it
                out[sparse.name] = {"indices": found[0].tolist(), "values": found[1].tolist()}
        for multi in self.state.multi_spaces:
            if wanted is not None and multi.name not in wanted:
                continue
            matrix = self.tables.get_multi(txn, iid, multi.index, multi.size)
            if matrix is not None:
                out[multi.name] = matrix.tolist()
        if list(out) == [DEFAULT_VECTOR]:
            return out[DEFAULT_VECTOR]
        return out


def payload_out(point: StoredPoint, with_payload: Any) -> Any:
    """Decode the stored JSON only when the caller asked for some of it."""
    return payload_of(point.payload_json, with_payload)


def payload_of(payload_json: bytes, with_payload: Any) -> Any:
    """:func:`payload_out` of a stored payload's JSON."""
    if nothing_stored_wanted(with_payload):
        return None
    return select_payload(orjson.loads(payload_json), with_payload)


def payloads_of(raws: list[Optional[bytes]], with_payload: Any) -> list[Any]:
    """:func:`payload_of` of several stored payloads (None where missing), decoded in one call."""
    if nothing_stored_wanted(with_payload):
        return [None] * len(raws)
    decoded = orjson.loads(b"[" + b",".join(b"null" if raw is None else raw for raw in raws) + b"]")
    if with_payload is True:
        return decoded  # type: ignore[no-any-return]
    return [None if payload is None else select_payload(payload, with_payload) for payload in decoded]
