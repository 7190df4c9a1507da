"""Full-text fields: Qdrant's tokenizers, the text conditions they answer, and the text index.

One :class:`TextAnalyzer` turns a string into tokens the way a Qdrant full-text payload
index configured with the same ``TextIndexParams`` does (the server's
``lib/segment/.../full_text_index/tokenizers``): split (``word``: runs of alphanumeric
characters; ``whitespace``: on whitespace; ``prefix``: words, indexed as every prefix
from ``min_token_len`` to ``max_token_len`` characters), then per token: ASCII folding,
lowercasing, the stopword filter, the snowball stemmer and the length bounds, in that
order. The default analyzer is the tokenizer Qdrant (and qdrant-client's local mode) uses
for a field without a text index, so one code path answers both.

Text conditions hold per value, as in local mode: ``text`` when one string of the field
holds every query token, ``text_any`` when one holds any, ``phrase`` when one holds the
query tokens consecutively. An empty query (nothing left after tokenizing) matches nothing.

:class:`TextIndex` keeps, per point, its strings' tokens and, per token, the points and
their term frequencies: conditions become set intersections and BM25
(:mod:`vecdb.engine.text_search`) reads document frequencies and lengths from it. Writes
replace a point's entries exactly (the tokens to remove are known), so it needs no
versions.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from vecdb.errors import InvalidInput, Unsupported
from vecdb.models.filters import MatchPhrase, MatchText, MatchTextAny
from vecdb.models.text import TextIndexParams, check_supported

_WORD = re.compile(r"[^\W_]+")
DOC_LEN_BITS = 13
"""Qdrant keeps this many leading bits of a document's length (exact below 8192 tokens)."""
DEFAULT_K1 = 1.2
DEFAULT_B = 0.75

TOKENIZERS = ("word", "whitespace", "prefix")
"""Tokenizers vecdb implements. ``multilingual`` (charabia's script-aware segmentation: CJK
dictionaries, Thai, Japanese morphology) and ``code`` are refused with a 400."""

_FOLD_EXTRA = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "ł": "l",
    "Ł": "L",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
}


def round_doc_len(length: int) -> int:
    """A document length as Qdrant stores it: its leading ``DOC_LEN_BITS`` bits."""
    lost_bits = max(length.bit_length() - DOC_LEN_BITS, 0)
    step = 1 << lost_bits
    return length // step * step


def ascii_fold(token: str) -> str:
    """Accented letters to ASCII (``ação`` -> ``acao``): canonical decomposition without
    combining marks, plus the letters that do not decompose (``ß``, ``ø``, ``æ``, ``ł``...)."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    out = "".join(_FOLD_EXTRA.get(ch, ch) for ch in decomposed if not unicodedata.combining(ch))
    return out


STEM_CACHE = 200_000
"""Words whose stems each language keeps (a word's stem never changes; text repeats its words)."""


@lru_cache(maxsize=32)
def _stemmer(language: str) -> Callable[[str], str]:
    """The stem function of one snowball language, shared by every analyzer and thread.

    A snowball stemmer object keeps the word it works on in itself, so one object must never run
    on two threads at once: each thread gets its own. In front of them, a cache: the pure-Python
    algorithm costs tens of microseconds a word, and real text is mostly words seen before.
    """
    import snowballstemmer  # a pure-Python package: imported only by indexes that stem

    try:
        snowballstemmer.stemmer(language)
    except KeyError:
        raise InvalidInput(f"stemmer.language: unknown snowball language {language!r}") from None
    own = threading.local()

    def stem(word: str) -> str:
        algorithm = getattr(own, "algorithm", None)
        if algorithm is None:
            algorithm = own.algorithm = snowballstemmer.stemmer(language)
        return algorithm.stemWord(word)  # type: ignore[no-any-return]

    return lru_cache(maxsize=STEM_CACHE)(stem)


@dataclass(frozen=True)
class TextSettings:
    """What a text index's parameters mean for tokenizing (defaults: Qdrant's)."""

    tokenizer: str = "word"
    lowercase: bool = True
    ascii_folding: bool = False
    min_token_len: Optional[int] = None
    max_token_len: Optional[int] = None
    stopwords: frozenset[str] = frozenset()
    stemmer: Optional[str] = None
    phrase_matching: bool = False
    bm25: bool = False

    @property
    def is_default(self) -> bool:
        return self == TextSettings(phrase_matching=self.phrase_matching, bm25=self.bm25)


def settings_from_params(params: Optional[dict[str, Any]]) -> TextSettings:
    """Text settings of a stored ``field_schema`` dict (already validated by
    :class:`vecdb.models.text.TextIndexParams` when the index was created)."""
    if not params:
        return TextSettings()
    parsed = TextIndexParams.model_validate(params)
    check_supported(parsed)
    stopwords: frozenset[str] = frozenset()
    if parsed.stopwords is not None and not isinstance(parsed.stopwords, str):
        custom = parsed.stopwords.custom or []
        lowercase = parsed.lowercase is not False
        stopwords = frozenset(word.lower() if lowercase else word for word in custom)
    stemmer = None
    if parsed.stemmer is not None and parsed.stemmer.type == "snowball":
        stemmer = parsed.stemmer.language
        if stemmer is None:
            raise InvalidInput("stemmer.language: a snowball stemmer needs a language")
        _stemmer(stemmer)
    return TextSettings(
        tokenizer=parsed.tokenizer or "word",
        lowercase=parsed.lowercase is not False,
        ascii_folding=bool(parsed.ascii_folding),
        min_token_len=parsed.min_token_len,
        max_token_len=parsed.max_token_len,
        stopwords=stopwords,
        stemmer=stemmer,
        phrase_matching=bool(parsed.phrase_matching),
        bm25=bool(parsed.scoring),
    )


class TextAnalyzer:
    """Tokens of documents and queries under one index's settings."""

    def __init__(self, settings: TextSettings = TextSettings()) -> None:
        self.settings = settings
        self._stem = _stemmer(settings.stemmer) if settings.stemmer else None
        self._plain = settings.is_default

    def _split(self, text: str) -> list[str]:
        if self.settings.tokenizer == "whitespace":
            return text.split()
        return _WORD.findall(text)

    def _normalise(self, token: str) -> str:
        s = self.settings
        if s.ascii_folding:
            token = ascii_fold(token)
        if s.lowercase:
            token = token.lower()
        return token

    def _process(self, token: str, check_max: bool) -> Optional[str]:
        """Fold, lowercase, drop stopwords, stem, check lengths (Qdrant's TokensProcessor)."""
        s = self.settings
        token = self._normalise(token)
        if token in s.stopwords:
            return None
        if self._stem is not None:
            token = self._stem(token)
        if s.min_token_len is not None and len(token) < s.min_token_len:
            return None
        if check_max and s.max_token_len is not None and len(token) > s.max_token_len:
            return None
        return token or None

    def doc_tokens(self, text: str) -> list[str]:
        """Tokens a document string is indexed under, in order (prefixes for ``prefix``)."""
        if self._plain:
            return [token.lower() for token in _WORD.findall(text)]
        if self.settings.tokenizer == "prefix":
            return self._prefixes(text)
        out = []
        for raw in self._split(text):
            token = self._process(raw, check_max=True)
            if token is not None:
                out.append(token)
        return out

    def _prefixes(self, text: str) -> list[str]:
        s = self.settings
        low = s.min_token_len or 1
        high = s.max_token_len
        out: list[str] = []
        for raw in _WORD.findall(text):
            word = self._process(raw, check_max=False)
            if word is None:
                continue
            n = low
            while high is None or n <= high:
                if len(word) > n:
                    out.append(word[:n])
                    n += 1
                else:
                    out.append(word)
                    break
        return out

    def query_tokens(self, text: str) -> list[str]:
        """Tokens of a query string. For ``prefix`` each word is one token cut to
        ``max_token_len`` characters, stopwords kept (a typed prefix may be one)."""
        if self._plain:
            return [token.lower() for token in _WORD.findall(text)]
        if self.settings.tokenizer != "prefix":
            return self.doc_tokens(text)
        s = self.settings
        out = []
        for raw in _WORD.findall(text):
            word = self._normalise(raw)
            if self._stem is not None:
                word = self._stem(word)
            if not word or (s.min_token_len is not None and len(word) < s.min_token_len):
                continue
            out.append(word if s.max_token_len is None else word[: s.max_token_len])
        return out


DEFAULT_ANALYZER = TextAnalyzer()
"""Qdrant's tokenizer for fields without a text index (local mode's ``unindexed_text_tokens``)."""


def _phrase_in(words: Sequence[str], phrase: Sequence[str]) -> bool:
    size = len(phrase)
    return any(list(words[i : i + size]) == list(phrase) for i in range(len(words) - size + 1))


def text_test(match: Any, analyzer: TextAnalyzer) -> Callable[[Any], bool]:
    """Test of one payload value against a text, text_any or phrase condition."""
    if isinstance(match, MatchText):
        wanted = set(analyzer.query_tokens(match.text))
        if not wanted:
            return lambda value: False  # an empty query never matches
        return lambda value: isinstance(value, str) and wanted.issubset(analyzer.doc_tokens(value))
    if isinstance(match, MatchTextAny):
        anyof = frozenset(analyzer.query_tokens(match.text_any))
        return lambda value: isinstance(value, str) and not anyof.isdisjoint(analyzer.doc_tokens(value))
    if isinstance(match, MatchPhrase):
        phrase = phrase_tokens(match.phrase, analyzer)
        if not phrase:
            return lambda value: False
        return lambda value: isinstance(value, str) and _phrase_in(analyzer.doc_tokens(value), phrase)
    raise InvalidInput(f"not a text condition: {type(match).__name__}")


def phrase_tokens(phrase: str, analyzer: TextAnalyzer) -> list[str]:
    if analyzer.settings.tokenizer == "prefix":
        raise Unsupported("match.phrase: phrase matching on a prefix-tokenized text index is not supported")
    return analyzer.query_tokens(phrase)


TEXT_MATCHES = (MatchText, MatchTextAny, MatchPhrase)


__all__ = [
    "DEFAULT_ANALYZER",
    "DEFAULT_B",
    "DEFAULT_K1",
    "TEXT_MATCHES",
    "TOKENIZERS",
    "TextAnalyzer",
    "TextSettings",
    "ascii_fold",
    "round_doc_len",
    "settings_from_params",
    "text_test",
]
