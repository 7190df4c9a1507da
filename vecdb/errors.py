"""One small, HTTP-free error hierarchy shared by every layer, and its one wire table.

Library code raises these classes and never thinks about HTTP. Each class carries the HTTP
status and Qdrant's message prefix it goes out with (``status``, ``prefix``), so the server
(``vecdb/api/errors.py``) and the remote client (``vecdb_client``, through
:func:`error_class_for`) read the same table and cannot drift apart. Messages are written for
the person who sent the request: they name the field or the object that is wrong.
"""

from __future__ import annotations

from typing import ClassVar, Optional


class VecdbError(Exception):
    """Base class of every error vecdb raises on purpose.

    A subclass that sets no ``status`` of its own goes out as Qdrant's generic 500.
    ``other_statuses`` lists statuses whose answers come back as this class whatever their
    prefix (a 404 is "not found" whatever its text says); a status needs its ``prefix`` otherwise.
    """

    status: ClassVar[int] = 500
    prefix: ClassVar[str] = "Service internal error"
    other_statuses: ClassVar[tuple[int, ...]] = ()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(VecdbError):
    """The request is well-formed JSON but asks for something impossible (wrong dimension, ...)."""

    status = 400
    prefix = "Wrong input"
    other_statuses = (400, 422)  # "Format error in JSON body: ...", "Validation error in JSON body: ..."


class NotFound(VecdbError):
    """A collection, alias or point that the request names does not exist."""

    status = 404
    prefix = "Not found"
    other_statuses = (404,)  # "no route for ..." too


class AlreadyExists(VecdbError):
    """A collection or alias with that name exists already (409 with Qdrant's "Wrong input" text)."""

    status = 409
    prefix = "Wrong input"
    other_statuses = (409,)


class StorageFull(VecdbError):
    """The disk or the database map has no room left; the store stays readable."""

    status = 507
    prefix = "Insufficient storage"
    other_statuses = (507,)


class Corruption(VecdbError):
    """Stored bytes do not decode: wrong magic number, format version or length.

    Qdrant's 500 prefix, narrowed so that an unexpected server error (also a 500 "Service
    internal error") does not come back to the remote client as corruption.
    """

    status = 500
    prefix = "Service internal error: corrupted data"


class DataDirLocked(VecdbError):
    """Another live process owns the data directory."""

    status = 503
    prefix = "Service unavailable"


class ShardUnavailable(VecdbError):
    """Too few live replicas of a shard to serve the request (a read found none; a write reached fewer than
    the collection's ``write_consistency_factor``): retry once replicas are back. The message names the
    collection and the shard."""

    status = 503
    prefix = "Shard unavailable"


class Unsupported(VecdbError):
    """A valid Qdrant request that vecdb does not implement (yet)."""

    status = 400
    prefix = "Bad request"


class Forbidden(VecdbError):
    """A request the collection's strict mode forbids (a limit it sets, a filter on an unindexed field)."""

    status = 403
    prefix = "Forbidden"
    other_statuses = (403,)


ERROR_CLASSES: tuple[type[VecdbError], ...] = (
    NotFound,
    Forbidden,
    AlreadyExists,
    Unsupported,
    InvalidInput,
    StorageFull,
    DataDirLocked,
    ShardUnavailable,
    Corruption,
)
"""Every class on the wire; where two share a status, the one with a prefix of its own comes first."""


def wire_message(exc: VecdbError) -> str:
    """The text of the error body: ``"<prefix>: <message>"``, as Qdrant writes it."""
    return f"{exc.prefix}: {exc.message}"


def error_class_for(status: int, message: str) -> Optional[type[VecdbError]]:
    """The class an error answer stands for, or None when no class claims ``status``.

    ``message`` is the whole error text (prefix included). The class whose status and prefix
    both match wins; failing that, the class that takes every other message of that status.
    """
    for cls in ERROR_CLASSES:
        if cls.status == status and (message == cls.prefix or message.startswith(cls.prefix + ": ")):
            return cls
    for cls in ERROR_CLASSES:
        if status in cls.other_statuses:
            return cls
    return None


__all__ = [
    "ERROR_CLASSES",
    "AlreadyExists",
    "Corruption",
    "DataDirLocked",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "ShardUnavailable",
    "StorageFull",
    "Unsupported",
    "VecdbError",
    "error_class_for",
    "wire_message",
]
