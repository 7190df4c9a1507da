"""A collection's stored settings: what the user sent at create time, plus server defaults.

Settings live as one JSON document in the collection's ``meta`` table. The
vectors config is kept exactly as sent (``vectors_echo``) because Qdrant's
clients compare it for equality; everything vecdb needs to compute with is
derived from it by :func:`vector_spaces`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from vecdb.engine.embed import check_installed, model_spec
from vecdb.engine.embed import describe as describe_embedding
from vecdb.engine.strict import check_config
from vecdb.errors import InvalidInput, NotFound, Unsupported
from vecdb.index.device import resolve_device
from vecdb.index.pq import SUPPORTED_BITS
from vecdb.models.collections import (
    CollectionConfig,
    CollectionParams,
    CreateCollection,
    Distance,
    HnswConfig,
    IndexConfig,
    OptimizersConfig,
    SparseVectorParams,
    UpdateCollection,
    VectorParams,
    WalConfig,
)
from vecdb.names import check_name  # noqa: F401  (re-exported)

DEFAULT_VECTOR = ""
"""Qdrant's name for the unnamed (default) vector."""


DEFAULT_HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": False}
DEFAULT_OPTIMIZERS = OptimizersConfig().model_dump()
DEFAULT_WAL = WalConfig().model_dump()


@dataclass(frozen=True, slots=True)
class VectorSpace:
    """One dense vector space of a collection; ``index`` is its column in storage keys."""

    name: str
    index: int
    size: int
    distance: Distance
    on_disk: bool = False  # float32 rows served from a memory-mapped file, not held in memory
    datatype: str = "float32"  # float16: values rounded to half precision as they are written (see DATATYPES)


@dataclass(frozen=True, slots=True)
class SparseSpace:
    """One sparse vector space; ``index`` is its column in the ``sparse`` table's keys (its own numbering)."""

    name: str
    index: int
    idf: bool = False  # modifier "idf": query weights scaled by Qdrant's IDF over the live points


@dataclass(frozen=True, slots=True)
class MultiSpace:
    """One multivector space (``multivector_config``): each point holds a matrix of ``size``-wide rows,
    compared by MaxSim; ``index`` is its column in the ``multi`` table's keys (its own numbering)."""

    name: str
    index: int
    size: int
    distance: Distance
    datatype: str = "float32"


MULTI_COMPARATORS = ("max_sim",)
DATATYPES = ("float32", "float16", "uint8")
"""Vector datatypes: ``float16`` rounds every stored value to half precision as Qdrant stores it, and
``uint8`` takes whole numbers 0..255 (Cosine: stored as given, compared by angle), so the answers are
those of a Qdrant collection of that datatype; vecdb still holds the values as float32 (faiss and BLAS
work on float32), so it saves no memory: quantization does (``quantization_config``)."""


def check_datatype(datatype: Optional[str], field: str, multi: bool = False) -> str:
    """The stored datatype of a vector space (uint8 multivectors are refused by name)."""
    if datatype is None:
        return "float32"
    if datatype not in DATATYPES:
        raise InvalidInput(f"{field}: expected one of {', '.join(DATATYPES)}, got {datatype!r}")
    if multi and datatype == "uint8":
        raise Unsupported(f"{field}: uint8 multivectors are not supported yet (float32 and float16 are)")
    return datatype


SPARSE_DATATYPES = ("float32",)
SPARSE_MEMORY = ("pinned",)


def _sparse_settings(name: str, params: SparseVectorParams) -> dict[str, Any]:
    """The stored form of one sparse space; every option is honoured or refused here, naming it."""
    field = f"sparse_vectors.{name}"
    index = params.index
    if index is not None:
        if index.on_disk:
            raise Unsupported(
                f"{field}.index.on_disk: a sparse index served from disk is not supported yet "
                "(the inverted index is held in memory and checkpointed to disk)"
            )
        if index.memory is not None and index.memory not in SPARSE_MEMORY:
            raise Unsupported(f"{field}.index.memory: only 'pinned' (in memory) is supported, got {index.memory!r}")
        if index.datatype is not None and index.datatype not in SPARSE_DATATYPES:
            raise Unsupported(f"{field}.index.datatype: only float32 is supported, got {index.datatype!r}")
    return {"name": name, "modifier": params.modifier or "none"}


def _sparse_from_create(req: CreateCollection, dense: dict[str, VectorParams]) -> tuple[dict[str, Any], list[Any]]:
    """(echo as sent, stored spaces) of the create request's ``sparse_vectors``."""
    params = dict(req.sparse_vectors or {})
    for name in params:
        if name in dense:
            raise InvalidInput(f"sparse_vectors.{name}: the name is already used by a dense vector")
    echo = {k: v.model_dump(mode="json", exclude_unset=True) for k, v in params.items()}
    return echo, [_sparse_settings(name, p) for name, p in params.items()]


def settings_from_create(req: CreateCollection) -> dict[str, Any]:
    """Validate a create request and turn it into the stored settings document."""
    embedding = _embedding_settings(req)
    if req.vectors is None and embedding is not None:  # the model says what the vectors are
        spec = model_spec(embedding["model"])
        req = req.model_copy(update={"vectors": VectorParams(size=spec.dim, distance=Distance(spec.distance))})
    if isinstance(req.vectors, VectorParams):
        echo: Any = req.vectors.model_dump(mode="json", exclude_unset=True)
        named = False
        params = {DEFAULT_VECTOR: req.vectors}
    else:
        params = dict(req.vectors or {})
        echo = {k: v.model_dump(mode="json", exclude_unset=True) for k, v in params.items()}
        named = True
    multi = _multi_from_create(params)
    every = params
    params = {name: vp for name, vp in params.items() if vp.multivector_config is None}
    for name, vp in params.items():
        check_datatype(vp.datatype, f"vectors.{name or '(default)'}.datatype")
        _refuse_quantization(vp.quantization_config, f"vectors.{name or '(default)'}.quantization_config")
    _refuse_quantization(req.quantization_config, "quantization_config", scalar_ok=True)
    if req.sharding_method not in (None, "auto"):
        raise Unsupported(f"sharding_method: {req.sharding_method!r} is not supported yet (one shard per collection)")
    sparse_echo, sparse = _sparse_from_create(req, every if named else {})
    return {
        "vectors_echo": echo,
        "named": named,
        "sparse_echo": sparse_echo,
        "sparse": sparse,
        "multi": multi,
        "spaces": [
            {
                "name": n,
                "size": vp.size,
                "distance": vp.distance.value,
                "on_disk": vp.on_disk if vp.on_disk is not None else _ivf_pq_asked(req),
                **({"datatype": vp.datatype} if vp.datatype not in (None, "float32") else {}),
            }
            for n, vp in params.items()
        ],
        "hnsw_config": {**DEFAULT_HNSW, **_diff(req.hnsw_config)},
        "optimizers_config": {**DEFAULT_OPTIMIZERS, **_diff(req.optimizers_config)},
        "wal_config": {**DEFAULT_WAL, **_diff(req.wal_config)},
        "quantization_config": req.quantization_config,
        "strict_mode_config": _strict_config(req.strict_mode_config) or {"enabled": False},
        "metadata": req.metadata,
        "params": {
            "shard_number": req.shard_number or 1,
            "replication_factor": req.replication_factor or 1,
            "write_consistency_factor": req.write_consistency_factor or 1,
            "on_disk_payload": True if req.on_disk_payload is None else req.on_disk_payload,
        },
        "payload_schema": {},
        "index": index_settings(req, params),
        "embedding": _checked_embedding(embedding, params),
    }


def _multi_from_create(params: dict[str, VectorParams]) -> list[dict[str, Any]]:
    """The stored multivector spaces: ``multivector_config`` checked (``max_sim`` is Qdrant's one comparator);
    their rows live in LMDB and are compared exactly, so no index or quantization setting applies."""
    out = []
    for name, vp in params.items():
        config = vp.multivector_config
        if config is None:
            continue
        field = f"vectors.{name or '(default)'}"
        if not isinstance(config, dict):
            raise InvalidInput(f"{field}.multivector_config: expected an object with a comparator")
        unknown = sorted(set(config) - {"comparator"})
        if unknown:
            raise InvalidInput(f"{field}.multivector_config.{unknown[0]}: not a multivector setting")
        if config.get("comparator") not in MULTI_COMPARATORS:
            raise InvalidInput(
                f"{field}.multivector_config.comparator: expected max_sim, got {config.get('comparator')!r}"
            )
        datatype = check_datatype(vp.datatype, f"{field}.datatype", multi=True)
        _refuse_quantization(vp.quantization_config, f"{field}.quantization_config")
        entry = {"name": name, "size": vp.size, "distance": vp.distance.value, "comparator": "max_sim"}
        out.append(entry if datatype == "float32" else {**entry, "datatype": datatype})
    return out


def multi_spaces(settings: dict[str, Any]) -> list[MultiSpace]:
    """The multivector spaces of a collection (none for collections created before they existed)."""
    return [
        MultiSpace(s["name"], i, s["size"], Distance(s["distance"]), s.get("datatype", "float32"))
        for i, s in enumerate(settings.get("multi") or [])
    ]


def multi_space_by_name(spaces: list[MultiSpace], name: Optional[str]) -> Optional[MultiSpace]:
    return next((s for s in spaces if s.name == (name or DEFAULT_VECTOR)), None)


def _ivf_pq_asked(req: CreateCollection) -> bool:
    """IVF-PQ exists to save memory: its spaces keep their float32 vectors on disk unless told otherwise."""
    return (req.index is not None and req.index.type == "ivf_pq") or "product" in (req.quantization_config or {})


PRODUCT_COMPRESSION = {"x4": 4, "x8": 8, "x16": 16, "x32": 32, "x64": 64}
"""Qdrant's product-quantization ratios (float32 bytes / code bytes)."""


def index_settings(req: CreateCollection, params: dict[str, VectorParams]) -> dict[str, Any]:
    """The ANN index the spaces get: ``index`` (vecdb) or Qdrant's product quantization as shorthand."""
    product = (req.quantization_config or {}).get("product")
    if req.index is not None and product is not None:
        raise InvalidInput("index: give either index or quantization_config.product, not both")
    scalar = scalar_index(req.quantization_config) or binary_index(req.quantization_config)
    if scalar is not None:
        which = "scalar" if scalar["type"] == "hnsw_sq" else "binary"
        if product is not None or (req.index is not None and req.index.type != "hnsw"):
            raise InvalidInput(
                f"quantization_config.{which}: {which} quantization is an HNSW index's; give one quantization"
            )
        return scalar
    if product is not None:
        compression = product.get("compression") if isinstance(product, dict) else None
        if compression not in PRODUCT_COMPRESSION:
            raise InvalidInput(
                f"quantization_config.product.compression: expected one of {', '.join(PRODUCT_COMPRESSION)}, "
                f"got {compression!r}"
            )
        return {"type": "ivf_pq", "compression": PRODUCT_COMPRESSION[compression], "pq_bits": 8, "device": "auto"}
    cfg = req.index or IndexConfig()
    out = cfg.model_dump(exclude_none=True)
    if cfg.type == "hnsw_sq":
        return {"type": "hnsw_sq", "quantile": cfg.quantile if cfg.quantile is not None else 1.0}
    if cfg.type == "hnsw_bq":
        return {"type": "hnsw_bq"}
    if cfg.type != "ivf_pq":
        return {"type": cfg.type}
    if cfg.pq_bits not in SUPPORTED_BITS:
        raise InvalidInput(f"index.pq_bits: only {', '.join(map(str, SUPPORTED_BITS))} is supported, got {cfg.pq_bits}")
    for name, vp in params.items():
        if cfg.pq_m is not None and vp.size % cfg.pq_m:
            raise InvalidInput(
                f"index.pq_m: {cfg.pq_m} does not divide the size {vp.size} of vector {name or '(default)'}"
            )
    resolve_device(cfg.device, field="index.device")  # a clear error now for "cuda" without a GPU
    return out


def apply_update(settings: dict[str, Any], req: UpdateCollection) -> dict[str, Any]:
    """Merge a PATCH body into the settings; returns a new document."""
    out = dict(settings)
    spaces = {s.name for s in vector_spaces(settings)}
    multi = {s.name for s in multi_spaces(settings)}
    if req.sparse_vectors:
        out.update(_sparse_update(settings, req.sparse_vectors))
    for name, diff in (req.vectors or {}).items():
        if name not in spaces and name not in multi:
            raise InvalidInput(f"vectors: Not existing vector name error: {name}")
        patch = diff.model_dump(mode="json", exclude_unset=True)
        _refuse_quantization(diff.quantization_config, f"vectors.{name or '(default)'}.quantization_config")
        current = next((s for s in vector_spaces(settings) if s.name == name), None)
        if current is not None and diff.on_disk is not None and diff.on_disk != current.on_disk:
            raise Unsupported(
                f"vectors.{name or '(default)'}.on_disk: moving stored vectors between memory and disk after "
                "creation is not supported yet"
            )
        echo = out["vectors_echo"]
        if out["named"]:
            echo = {**echo, name: {**echo[name], **patch}}
        else:
            echo = {**echo, **patch}
        out["vectors_echo"] = echo
    if req.hnsw_config is not None:
        out["hnsw_config"] = {**out["hnsw_config"], **_diff(req.hnsw_config)}
    if req.optimizers_config is not None:
        out["optimizers_config"] = {**out["optimizers_config"], **_diff(req.optimizers_config)}
    if req.params is not None:
        out["params"] = {**out["params"], **req.params.model_dump(exclude_none=True)}
    if req.quantization_config is not None:
        _refuse_quantization(req.quantization_config, "quantization_config", scalar_ok=True)
        kind = index_config(out)["type"]
        scalar = scalar_index(req.quantization_config) or binary_index(req.quantization_config)
        if scalar is not None or (req.quantization_config == "Disabled" and kind in ("hnsw_sq", "hnsw_bq")):
            if kind not in ("hnsw", "hnsw_sq", "hnsw_bq"):
                raise Unsupported(
                    f"quantization_config: switching a {kind} index to scalar or binary quantization is not "
                    "supported yet"
                )
            out["index"] = scalar or {"type": "hnsw"}  # (a different kind: the optimizer rebuilds the index)
        out["quantization_config"] = None if req.quantization_config == "Disabled" else req.quantization_config
    if req.strict_mode_config is not None:
        out["strict_mode_config"] = {**(out.get("strict_mode_config") or {}), **_strict_config(req.strict_mode_config)}
    if req.metadata is not None:
        out["metadata"] = {**(out.get("metadata") or {}), **req.metadata}
    return out


def _refuse_quantization(config: Any, field: str, scalar_ok: bool = False) -> None:
    """Quantization per vector space is not implemented: refused, not stored and ignored. The collection's
    scalar quantization is ``hnsw_sq``, its binary quantization ``hnsw_bq``, product quantization IVF-PQ."""
    if isinstance(config, dict) and scalar_ok:
        given = [kind for kind in ("scalar", "binary", "product") if config.get(kind) is not None]
        if len(given) > 1:
            raise InvalidInput(f"{field}: give one quantization, not {' and '.join(given)}")
    if isinstance(config, dict) and not scalar_ok:
        for kind in ("scalar", "binary", "product"):
            if config.get(kind) is not None:
                raise Unsupported(f"{field}.{kind}: {kind} quantization per vector space is not supported yet")


BINARY_ENCODINGS = ("one_bit",)
BINARY_QUERY_ENCODINGS = ("default", "binary")


def binary_index(config: Any, field: str = "quantization_config") -> Optional[dict[str, Any]]:
    """The ``hnsw_bq`` index Qdrant's ``quantization_config.binary`` asks for, or None. Qdrant's
    ``one_bit`` encoding with binary queries; its multi-bit encodings and scalar query encodings are
    refused by name."""
    if not isinstance(config, dict) or config.get("binary") is None:
        return None
    binary = config["binary"]
    if not isinstance(binary, dict):
        raise InvalidInput(f"{field}.binary: expected an object")
    unknown = sorted(set(binary) - {"always_ram", "encoding", "query_encoding"})
    if unknown:
        raise InvalidInput(f"{field}.binary.{unknown[0]}: not a binary quantization setting")
    encoding = binary.get("encoding")
    if encoding is not None and encoding not in BINARY_ENCODINGS:
        raise Unsupported(f"{field}.binary.encoding: only one_bit is supported yet, got {encoding!r}")
    query_encoding = binary.get("query_encoding")
    if query_encoding is not None and query_encoding not in BINARY_QUERY_ENCODINGS:
        raise Unsupported(
            f"{field}.binary.query_encoding: only default and binary are supported yet, got {query_encoding!r}"
        )
    always_ram = binary.get("always_ram")
    if always_ram is not None and not isinstance(always_ram, bool):
        raise InvalidInput(f"{field}.binary.always_ram: expected true or false, got {always_ram!r}")
    return {"type": "hnsw_bq"}


def scalar_index(config: Any, field: str = "quantization_config") -> Optional[dict[str, Any]]:
    """The ``hnsw_sq`` index Qdrant's ``quantization_config.scalar`` asks for, or None."""
    if not isinstance(config, dict) or config.get("scalar") is None:
        return None
    scalar = config["scalar"]
    if not isinstance(scalar, dict):
        raise InvalidInput(f"{field}.scalar: expected an object with type int8")
    unknown = sorted(set(scalar) - {"type", "quantile", "always_ram"})
    if unknown:
        raise InvalidInput(f"{field}.scalar.{unknown[0]}: not a scalar quantization setting")
    if scalar.get("type") != "int8":
        raise InvalidInput(f"{field}.scalar.type: expected int8, got {scalar.get('type')!r}")
    quantile = scalar.get("quantile")
    if quantile is not None and (
        isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0.5 <= quantile <= 1
    ):
        raise InvalidInput(f"{field}.scalar.quantile: expected a number in [0.5, 1], got {quantile!r}")
    return {"type": "hnsw_sq", "quantile": float(quantile if quantile is not None else 1.0)}


def _strict_config(config: Optional[dict[str, Any]]) -> dict[str, Any]:
    """A ``strict_mode_config`` as stored: checked (a setting vecdb does not enforce is refused)."""
    if config is None:
        return {}
    check_config(config)
    return {k: v for k, v in config.items() if v is not None}


def _sparse_update(settings: dict[str, Any], diffs: dict[str, SparseVectorParams]) -> dict[str, Any]:
    """Qdrant's PATCH of ``sparse_vectors``: existing names only, their index params and modifier merged."""
    echo = dict(settings.get("sparse_echo") or {})
    stored = {s["name"]: s for s in settings.get("sparse") or []}
    for name, diff in diffs.items():
        if name not in stored:
            raise InvalidInput(f"sparse_vectors: Not existing vector name error: {name}")
        patch = diff.model_dump(mode="json", exclude_unset=True)
        merged = {**echo.get(name, {}), **patch}
        if "index" in patch and isinstance(echo.get(name, {}).get("index"), dict):
            merged["index"] = {**echo[name]["index"], **(patch["index"] or {})}
        checked = _sparse_settings(name, SparseVectorParams.model_validate(merged))
        echo[name] = merged
        stored[name] = {**stored[name], **checked}
    return {"sparse_echo": echo, "sparse": [stored[s["name"]] for s in settings.get("sparse") or []]}


def sparse_spaces(settings: dict[str, Any]) -> list[SparseSpace]:
    """The sparse spaces of a collection (none for collections created before they existed)."""
    return [SparseSpace(s["name"], i, s.get("modifier") == "idf") for i, s in enumerate(settings.get("sparse") or [])]


def sparse_space_by_name(spaces: list[SparseSpace], name: Optional[str]) -> Optional[SparseSpace]:
    return next((s for s in spaces if s.name == (name or DEFAULT_VECTOR)), None)


def vector_spaces(settings: dict[str, Any]) -> list[VectorSpace]:
    return [
        VectorSpace(
            s["name"],
            i,
            s["size"],
            Distance(s["distance"]),
            bool(s.get("on_disk", False)),
            s.get("datatype", "float32"),
        )
        for i, s in enumerate(settings["spaces"])
    ]


def space_index(spaces: list[VectorSpace], name: str) -> int | None:
    """Storage column of the space called ``name``, or None if the collection has none."""
    return next((s.index for s in spaces if s.name == name), None)


def space_by_name(spaces: list[VectorSpace], name: str | None) -> VectorSpace:
    """Resolve ``using``; absent or ``""`` means the default vector."""
    wanted = name or DEFAULT_VECTOR
    for space in spaces:
        if space.name == wanted:
            return space
    raise InvalidInput(f"Not existing vector name error: {wanted}")


def collection_config(settings: dict[str, Any]) -> CollectionConfig:
    return CollectionConfig(
        params=CollectionParams(
            vectors=settings["vectors_echo"], sparse_vectors=settings.get("sparse_echo") or None, **settings["params"]
        ),
        hnsw_config=HnswConfig(**settings["hnsw_config"]),
        optimizer_config=OptimizersConfig(**settings["optimizers_config"]),
        wal_config=WalConfig(**settings["wal_config"]),
        quantization_config=settings.get("quantization_config"),
        strict_mode_config=settings.get("strict_mode_config"),
        metadata=settings.get("metadata"),
        index=index_config(settings),
        embedding=describe_embedding(settings["embedding"]) if settings.get("embedding") else None,
    )


def _embedding_settings(req: CreateCollection) -> Optional[dict[str, Any]]:
    if req.embedding is None:
        return None
    spec = check_installed(req.embedding.model)  # refused now rather than at the first text
    return {"model": spec.name, "vector": req.embedding.vector}


def _checked_embedding(
    embedding: Optional[dict[str, Any]], params: dict[str, VectorParams]
) -> Optional[dict[str, Any]]:
    if embedding is None:
        return None
    name, spec = embedding["vector"], model_spec(embedding["model"])
    vp = params.get(name)
    if vp is None:
        raise InvalidInput(f"embedding.vector: the collection has no vector named {name!r} for the model to fill")
    if vp.size != spec.dim:
        raise InvalidInput(
            f"embedding.model: {spec.name} makes {spec.dim}-dimensional vectors but vector {name!r} has size {vp.size}"
        )
    return embedding


def index_config(settings: dict[str, Any]) -> dict[str, Any]:
    """The stored index choice (collections created before it existed use HNSW)."""
    return settings.get("index") or {"type": "hnsw"}


def _diff(model: Any) -> dict[str, Any]:
    return {} if model is None else model.model_dump(mode="json", exclude_none=True)


def raise_missing_collection(name: str) -> NotFound:
    return NotFound(f"Collection `{name}` doesn't exist!")
