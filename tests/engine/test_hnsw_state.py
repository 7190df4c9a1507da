"""A Hypothesis state machine: upsert / overwrite / delete / reopen against a brute-force model.

The optimizer indexes in the background throughout (indexing threshold 1 KB),
so every check runs against whatever mix of graph and fresh points exists.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import vecdb
from tests.brute import reference_scores

DIM = 6
IDS = st.integers(min_value=0, max_value=80)
VECTOR = st.lists(st.integers(min_value=-8, max_value=8), min_size=DIM, max_size=DIM).filter(any)


class HnswModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "db"
        self.client = vecdb.Client(path=self.path)
        self.model: dict[int, np.ndarray] = {}
        self.queries = np.random.default_rng(0).normal(size=(3, DIM)).astype(np.float32)

    @initialize()
    def create(self) -> None:
        self.client.create_collection(
            "s", {"size": DIM, "distance": "Euclid"}, optimizers_config={"indexing_threshold": 1}
        )

    @rule(points=st.lists(st.tuples(IDS, VECTOR), min_size=1, max_size=25))
    def upsert(self, points: list[tuple[int, list[int]]]) -> None:
        self.client.upsert("s", [{"id": i, "vector": [float(x) for x in v]} for i, v in points])
        for i, v in points:
            self.model[i] = np.asarray(v, dtype=np.float32)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=15))
        self.client.delete("s", ids)
        for i in ids:
            self.model.pop(i, None)

    @rule()
    def reopen(self) -> None:
        self.client.close()
        self.client = vecdb.Client(path=self.path)

    @rule()
    def let_the_optimizer_catch_up(self) -> None:
        deadline = time.monotonic() + 20
        while self.client.get_collection("s").status != "green" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.client.get_collection("s").status == "green"

    @invariant()
    def counts_agree(self) -> None:
        assert self.client.count("s").count == len(self.model)
        assert self.client.get_collection("s").points_count == len(self.model)

    @invariant()
    def searches_agree(self) -> None:
        if not self.model:
            assert self.client.query_points("s", query=self.queries[0].tolist()).points == []
            return
        ids = sorted(self.model)
        base = np.stack([self.model[i] for i in ids])
        for q in self.queries:
            want = np.sort(reference_scores(base, q, "Euclid"))[:5]
            exact = self.client.query_points("s", query=q.tolist(), limit=5, search_params={"exact": True}).points
            np.testing.assert_allclose([p.score for p in exact], want, rtol=1e-4, atol=1e-4)
            approx = self.client.query_points("s", query=q.tolist(), limit=5).points
            assert {p.id for p in approx} <= set(self.model)  # never a deleted or replaced point
            for p in approx:  # scores are of the current vector
                assert abs(p.score - float(np.linalg.norm(self.model[p.id] - q))) < 1e-3
            # On a graph this small, ef=100 visits every node: the graph is exact too.
            np.testing.assert_allclose([p.score for p in approx], want, rtol=1e-4, atol=1e-4)

    def teardown(self) -> None:
        self.client.close()
        self.tmp.cleanup()


TestHnswModel = HnswModel.TestCase
TestHnswModel.settings = settings(
    max_examples=30, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
