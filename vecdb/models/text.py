"""Full-text payload index parameters and the BM25 text query (Qdrant's names, qdrant-client 1.20).

``TextIndexParams`` is the ``field_schema`` of ``PUT /collections/{c}/index`` with ``type: text``;
:func:`check_supported` names (400) each setting vecdb does not implement, so nothing is
silently ignored. ``TextQuery`` is ``{"text": "..."}`` or ``{"text": {"query": "...",
"scoring": {"bm25": {"k": .., "b": ..}}}}`` with ``using`` naming the payload field.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, StrictBool, StrictStr

from vecdb.errors import Unsupported
from vecdb.models.base import RequestModel

SNOWBALL_LANGUAGES = frozenset(
    "arabic armenian danish dutch english finnish french german greek hungarian italian norwegian portuguese "
    "romanian russian spanish swedish tamil turkish".split()
)
"""Qdrant's ``SnowballLanguage`` values (each has a stemmer in the ``snowballstemmer`` package)."""


class StopwordsSet(RequestModel):
    languages: Optional[list[str]] = None
    custom: Optional[list[str]] = None


class SnowballParams(RequestModel):
    type: Literal["snowball"]
    language: Optional[str] = None


class DisabledStemmerParams(RequestModel):
    type: Literal["none"]


class TextScoringParams(RequestModel):
    type: Literal["bm25"]


class TextIndexParams(RequestModel):
    type: Literal["text"]
    tokenizer: Optional[Literal["word", "whitespace", "prefix", "multilingual", "code"]] = None
    min_token_len: Optional[int] = Field(None, ge=0)
    max_token_len: Optional[int] = Field(None, ge=0)
    lowercase: Optional[bool] = None
    ascii_folding: Optional[bool] = None
    phrase_matching: Optional[bool] = None
    stopwords: Optional[Union[StrictStr, StopwordsSet]] = None
    on_disk: Optional[bool] = Field(None, description="accepted: vecdb keeps text indexes in memory, built on open")
    memory: Optional[str] = Field(None, description="accepted: placement only, answers are the same")
    stemmer: Optional[Union[SnowballParams, DisabledStemmerParams]] = Field(None, discriminator="type")
    enable_hnsw: Optional[bool] = Field(None, description="accepted: vecdb builds no payload-aware HNSW links")
    scoring: Optional[Union[StrictBool, TextScoringParams]] = None
    nested: Optional[str] = None


def check_supported(params: TextIndexParams) -> None:
    """Refuse, naming it, each setting whose meaning vecdb cannot reproduce."""
    if params.tokenizer in ("multilingual", "code"):
        raise Unsupported(
            f"field_schema.tokenizer: {params.tokenizer!r} is not supported (Qdrant segments it with "
            "charabia's language-specific dictionaries, which vecdb does not ship); use word, whitespace or prefix"
        )
    stopwords = params.stopwords
    if isinstance(stopwords, str) or (stopwords is not None and stopwords.languages):
        raise Unsupported(
            "field_schema.stopwords: predefined stopword languages are not supported yet (no package ships "
            'Qdrant\'s lists); list the words instead: {"custom": [...]}'
        )
    stemmer = params.stemmer
    if isinstance(stemmer, SnowballParams) and stemmer.language not in SNOWBALL_LANGUAGES:
        raise Unsupported(
            f"field_schema.stemmer.language: {stemmer.language!r} is not a snowball language; "
            f"expected one of {sorted(SNOWBALL_LANGUAGES)}"
        )
    if params.nested is not None:
        raise Unsupported("field_schema.nested: per-element text indexes are not supported yet")
    if params.memory is not None and params.memory not in ("cold", "cached", "pinned"):
        raise Unsupported(f"field_schema.memory: unknown placement {params.memory!r}")


class Bm25Params(RequestModel):
    k: Optional[float] = Field(None, ge=0)
    b: Optional[float] = Field(None, ge=0, le=1)


class TextQueryScoring(RequestModel):
    bm25: Bm25Params


class TextQueryInput(RequestModel):
    query: StrictStr
    scoring: Optional[TextQueryScoring] = None


class TextQuery(RequestModel):
    """Rank by BM25 over the text index (with ``scoring``) of the payload field ``using`` names."""

    text: Union[StrictStr, TextQueryInput]

    def parts(self) -> tuple[str, Optional[float], Optional[float]]:
        """(query text, k1 or None, b or None)."""
        if isinstance(self.text, str):
            return self.text, None, None
        bm25 = self.text.scoring.bm25 if self.text.scoring is not None else None
        return self.text.query, bm25.k if bm25 else None, bm25.b if bm25 else None


__all__ = [
    "Bm25Params",
    "DisabledStemmerParams",
    "SnowballParams",
    "StopwordsSet",
    "TextIndexParams",
    "TextQuery",
    "TextQueryInput",
    "TextQueryScoring",
    "TextScoringParams",
    "check_supported",
]
