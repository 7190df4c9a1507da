"""Adding and removing a named vector of an existing collection (Qdrant's ``PUT`` and ``DELETE
/collections/{c}/vectors/{name}``, qdrant-client's ``create_vector_name`` / ``delete_vector_name``).

What changes, decided here: the settings document (the stored spaces and the echoed config, as Qdrant's
local mode changes them) and, on removal, the stored rows. Rows are keyed by a vector's position among
the vectors of its kind (dense, sparse, multivector), so removing one drops its rows and moves the rows
of the later vectors of that kind down one position, all in one LMDB transaction; their index
checkpoints are forgotten (the optimizer rebuilds them). The collection is closed around the edit and
opened again (:meth:`vecdb.engine.database.Database.change_vectors`), so every in-memory structure is
built for the new set of vectors rather than patched.

Qdrant's rules: re-creating a vector with the same schema is a no-op, with another schema a 400; a
name is one kind only; deleting a vector that does not exist is a no-op; the unnamed vector of a
collection created with a single vector config cannot be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import lmdb

from vecdb.engine.checkpoints import manifest_key, sparse_manifest_key
from vecdb.engine.settings import _multi_from_create, _sparse_settings, check_datatype
from vecdb.errors import InvalidInput, Unsupported
from vecdb.models.collections import CreateVectorName, SparseVectorParams, VectorParams
from vecdb.storage.env import Environment
from vecdb.storage.points import POINTS_DBS, PointsTables, encode_change

MAX_NAME_BYTES = 200
_INVALID_NAME_CHARS = ("<", ">", ":", '"', "/", "\\", "|", "?", "*", "\0", "\u001f")


@dataclass(frozen=True)
class Removal:
    """A vector to remove: its kind (``dense``, ``sparse``, ``multi``) and position among its kind."""

    kind: str
    position: int


def check_vector_name(name: str) -> None:
    """Qdrant's rules for a new vector's name (it keeps vectors in folders named after them)."""
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidInput(f"vector name `{name}`: must be at most {MAX_NAME_BYTES} bytes long")
    bad = next((c for c in _INVALID_NAME_CHARS if c in name), None)
    if bad is not None:
        raise InvalidInput(f"vector name `{name}`: cannot contain {bad!r}")
    if name in (".", ".."):
        raise InvalidInput(f"vector name `{name}` is not allowed")


def _kind_of(settings: dict[str, Any], name: str) -> Optional[Removal]:
    for kind, key in (("dense", "spaces"), ("multi", "multi"), ("sparse", "sparse")):
        for position, entry in enumerate(settings.get(key) or []):
            if entry["name"] == name:
                return Removal(kind, position)
    return None


def with_vector(settings: dict[str, Any], name: str, req: CreateVectorName) -> Optional[dict[str, Any]]:
    """The settings with vector ``name`` added as ``req`` describes it, or None when it exists already
    with the same schema (Qdrant's no-op)."""
    if (req.dense is None) == (req.sparse is None):
        raise InvalidInput("body: give exactly one of dense or sparse")
    check_vector_name(name)
    found = _kind_of(settings, name)
    if req.sparse is not None:
        if found is not None and found.kind != "sparse":
            raise InvalidInput(f"Vector {name} already exists as a dense vector")
        if req.sparse.datatype not in (None, "float32"):
            raise Unsupported(f"sparse.datatype: only float32 is supported, got {req.sparse.datatype!r}")
        stored = _sparse_settings(name, SparseVectorParams(modifier=req.sparse.modifier))
        if found is not None:
            if settings["sparse"][found.position]["modifier"] != stored["modifier"]:
                raise InvalidInput(f"Sparse vector {name} already exists with a different configuration")
            return None
        echo = req.sparse.model_dump(mode="json", exclude_none=True, exclude={"datatype"})
        return {
            **settings,
            "sparse": [*(settings.get("sparse") or []), stored],
            "sparse_echo": {**(settings.get("sparse_echo") or {}), name: echo},
        }
    dense = req.dense
    assert dense is not None
    if found is not None and found.kind == "sparse":
        raise InvalidInput(f"Vector {name} already exists as a sparse vector")
    datatype = check_datatype(dense.datatype, "dense.datatype", multi=dense.multivector_config is not None)
    params = VectorParams(
        size=dense.size,
        distance=dense.distance,
        multivector_config=dense.multivector_config,
        datatype=None if datatype == "float32" else datatype,
    )
    if found is not None:
        entry = settings["spaces" if found.kind == "dense" else "multi"][found.position]
        same = (
            entry["size"] == dense.size
            and entry["distance"] == dense.distance.value
            and (found.kind == "multi") == (dense.multivector_config is not None)
        )
        if not same:
            raise InvalidInput(f"Vector {name} already exists with a different configuration")
        return None
    out = dict(settings)
    if dense.multivector_config is not None:
        out["multi"] = [*(settings.get("multi") or []), *_multi_from_create({name: params})]
    else:
        entry = {"name": name, "size": dense.size, "distance": dense.distance.value, "on_disk": False}
        if datatype != "float32":
            entry["datatype"] = datatype
        out["spaces"] = [*settings["spaces"], entry]
    echo_entry = params.model_dump(mode="json", exclude_none=True)
    if settings["named"]:
        out["vectors_echo"] = {**settings["vectors_echo"], name: echo_entry}
    else:  # a single (unnamed) vector config becomes a map with the unnamed vector under "", as local mode does
        out["vectors_echo"] = {"": settings["vectors_echo"], name: echo_entry}
        out["named"] = True
    return out


def without_vector(settings: dict[str, Any], name: str) -> Optional[tuple[dict[str, Any], Removal]]:
    """The settings without vector ``name`` and what to remove from storage, or None when the collection
    has no such vector (Qdrant's no-op)."""
    found = _kind_of(settings, name)
    if found is None:
        return None
    if found.kind == "dense" and name == "" and not settings["named"]:
        raise InvalidInput("Cannot delete the unnamed vector when it is the only dense vector in the collection")
    embedding = settings.get("embedding") or {}
    if embedding and embedding.get("vector", "") == name and found.kind == "dense":
        raise InvalidInput(f"vector {name!r}: the collection's embedding model fills it; it cannot be deleted")
    out = dict(settings)
    if found.kind == "sparse":
        out["sparse"] = [s for s in settings["sparse"] if s["name"] != name]
        out["sparse_echo"] = {k: v for k, v in (settings.get("sparse_echo") or {}).items() if k != name}
    else:
        key = "spaces" if found.kind == "dense" else "multi"
        out[key] = [s for s in settings[key] if s["name"] != name]
        out["vectors_echo"] = {k: v for k, v in settings["vectors_echo"].items() if k != name}
    return out, found


def remove_rows(txn: lmdb.Transaction, tables: PointsTables, removal: Removal, count: int) -> list[dict[str, Any]]:
    """Drop the rows of the removed vector and move those of the later ``count - position - 1`` vectors
    of its kind down one position; forget the index checkpoints of the vectors from ``position`` on.
    Returns the forgotten manifests (their files are deleted once the transaction commits)."""
    db = {"dense": tables.vectors, "sparse": tables.sparse, "multi": tables.multi}[removal.kind]
    at = removal.position
    if db is not None:
        keys = list(txn.cursor(db=db).iternext(keys=True, values=False))  # (keys alone: rows are read as moved)
        for key in keys:
            if removal.kind == "multi":
                space, rest = int.from_bytes(key[:2], "big"), key[2:]
                moved = None if space <= at else (space - 1).to_bytes(2, "big") + rest
            else:
                space, head = int.from_bytes(key[8:10], "big"), key[:8]
                moved = None if space <= at else head + (space - 1).to_bytes(2, "big")
            if moved is not None:
                value = txn.get(key, db=db)
                txn.delete(key, db=db)
                txn.put(moved, value, db=db)
            elif space == at:
                txn.delete(key, db=db)
    forgotten = []
    if removal.kind != "multi":
        key_of = manifest_key if removal.kind == "dense" else sparse_manifest_key
        for position in range(at, count):
            manifest = tables.get_meta_json(txn, key_of(position))
            if manifest is not None:
                forgotten.append(manifest)
                txn.delete(key_of(position).encode(), db=tables.meta)
    return forgotten


def edit_vectors(path: Path, settings: dict[str, Any], removal: Optional[Removal]) -> tuple[int, list[dict[str, Any]]]:
    """Write ``settings`` to the (closed) collection at ``path`` and remove ``removal``'s rows, in one
    transaction; returns the new write sequence number and the forgotten index manifests."""
    env = Environment(path, POINTS_DBS)
    try:
        tables = PointsTables(env.dbs)

        def body(txn: lmdb.Transaction) -> tuple[int, list[dict[str, Any]]]:
            old = tables.get_meta_json(txn, "config")
            forgotten: list[dict[str, Any]] = []
            if removal is not None:
                key = {"dense": "spaces", "sparse": "sparse", "multi": "multi"}[removal.kind]
                forgotten = remove_rows(txn, tables, removal, len(old.get(key) or []))
            tables.put_meta_json(txn, "config", settings)
            counters = tables.get_meta_json(txn, "counters")
            seq = int(counters["seq"]) + 1
            tables.put_meta_json(txn, "counters", {**counters, "seq": seq})
            tables.put_change(txn, seq, encode_change(int(counters["next_iid"]), int(counters["next_iid"]), [], []))
            return seq, forgotten

        return env.write(body)
    finally:
        env.close()


__all__ = ["Removal", "edit_vectors", "check_vector_name", "remove_rows", "with_vector", "without_vector"]
