"""Base classes for vecdb's pydantic models.

Request models forbid unknown fields, as Qdrant's server does, so a typo in a
field name is a clear 4xx instead of a silently ignored option. Response models
ignore extras so newer servers stay readable by older clients.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class RequestModel(BaseModel):
    """A model parsed from user input: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseModel(BaseModel):
    """A model vecdb returns: tolerant when read back by a client."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


__all__ = ["RequestModel", "ResponseModel", "error_location", "keyed_union"]


TAG_MARK = "~"
"""Prefix of union tags, so error locations can leave them out."""


def error_location(loc: Any) -> str:
    """``('body', 'points', 0, 'id')`` -> ``points.0.id``: the path a user wrote, without union tags
    (ours, and pydantic's own such as ``list[float]``)."""
    return ".".join(str(p) for p in loc if p != "body" and not str(p).startswith(TAG_MARK) and "[" not in str(p))


_SHAPE_ERRORS = frozenset({"list_type", "dict_type", "model_type", "model_attributes_type", "missing"})


def most_telling(errors: list[Any]) -> list[Any]:
    """Validation errors in the order a user should read them: of a union's members, the one whose shape
    fitted and got furthest into the value (a named vector's NaN) first, members whose shape did not fit
    at all ("Input should be a valid list") last."""
    return sorted(errors, key=lambda e: (e.get("type") in _SHAPE_ERRORS, -len(e.get("loc", ()))))


def keyed_union(*members: tuple[str, Any]) -> Any:
    """A union whose member is chosen by which top-level key the input has.

    Qdrant's bodies are 'one of several shapes, told apart by a key' (``points``
    vs ``batch``, ``upsert`` vs ``delete``, ...). Choosing the member up front
    makes pydantic report the errors of that member only, so a message names
    the real problem instead of listing every shape that did not fit.
    """
    keys = [key for key, _ in members]

    def pick(value: Any) -> Optional[str]:
        if isinstance(value, dict):
            return TAG_MARK + next((k for k in keys if k in value), keys[0])
        for key, model in members:
            if isinstance(value, model if isinstance(model, type) else object):
                return TAG_MARK + key
        return None

    tagged = tuple(Annotated[model, Tag(TAG_MARK + key)] for key, model in members)
    return Annotated[Union[tagged], Discriminator(pick)]  # type: ignore[valid-type]
