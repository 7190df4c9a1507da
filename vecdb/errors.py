"""One small, HTTP-free error hierarchy shared by every layer.

The API layer maps these classes to status codes in exactly one place
(``vecdb/api/errors.py``); library code raises them and never thinks about HTTP.
Messages are written for the person who sent the request: they name the field
or the object that is wrong.
"""

from __future__ import annotations


class VecdbError(Exception):
    """Base class of every error vecdb raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(VecdbError):
    """The request is well-formed JSON but asks for something impossible (wrong dimension, ...)."""


class NotFound(VecdbError):
    """A collection, alias or point that the request names does not exist."""


class AlreadyExists(VecdbError):
    """A collection or alias with that name exists already."""


class StorageFull(VecdbError):
    """The disk or the database map has no room left; the store stays readable."""


class Corruption(VecdbError):
    """Stored bytes do not decode: wrong magic number, format version or length."""


class DataDirLocked(VecdbError):
    """Another live process owns the data directory."""


class Unsupported(VecdbError):
    """A valid Qdrant request that vecdb does not implement (yet)."""


__all__ = [
    "AlreadyExists",
    "Corruption",
    "DataDirLocked",
    "InvalidInput",
    "NotFound",
    "StorageFull",
    "Unsupported",
    "VecdbError",
]
