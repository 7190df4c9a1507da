"""Which requests a follower worker answers itself (reads of points) and which it forwards to the primary."""

from __future__ import annotations

import pytest

from vecdb.api.workers import answered_locally

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
