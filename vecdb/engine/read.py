"""The read path: query (exact top-k), scroll, count and retrieve.

Searches read the in-memory snapshot without locks; a filter becomes a boolean
mask over internal ids from the payload indexes or a scan of the stored
payloads; only the final top-k points are read back from LMDB, in one read
transaction.

A read sees one write's state whole: the snapshot, the payload indexes and the
LMDB transaction it uses are all as of the same commit (``consistent_read``).
A write lands between LMDB's commit and the snapshot's publication, so a read
that meets such a moment starts again; a reader never sees part of a batch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import lmdb
import numpy as np
from pydantic import TypeAdapter

from vecdb.engine import mmr, planner
from vecdb.engine.documents import resolve_queries
from vecdb.engine.planner import AnnState, Explain
from vecdb.engine.point_view import StoredPointView, stored_has_vector
from vecdb.engine.settings import DEFAULT_VECTOR, VectorSpace, index_config, space_by_name, space_index
from vecdb.engine.views import Snapshot, prepare_query
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.filtering.evaluate import Predicate, compile_filter
from vecdb.filtering.payload_ops import select_payload
from vecdb.ids import PointId, id_to_key
from vecdb.index.flat import higher_is_better
from vecdb.limits import Limits
from vecdb.models.filters import Filter
from vecdb.models.points import CountRequest, PointRequest, Record, ScrollRequest, ScrollResult, SparseVector
from vecdb.models.query import Mmr, NearestQuery, QueryRequest, QueryResponse, ScoredPoint
from vecdb.storage.points import PointsTables, StoredPoint

if TYPE_CHECKING:
    from vecdb.storage.env import Environment

DEFAULT_SCROLL_LIMIT = 10
_POINTS = TypeAdapter(list[ScoredPoint])
READ_TRIES = 8
"""Optimistic tries of a read that writes keep overtaking, before it holds writes off to finish."""
T = TypeVar("T")


class ReadPath:
    """Mixin of :class:`vecdb.engine.collection.Collection` holding every read."""

    env: Environment
    tables: PointsTables
    spaces: list[VectorSpace]
    snapshot: Snapshot
    settings: dict[str, Any]
    ann: dict[int, AnnState]
    search_device: str
    _default_knobs: Optional[tuple[dict[str, Any], planner.SearchKnobs]] = None
    limits: Limits
    publishing: int
    recent_snapshots: dict[int, Snapshot]
    _write_lock: threading.Lock

    def consistent_read(self, body: Callable[[Snapshot, ReadOnDemand], T], eager: bool = False) -> T:
        """Run ``body`` against one write's state: a snapshot, and a read transaction of the same
        commit, while the payload indexes stay as that commit left them.

        ``eager`` reads (those that will read LMDB) open the transaction first and take the
        snapshot of its commit: the current one, or one of the few kept before it. Others take the
        current snapshot and check a transaction opened later. A read that a write overtakes
        anyway starts again; after ``READ_TRIES`` it runs holding the write lock, so a storm of
        writes cannot starve it."""
        for _ in range(READ_TRIES):
            mark = self.publishing
            reader = ReadOnDemand(self.env, self.tables, lambda: self.publishing, mark)
            try:
                with reader:
                    if eager:
                        snap = self._snapshot_of(self.tables.committed_seq(reader.txn()))
                        if snap is None:
                            continue
                        if snap is not self.snapshot:
                            reader.index_is_newer()
                    else:
                        snap = self.snapshot
                    reader.expect(snap.seq)
                    return body(snap, reader)
            except StaleRead:
                time.sleep(0)  # let the overtaking write publish
        with self._write_lock:
            snap = self.snapshot
            with ReadOnDemand(self.env) as reader:
                return body(snap, reader)

    def _snapshot_of(self, seq: int) -> Optional[Snapshot]:
        """The snapshot after write ``seq``: current, kept, or about to be published (LMDB commits a
        write just before its snapshot is published); None if no longer kept."""
        for _ in range(1000):
            snap = self.snapshot
            if snap.seq == seq:
                return snap
            if snap.seq > seq:
                return self.recent_snapshots.get(seq)
            time.sleep(0)
        return None

    # --- query ---------------------------------------------------------------------------

    def query(self, req: QueryRequest) -> QueryResponse:
        return self.query_batch([req])[0]

    def query_batch(self, reqs: list[QueryRequest]) -> list[QueryResponse]:
        """Answer several queries from one snapshot and at most one read transaction.

        Queries that share their vector space, filter, search params and depth
        are searched together: one filter mask, then one BLAS product or one
        faiss call for the whole group. A query that needs nothing from LMDB
        (no payload, no vector, a filter the payload indexes answer) opens no
        transaction: ids and versions come from the snapshot.
        """
        # texts embedded before the read starts: a read may run again, or end under the write lock
        reqs = resolve_queries(reqs, self.settings.get("embedding"))
        for i, req in enumerate(reqs):
            self.limits.check_results(req.limit, req.offset, "limit" if len(reqs) == 1 else f"searches[{i}].limit")
            if req.prefetch:
                raise Unsupported("prefetch: multi-stage queries are not supported yet")
            if req.lookup_from is not None:
                raise Unsupported("lookup_from: is not supported yet")
        eager = not all(
            r.filter is None and _nothing_stored_wanted(r.with_payload) and _nothing_stored_wanted(r.with_vector)
            for r in reqs
        )
        return self.consistent_read(lambda snap, reader: self._query_batch(snap, reader, reqs), eager)

    def _query_batch(self, snap: Snapshot, reader: ReadOnDemand, reqs: list[QueryRequest]) -> list[QueryResponse]:
        out: list[Optional[QueryResponse]] = [None] * len(reqs)
        groups: dict[Any, list[tuple[int, VectorSpace, np.ndarray, Optional[PointId]]]] = {}
        for pos, req in enumerate(reqs):
            if req.query is None:
                out[pos] = self._query_without_vector(reader.txn(), req)
                continue
            space, vector, exclude = self._query_vector(reader, req)
            key: Any = pos
            if len(reqs) > 1:
                key = (
                    space.index,
                    req.offset + req.limit,
                    req.params.model_dump_json() if req.params else None,
                    req.filter.model_dump_json() if req.filter is not None else None,
                )
            if exclude is not None:
                key = ("by-id", pos)  # its own point is left out: a mask of its own
            if _mmr_of(req) is not None:
                key = ("mmr", pos)  # its depth and re-ranking are its own
            groups.setdefault(key, []).append((pos, space, vector, exclude))
        for members in groups.values():
            for pos, response in self._query_group(reader, snap, [reqs[m[0]] for m in members], members):
                out[pos] = response
        return [r for r in out if r is not None]

    def _query_group(
        self,
        reader: ReadOnDemand,
        snap: Snapshot,
        reqs: list[QueryRequest],
        members: list[tuple[int, VectorSpace, np.ndarray, Optional[PointId]]],
    ) -> list[tuple[int, QueryResponse]]:
        first = reqs[0]
        space = members[0][1]
        plan = Explain()
        t0 = time.perf_counter()
        mask = self._filter_mask(reader, first.filter, snap)
        exclude = members[0][3]
        if exclude is not None:
            iid = self.tables.iid_of(reader.txn(), id_to_key(exclude))
            if iid is not None and iid < snap.n:
                if mask is None:
                    mask = np.ones(snap.n, dtype=bool)
                mask[iid] = False
        plan.timings_ms["filter"] = (time.perf_counter() - t0) * 1e3
        queries = members[0][2][None, :] if len(members) == 1 else np.stack([m[2] for m in members])
        diversify = _mmr_of(first)
        depth = first.offset + first.limit
        if diversify is not None:  # MMR re-ranks the nearest candidates; the offset applies after it
            depth = diversify.candidates_limit if diversify.candidates_limit is not None else first.limit
        all_hits = planner.search(
            snap,
            space,
            self.ann.get(space.index),
            queries,
            depth,
            mask,
            self._knobs(first),
            plan,
        )
        better = higher_is_better(space.distance)
        t0 = time.perf_counter()
        out = []
        for (pos, *_), req, hits in zip(members, reqs, all_hits):
            if diversify is None:
                hits = hits[req.offset :]
            if req.score_threshold is not None:
                t = req.score_threshold
                hits = [(s, i) for s, i in hits if (s > t if better else s < t)]
            if diversify is not None:
                hits = _diversified(snap, space, hits, diversify, req.offset + req.limit)[req.offset :]
            out.append((pos, QueryResponse(points=self._scored_hits(reader, snap, hits, req))))
        plan.timings_ms["fetch"] = (time.perf_counter() - t0) * 1e3
        if any(r.explain for r in reqs):
            details = plan.as_dict()
            details["batched_queries"] = len(reqs)
            for (_, response), req in zip(out, reqs):
                if req.explain:
                    response.explain = details
        return out

    def _scored_hits(
        self, reader: ReadOnDemand, snap: Snapshot, hits: list[tuple[float, int]], req: QueryRequest
    ) -> list[ScoredPoint]:
        """The API's points for ``(score, internal id)`` hits, best first."""
        iids = [iid for _, iid in hits]
        if _nothing_stored_wanted(req.with_payload) and _nothing_stored_wanted(req.with_vector):
            # ids and versions as of the search's snapshot: no transaction, no B-tree lookups
            where = np.asarray(iids, dtype=np.int64)
            return _POINTS.validate_python(
                [  # one validator call for all hits
                    {"id": point_id, "version": version, "score": score}
                    for (score, _), point_id, version in zip(hits, snap.ids.ids_of(where), snap.ids.versions_of(where))
                ]
            )
        txn = reader.txn()
        return [
            self._scored(txn, stored, score, req.with_payload, req.with_vector)
            for (score, _), stored in zip(hits, self.tables.get_many(txn, iids))
            if stored is not None  # (a consistent read finds every hit; kept as a guard)
        ]

    def _knobs(self, req: QueryRequest) -> planner.SearchKnobs:
        if req.params is None:  # the common case: the collection's defaults, worked out once per settings
            cached = self._default_knobs
            if cached is not None and cached[0] is self.settings and cached[1].device == self.search_device:
                return cached[1]
            knobs = self._knobs_for(req)
            self._default_knobs = (self.settings, knobs)
            return knobs
        return self._knobs_for(req)

    def _knobs_for(self, req: QueryRequest) -> planner.SearchKnobs:
        cfg = self.settings["hnsw_config"]
        index_cfg = index_config(self.settings)
        params = req.params
        quant = params.quantization if params else None
        return planner.SearchKnobs(
            exact=bool(params and params.exact),
            hnsw_ef=params.hnsw_ef if params else None,
            ef_default=max(planner.DEFAULT_EF, int(cfg.get("ef_construct") or 0)),
            full_scan_threshold_kb=int(cfg.get("full_scan_threshold") or 0),
            nprobe=params.nprobe if params else None,
            oversampling=quant.oversampling if quant else None,
            rescore=True if quant is None or quant.rescore is None else bool(quant.rescore),
            ignore_quantization=bool(quant and quant.ignore),
            device=self.search_device,
            index_type=index_cfg["type"],
        )

    def _query_vector(
        self, reader: ReadOnDemand, req: QueryRequest
    ) -> tuple[VectorSpace, np.ndarray, Optional[PointId]]:
        query = req.query
        if isinstance(query, NearestQuery):
            if query.mmr is not None and isinstance(query.nearest, SparseVector):
                raise Unsupported("query.mmr: maximal marginal relevance over sparse vectors is not supported yet")
            query = query.nearest
        elif isinstance(query, dict):
            kind = next(iter(query), "?")
            raise Unsupported(f"query.{kind}: this query kind is not supported yet; use nearest")
        space = space_by_name(self.spaces, req.using)
        if isinstance(query, SparseVector):
            raise Unsupported("query: sparse vectors are not supported yet")
        if isinstance(query, (int, str)):
            txn = reader.txn()
            stored = self._lookup(txn, query)
            if stored is None:
                raise NotFound(f"No point with id {query} found")
            row = self.tables.get_vector(txn, stored.iid, space.index)
            if row is None:
                raise InvalidInput(f"query: point {query} has no vector named {space.name!r}")
            return space, row.astype(np.float32), query
        if not isinstance(query, np.ndarray):
            if query and isinstance(query[0], list):
                raise Unsupported("query: multivectors are not supported yet")
            query = np.asarray(query, dtype=np.float32)
        if query.ndim != 1:
            raise InvalidInput(f"query: expected one vector, got an array of shape {query.shape}")
        return space, prepare_query(query, space, "query"), None

    def _query_without_vector(self, txn: lmdb.Transaction, req: QueryRequest) -> QueryResponse:
        """No ``query``: a filtered scroll in id order, every score 1.0 (as Qdrant's local mode)."""
        records, _ = self._scan_ids(txn, compile_filter(req.filter), None, req.offset + req.limit)
        points = [self._scored(txn, p, 1.0, req.with_payload, req.with_vector) for p in records[req.offset :]]
        return QueryResponse(points=points)

    def _filter_mask(self, reader: ReadOnDemand, flt: Optional[Filter], snap: Snapshot) -> Optional[np.ndarray]:
        """Bool mask over internal ids ``< snap.n`` of the points that pass ``flt`` (None: no filter).

        Payload indexes answer what they can: wholly (a mask, no payload read),
        or as a superset whose members alone are then checked against the
        stored payloads; otherwise every stored payload is checked.
        """
        predicate = compile_filter(flt)
        if predicate is None:
            return None
        assert flt is not None
        exact = self.payload_index.filter_mask(flt, snap.n)
        candidates = None if exact is not None else self.payload_index.candidates_mask(flt, snap.n)
        if self.payload_index.fields:  # (with no field indexed there is nothing to be consistent with)
            reader.check_index()
        if exact is not None:
            return exact & snap.alive[: snap.n]
        view = StoredPointView(lambda iid, name: self._snapshot_has_vector(snap, iid, name))
        txn = reader.txn()
        mask = np.zeros(snap.n, dtype=bool)
        if candidates is not None:
            for iid in np.flatnonzero(candidates & snap.alive[: snap.n]).tolist():
                point = self.tables.get(txn, iid)
                if point is not None and predicate(view.bind(point)):
                    mask[iid] = True
            return mask
        for point in self.tables.iter_points(txn):
            if point.iid < snap.n and predicate(view.bind(point)):
                mask[point.iid] = True
        return mask

    def _snapshot_has_vector(self, snap: Snapshot, iid: int, name: str) -> bool:
        index = space_index(self.spaces, name)
        return index is not None and bool(snap.spaces[index].present[iid])

    # --- scroll / count / retrieve -------------------------------------------------------

    def scroll(self, req: ScrollRequest) -> ScrollResult:
        if req.order_by is not None:
            raise Unsupported("order_by: ordering by a payload field is not supported yet")
        limit = req.limit or DEFAULT_SCROLL_LIMIT
        self.limits.check_results(limit, 0, "limit")
        with self.env.read() as txn:
            records, next_id = self._scan_ids(txn, compile_filter(req.filter), req.offset, limit)
            with_payload = True if req.with_payload is None else req.with_payload
            points = [self._record(txn, p, with_payload, req.with_vector) for p in records]
        return ScrollResult(points=points, next_page_offset=next_id)

    def _scan_ids(
        self, txn: lmdb.Transaction, predicate: Optional[Predicate], offset: Optional[PointId], limit: int
    ) -> tuple[list[StoredPoint], Optional[PointId]]:
        """Up to ``limit`` matching points in id order from ``offset``, and the next page's first id."""
        view = StoredPointView(lambda iid, name: self._stored_has_vector(txn, iid, name))
        found: list[StoredPoint] = []
        start = None if offset is None else id_to_key(offset)
        for iid in self.tables.iter_ids_from(txn, start):
            point = self.tables.get(txn, iid)
            if point is None or (predicate is not None and not predicate(view.bind(point))):
                continue
            if len(found) == limit:
                return found, point.id
            found.append(point)
        return found, None

    def _stored_has_vector(self, txn: lmdb.Transaction, iid: int, name: str) -> bool:
        return stored_has_vector(self.tables, txn, self.spaces, iid, name)

    def count(self, req: CountRequest) -> int:
        def body(snap: Snapshot, reader: ReadOnDemand) -> int:
            mask = self._filter_mask(reader, req.filter, snap)
            return snap.count if mask is None else int(np.count_nonzero(mask))

        return self.consistent_read(body, eager=req.filter is not None)

    def retrieve(self, req: PointRequest) -> list[Record]:
        with_payload = True if req.with_payload is None else req.with_payload
        with self.env.read() as txn:
            found = (self._lookup(txn, pid) for pid in dict.fromkeys(req.ids))
            return [self._record(txn, p, with_payload, req.with_vector) for p in found if p is not None]

    # --- output --------------------------------------------------------------------------

    def _lookup(self, txn: lmdb.Transaction, point_id: PointId) -> Optional[StoredPoint]:
        iid = self.tables.iid_of(txn, id_to_key(point_id))
        return None if iid is None else self.tables.get(txn, iid)

    def _record(self, txn: lmdb.Transaction, point: StoredPoint, with_payload: Any, with_vector: Any) -> Record:
        return Record(
            id=point.id,
            payload=_payload_out(point, with_payload),
            vector=self._vectors_out(txn, point.iid, with_vector),
        )

    def _scored(
        self, txn: lmdb.Transaction, point: StoredPoint, score: float, with_payload: Any, with_vector: Any
    ) -> ScoredPoint:
        return ScoredPoint(
            id=point.id,
            version=point.version,
            score=score,
            payload=_payload_out(point, with_payload),
            vector=self._vectors_out(txn, point.iid, with_vector),
        )

    def _vectors_out(self, txn: lmdb.Transaction, iid: int, with_vector: Any) -> Any:
        """Stored vectors as Qdrant returns them: a plain list when only the default vector exists."""
        if _nothing_stored_wanted(with_vector):
            return None
        wanted = None if with_vector is True else set(with_vector)
        out = {}
        for space in self.spaces:
            if wanted is not None and space.name not in wanted:
                continue
            row = self.tables.get_vector(txn, iid, space.index)
            if row is not None:
                out[space.name] = row.tolist()
        if list(out) == [DEFAULT_VECTOR]:
            return out[DEFAULT_VECTOR]
        return out


class StaleRead(Exception):
    """A write landed after the read took its snapshot (the read starts again)."""


class ReadOnDemand:
    """A read transaction opened on first use and closed with the block.

    After :meth:`expect`, it checks that the transaction holds that commit; given the
    collection's ``publishing`` counter and its value when the read began (``mark``),
    :meth:`check_index` checks that no write has since touched the payload indexes (an odd
    mark fails it: a write was publishing, or :meth:`index_is_newer` said they are already
    past the read's snapshot). Each raises :class:`StaleRead`.
    """

    def __init__(
        self,
        env: Environment,
        tables: Optional[PointsTables] = None,
        publishing: Optional[Callable[[], int]] = None,
        mark: int = 0,
    ) -> None:
        self._env = env
        self._tables = tables
        self._seq: Optional[int] = None
        self._publishing = publishing
        self._mark = mark
        self._stack = contextlib.ExitStack()
        self._txn: Optional[lmdb.Transaction] = None

    def expect(self, seq: int) -> None:
        self._seq = seq
        if self._txn is not None:
            self._check_txn()

    def index_is_newer(self) -> None:
        self._mark = -1  # odd: never matches

    def txn(self) -> lmdb.Transaction:
        if self._txn is None:
            self._txn = self._stack.enter_context(self._env.read())
            self._check_txn()
        return self._txn

    def _check_txn(self) -> None:
        if self._tables is not None and self._seq is not None and self._tables.committed_seq(self._txn) != self._seq:
            raise StaleRead

    def check_index(self) -> None:
        if self._publishing is not None and (self._mark % 2 or self._publishing() != self._mark):
            raise StaleRead

    def __enter__(self) -> ReadOnDemand:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


def _mmr_of(req: QueryRequest) -> Optional[Mmr]:
    query = req.query
    return query.mmr if isinstance(query, NearestQuery) else None


def _diversified(
    snap: Snapshot, space: VectorSpace, hits: list[tuple[float, int]], params: Mmr, limit: int
) -> list[tuple[float, int]]:
    """``hits`` (nearest first) re-ranked by maximal marginal relevance, scores unchanged."""
    if not hits:
        return []
    iids = np.fromiter((i for _, i in hits), dtype=np.int64, count=len(hits))
    scores = np.fromiter((s for s, _ in hits), dtype=np.float64, count=len(hits))
    relevance = mmr.relevance_of(scores, space.distance)
    rows = snap.spaces[space.index].matrix[iids]
    diversity = mmr.DEFAULT_DIVERSITY if params.diversity is None else params.diversity
    return [hits[j] for j in mmr.select(rows, relevance, space.distance, diversity, limit)]


def _nothing_stored_wanted(selector: Any) -> bool:
    """``with_payload`` / ``with_vector`` that asks for nothing (an empty list still asks for ``{}``)."""
    return selector is None or selector is False


def _payload_out(point: StoredPoint, with_payload: Any) -> Any:
    """Decode the stored JSON only when the caller asked for some of it."""
    if _nothing_stored_wanted(with_payload):
        return None
    return select_payload(point.payload, with_payload)
