"""A write workload over HTTP with a model of what the store must hold, for crash and soak tests.

Each writer thread owns the ids ``t, t + T, t + 2T, ...`` and sends one request at a time,
so before each request the thread's model is exact: every earlier request was acknowledged.
When the server dies, at most one request per thread is unanswered; afterwards the store
must equal, per thread, the model either without that request or with all of it, which is
the "nothing half-applied" rule. Every request stamps a fresh version into what it writes,
so each stored vector and payload names the request that wrote it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import httpx
import numpy as np

DIM = 8

PointState = tuple[Any, ...]
"""(version that wrote the vector, payload), plus, in a sparse workload, the version that wrote the
sparse vector ``sp`` (None: the point has none)."""
SPARSE = "sp"
SPARSE_TERMS = 40
State = dict[int, PointState]

_vector_cache: dict[tuple[int, int], np.ndarray] = {}


def vector_for(pid: int, version: int) -> np.ndarray:
    """The vector that request ``version`` wrote for point ``pid`` (float32, deterministic)."""
    key = (pid, version)
    vec = _vector_cache.get(key)
    if vec is None:
        vec = np.random.default_rng([pid, version]).normal(size=DIM).astype(np.float32)
        _vector_cache[key] = vec
    return vec


def sparse_for(pid: int, version: int) -> tuple[list[int], list[float]]:
    """The sparse vector that request ``version`` wrote for ``pid``: 0-5 distinct terms (sorted, as the
    store returns them), float32-exact weights, so scores can be compared exactly."""
    rng = np.random.default_rng([pid, version, 7])
    n = int(rng.integers(0, 6))
    terms = sorted(int(x) for x in rng.choice(SPARSE_TERMS, size=n, replace=False))
    return terms, [float(x) for x in rng.integers(-8, 9, size=n) / 4]


def collection_body(sparse: bool = False, **optimizers: Any) -> dict[str, Any]:
    """A small-vector collection that builds its HNSW graph at once and checkpoints every second;
    vacuum rebuilds are off, so a rebuild after a crash could only mean a lost checkpoint. ``sparse``:
    also a sparse space ``sp`` with the IDF modifier."""
    extra: dict[str, Any] = {"sparse_vectors": {SPARSE: {"modifier": "idf"}}} if sparse else {}
    return {
        **extra,
        "vectors": {"size": DIM, "distance": "Euclid"},
        "hnsw_config": {"m": 8, "ef_construct": 32},
        "optimizers_config": {
            "indexing_threshold": 1,
            "flush_interval_sec": 1,
            "vacuum_min_vector_number": 10**9,
            **optimizers,
        },
    }


@dataclass
class Op:
    """One write request and what it does to a thread's model."""

    kind: str
    method: str
    path: str
    body: dict[str, Any]
    apply: Callable[[State], None]


class ThreadModel:
    """One writer's id space, its model, and the next request to send."""

    def __init__(self, t: int, threads: int, seed: int, cap: Optional[int] = None, sparse: bool = False) -> None:
        self.t = t
        self.sparse = sparse  # also write sparse vectors (upserts, sparse updates and deletes)
        self.cap = cap  # at this many live points, upserts only overwrite (a soak's data stays bounded)
        self.threads = threads
        self.rng = np.random.default_rng([seed, t])
        self.state: State = {}
        self.next_k = 0
        self.version = t * 10**7  # unique across threads and rounds

    def owns(self, pid: int) -> bool:
        return pid % self.threads == self.t

    def _new_ids(self, n: int) -> list[int]:
        ids = [self.t + self.threads * (self.next_k + i) for i in range(n)]
        self.next_k += n
        return ids

    def _existing(self, lo: int, hi: int) -> list[int]:
        keys = sorted(self.state)
        n = min(len(keys), int(self.rng.integers(lo, hi + 1)))
        return sorted(int(x) for x in self.rng.choice(keys, size=n, replace=False)) if n else []

    def _points(self, ids: list[int], v: int) -> list[dict[str, Any]]:
        return [{"id": pid, "vector": self._vector(pid, v), "payload": self._payload(v)} for pid in ids]

    def _with_sparse(self, v: int) -> bool:
        return self.sparse and v % 4 != 0  # a quarter of the upserts store no sparse vector

    def _vector(self, pid: int, v: int) -> Any:
        if not self._with_sparse(v):
            return {"": vector_for(pid, v).tolist()} if self.sparse else vector_for(pid, v).tolist()
        terms, values = sparse_for(pid, v)
        return {"": vector_for(pid, v).tolist(), SPARSE: {"indices": terms, "values": values}}

    def _payload(self, v: int) -> dict[str, Any]:
        return {"t": self.t, "v": v, "g": v % 5, "tags": ["w", v % 3]}

    def next_op(self) -> Op:
        self.version += 1
        v = self.version
        roll = self.rng.random() if len(self.state) >= 10 else 0.0
        if roll < 0.35:
            fresh = 0 if self.cap is not None and len(self.state) >= self.cap else int(self.rng.integers(1, 21))
            ids = self._new_ids(fresh) + self._existing(0 if fresh else 1, 5)
            return Op("upsert", "PUT", "/points", {"points": self._points(ids, v)}, self._upserted(ids, v))
        if roll < 0.50:
            ids = self._existing(1, 5)
            ghost = self.t + self.threads * (10**6 + v % 1000)  # never written: deleting it is a no-op
            return Op("delete", "POST", "/points/delete", {"points": [*ids, ghost]}, self._deleted(ids))
        if roll < 0.63:
            ids = self._existing(1, 5)
            payload = {"p": v, "g": v % 5}
            return Op(
                "set_payload",
                "POST",
                "/points/payload",
                {"payload": payload, "points": ids},
                self._payload_set(ids, payload, merge=True),
            )
        if roll < 0.71:
            ids = self._existing(1, 3)
            payload = {"t": self.t, "o": v, "g": v % 5}
            return Op(
                "overwrite_payload",
                "PUT",
                "/points/payload",
                {"payload": payload, "points": ids},
                self._payload_set(ids, payload, merge=False),
            )
        if roll < 0.78:
            ids = self._existing(1, 3)
            return Op(
                "update_vectors",
                "PUT",
                "/points/vectors",
                {"points": [{"id": pid, "vector": vector_for(pid, v).tolist()} for pid in ids]},
                self._vectors_set(ids, v),
            )
        if self.sparse and roll < 0.74:
            ids = self._existing(1, 3)
            return Op(
                "update_sparse",
                "PUT",
                "/points/vectors",
                {
                    "points": [
                        {
                            "id": pid,
                            "vector": {SPARSE: dict(zip(("indices", "values"), sparse_for(pid, v), strict=True))},
                        }
                        for pid in ids
                    ]
                },
                self._sparse_set(ids, v),
            )
        if self.sparse and roll < 0.78:
            ids = self._existing(1, 2)
            return Op(
                "delete_sparse",
                "POST",
                "/points/vectors/delete",
                {"points": ids, "vector": [SPARSE]},
                self._sparse_set(ids, None),
            )
        if roll < 0.83:
            g = int(self.rng.integers(0, 5))
            flt = {"must": [{"key": "t", "match": {"value": self.t}}, {"key": "g", "match": {"value": g}}]}

            def by_filter(state: State) -> None:
                for pid in [p for p, (_, pl, *_rest) in state.items() if pl.get("g") == g]:
                    del state[pid]

            return Op("delete_filter", "POST", "/points/delete", {"filter": flt}, by_filter)
        # one atomic batch: new points, deletes and a payload change on points it keeps
        new = self._new_ids(int(self.rng.integers(1, 6)))
        doomed = self._existing(1, 2)
        kept = [p for p in self._existing(1, 3) if p not in doomed]
        payload = {"b": v}
        ops = [{"upsert": {"points": self._points(new, v)}}, {"delete": {"points": doomed}}]
        if kept:
            ops.append({"set_payload": {"payload": payload, "points": kept}})
        upserted, deleted = self._upserted(new, v), self._deleted(doomed)
        merged = self._payload_set(kept, payload, True)

        def batch(state: State) -> None:
            upserted(state)
            deleted(state)
            merged(state)

        return Op("batch", "POST", "/points/batch", {"operations": ops}, batch)

    def _upserted(self, ids: list[int], v: int) -> Callable[[State], None]:
        extra = ((v if self._with_sparse(v) else None),) if self.sparse else ()

        def apply(state: State) -> None:
            for pid in ids:
                state[pid] = (v, self._payload(v), *extra)

        return apply

    @staticmethod
    def _sparse_set(ids: list[int], v: Optional[int]) -> Callable[[State], None]:
        def apply(state: State) -> None:
            for pid in ids:
                state[pid] = (*state[pid][:2], v)

        return apply

    @staticmethod
    def _deleted(ids: list[int]) -> Callable[[State], None]:
        def apply(state: State) -> None:
            for pid in ids:
                state.pop(pid, None)

        return apply

    @staticmethod
    def _payload_set(ids: list[int], payload: dict[str, Any], merge: bool) -> Callable[[State], None]:
        def apply(state: State) -> None:
            for pid in ids:
                vv, old, *rest = state[pid]
                state[pid] = (vv, {**old, **payload} if merge else dict(payload), *rest)

        return apply

    @staticmethod
    def _vectors_set(ids: list[int], v: int) -> Callable[[State], None]:
        def apply(state: State) -> None:
            for pid in ids:
                state[pid] = (v, *state[pid][1:])

        return apply


class Writer(threading.Thread):
    """Sends a model's requests one at a time until stopped or the server goes away."""

    def __init__(self, model: ThreadModel, url: str) -> None:
        super().__init__(daemon=True)
        self.model = model
        self.url = url
        self.stop = threading.Event()
        self.acked = 0
        self.in_flight: Optional[Op] = None
        self.error: Optional[str] = None
        self.latencies: list[float] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                op = self.model.next_op()
                self.in_flight = op
                t0 = time.perf_counter()
                try:
                    r = http.request(op.method, op.path, params={"wait": "true"}, json=op.body)
                except httpx.TransportError:
                    return  # the server died with ``op`` unanswered
                self.latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    self.error = f"{op.kind}: {r.status_code} {r.text[:300]}"
                    return
                op.apply(self.model.state)
                self.in_flight = None
                self.acked += 1


def scroll_all(http: httpx.Client) -> dict[int, tuple[Any, ...]]:
    """Every stored point: (dense vector, payload), plus its sparse vector (or None) when the
    collection has sparse vectors (its vectors then come back named)."""
    out: dict[int, tuple[Any, ...]] = {}
    offset = None
    while True:
        body: dict[str, Any] = {"limit": 1000, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        r = http.post("/points/scroll", json=body)
        assert r.status_code == 200, r.text
        res = r.json()["result"]
        for p in res["points"]:
            assert p["id"] not in out, f"point {p['id']} listed twice"
            vec = p["vector"]
            if isinstance(vec, dict):
                sp = vec.get(SPARSE)
                out[p["id"]] = (
                    np.asarray(vec[""], dtype=np.float32),
                    p["payload"],
                    None if sp is None else (sp["indices"], sp["values"]),
                )
            else:
                out[p["id"]] = (np.asarray(vec, dtype=np.float32), p["payload"])
        offset = res["next_page_offset"]
        if offset is None:
            return out


def _matches(stored: dict[int, tuple[np.ndarray, dict[str, Any]]], state: State) -> Optional[str]:
    """None when ``stored`` holds exactly ``state``; else the first difference."""
    if set(stored) != set(state):
        extra, missing = sorted(set(stored) - set(state)), sorted(set(state) - set(stored))
        return f"ids differ: {len(extra)} unexpected {extra[:5]}, {len(missing)} missing {missing[:5]}"
    for pid, (v, payload, *sparse) in state.items():
        vec, got, *stored_sparse = stored[pid]
        if got != payload:
            return f"point {pid}: payload {got} != {payload}"
        if not np.array_equal(vec, vector_for(pid, v)):
            return f"point {pid}: vector is not version {v}'s"
        if sparse:
            want = None if sparse[0] is None else sparse_for(pid, sparse[0])
            have = stored_sparse[0] if stored_sparse else None
            if have is not None:
                have = (list(have[0]), [float(x) for x in have[1]])
            if have != want:
                return f"point {pid}: sparse vector {have} is not version {sparse[0]}'s {want}"
    return None


def reconcile(stored: dict[int, tuple[np.ndarray, dict[str, Any]]], writers: list[Writer]) -> int:
    """Check the store against each writer's model, with its unanswered request wholly applied or wholly
    absent; adopt the outcome into the model. Returns how many unanswered requests turned out applied."""
    applied = 0
    for w in writers:
        mine = {pid: rec for pid, rec in stored.items() if w.model.owns(pid)}
        without = _matches(mine, w.model.state)
        if without is None:
            continue
        assert w.in_flight is not None, f"writer {w.model.t}: acknowledged writes differ: {without}"
        after = copy.deepcopy(w.model.state)
        w.in_flight.apply(after)
        with_op = _matches(mine, after)
        assert with_op is None, (
            f"writer {w.model.t}: store matches neither the acknowledged state ({without}) nor it plus the "
            f"unanswered {w.in_flight.kind} ({with_op})"
        )
        w.model.state = after
        applied += 1
    return applied


def model_state(models: list[ThreadModel]) -> State:
    return {pid: rec for m in models for pid, rec in m.state.items()}


def check_search(http: httpx.Client, state: State, rng: np.random.Generator, queries: int = 5) -> float:
    """Exact queries equal brute force over the model (unfiltered and filtered); returns the recall@10
    of default (graph) queries, which the caller bounds."""
    ids = np.array(sorted(state), dtype=np.int64)
    base = np.stack([vector_for(int(pid), state[int(pid)][0]) for pid in ids]).astype(np.float64)
    groups = np.array([state[int(pid)][1].get("g", -1) for pid in ids])
    found = total = 0
    for _ in range(queries):
        q = rng.normal(size=DIM).astype(np.float32)
        dist = np.sqrt(((base - q.astype(np.float64)) ** 2).sum(axis=1))
        for flt, mask in (
            (None, np.ones(len(ids), bool)),
            ({"must": [{"key": "g", "match": {"value": 2}}]}, groups == 2),
        ):
            body: dict[str, Any] = {"query": q.tolist(), "limit": 10, "params": {"exact": True}}
            if flt:
                body["filter"] = flt
            r = http.post("/points/query", json=body)
            assert r.status_code == 200, r.text
            hits = r.json()["result"]["points"]
            sub = np.flatnonzero(mask)
            want = sub[np.argsort(dist[sub], kind="stable")[:10]]
            np.testing.assert_allclose([h["score"] for h in hits], dist[want], atol=1e-4)
            by_id = dict(zip(ids.tolist(), dist, strict=True))
            for h in hits:  # each hit is a live point scored right (ties may swap equal-distance ids)
                assert abs(by_id[h["id"]] - h["score"]) < 1e-4 and (flt is None or state[h["id"]][1]["g"] == 2)
        r = http.post("/points/query", json={"query": q.tolist(), "limit": 10})
        assert r.status_code == 200, r.text
        want_ids = set(ids[np.argsort(dist, kind="stable")[:10]].tolist())
        found += len(want_ids & {h["id"] for h in r.json()["result"]["points"]})
        total += min(10, len(ids))
    return found / max(total, 1)


def check_sparse_search(http: httpx.Client, state: State, rng: np.random.Generator, queries: int = 8) -> int:
    """Sparse queries (IDF modifier) equal brute force over the model: the scores of the top 10, and every
    hit a live point holding the sparse vector, scored as the model says. Returns the hits checked."""
    docs = {pid: dict(zip(*sparse_for(pid, rec[2]), strict=True)) for pid, rec in state.items() if rec[2] is not None}
    df = np.zeros(SPARSE_TERMS, dtype=np.int64)
    for terms in docs.values():
        df[list(terms)] += 1
    idf = np.log((len(docs) - df + 0.5) / (df + 0.5) + 1.0)
    checked = 0
    for _ in range(queries):
        terms = sorted(int(x) for x in rng.choice(SPARSE_TERMS, size=3, replace=False))
        weights = [float(x) for x in rng.integers(1, 5, size=3) / 2]
        want = {}
        for pid, doc in docs.items():
            shared = [t for t in terms if t in doc]
            if shared:
                want[pid] = sum(weights[terms.index(t)] * idf[t] * doc[t] for t in shared)
        body = {"query": {"indices": terms, "values": weights}, "using": SPARSE, "limit": 10}
        r = http.post("/points/query", json=body)
        assert r.status_code == 200, r.text
        hits = r.json()["result"]["points"]
        best = sorted(want.values(), reverse=True)[:10]
        np.testing.assert_allclose([h["score"] for h in hits], best, rtol=1e-5, atol=1e-5)
        for h in hits:
            assert abs(want[h["id"]] - h["score"]) <= 1e-5 * max(1.0, abs(h["score"])), (h, want.get(h["id"]))
        checked += len(hits)
    return checked


def count(http: httpx.Client) -> int:
    r = http.post("/points/count", json={"exact": True})
    assert r.status_code == 200, r.text
    return int(r.json()["result"]["count"])
