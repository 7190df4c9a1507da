"""The text index of one full-text payload field: tokens per point, points per token, BM25.

The tokenising is :class:`~vecdb.filtering.fulltext.TextAnalyzer`'s (one analyzer for index,
scan and query alike); this module holds what the index keeps per point and the scoring over it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vecdb.filtering.fulltext import TextAnalyzer, _phrase_in, phrase_tokens, round_doc_len, text_test  # noqa: F401
from vecdb.models.filters import MatchPhrase, MatchText, MatchTextAny  # noqa: F401


@dataclass
class _Doc:
    values: list[list[str]]  # tokens of each string value, in order
    length: int  # rounded token count over all values (BM25's document length)
    counts: Counter[str] = field(default_factory=Counter)


class TextIndex:
    """Tokens per point and points per token of one text field (see the module doc)."""

    def __init__(self, analyzer: TextAnalyzer) -> None:
        self.analyzer = analyzer
        self.docs: dict[int, _Doc] = {}
        self.postings: dict[str, dict[int, int]] = {}  # token -> {iid: term frequency}
        self.total_length = 0  # sum of rounded lengths of documents with at least one token
        self.scored_docs = 0  # documents with at least one token
        self._lengths = np.zeros(0, np.float64)  # rounded length per iid, for BM25's arithmetic in numpy
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # token -> (iids, tfs), rebuilt after a write

    # --- writing

    def tokens_of(self, strings: Sequence[str]) -> list[list[str]]:
        """Tokens of a point's strings; pure, so extraction runs it outside the lock."""
        return [self.analyzer.doc_tokens(text) for text in strings]

    def remove(self, iids: Iterable[int]) -> None:
        for iid in iids:
            doc = self.docs.pop(int(iid), None)
            if doc is None:
                continue
            for token in doc.counts:
                self._arrays.pop(token, None)
                posting = self.postings[token]
                del posting[iid]
                if not posting:
                    del self.postings[token]
            if doc.counts:
                self.total_length -= doc.length
                self.scored_docs -= 1

    def add(self, iid: int, values: list[list[str]]) -> None:
        self.remove([iid])
        counts: Counter[str] = Counter()
        for tokens in values:
            counts.update(tokens)
        doc = _Doc(values, round_doc_len(sum(counts.values())), counts)
        self.docs[iid] = doc
        for token, tf in counts.items():
            self.postings.setdefault(token, {})[iid] = tf
            self._arrays.pop(token, None)
        if iid >= len(self._lengths):
            grown = np.zeros(max(iid + 1, 2 * len(self._lengths), 1024), np.float64)
            grown[: len(self._lengths)] = self._lengths
            self._lengths = grown
        self._lengths[iid] = doc.length
        if counts:
            self.total_length += doc.length
            self.scored_docs += 1

    # --- reading

    def mask(self, match: Any, size: int) -> np.ndarray:
        """bool[size] of the points whose field passes a text condition."""
        mask = np.zeros(size, bool)
        analyzer = self.analyzer
        if isinstance(match, MatchTextAny):
            found: set[int] = set()
            for token in set(analyzer.query_tokens(match.text_any)):
                found.update(self.postings.get(token, ()))
            hits = list(found)
        else:
            if isinstance(match, MatchText):
                query = analyzer.query_tokens(match.text)
                wanted = set(query)
                check = lambda tokens: wanted.issubset(tokens)  # noqa: E731
            else:
                query = phrase_tokens(match.phrase, analyzer)
                check = lambda tokens: _phrase_in(tokens, query)  # noqa: E731
            if not query:
                return mask
            postings = sorted((self.postings.get(token, {}) for token in set(query)), key=len)
            if not postings[0]:
                return mask
            candidates = set(postings[0])
            for posting in postings[1:]:
                candidates.intersection_update(posting)
                if not candidates:
                    return mask
            single = isinstance(match, MatchText)
            hits = [
                iid
                for iid in candidates
                if (single and len(self.docs[iid].values) == 1)
                or any(check(tokens) for tokens in self.docs[iid].values)
            ]
        if hits:
            hits_array = np.fromiter(hits, dtype=np.int64, count=len(hits))
            mask[hits_array[hits_array < size]] = True
        return mask

    def _posting_arrays(self, token: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
        arrays = self._arrays.get(token)
        if arrays is None:
            posting = self.postings.get(token)
            if not posting:
                return None
            iids = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            arrays = self._arrays[token] = (iids, tfs)
        return arrays

    def bm25(self, text: str, k1: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        """(iids, float64 scores) of every indexed point holding a query term, by local mode's
        ``bm25_scores``: a repeated query term counts once; the corpus is every point with a token."""
        terms = set(self.analyzer.query_tokens(text))
        n = self.scored_docs
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
        if not terms or not n:
            return empty
        avg = self.total_length / n
        total: Optional[np.ndarray] = None
        for term in terms:
            arrays = self._posting_arrays(term)
            if arrays is None:
                continue
            iids, tfs = arrays
            df = len(iids)
            idf = math.log((n - df + 0.5) / (df + 0.5) + 1)
            norm = k1 * (1 - b + b * self._lengths[iids] / avg)
            if total is None:
                total = np.zeros(len(self._lengths), np.float64)
            total[iids] += idf * tfs * (k1 + 1) / (tfs + norm)
        if total is None:
            return empty
        hits = np.flatnonzero(total > 0)
        return hits, total[hits]


__all__ = ["TextIndex"]
