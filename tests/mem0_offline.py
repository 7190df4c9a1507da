"""mem0 without a network: the embedder and "LLM" the mem0 framework test plugs into mem0's factories.

mem0 validates provider names against a fixed list and loads each provider's class by dotted path
(``mem0.utils.factory``), so the test points one listed name (``langchain``, whose real class
needs the ``langchain`` package) at these classes. mem0 calls its LLM only to infer facts; the
tests add with ``infer=False``, so any call to this one is a failure, never a silent answer.
"""

from __future__ import annotations

from typing import Any

from mem0.embeddings.base import EmbeddingBase
from mem0.llms.base import LLMBase

from tests.hybrid_words import dense


class WordEmbedder(EmbeddingBase):
    """The tests' hashed bag of words (``tests.hybrid_words.dense``), the same for add, update and search."""

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        return dense(text)


class NoLLM(LLMBase):
    """Refuses every call: mem0 must not reach for an LLM when ``infer=False``."""

    def generate_response(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("mem0 called its LLM although every add() here passes infer=False")
