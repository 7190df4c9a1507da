"""The ``qdrant/bm25`` model: text to a sparse vector on the server, as Qdrant serves it itself.

A ``{"text": .., "model": "qdrant/bm25", "options": {..}}`` document for a sparse vector becomes
fastembed's ``Bm25`` embedding (``fastembed/sparse/bm25.py``): the text's tokens, each token's
id ``abs(murmur3_32(token))`` and, for a stored document, its value
``tf * (k + 1) / (tf + k * (1 - b + b * doc_len / avg_len))``; a query gets 1.0 per distinct
token. The IDF half of BM25 is the collection's: create the sparse vector with
``modifier: idf`` (nothing forces it, as in Qdrant).

Tokens come from the full-text index's :class:`~vecdb.filtering.fulltext.TextAnalyzer`, so the
options Qdrant's server takes for bm25 (``tokenizer``, ``lowercase``, ``ascii_folding``,
``stopwords``, ``stemmer``, ``min_token_len``, ``max_token_len``, ``language``) tokenise exactly as
the same settings of a text index do. The defaults are fastembed's (``word`` tokenizer,
lowercase, English snowball stemmer, words longer than 40 characters dropped before stemming)
except for two things, both documented: no stopwords by default (no package ships Qdrant's
lists; a ``custom`` list is honoured), and words split at ``_`` as Qdrant's word tokenizer
splits them (fastembed keeps ``snake_case`` whole). Anything vecdb cannot honour is a 400
naming the option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Optional, Union

import mmh3
import orjson
from pydantic import Field, StrictBool, StrictStr, ValidationError

from vecdb.errors import InvalidInput, Unsupported
from vecdb.filtering.fulltext import TextAnalyzer, TextSettings
from vecdb.models.base import RequestModel, error_location
from vecdb.models.text import SNOWBALL_LANGUAGES, DisabledStemmerParams, SnowballParams, StopwordsSet

MODEL_NAME = "qdrant/bm25"
DEFAULT_LANGUAGE = "english"
FASTEMBED_MAX_WORD = 40
"""fastembed's ``token_max_length``: longer words are dropped before stemming (unless ``max_token_len`` is set)."""

STOPWORD_LANGUAGES = frozenset(
    "arabic azerbaijani basque bengali catalan chinese danish dutch english finnish french german greek hebrew "
    "hinglish hungarian indonesian italian japanese kazakh nepali norwegian portuguese romanian russian slovene "
    "spanish swedish tajik turkish".split()
)
"""Qdrant's ``Language`` values: a ``language`` without a snowball stemmer is still a language."""


def is_bm25(model: Optional[str]) -> bool:
    return model is not None and model.lower() == MODEL_NAME


class Bm25Options(RequestModel):
    """``options`` of a bm25 document: qdrant-client 1.20's ``Bm25Config``."""

    k: Optional[float] = Field(None, ge=0)
    b: Optional[float] = Field(None, ge=0, le=1)
    avg_len: Optional[float] = Field(None, gt=0)
    tokenizer: Optional[Literal["word", "whitespace", "prefix", "multilingual", "code"]] = None
    language: Optional[StrictStr] = None
    lowercase: Optional[StrictBool] = None
    ascii_folding: Optional[StrictBool] = None
    stopwords: Optional[Union[StrictStr, StopwordsSet]] = None
    stemmer: Optional[Union[SnowballParams, DisabledStemmerParams]] = Field(None, discriminator="type")
    min_token_len: Optional[int] = Field(None, ge=0)
    max_token_len: Optional[int] = Field(None, ge=0)


@dataclass(frozen=True)
class Bm25Model:
    """One configuration of the model: pure, shared by every request naming the same options."""

    k: float
    b: float
    avg_len: float
    analyzer: TextAnalyzer
    drop_longer_than: Optional[int]
    """fastembed's pre-stemming word length bound (None when ``max_token_len`` replaces it)."""

    def tokens(self, text: str) -> list[str]:
        """The text's tokens in order (Qdrant tokenises bm25 documents and queries alike)."""
        if self.drop_longer_than is not None:
            text = _drop_long_words(text, self.analyzer.settings, self.drop_longer_than)
        return self.analyzer.query_tokens(text)

    def document(self, text: str) -> tuple[list[int], list[float]]:
        """(sorted token ids, BM25 term-frequency weights) of a stored document."""
        tokens = self.tokens(text)
        counts: dict[int, int] = {}
        for token in tokens:
            tid = token_id(token)
            counts[tid] = counts.get(tid, 0) + 1
        k, b = self.k, self.b
        norm = k * (1 - b + b * len(tokens) / self.avg_len)
        indices = sorted(counts)
        return indices, [counts[i] * (k + 1) / (counts[i] + norm) for i in indices]

    def query(self, text: str) -> tuple[list[int], list[float]]:
        """(distinct token ids in first-seen order, 1.0 each) of a query."""
        indices = list(dict.fromkeys(token_id(token) for token in self.tokens(text)))
        return indices, [1.0] * len(indices)


def token_id(token: str) -> int:
    """fastembed's and Qdrant's term id: the absolute value of the signed 32-bit murmur3 of the UTF-8 token."""
    return abs(mmh3.hash(token))


_LONG_WORD = re.compile(r"[^\W_]{21,}")
_LONG_CHUNK = re.compile(r"\S{21,}")


def _drop_long_words(text: str, settings: TextSettings, limit: int) -> str:
    """``text`` without the words the tokenizer would split out that are longer than ``limit``
    characters once lowercased (fastembed measures the lowercased word, before stemming).
    Only words of 21+ characters are looked at: lowercasing at most doubles a length."""
    pattern = _LONG_CHUNK if settings.tokenizer == "whitespace" else _LONG_WORD
    lower = settings.lowercase

    def keep(m: re.Match[str]) -> str:
        word = m.group()
        return " " if len(word.lower() if lower else word) > limit else word

    return pattern.sub(keep, text)


def bm25_model(options: Optional[dict[str, Any]], field: str) -> Bm25Model:
    """The model for a document's ``options`` (``field`` names them in errors); 400 for anything
    vecdb cannot honour."""
    key = orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS).decode()
    try:
        return _model(key)
    except _OptionError as exc:
        raise exc.error(field) from None


class _OptionError(Exception):
    def __init__(self, where: str, message: str, unsupported: bool = False) -> None:
        self.where, self.message, self.unsupported = where, message, unsupported

    def error(self, field: str) -> Exception:
        text = f"{field}.{self.where}: {self.message}" if self.where else f"{field}: {self.message}"
        return Unsupported(text) if self.unsupported else InvalidInput(text)


@lru_cache(maxsize=64)
def _model(key: str) -> Bm25Model:
    try:
        opts = Bm25Options.model_validate(orjson.loads(key))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _OptionError(error_location(first["loc"]), first["msg"]) from None
    if opts.tokenizer in ("multilingual", "code"):
        raise _OptionError(
            "tokenizer",
            f"{opts.tokenizer!r} is not supported (Qdrant segments it with charabia's language-specific "
            "dictionaries, which vecdb does not ship); use word, whitespace or prefix",
            unsupported=True,
        )
    language = (opts.language or DEFAULT_LANGUAGE).lower()
    if language != "none" and language not in SNOWBALL_LANGUAGES and language not in STOPWORD_LANGUAGES:
        raise _OptionError("language", f"unknown language {opts.language!r}")
    if opts.stemmer is None:
        stemmer: Optional[str] = language if language in SNOWBALL_LANGUAGES else None
    elif isinstance(opts.stemmer, SnowballParams):
        stemmer = opts.stemmer.language
        if stemmer not in SNOWBALL_LANGUAGES:
            raise _OptionError(
                "stemmer.language",
                f"{stemmer!r} is not a snowball language; expected one of {sorted(SNOWBALL_LANGUAGES)}",
            )
    else:
        stemmer = None
    stopwords = opts.stopwords
    if isinstance(stopwords, str) or (stopwords is not None and stopwords.languages):
        raise _OptionError(
            "stopwords",
            "predefined stopword languages are not supported yet (no package ships Qdrant's lists); "
            'list the words instead: {"custom": [...]}',
            unsupported=True,
        )
    lowercase = opts.lowercase is not False
    custom = (stopwords.custom or []) if stopwords is not None else []
    settings = TextSettings(
        tokenizer=opts.tokenizer or "word",
        lowercase=lowercase,
        ascii_folding=bool(opts.ascii_folding),
        min_token_len=opts.min_token_len,
        max_token_len=opts.max_token_len,
        stopwords=frozenset(word.lower() if lowercase else word for word in custom),
        stemmer=stemmer,
    )
    return Bm25Model(
        k=1.2 if opts.k is None else opts.k,
        b=0.75 if opts.b is None else opts.b,
        avg_len=256.0 if opts.avg_len is None else opts.avg_len,
        analyzer=TextAnalyzer(settings),
        drop_longer_than=FASTEMBED_MAX_WORD if opts.max_token_len is None else None,
    )


__all__ = ["MODEL_NAME", "Bm25Model", "Bm25Options", "bm25_model", "is_bm25", "token_id"]
