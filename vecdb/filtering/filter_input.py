"""A filter argument as callers pass it, before any point is read.

Both consumers of filters, the scan evaluator (:mod:`vecdb.filtering.evaluate`) and
the payload index (:mod:`vecdb.filtering.payload_index`), must accept and reject the
same inputs, so the one coercion of a filter argument lives here, with the one
question a planner asks of a filter without evaluating it: is it a plain id lookup?
"""

from __future__ import annotations

from typing import Any, Optional, Union

from vecdb.errors import InvalidInput
from vecdb.ids import PointId
from vecdb.models.filters import Filter, HasIdCondition


def as_filter(flt: Union[Filter, dict[str, Any], None]) -> Optional[Filter]:
    """The one coercion of a filter argument, for the evaluator and the payload index alike:
    a Filter as is, a dict validated as one (pydantic's ValidationError propagates), None
    for no filter; anything else is InvalidInput, so both paths reject the same inputs."""
    if flt is None or isinstance(flt, Filter):
        return flt
    if isinstance(flt, dict):
        return Filter.model_validate(flt)
    raise InvalidInput(f"filter must be an object, got {type(flt).__name__}")


def filter_ids(flt: Union[Filter, dict[str, Any], None]) -> Optional[set[PointId]]:
    """The exact id set of a filter that is only ``must: has_id`` conditions, else None.

    Lets a planner fetch those points by key instead of scanning. Several has_id
    conditions in ``must`` intersect. Anything else in the filter (other
    conditions, must_not, a non-empty should, min_should) returns None.
    """
    parsed = as_filter(flt)
    if parsed is None or parsed.must_not or parsed.should or parsed.min_should is not None:
        return None
    if not parsed.must:
        return None
    ids: Optional[set[PointId]] = None
    for condition in parsed.must:
        if not isinstance(condition, HasIdCondition):
            return None
        these = set(condition.has_id)
        ids = these if ids is None else ids & these
    return ids


__all__ = ["as_filter", "filter_ids"]
