"""Base classes for vecdb's pydantic models.

Request models forbid unknown fields, as Qdrant's server does, so a typo in a
field name is a clear 4xx instead of a silently ignored option. Response models
ignore extras so newer servers stay readable by older clients.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A model parsed from user input: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseModel(BaseModel):
    """A model vecdb returns: tolerant when read back by a client."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


__all__ = ["RequestModel", "ResponseModel"]
