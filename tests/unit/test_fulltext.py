"""Full-text tokenizers, the text index and BM25 (``vecdb/filtering/fulltext.py``).

Qdrant's own tokenizer tests fix the expected tokens of each option; qdrant-client's local mode
(``unindexed_text_tokens``, ``bm25_scores``) is the oracle for the default tokenizer and BM25;
and for every option the text index must answer exactly what the scan evaluator answers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client.local.bm25 import bm25_scores, round_doc_len
from qdrant_client.local.payload_filters import unindexed_text_tokens

from vecdb.errors import Unsupported
from vecdb.filtering import fulltext
from vecdb.filtering.evaluate import compile_filter
from vecdb.filtering.fulltext import TextAnalyzer, TextSettings, settings_from_params, text_test
from vecdb.filtering.payload_index import PayloadIndex
from vecdb.filtering.text_index import TextIndex
from vecdb.models.collections import CreateFieldIndex
from vecdb.models.filters import Filter, MatchPhrase, MatchText, MatchTextAny

WORDS = [
    "seat",
    "seats",
    "Seat",
    "the",
    "The",
    "a",
    "and",
    "running",
    "runs",
    "run",
    "cat",
    "cats",
    "Ação",
    "acao",
    "naïve",
    "Straße",
    "мир",
    "Мира",
    "日本",
    "x1",
    "42",
    "foo_bar",
    "don't",
    "généreux",
]
SEPARATORS = [" ", "  ", ", ", ". ", "! ", "-", "\n", "\t", "/", "?"]


@st.composite
def texts(draw: Any, max_words: int = 8) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), max_size=max_words))
    out = ""
    for word in words:
        out += word + draw(st.sampled_from(SEPARATORS))
    return out


SETTINGS = [
    TextSettings(),
    TextSettings(tokenizer="whitespace"),
    TextSettings(tokenizer="prefix", min_token_len=2, max_token_len=5),
    TextSettings(lowercase=False),
    TextSettings(ascii_folding=True),
    TextSettings(min_token_len=3, max_token_len=6),
    TextSettings(stopwords=frozenset({"the", "a", "and"})),
    TextSettings(stemmer="english"),
    TextSettings(stemmer="english", stopwords=frozenset({"the"}), ascii_folding=True, phrase_matching=True),
]


# --------------------------------------------------------------------------- tokens


@given(texts())
def test_default_tokens_are_local_modes(text: str) -> None:
    assert fulltext.DEFAULT_ANALYZER.doc_tokens(text) == unindexed_text_tokens(text)
    assert fulltext.DEFAULT_ANALYZER.query_tokens(text) == unindexed_text_tokens(text)
    assert TextAnalyzer(TextSettings(stemmer=None, tokenizer="word")).doc_tokens(text) == unindexed_text_tokens(text)


def test_qdrant_tokenizer_examples() -> None:
    """The expectations of Qdrant's own tokenizer tests (``tokenizers/mod.rs``)."""
    prefix = TextAnalyzer(TextSettings(tokenizer="prefix", min_token_len=1, max_token_len=4))
    assert prefix.doc_tokens("hello, мир!") == ["h", "he", "hel", "hell", "м", "ми", "мир"]
    assert prefix.query_tokens("hello, мир!") == ["hell", "мир"]
    assert TextAnalyzer(TextSettings(lowercase=False)).doc_tokens("hello, world! Привет, мир!") == [
        "hello",
        "world",
        "Привет",
        "мир",
    ]
    assert TextAnalyzer(TextSettings(tokenizer="whitespace")).doc_tokens("Hello, World!") == ["hello,", "world!"]


def test_each_option() -> None:
    assert TextAnalyzer(TextSettings(stemmer="english")).doc_tokens("The seats, running") == ["the", "seat", "run"]
    assert TextAnalyzer(TextSettings(stopwords=frozenset({"the"}))).doc_tokens("The cat") == ["cat"]
    assert TextAnalyzer(TextSettings(ascii_folding=True)).doc_tokens("Ação Straße naïve") == [
        "acao",
        "strasse",
        "naive",
    ]
    assert TextAnalyzer(TextSettings(min_token_len=2, max_token_len=3)).doc_tokens("a bb ccc dddd") == ["bb", "ccc"]
    # a prefix query keeps stopwords (a typed prefix may be one) and is cut to max_token_len
    prefix = TextAnalyzer(TextSettings(tokenizer="prefix", stopwords=frozenset({"the"}), max_token_len=4))
    assert prefix.doc_tokens("theory the") == ["t", "th", "the", "theo"]
    assert prefix.query_tokens("the theory") == ["the", "theo"]


def test_params_parse_and_refuse() -> None:
    parsed = settings_from_params(
        {
            "type": "text",
            "tokenizer": "word",
            "lowercase": True,
            "min_token_len": 2,
            "stopwords": {"custom": ["The"]},
            "stemmer": {"type": "snowball", "language": "english"},
            "phrase_matching": True,
            "scoring": {"type": "bm25"},
        }
    )
    assert parsed == TextSettings(
        min_token_len=2, stopwords=frozenset({"the"}), stemmer="english", phrase_matching=True, bm25=True
    )
    assert settings_from_params({"type": "text", "stemmer": {"type": "none"}}) == TextSettings()
    refused = [
        ({"type": "text", "tokenizer": "multilingual"}, "tokenizer"),
        ({"type": "text", "tokenizer": "code"}, "tokenizer"),
        ({"type": "text", "stopwords": "english"}, "stopwords"),
        ({"type": "text", "stopwords": {"languages": ["english"]}}, "stopwords"),
        ({"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}, "stemmer"),
        ({"type": "text", "nested": "offers"}, "nested"),
    ]
    for schema, name in refused:
        with pytest.raises(Unsupported, match=name):
            CreateFieldIndex.model_validate({"field_name": "t", "field_schema": schema})
    with pytest.raises(ValueError, match="bogus"):
        CreateFieldIndex.model_validate({"field_name": "t", "field_schema": {"type": "text", "bogus": 1}})


def test_a_prefix_index_refuses_phrases() -> None:
    analyzer = TextAnalyzer(TextSettings(tokenizer="prefix"))
    with pytest.raises(Unsupported, match="phrase"):
        text_test(MatchPhrase(phrase="a b"), analyzer)


# --------------------------------------------------------------------------- index == scan


def _matches(draw_query: str) -> list[Any]:
    return [MatchText(text=draw_query), MatchTextAny(text_any=draw_query), MatchPhrase(phrase=draw_query)]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(range(len(SETTINGS))),
    st.lists(st.one_of(texts(), st.lists(texts(4), max_size=3), st.integers(), st.none()), max_size=12),
    texts(3),
    st.data(),
)
def test_index_answers_what_the_scan_answers(which: int, values: list[Any], query: str, data: Any) -> None:
    """For every setting, the index's mask of text/text_any/phrase is the evaluator's answer."""
    settings_ = SETTINGS[which]
    analyzer = TextAnalyzer(settings_)
    index = TextIndex(analyzer)
    for iid, value in enumerate(values):
        strings = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        index.add(iid, index.tokens_of(strings))
    # overwrite and delete some, as writes do
    for iid in data.draw(st.lists(st.sampled_from(range(len(values))), max_size=3)) if values else []:
        index.remove([iid])
        values[iid] = None
    for match in _matches(query):
        if settings_.tokenizer == "prefix" and isinstance(match, MatchPhrase):
            continue
        test = text_test(match, analyzer)
        want = [
            any(test(v) for v in (value if isinstance(value, list) else [value])) if value is not None else False
            for value in values
        ]
        got = index.mask(match, len(values)).tolist()
        assert got == want, (match, values)


def test_payload_index_and_filters_use_the_fields_tokenizer() -> None:
    """ "seat" finds "seats" with the English stemmer, through the index and through a scan."""
    index = PayloadIndex({})
    params = {"type": "text", "stemmer": {"type": "snowball", "language": "english"}}
    payloads = [{"t": "Two seats left"}, {"t": "a seat"}, {"t": "the sea"}, {"u": "seats"}]
    index.add_field("t", "text", list(enumerate(payloads)), params)
    flt = Filter.model_validate({"must": [{"key": "t", "match": {"text": "seat"}}]})
    assert np.flatnonzero(index.filter_mask(flt, 4)).tolist() == [0, 1]
    predicate = compile_filter(flt, index.analyzers)
    assert predicate is not None

    class P:
        def __init__(self, payload: dict[str, Any]) -> None:
            self.payload = payload
            self.id = 0

        def has_vector(self, name: str) -> bool:
            return False

    assert [predicate(P(p)) for p in payloads] == [True, True, False, False]  # type: ignore[arg-type]
    default = compile_filter(flt)
    assert default is not None and [default(P(p)) for p in payloads] == [False, True, False, False]  # type: ignore[arg-type]
    # a write replaces a point's tokens; a delete forgets them
    index.update_many([1, 0], [{"t": "no chairs"}, None])
    assert index.filter_mask(flt, 4) is not None and not index.filter_mask(flt, 4).any()  # type: ignore[union-attr]


# --------------------------------------------------------------------------- BM25


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(texts(12), st.lists(texts(5), max_size=3), st.none()), min_size=1, max_size=15),
    texts(4),
    st.floats(0, 3),
    st.floats(0, 1),
)
def test_bm25_is_local_modes(values: list[Any], query: str, k1: float, b: float) -> None:
    index = TextIndex(TextAnalyzer(TextSettings(bm25=True)))
    documents = {}
    for iid, value in enumerate(values):
        strings = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        index.add(iid, index.tokens_of(strings))
        tokens = [t for s in strings for t in unindexed_text_tokens(s)]
        if tokens:
            documents[iid] = tokens
    want = bm25_scores(documents, query, k1, b)
    iids, scores = index.bm25(query, k1, b)
    got = dict(zip(iids.tolist(), scores.tolist(), strict=True))
    assert sorted(got) == sorted(want)
    for iid, score in want.items():
        assert math.isclose(got[iid], score, rel_tol=1e-9)


def test_doc_lengths_round_as_the_server() -> None:
    for n in [0, 1, 8191, 8192, 8193, 16385, 40000, 10**6]:
        assert fulltext.round_doc_len(n) == round_doc_len(n)


def test_a_stored_index_with_settings_refused_now_keeps_the_default_tokenizer(caplog: Any) -> None:
    """A store written before a setting was checked must still open: that index answers as it did
    then (default tokenizer), with a warning, instead of failing the collection."""
    index = PayloadIndex({})
    index.add_field("t", "text", [(0, {"t": "Seats"})], {"type": "text", "tokenizer": "multilingual"})
    flt = Filter.model_validate({"must": [{"key": "t", "match": {"text": "seats"}}]})
    assert np.flatnonzero(index.filter_mask(flt, 1)).tolist() == [0]
    assert "default text settings" in caplog.text


def test_stemming_is_right_from_many_threads_at_once() -> None:
    """A snowball stemmer object holds the word it works on, so threads must not share one; the cache
    in front of them must give every thread the stem a fresh stemmer gives."""
    import threading

    import snowballstemmer

    words = [
        f"{base}{suffix}"
        for base in ("connect", "relat", "generaliz", "hop", "run")
        for suffix in ("ing", "ed", "ions", "ational", "ness", "fully")
    ]
    words = [f"{w}{'s' * (i % 3)}x{i}" for i in range(3000) for w in (words[i % len(words)],)]
    fresh = snowballstemmer.stemmer("english")
    want = [fresh.stemWord(w) for w in words]
    stem = fulltext._stemmer("english")
    stem.cache_clear()  # type: ignore[attr-defined]
    got: dict[int, list[str]] = {}

    def work(t: int) -> None:
        got[t] = [stem(w) for w in (words if t % 2 == 0 else words[::-1])]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t, stems in got.items():
        assert stems == (want if t % 2 == 0 else want[::-1])
