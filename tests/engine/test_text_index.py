"""Full-text payload indexes and BM25 text queries, embedded and over HTTP, against local mode.

qdrant-client's ``:memory:`` mode tokenizes text filters with Qdrant's default tokenizer and
ranks ``TextQuery`` by BM25 (``local/bm25.py``) over a text index with default tokenization:
so for those settings vecdb (index-answered, scan-answered, and mixed filters) must return the
same points and scores. Settings local mode cannot reproduce (stemmer, stopwords, ...) are
checked on the issue's examples and on the agreement of the index with the scan.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models
from vecdb_client import RemoteClient

import vecdb
from tests.unit.test_fulltext import texts

SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
_counter = iter(range(10**9))


def _load(c: Any, name: str, values: list[Any]) -> None:
    c.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    if values:
        c.upsert(
            name,
            points=[
                models.PointStruct(id=i, vector=[1.0, 0.5], payload={"t": v, "u": v, "n": i})
                for i, v in enumerate(values)
            ],
        )


def _ids(c: Any, name: str, flt: models.Filter) -> list[int]:
    points, _ = c.scroll(name, scroll_filter=flt, limit=1000)
    return sorted(p.id for p in points)


def _ranked(points: list[Any]) -> list[tuple[int, float]]:
    return sorted(((p.id, p.score) for p in points), key=lambda x: (-round(x[1], 4), x[0]))


def _same_ranking(got: list[Any], want: list[Any]) -> None:
    assert [i for i, _ in _ranked(got)] == [i for i, _ in _ranked(want)]
    for (_, g), (_, w) in zip(_ranked(got), _ranked(want), strict=True):
        assert g == pytest.approx(w, rel=1e-5)


def _conditions(query: str) -> list[models.Match]:
    return [models.MatchText(text=query), models.MatchTextAny(text_any=query), models.MatchPhrase(phrase=query)]


@settings(max_examples=8, deadline=None, suppress_health_check=SUPPRESS)
@given(
    st.lists(st.one_of(texts(), st.lists(texts(4), max_size=3), st.integers(-5, 5), st.none()), max_size=14),
    texts(3),
    st.lists(st.integers(0, 13), max_size=3),
)
def test_text_filters_equal_local_mode(
    client: vecdb.Client | RemoteClient, values: list[Any], query: str, ids: list[int]
) -> None:
    """``t`` has a default text index (answered from it), ``u`` none (answered by a scan);
    a has_id makes the index-answerable part a candidate set."""
    name = f"text_filters_{next(_counter)}"
    reference = QdrantClient(":memory:")
    for c in (client, reference):
        _load(c, name, values)
    client.create_payload_index(name, "t", models.TextIndexParams(type=models.TextIndexType.TEXT))
    try:
        for match in _conditions(query):
            for key in ("t", "u"):
                flt = models.Filter(must=[models.FieldCondition(key=key, match=match)])
                assert _ids(client, name, flt) == _ids(reference, name, flt), (key, match)
                mixed = models.Filter(
                    must=[models.FieldCondition(key=key, match=match), models.HasIdCondition(has_id=ids)]
                )
                assert _ids(client, name, mixed) == _ids(reference, name, mixed)
                assert client.count(name, count_filter=flt).count == reference.count(name, count_filter=flt).count
    finally:
        client.delete_collection(name)


@settings(max_examples=8, deadline=None, suppress_health_check=SUPPRESS)
@given(
    st.lists(
        st.one_of(texts(12), st.lists(texts(5), max_size=3), st.none(), st.integers(-5, 5)), min_size=1, max_size=16
    ),
    texts(4),
    st.one_of(st.none(), st.tuples(st.floats(0, 3), st.floats(0, 1))),
    st.lists(st.integers(0, 15), max_size=4),
    st.lists(st.integers(0, 15), max_size=3),
)
def test_bm25_equals_local_mode(
    client: vecdb.Client | RemoteClient,
    values: list[Any],
    query: str,
    scoring: Any,
    deleted: list[int],
    hidden: list[int],
) -> None:
    name = f"text_bm25_{next(_counter)}"
    reference = QdrantClient(":memory:")
    schema = models.TextIndexParams(type=models.TextIndexType.TEXT, scoring=models.TextScoringParams(type="bm25"))
    for c in (client, reference):
        _load(c, name, values)
        c.create_payload_index(name, "t", schema)
        c.set_payload(name, payload={"t": "seat seats the end"}, points=[0])  # an overwrite
        if deleted:
            c.delete(name, points_selector=models.PointIdsList(points=deleted))
    if scoring is None:
        text_query = models.TextQuery(text=query)
    else:
        bm25 = models.Bm25Params(k=scoring[0], b=scoring[1])
        text_query = models.TextQuery(text=models.TextQueryInput(query=query, scoring=models.Bm25Scoring(bm25=bm25)))
    flt = models.Filter(must_not=[models.HasIdCondition(has_id=hidden)]) if hidden else None
    try:
        got = client.query_points(name, query=text_query, using="t", limit=100, query_filter=flt).points
        want = reference.query_points(name, query=text_query, using="t", limit=100, query_filter=flt).points
        _same_ranking(got, want)
        if len(want) > 2:  # offset, limit and threshold apply after ranking
            page = client.query_points(name, query=text_query, using="t", limit=2, offset=1, query_filter=flt).points
            want_page = reference.query_points(name, query=text_query, using="t", limit=2, offset=1, query_filter=flt)
            assert [p.id for p in page] == [p.id for p in want_page.points]
    finally:
        client.delete_collection(name)


def test_stemmer_finds_seats(client: vecdb.Client | RemoteClient, name: str) -> None:
    """The issue's example: with the English stemmer, ``text: "seat"`` finds "seats"."""
    _load(client, name, ["Two seats left by the window", "a seat", "the sea", "SEATING plan"])
    stemmed = models.TextIndexParams(
        type=models.TextIndexType.TEXT,
        stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH),
        stopwords=models.StopwordsSet(custom=["the", "by"]),
        phrase_matching=True,
    )
    client.create_payload_index(name, "t", stemmed)
    seat = models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text="seat"))])
    assert _ids(client, name, seat) == [0, 1, 3]  # "SEATING" stems to "seat" too
    # the same through a scan (has_id is not index-answerable) and in a delete by filter
    mixed = models.Filter(must=[*seat.must, models.HasIdCondition(has_id=[0, 2, 3])])  # type: ignore[misc]
    assert _ids(client, name, mixed) == [0, 3]
    phrase = models.Filter(
        must=[models.FieldCondition(key="t", match=models.MatchPhrase(phrase="seats left by window"))]
    )
    assert _ids(client, name, phrase) == [0]  # "by" is a stopword on both sides
    client.delete(name, points_selector=models.FilterSelector(filter=mixed))
    assert _ids(client, name, seat) == [1]
    info = client.get_collection(name)
    assert info.payload_schema["t"].data_type == models.PayloadSchemaType.TEXT


def test_bm25_with_the_fields_tokenizer(client: vecdb.Client | RemoteClient, name: str) -> None:
    _load(client, name, ["seats seats", "a seat", "the sea", "seating"])
    client.create_payload_index(
        name,
        "t",
        models.TextIndexParams(
            type=models.TextIndexType.TEXT,
            stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH),
            scoring=models.TextScoringParams(type="bm25"),
        ),
    )
    got = client.query_points(name, query=models.TextQuery(text="SEAT"), using="t", limit=10).points
    assert [p.id for p in got] == [0, 3, 1]  # "seating" stems to "seat"; a shorter document ranks higher


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "text", "tokenizer": "multilingual"}, "tokenizer"),
        ({"type": "text", "stopwords": "english"}, "stopwords"),
        ({"type": "text", "nested": "offers"}, "nested"),
        ({"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}, "stemmer"),
    ],
)
def test_unsupported_settings_are_400(
    client: vecdb.Client | RemoteClient, name: str, schema: dict[str, Any], named: str
) -> None:
    _load(client, name, ["x"])
    with pytest.raises(Exception) as caught:
        client.create_payload_index(name, "t", schema)
    assert named in str(caught.value) and (
        "400" in str(caught.value) or isinstance(caught.value, vecdb.errors.VecdbError)
    )
    assert "t" not in client.get_collection(name).payload_schema


def test_text_query_needs_a_scored_index(client: vecdb.Client | RemoteClient, name: str) -> None:
    _load(client, name, ["seat"])
    client.create_payload_index(name, "t", models.TextIndexParams(type=models.TextIndexType.TEXT))
    for using in ("t", "u"):
        with pytest.raises(Exception, match="scoring"):
            client.query_points(name, query=models.TextQuery(text="seat"), using=using)


def test_text_index_settings_survive_reopen(tmp_path: Any) -> None:
    path = tmp_path / "data"
    with vecdb.Client(path=path) as c:
        _load(c, "c", ["Two seats left", "the sea"])
        schema = {"type": "text", "stemmer": {"type": "snowball", "language": "english"}, "scoring": {"type": "bm25"}}
        c.create_payload_index("c", "t", schema)
    with vecdb.Client(path=path) as c:
        seat = models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text="seat"))])
        assert _ids(c, "c", seat) == [0]
        assert [p.id for p in c.query_points("c", query=models.TextQuery(text="seat"), using="t").points] == [0]
