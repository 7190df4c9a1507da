"""The one error table (``vecdb/errors.py``): each class's status and prefix lead back to that class.

The server answers from the class attributes and the remote client reads them back with
``error_class_for``; these tests hold the table itself. ``tests/http/test_error_table.py``
sends real errors through a server to the remote client.
"""

from __future__ import annotations

import pytest
from vecdb_client.remote import RemoteError, _error_for

import vecdb.errors as errors
from vecdb.errors import (
    ERROR_CLASSES,
    AlreadyExists,
    Corruption,
    DataDirLocked,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageFull,
    Unsupported,
    VecdbError,
    error_class_for,
    wire_message,
)


def _public_classes() -> set[type[VecdbError]]:
    return {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, VecdbError) and obj is not VecdbError
    }


def test_every_class_is_in_the_table():
    assert set(ERROR_CLASSES) == _public_classes()


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_class_round_trips_through_status_and_prefix(cls: type[VecdbError]):
    exc = cls("collection `c`: something precise")
    assert wire_message(exc) == f"{cls.prefix}: collection `c`: something precise"
    assert error_class_for(cls.status, wire_message(exc)) is cls
    back = _error_for(cls.status, wire_message(exc))
    assert type(back) is cls and back.message == wire_message(exc)


def test_no_two_classes_share_a_status_and_prefix():
    keys = [(cls.status, cls.prefix) for cls in ERROR_CLASSES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (503, "Service unavailable: data directory /d is locked by process 12", DataDirLocked),  # drifted before
        (400, "Bad request: query.recommend: this query kind is not supported yet", Unsupported),
        (400, "Wrong input: vector dimension error: expected 4, got 3", InvalidInput),
        (400, "Format error in JSON body: points: Field required", InvalidInput),
        (422, "Validation error in JSON body: vectors.size: Input should be less than 65537", InvalidInput),
        (409, "Wrong input: Collection `c` already exists!", AlreadyExists),
        (404, "Not found: Collection `c` doesn't exist!", NotFound),
        (404, "Not found: no route for GET /nowhere", NotFound),
        (507, "Insufficient storage: collection `c` is full", StorageFull),
        (500, "Service internal error: corrupted data: unknown collection format", Corruption),
        (403, 'Forbidden: Limit exceeded 4 > 3 for "limit"', Forbidden),  # strict mode
        (403, "Forbidden: the read-only API key cannot PUT /collections/c", Forbidden),  # a 403 is a 403
    ],
)
def test_status_and_message_name_the_class(status: int, message: str, expected: type[VecdbError]):
    assert error_class_for(status, message) is expected
    assert type(_error_for(status, message)) is expected


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (500, "Service internal error: unexpected server error (see the server log)"),  # a bug, not corruption
        (503, "not ready: loading the index of c"),  # /readyz, plain text: no class claims it
        (401, "Must provide a valid API key or an Authorization bearer token"),
        (413, "Payload too large: request body exceeds the limit of 10 bytes"),
        (429, "Rate limiting exceeded"),
    ],
)
def test_unclaimed_answers_stay_remote_errors(status: int, message: str):
    assert error_class_for(status, message) is None
    exc = _error_for(status, message)
    assert type(exc) is RemoteError and exc.status_code == status and exc.message == message


def test_a_prefix_must_end_at_a_colon():
    """ "Not foundation: ..." is no "Not found" prefix; a 503 without Qdrant's prefix is no lock."""
    assert error_class_for(503, "Service unavailableness: x") is None
    assert error_class_for(500, "Service internal error: corrupted database page") is None


def test_a_subclass_goes_out_as_its_parent():
    class TooManyTerms(InvalidInput):
        pass

    exc = TooManyTerms("query: 70000 terms, the limit is 65536")
    assert (exc.status, exc.prefix) == (400, "Wrong input")
    assert error_class_for(exc.status, wire_message(exc)) is InvalidInput
