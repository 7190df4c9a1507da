"""Which requests a follower worker answers itself (reads of points) and which it forwards to the primary."""

from __future__ import annotations

import pytest

from vecdb.api.workers import ForwardToPrimary, answered_locally, searched_collection

LOCAL = [
    ("POST", "/collections/c/points/query"),
    ("POST", "/collections/c/points/query/batch"),
    ("POST", "/collections/c/points/query/groups"),
    ("POST", "/collections/c/points/search"),
    ("POST", "/collections/c/points/search/batch"),
    ("POST", "/collections/c/points/recommend"),
    ("POST", "/collections/c/points/discover/batch"),
    ("POST", "/collections/c/points/scroll"),
    ("POST", "/collections/c/points/count"),
    ("POST", "/collections/c/points/facet"),
    ("POST", "/collections/c/points"),  # retrieve
    ("GET", "/collections/c/points/17"),
    ("GET", "/collections/c/points/5f1c0c3e-8d3b-4a53-9bb1-4a2b2f0f2d11"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]
FORWARDED = [
    ("PUT", "/collections/c/points"),  # upsert
    ("POST", "/collections/c/points/delete"),
    ("POST", "/collections/c/points/payload"),
    ("PUT", "/collections/c/points/payload"),
    ("POST", "/collections/c/points/payload/delete"),
    ("POST", "/collections/c/points/payload/clear"),
    ("PUT", "/collections/c/points/vectors"),
    ("POST", "/collections/c/points/vectors/delete"),
    ("POST", "/collections/c/points/batch"),
    ("PUT", "/collections/c"),
    ("DELETE", "/collections/c"),
    ("PATCH", "/collections/c"),
    ("GET", "/collections/c"),  # info: the primary knows the optimizer's state
    ("GET", "/collections"),
    ("PUT", "/collections/c/index"),
    ("POST", "/collections/aliases"),
    ("POST", "/collections/c/snapshots"),
    ("POST", "/collections/c/snapshots/upload"),
    ("GET", "/collections/c/snapshots"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("DELETE", "/collections/c/points/3"),
]


@pytest.mark.parametrize(("method", "path"), LOCAL)
def test_reads_of_points_are_answered_by_the_follower(method: str, path: str) -> None:
    assert answered_locally(method, path)


@pytest.mark.parametrize(("method", "path"), FORWARDED)
def test_everything_else_goes_to_the_primary(method: str, path: str) -> None:
    assert not answered_locally(method, path)


def test_searches_go_to_the_primary_while_the_followers_unindexed_tail_is_large() -> None:
    """Vector searches of a collection whose rows past the saved graphs exceed the limit are forwarded;
    other reads, other collections, and everything at or under the limit stay on the follower."""
    tails = {"big": 5000, "small": 100}
    asked: list[str] = []
    caught_up: list[str] = []  # only a tail over the limit is looked at again, caught up

    def unindexed_bytes(name: str, catch_up: bool) -> int:
        asked.append(name)
        if catch_up:
            caught_up.append(name)
        return tails.get(name, 0)

    layer = ForwardToPrimary(lambda *_: None, "/nowhere.sock", unindexed_bytes, tail_limit_bytes=1000)  # type: ignore[arg-type]

    def answers(method: str, path: str) -> bool:
        return layer._answers({"type": "http", "method": method, "path": path})

    searches = ["points/query", "points/query/batch", "points/query/groups", "points/search", "points/search/batch"]
    searches += ["points/recommend", "points/discover"]
    for route in searches:
        assert searched_collection("POST", f"/collections/big/{route}") == "big"
        assert not answers("POST", f"/collections/big/{route}")
        assert answers("POST", f"/collections/small/{route}")
        assert answers("POST", f"/collections/other/{route}")
    for method, route in [("POST", "points/scroll"), ("POST", "points/count"), ("POST", "points"), ("GET", "points/3")]:
        assert searched_collection(method, f"/collections/big/{route}") is None
        assert answers(method, f"/collections/big/{route}")  # no vector scan: stays
    assert not answers("PUT", "/collections/small/points")  # writes go to the primary anyway
    assert set(asked) == {"big", "small", "other"} and set(caught_up) == {"big"}
    tails["big"] = 1000  # at the limit: answered here
    assert answers("POST", "/collections/big/points/query")
    assert ForwardToPrimary(lambda *_: None, "/nowhere.sock")._answers(  # type: ignore[arg-type]
        {"type": "http", "method": "POST", "path": "/collections/big/points/query"}
    )
