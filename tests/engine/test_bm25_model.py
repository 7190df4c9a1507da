"""The ``qdrant/bm25`` model: text documents for sparse vectors, embedded and over HTTP.

fastembed's ``Bm25`` is the reference for token ids and weights: it runs here without any
download when given an empty model folder (``specific_model_path``), where it finds no stopword
file and so applies no stopwords, which is vecdb's default too. The two differ, by design and as
the README says, on ``_`` (Qdrant's word tokenizer splits ``snake_case``, fastembed keeps it
whole), so the generated texts hold no underscore.

Rankings are checked against brute force (Qdrant's IDF over the points holding the vector, RRF as
qdrant-client computes it) and against qdrant-client's local mode fed fastembed's vectors.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient
from qdrant_client.http import models as qm
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion
from vecdb_client import RemoteClient

import vecdb
from vecdb.engine.bm25_model import bm25_model, token_id
from vecdb.errors import InvalidInput, Unsupported
from vecdb.filtering.fulltext import TextAnalyzer, settings_from_params

fastembed_bm25 = pytest.importorskip("fastembed.sparse.bm25")

Client = vecdb.Client | RemoteClient
BM25 = "qdrant/bm25"

VOCAB = (
    "the a and of running runs ran runner connection connected connecting connections cat cats dog dogs "
    "quick quickly brown fox foxes jumped jumping lazy laziness memory memories retrieval retrieve "
    "vector vectors database databases search searching searched Héllo wörld café naïve Straße "
    "generously generous happiness happy 42 3.14 don't user's A.I. e-mail"
).split()
LONG_WORDS = ["x" * 40, "y" * 41, "supercalifragilisticexpialidociousnessings" + "s", "a" * 39 + "ing"]
SEPARATORS = [" ", "  ", ", ", ". ", "! ", "?\n", " - ", " (", ") ", '"', "; ", "/"]

texts = st.lists(
    st.tuples(st.sampled_from(VOCAB + LONG_WORDS), st.sampled_from(SEPARATORS)), min_size=0, max_size=25
).map(lambda parts: "".join(w + s for w, s in parts))

# (vecdb options, fastembed Bm25 keyword arguments): the same configuration both ways
CONFIGS: list[tuple[Optional[dict[str, Any]], dict[str, Any]]] = [
    (None, {}),
    ({"k": 1.5, "b": 0.5, "avg_len": 20.0}, {"k": 1.5, "b": 0.5, "avg_len": 20.0}),
    ({"stopwords": {"custom": ["The", "a", "and", "of"]}}, {"stopwords": {"The", "a", "and", "of"}}),
    ({"stemmer": {"type": "none"}}, {"disable_stemmer": True}),
    ({"language": "none"}, {"disable_stemmer": True}),
    ({"language": "german"}, {"language": "german"}),
    ({"language": "french", "b": 1.0}, {"language": "french", "b": 1.0}),
]


@pytest.fixture(scope="module")
def empty_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bm25_model")


_references: dict[str, Any] = {}


def _fastembed(folder: Path, **kwargs: Any) -> Any:
    """fastembed's model for ``kwargs``, built once (building one scans every Unicode character)."""
    key = repr(sorted((k, sorted(v) if isinstance(v, set) else v) for k, v in kwargs.items()))
    if key not in _references:
        _references[key] = fastembed_bm25.Bm25("Qdrant/bm25", specific_model_path=str(folder), **kwargs)
    return _references[key]


def _fe_doc(model: Any, text: str) -> dict[int, float]:
    emb = next(iter(model.embed([text])))
    return dict(zip(emb.indices.tolist(), emb.values.tolist(), strict=True))


def _fe_query(model: Any, text: str) -> set[int]:
    emb = next(iter(model.query_embed(text)))
    assert set(emb.values.tolist()) <= {1}
    return set(emb.indices.tolist())


# --------------------------------------------------------------------------- tokens and weights


@pytest.mark.parametrize("options,kwargs", CONFIGS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_ids_and_weights_are_fastembeds(
    empty_model_dir: Path, options: Optional[dict[str, Any]], kwargs: dict[str, Any], text: str
) -> None:
    reference = _fastembed(empty_model_dir, **kwargs)
    assert not reference.stopwords or "stopwords" in kwargs  # the empty folder holds no stopword list
    model = bm25_model(options, "options")
    indices, values = model.document(text)
    want = _fe_doc(reference, text)
    assert indices == sorted(want)
    assert values == pytest.approx([want[i] for i in indices], rel=1e-12)
    q_indices, q_values = model.query(text)
    assert set(q_indices) == _fe_query(reference, text) and len(q_indices) == len(set(q_indices))
    assert q_values == [1.0] * len(q_indices)


def test_token_ids_are_murmur3_of_utf8() -> None:
    import mmh3

    for token in ["hello", "wörld", "straß", "42", ""]:
        assert token_id(token) == abs(mmh3.hash(token.encode()))
        assert token_id(token) == fastembed_bm25.Bm25.compute_token_id(token)
    assert 0 <= max(token_id(w.lower()) for w in VOCAB) < 2**32


@pytest.mark.parametrize(
    "options,text_index",
    [
        ({"stemmer": {"type": "none"}}, {}),
        ({"tokenizer": "whitespace", "language": "none"}, {"tokenizer": "whitespace"}),
        ({"lowercase": False, "language": "none"}, {"lowercase": False}),
        ({"ascii_folding": True}, {"ascii_folding": True, "stemmer": {"type": "snowball", "language": "english"}}),
        (
            {"min_token_len": 3, "max_token_len": 6, "stopwords": {"custom": ["the"]}},
            {
                "min_token_len": 3,
                "max_token_len": 6,
                "stopwords": {"custom": ["the"]},
                "stemmer": {"type": "snowball", "language": "english"},
            },
        ),
        (
            {"tokenizer": "prefix", "max_token_len": 4, "stemmer": {"type": "snowball", "language": "french"}},
            {"tokenizer": "prefix", "max_token_len": 4, "stemmer": {"type": "snowball", "language": "french"}},
        ),
    ],
)
@settings(max_examples=30, deadline=None)
@given(text=texts)
def test_options_tokenise_as_the_text_index_with_the_same_settings(
    options: dict[str, Any], text_index: dict[str, Any], text: str
) -> None:
    """One analyzer: a bm25 option means what the full-text index setting of the same name means
    (words over 40 characters aside, which fastembed drops unless ``max_token_len`` is set)."""
    analyzer = TextAnalyzer(settings_from_params({"type": "text", **text_index}))
    short = " ".join(w for w in text.split() if len(w) <= 40 or "max_token_len" in options)
    assert bm25_model(options, "options").tokens(short) == analyzer.query_tokens(short)


# --------------------------------------------------------------------------- collections


SENTENCES = [
    "Cats are running through the database of memories",
    "A dog runs quickly; dogs ran yesterday",
    "Vector search retrieves memories from a vector database",
    "The quick brown fox jumped over the lazy dog",
    "Connections connected connecting: one connection",
    "User's e-mail about the café in Straße 42",
    "Searching, searched, search: retrieval of vectors",
    "Happiness is a generous dog and a happy cat",
    "naïve memory retrieval with BM25 and dense vectors",
    "Nothing here matches",
    "",
    "the the the the cat",
]
QUERIES = ["running cats", "vector databases", "connect", "dog memory search", "Straße café", "unmatched words"]


def _dense(i: int) -> list[float]:
    rng = random.Random(i)
    return [rng.uniform(-1, 1) for _ in range(4)]


def _create(c: Any, name: str, idf: bool = True) -> None:
    c.create_collection(
        name,
        vectors_config={"d": qm.VectorParams(size=4, distance=qm.Distance.DOT)},
        sparse_vectors_config={"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF if idf else None)},
    )


def _doc(text: str, **options: Any) -> qm.Document:
    return qm.Document(text=text, model=BM25, options=options or None)


def _points(texts_: list[str], start: int = 0) -> list[qm.PointStruct]:
    return [
        qm.PointStruct(id=start + i, vector={"d": _dense(start + i), "bm25": _doc(t)}, payload={"g": (start + i) % 3})
        for i, t in enumerate(texts_)
    ]


def _stored(c: Any, name: str, ids: list[int]) -> dict[int, dict[int, float]]:
    out = {}
    for rec in c.retrieve(name, ids, with_vectors=True):
        vec = (rec.vector or {}).get("bm25")
        out[rec.id] = {} if vec is None else dict(zip(vec.indices, vec.values, strict=True))
    return out


def _f32(d: dict[int, float]) -> dict[int, float]:
    return {k: float(np.float32(v)) for k, v in d.items()}


def test_every_write_form_stores_fastembeds_vectors(client: Client, name: str, empty_model_dir: Path) -> None:
    reference = _fastembed(empty_model_dir)
    _create(client, name)
    client.upsert(name, points=_points(SENTENCES[:4]))
    client.upsert(
        name,
        points={
            "ids": [4, 5, 6],
            "vectors": {"d": [_dense(i) for i in (4, 5, 6)], "bm25": [_doc(t) for t in SENTENCES[4:7]]},
        },
    )
    client.update_vectors(name, points=[qm.PointVectors(id=0, vector={"bm25": _doc(SENTENCES[7])})])
    client.batch_update_points(
        name,
        update_operations=[
            qm.UpsertOperation(upsert=qm.PointsList(points=_points(SENTENCES[8:10], start=8))),
            qm.UpdateVectorsOperation(
                update_vectors=qm.UpdateVectors(points=[qm.PointVectors(id=1, vector={"bm25": _doc(SENTENCES[10])})])
            ),
        ],
    )
    want = {i: SENTENCES[i] for i in (*range(7), 8, 9)} | {0: SENTENCES[7], 1: SENTENCES[10]}
    got = _stored(client, name, list(want))
    for pid, text in want.items():
        assert got[pid] == pytest.approx(_f32(_fe_doc(reference, text)), rel=1e-6), (pid, text)
    assert got[1] == {}  # an empty text is an empty vector, as Qdrant's model makes it


def _idf_scores(docs: dict[int, dict[int, float]], query: set[int]) -> dict[int, float]:
    """Brute force: sum over shared terms of Qdrant's IDF (over the points holding the vector) * weight."""
    n = len(docs)
    df = {t: sum(t in d for d in docs.values()) for t in query}
    idf = {t: math.log((n - df[t] + 0.5) / (df[t] + 0.5) + 1) for t in query}
    scores = {pid: sum(idf[t] * w for t, w in d.items() if t in query) for pid, d in docs.items()}
    return {pid: s for pid, s in scores.items() if any(t in query for t in docs[pid])}


def _ranked(scores: dict[int, float], limit: int) -> list[int]:
    return [pid for pid, _ in sorted(scores.items(), key=lambda x: (-round(x[1], 5), x[0]))[:limit]]


def _check_ranking(points: list[Any], scores: dict[int, float], limit: int) -> None:
    assert [p.id for p in points] == _ranked(scores, limit) or sorted(p.id for p in points) == sorted(
        _ranked(scores, limit)
    )
    for p in points:
        assert p.score == pytest.approx(scores[p.id], rel=1e-5)


@pytest.fixture
def corpus(client: Client, name: str, empty_model_dir: Path) -> tuple[Client, str, dict[int, dict[int, float]]]:
    """The sentences loaded by text, and their vectors as fastembed makes them (float32, as stored)."""
    _create(client, name)
    client.upsert(name, points=_points(SENTENCES))
    reference = _fastembed(empty_model_dir)
    return client, name, {i: _f32(_fe_doc(reference, t)) for i, t in enumerate(SENTENCES)}


@pytest.mark.parametrize("query", QUERIES)
def test_query_by_text_ranks_as_brute_force(
    corpus: tuple[Client, str, dict[int, dict[int, float]]], empty_model_dir: Path, query: str
) -> None:
    c, name, docs = corpus
    terms = _fe_query(_fastembed(empty_model_dir), query)
    scores = _idf_scores(docs, terms)  # (a point whose text has no token holds an empty vector: it counts in N)
    for form in (_doc(query), qm.NearestQuery(nearest=_doc(query))):
        res = c.query_points(name, query=form, using="bm25", limit=5).points
        _check_ranking(res, scores, 5)
    flt = qm.Filter(must=[qm.FieldCondition(key="g", match=qm.MatchValue(value=1))])
    res = c.query_points(name, query=_doc(query), using="bm25", query_filter=flt, limit=3).points
    _check_ranking(res, {p: s for p, s in scores.items() if p % 3 == 1}, 3)


def test_query_batch_and_local_mode_agree(corpus: tuple[Client, str, dict[int, dict[int, float]]]) -> None:
    """The same collection in local mode, fed fastembed's vectors, answers every query alike."""
    c, name, docs = corpus
    local = QdrantClient(":memory:")
    _create(local, "l")
    local.upsert(
        "l",
        points=[
            qm.PointStruct(
                id=i, vector={"d": _dense(i), "bm25": qm.SparseVector(indices=list(d), values=list(d.values()))}
            )
            for i, d in docs.items()
        ],
    )
    every = len(SENTENCES)  # (all hits: local mode orders equal scores by descending index, vecdb by id)
    got = c.query_batch_points(
        name, requests=[qm.QueryRequest(query=_doc(q), using="bm25", limit=every) for q in QUERIES]
    )
    for q, res in zip(QUERIES, got, strict=True):
        ids, values = bm25_model(None, "o").query(q)
        want = local.query_points("l", query=qm.SparseVector(indices=ids, values=values), using="bm25", limit=every)
        assert sorted((round(p.score, 4), p.id) for p in res.points) == sorted(
            (round(p.score, 4), p.id) for p in want.points
        ), q


@pytest.mark.parametrize("query", QUERIES[:4])
def test_hybrid_prefetch_rrf_ranks_as_brute_force(
    corpus: tuple[Client, str, dict[int, dict[int, float]]], empty_model_dir: Path, query: str
) -> None:
    """Dense + bm25 sparse prefetch, fused by RRF: each half by brute force, fused by qdrant-client's RRF."""
    c, name, docs = corpus
    qvec = _dense(1000)
    res = c.query_points(
        name,
        prefetch=[
            qm.Prefetch(query=qvec, using="d", limit=6),
            qm.Prefetch(query=_doc(query), using="bm25", limit=6),
        ],
        query=qm.FusionQuery(fusion=qm.Fusion.RRF),
        limit=5,
    ).points
    dense_scores = {i: float(np.dot(np.float32(_dense(i)), np.float32(qvec))) for i in docs}
    sparse_scores = _idf_scores(docs, _fe_query(_fastembed(empty_model_dir), query))
    halves = [
        [qm.ScoredPoint(id=pid, version=0, score=s) for pid, s in sorted(h.items(), key=lambda x: -x[1])[:6]]
        for h in (dense_scores, sparse_scores)
    ]
    fused = {p.id: p.score for p in reciprocal_rank_fusion(halves, limit=len(docs))}
    _check_ranking(res, fused, 5)
    assert any(p.id in sparse_scores for p in res)


def test_dense_model_and_bm25_in_one_point(client: Client, name: str, empty_model_dir: Path) -> None:
    """A point's dense text goes to the collection's model, its sparse text to bm25, in one request."""
    client.create_collection(
        name,
        vectors_config={"body": qm.VectorParams(size=256, distance=qm.Distance.COSINE)},
        sparse_vectors_config={"bm25": qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        embedding={"model": "hashing-bow-256", "vector": "body"},
    )
    client.upsert(
        name,
        points=[
            qm.PointStruct(
                id=i, vector={"body": qm.Document(text=t, model="hashing-bow-256"), "bm25": _doc(t)}, payload={}
            )
            for i, t in enumerate(SENTENCES[:9])
        ],
    )
    reference = _fastembed(empty_model_dir)
    stored = _stored(client, name, list(range(9)))
    assert stored[2] == pytest.approx(_f32(_fe_doc(reference, SENTENCES[2])), rel=1e-6)
    res = client.query_points(
        name,
        prefetch=[
            qm.Prefetch(query=qm.Document(text="vector memories", model="hashing-bow-256"), using="body", limit=5),
            qm.Prefetch(query=_doc("vector memories"), using="bm25", limit=5),
        ],
        query=qm.FusionQuery(fusion=qm.Fusion.RRF),
        limit=3,
    ).points
    assert res and res[0].id in (2, 8)


def test_stemmer_option_is_honoured(client: Client, name: str) -> None:
    _create(client, name)
    client.upsert(
        name,
        points=[
            qm.PointStruct(id=0, vector={"d": _dense(0), "bm25": _doc("comfortable seats")}),
            qm.PointStruct(id=1, vector={"d": _dense(1), "bm25": _doc("seats", stemmer={"type": "none"})}),
        ],
    )
    hits = client.query_points(name, query=_doc("seat"), using="bm25").points
    assert [p.id for p in hits] == [0]  # "seats" stems to "seat"; the unstemmed point keeps "seats"
    hits = client.query_points(name, query=_doc("seats", stemmer={"type": "none"}), using="bm25").points
    assert [p.id for p in hits] == [1]
    hits = client.query_points(name, query=_doc("SEATS", language="none", lowercase=False), using="bm25").points
    assert hits == []


def test_options_as_qdrant_clients_bm25_config(client: Client, name: str, empty_model_dir: Path) -> None:
    _create(client, name)
    config = qm.Bm25Config(
        k=2.0,
        b=0.3,
        avg_len=10,
        stemmer=qm.SnowballParams(type=qm.Snowball.SNOWBALL, language=qm.SnowballLanguage.ENGLISH),
        stopwords=qm.StopwordsSet(custom=["the"]),
    )
    client.upsert(
        name,
        points=[
            qm.PointStruct(
                id=0, vector={"d": _dense(0), "bm25": qm.Document(text=SENTENCES[3], model=BM25, options=config)}
            )
        ],
    )
    reference = _fastembed(empty_model_dir, k=2.0, b=0.3, avg_len=10, stopwords={"the"})
    assert _stored(client, name, [0])[0] == pytest.approx(_f32(_fe_doc(reference, SENTENCES[3])), rel=1e-6)


# --------------------------------------------------------------------------- refusals

BAD_DOCS = [
    (qm.Document(text="x", model="all-MiniLM-L6-v2"), "model", "makes dense vectors"),
    (qm.Document(text="x", model="hashing-bow-256"), "model", "makes dense vectors"),
    (qm.Document(text="x", model="prithivida/Splade_PP_en_v1"), "model", "unknown sparse model"),
    (_doc("x", foo=1), "options.foo", "Extra inputs"),
    (_doc("x", k=-1), "options.k", "greater than or equal"),
    (_doc("x", b=1.5), "options.b", "less than or equal"),
    (_doc("x", avg_len=0), "options.avg_len", "greater than"),
    (_doc("x", tokenizer="multilingual"), "options.tokenizer", "not supported"),
    (_doc("x", stopwords="english"), "options.stopwords", "stopword languages"),
    (_doc("x", stopwords={"languages": ["english"]}), "options.stopwords", "stopword languages"),
    (_doc("x", stemmer={"type": "snowball", "language": "klingon"}), "options.stemmer.language", "snowball"),
    (_doc("x", language="klingon"), "options.language", "unknown language"),
]


@pytest.mark.parametrize("doc,where,message", BAD_DOCS, ids=[f"{w}-{i}" for i, (_, w, _m) in enumerate(BAD_DOCS)])
def test_bad_documents_are_400s_naming_the_field_and_write_nothing(
    client: Client, name: str, doc: qm.Document, where: str, message: str
) -> None:
    _create(client, name)
    client.upsert(name, points=_points(["a dog"]))
    writes = [
        lambda: client.upsert(name, points=[qm.PointStruct(id=5, vector={"d": _dense(5), "bm25": doc})]),
        lambda: client.upsert(
            name,
            points=[
                qm.PointStruct(id=6, vector={"d": _dense(6), "bm25": _doc("fine")}),
                qm.PointStruct(id=7, vector={"d": _dense(7), "bm25": doc}),
            ],
        ),
        lambda: client.upsert(name, points={"ids": [8], "vectors": {"d": [_dense(8)], "bm25": [doc]}}),
        lambda: client.update_vectors(name, points=[qm.PointVectors(id=0, vector={"bm25": doc})]),
    ]
    paths = ["points[0].vector.bm25", "points[1].vector.bm25", "points.vectors.bm25[0]", "points[0].vector.bm25"]
    for write, path in zip(writes, paths, strict=True):
        with pytest.raises((InvalidInput, Unsupported)) as err:
            write()
        assert f"{path}.{where}" in str(err.value) and message in str(err.value)
    assert client.count(name).count == 1
    before = _stored(client, name, [0])[0]
    assert before and before == _stored(client, name, [0])[0] == _f32(
        dict(zip(*bm25_model(None, "o").document("a dog"), strict=True))
    )
    fine = qm.Prefetch(query=_doc("dog"), using="bm25")
    queries: list[tuple[dict[str, Any], str]] = [
        ({"query": doc, "using": "bm25"}, "query"),
        ({"query": qm.NearestQuery(nearest=doc), "using": "bm25"}, "query.nearest"),
        (
            {
                "prefetch": [
                    fine,
                    qm.Prefetch(prefetch=[qm.Prefetch(query=doc, using="bm25")], query=_doc("a"), using="bm25"),
                ]
            },
            "prefetch[1].prefetch[0].query",
        ),
    ]
    for args, path in queries:
        with pytest.raises((InvalidInput, Unsupported)) as err:
            client.query_points(name, **args)
        assert f"{path}.{where}" in str(err.value) and message in str(err.value)
    with pytest.raises((InvalidInput, Unsupported)) as err:
        client.query_batch_points(
            name,
            requests=[
                qm.QueryRequest(prefetch=[fine]),
                qm.QueryRequest(prefetch=[fine, qm.Prefetch(query=doc, using="bm25")]),
            ],
        )
    assert f"searches[1].prefetch[1].query.{where}" in str(err.value)


def test_bm25_on_a_dense_vector_and_a_modelless_sparse_document_are_refused(client: Client, name: str) -> None:
    _create(client, name)
    with pytest.raises(InvalidInput, match=r"points\[0\]\.vector\.d\.model: qdrant/bm25 makes sparse vectors"):
        client.upsert(name, points=[qm.PointStruct(id=1, vector={"d": _doc("a dog")})])
    with pytest.raises(InvalidInput, match=r"query\.model: qdrant/bm25 makes sparse vectors"):
        client.query_points(name, query=_doc("a dog"), using="d")
    with pytest.raises(InvalidInput, match=r"points\[0\]\.vector\.bm25\.model: vector 'bm25' is sparse"):
        client.upsert(name, points=[{"id": 1, "vector": {"d": _dense(1), "bm25": {"text": "a dog"}}}])
    assert client.count(name).count == 0


def test_qdrant_client_with_server_inference(server: Any, name: str, empty_model_dir: Path) -> None:
    """qdrant-client itself, sending its ``Document``s to the server (``cloud_inference=True``), as to Qdrant."""
    qc = QdrantClient(url=server.url, cloud_inference=True)
    try:
        _create(qc, name)
        qc.upsert(name, points=_points(SENTENCES[:9]))
        options = qm.Bm25Config(k=1.2, b=0.75, avg_len=256)  # (sent with every field, as qdrant-client dumps it)
        qc.upsert(
            name,
            points=[
                qm.PointStruct(
                    id=20, vector={"d": _dense(20), "bm25": qm.Document(text="cats", model=BM25, options=options)}
                )
            ],
        )
        docs = _stored(qc, name, [*range(9), 20])
        reference = _fastembed(empty_model_dir)
        assert docs[20] == pytest.approx(_f32(_fe_doc(reference, "cats")), rel=1e-6)
        scores = _idf_scores(docs, _fe_query(reference, "running cats"))
        _check_ranking(qc.query_points(name, query=_doc("running cats"), using="bm25", limit=4).points, scores, 4)
        with pytest.raises(Exception, match="query.nearest.options.tokenizer"):
            qc.query_points(name, query=_doc("x", tokenizer="multilingual"), using="bm25")
    finally:
        qc.close()
