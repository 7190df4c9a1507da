"""Text corpora the text benchmarks build themselves from data every machine has: the docstrings of
Python's standard library, read with ``ast`` (nothing is imported or downloaded).

* :func:`docstring_pairs`: one (dotted name, first sentence, rest) per documented function or class
  whose first sentence and rest are both unique: the rest is the document, the first sentence its
  query (one relevant document per query), for retrieval quality.
* :func:`sentence_documents`: ``n`` documents of 2-6 sentences drawn from those docstrings, with
  queries of 2-5 words taken from random documents, for speed: real English and Python
  vocabulary with its real skew, at any size.

Both are deterministic for a given Python version and seed.
"""

from __future__ import annotations

import ast
import collections
import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

_SKIP_DIRS = {"site-packages", "test", "tests", "idle_test", "turtledemo", "ensurepip", "__pycache__"}
_FIRST_SENTENCE = re.compile(r"(.+?[.!?])\s+(.*)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Docstring:
    name: str  # module.Class.function
    text: str  # whitespace-normalised


@lru_cache(maxsize=1)
def stdlib_docstrings() -> tuple[Docstring, ...]:
    """Every function, method and class docstring of the standard library's own ``.py`` files."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[Docstring] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_DIRS & set(rel.parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        stack: list[tuple[ast.AST, str]] = [(tree, module)]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}.{child.name}"
                    doc = ast.get_docstring(child)
                    if doc:
                        out.append(Docstring(name, " ".join(doc.split())))
                    stack.append((child, name))
    out.sort(key=lambda d: d.name)
    return tuple(out)


@dataclass(frozen=True)
class Pair:
    name: str
    query: str  # the docstring's first sentence
    document: str  # the rest


def docstring_pairs(min_query_words: int = 4, min_doc_words: int = 8) -> list[Pair]:
    """(first sentence, rest) of every docstring long enough, keeping only pairs whose query and
    document are both unique (so each query has exactly one right answer)."""
    pairs = []
    for doc in stdlib_docstrings():
        m = _FIRST_SENTENCE.match(doc.text)
        if not m:
            continue
        first, rest = m.group(1), m.group(2)
        if len(first.split()) >= min_query_words and len(rest.split()) >= min_doc_words:
            pairs.append(Pair(doc.name, first, rest))
    queries = collections.Counter(p.query for p in pairs)
    docs = collections.Counter(p.document for p in pairs)
    return [p for p in pairs if queries[p.query] == 1 and docs[p.document] == 1]


@lru_cache(maxsize=1)
def stdlib_sentences() -> tuple[str, ...]:
    """Distinct sentences of three or more words from every docstring."""
    seen: dict[str, None] = {}
    for doc in stdlib_docstrings():
        for sentence in _SENTENCE_END.split(doc.text):
            if len(sentence.split()) >= 3:
                seen.setdefault(sentence, None)
    return tuple(seen)


def sentence_documents(n: int, seed: int = 0, sentences: tuple[int, int] = (2, 6)) -> list[str]:
    """``n`` documents, each of ``sentences`` (least, most) random docstring sentences (2-6: about 45
    words on average; 1-1: a short note of about 12)."""
    pool = stdlib_sentences()
    rng = np.random.default_rng([seed, 11])
    lengths = rng.integers(sentences[0], sentences[1] + 1, size=n)
    picks = rng.integers(len(pool), size=int(lengths.sum()))
    out, at = [], 0
    for length in lengths.tolist():
        out.append(" ".join(pool[j] for j in picks[at : at + length].tolist()))
        at += length
    return out


_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")


def word_queries(documents: list[str], nq: int, seed: int = 0) -> list[str]:
    """``nq`` queries of 2-5 consecutive words of random documents (what a user half-remembers)."""
    rng = np.random.default_rng([seed, 12])
    out: list[str] = []
    while len(out) < nq:
        words = _WORD.findall(documents[int(rng.integers(len(documents)))])
        if len(words) < 5:
            continue
        length = int(rng.integers(2, 6))
        start = int(rng.integers(len(words) - length + 1))
        out.append(" ".join(words[start : start + length]))
    return out


__all__ = ["Pair", "docstring_pairs", "sentence_documents", "stdlib_docstrings", "word_queries"]
