"""Points in the order of a payload field's values: scroll's ``order_by`` and the ``order_by`` query.

Qdrant serves both from a field's range index (integer, float or datetime) and refuses a key without
one, so does vecdb: the index's sorted columns give the first page after reading about ``limit /
selectivity`` entries (:meth:`vecdb.filtering.field_index.FieldIndex.ordered`), never a sort of the
collection. Semantics are qdrant-client local mode's:

* a point with several values (an array) appears once per distinct value, each with its
  ``order_value``; points without a value of the index's kind do not appear;
* ``start_from`` is inclusive: values ``>=`` it ascending, ``<=`` it descending; a datetime (or an
  RFC 3339 string, naive meaning UTC) is compared as microseconds since the epoch, which is also
  the ``order_value`` a datetime index returns;
* ties are broken by internal id (insertion order, as local mode's dict order);
* there is no ``next_page_offset``: the next page starts from the last value, with a filter that
  leaves out the ids already seen (Qdrant's advice; ``offset`` is refused).

Where Qdrant's server and local mode differ, the server is followed: an ``order_by`` query scores
every point 0 (local mode: 1) and a key without a range index is an error (local mode sorts anyway).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional, Union

import numpy as np

from vecdb.engine.mvcc import ReadOnDemand
from vecdb.engine.state import CollectionState
from vecdb.engine.views import ReadView
from vecdb.errors import InvalidInput
from vecdb.filtering.field_values import micros
from vecdb.models.filters import parse_datetime
from vecdb.models.points import OrderBy

OrderKey = Union[int, float]

NO_RANGE_INDEX = (
    "No range index for `order_by` key: `{key}`. Please create one to use `order_by`. Check "
    "https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload schemas "
    "support Range conditions"
)
NO_OFFSET = (
    "Cannot use an `offset` when using `order_by`. The alternative for paging is to use "
    "`order_by.start_from` and a filter to exclude the IDs that you've already seen for the "
    "`order_by.start_from` value"
)


def as_order_by(order_by: Union[str, OrderBy]) -> OrderBy:
    """The object form of an ``order_by`` that may be given as the key alone."""
    return OrderBy(key=order_by) if isinstance(order_by, str) else order_by


def start_key(start_from: Any, field: str) -> Optional[OrderKey]:
    """``start_from`` as the index compares it: a number as it is, a datetime as microseconds."""
    if start_from is None or isinstance(start_from, (int, float)):
        return start_from  # type: ignore[no-any-return]
    if isinstance(start_from, str):
        moment = parse_datetime(start_from)
        if moment is None:
            raise InvalidInput(f"{field}: {start_from!r} is neither a number nor an RFC 3339 datetime")
        return micros(moment)
    if isinstance(start_from, datetime):
        aware = start_from if start_from.utcoffset() is not None else start_from.replace(tzinfo=timezone.utc)
        return micros(aware)
    if isinstance(start_from, date):
        return micros(datetime(start_from.year, start_from.month, start_from.day, tzinfo=timezone.utc))
    raise InvalidInput(f"{field}: {start_from!r} is neither a number nor a datetime")


def check(state: CollectionState, order_by: OrderBy) -> None:
    """Refuse (before any read) a key without a range index."""
    if not state.payload_index.has_range(order_by.key):
        raise InvalidInput(NO_RANGE_INDEX.format(key=order_by.key))


def ordered_iids(
    state: CollectionState,
    view: ReadView,
    reader: ReadOnDemand,
    order_by: OrderBy,
    mask: Optional[np.ndarray],
    count: int,
    field: str = "order_by",
) -> list[tuple[OrderKey, int]]:
    """The first ``count`` (order value, internal id) pairs of live points passing ``mask`` (None:
    every live point) in ``order_by``'s order, as of ``view``."""
    start = start_key(order_by.start_from, f"{field}.start_from")
    accept = view.alive[: view.n] if mask is None else view.alive[: view.n] & mask
    index = state.payload_index
    entries = index.ordered(order_by.key, start, order_by.direction == "desc", count, accept)
    reader.check_index()  # (the index is shared with the writer: a write since the view reads again)
    if index.fields.get(order_by.key) == "integer":  # integral keys read back as the ints they were
        return [(int(v) if isinstance(v, float) and v.is_integer() else v, iid) for v, iid in entries]
    return entries


__all__ = ["NO_OFFSET", "NO_RANGE_INDEX", "OrderKey", "as_order_by", "check", "ordered_iids", "start_key"]
