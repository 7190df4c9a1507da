"""Strict mode: the limits a collection's ``strict_mode_config`` sets, enforced as Qdrant's server does.

Nothing is checked unless ``enabled`` is true. Then, before anything is read or written:

* ``max_query_limit``: a query's, scroll's or recommendation's ``limit`` (a grouped query's ``limit x
  group_size``, a prefetch's own limit) may not exceed it;
* ``search_max_hnsw_ef``, ``search_allow_exact: false``, ``search_max_oversampling``: the search
  ``params`` of every stage;
* ``unindexed_filtering_retrieve: false`` / ``unindexed_filtering_update: false``: a read's / a write's
  filter may only test fields that have a payload index of a type answering that condition;
* ``filter_max_conditions``, ``condition_max_size``: conditions in one filter, values in one ``match any``
  or ``except``;
* ``upsert_max_batchsize``: points in one upsert or vector update (each operation of a batch);
* ``max_points_count``: live points after an upsert.

A violation is a 403 ``Forbidden: ...`` naming the limit, as the server answers. Other settings of
Qdrant's strict mode (``max_timeout``, rate limits, storage sizes, per-vector limits, ...) are refused
when the config is set (a 400 naming them) rather than accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Optional

from vecdb.errors import Forbidden, InvalidInput, Unsupported
from vecdb.models.filters import FieldCondition, Filter, MatchAny, MatchExcept, NestedCondition

ENFORCED: dict[str, type] = {
    "enabled": bool,
    "max_query_limit": int,
    "unindexed_filtering_retrieve": bool,
    "unindexed_filtering_update": bool,
    "search_max_hnsw_ef": int,
    "search_allow_exact": bool,
    "search_max_oversampling": float,
    "upsert_max_batchsize": int,
    "max_points_count": int,
    "filter_max_conditions": int,
    "condition_max_size": int,
}
"""The settings vecdb enforces, and the type each takes."""
KNOWN_ELSEWHERE = (
    "max_timeout",
    "max_collection_vector_size_bytes",
    "read_rate_limit",
    "write_rate_limit",
    "max_collection_payload_size_bytes",
    "max_payload_index_count",
    "sparse_config",
    "multivector_config",
    "max_resident_memory_percent",
)
"""Qdrant's other strict-mode settings: refused by name."""

_INDEX_FOR = {
    "match": ("keyword", "integer", "bool", "uuid", "text"),
    "range": ("integer", "float", "datetime"),
    "geo": ("geo",),
}


def check_config(config: Mapping[str, Any], field: str = "strict_mode_config") -> None:
    """Refuse (400) a setting vecdb does not enforce, or a value of the wrong type."""
    for key, value in config.items():
        if value is None:
            continue
        kind = ENFORCED.get(key)
        if kind is None:
            what = "is not supported yet" if key in KNOWN_ELSEWHERE else "is not a strict mode setting"
            raise (
                Unsupported(f"{field}.{key}: {what}")
                if key in KNOWN_ELSEWHERE
                else InvalidInput(f"{field}.{key}: {what}")
            )
        ok = (
            isinstance(value, bool) if kind is bool else isinstance(value, (int, float)) and not isinstance(value, bool)
        )
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok or (kind is not bool and value < 0):
            raise InvalidInput(f"{field}.{key}: expected a non-negative {'boolean' if kind is bool else kind.__name__}")


def _limit(value: float, limit: Any, what: str) -> None:
    if limit is not None and value > limit:
        raise Forbidden(f'Limit exceeded {value} > {limit} for "{what}"')


class StrictMode:
    """The enabled strict mode of one collection, against its payload indexes (field -> data type)."""

    def __init__(self, config: Mapping[str, Any], indexes: Mapping[str, str]) -> None:
        self.config = config
        self.indexes = indexes

    @staticmethod
    def of(settings: Mapping[str, Any], indexes: Mapping[str, str]) -> Optional[StrictMode]:
        """The collection's strict mode, or None when it is off (the usual case: nothing to check)."""
        config = settings.get("strict_mode_config") or {}
        return StrictMode(config, indexes) if config.get("enabled") else None

    # --- reads ---------------------------------------------------------------------------

    def limit(self, value: int, what: str = "limit") -> None:
        _limit(value, self.config.get("max_query_limit"), what)

    def params(self, params: Any) -> None:
        """A stage's search ``params``."""
        if params is None:
            return
        if params.hnsw_ef is not None:
            _limit(params.hnsw_ef, self.config.get("search_max_hnsw_ef"), "hnsw_ef")
        if params.exact and self.config.get("search_allow_exact") is False:
            raise Forbidden("Exact search disabled!. Help: Set exact=false in your request.")
        quantization = params.quantization
        if quantization is not None and quantization.oversampling is not None:
            _limit(quantization.oversampling, self.config.get("search_max_oversampling"), "oversampling")

    def query(self, req: Any, limit: Optional[int] = None) -> None:
        """A query and its prefetch tree: limits, params, filters."""
        self.limit(req.limit if limit is None else limit)
        self.params(req.params)
        self.filter(req.filter, read=True)
        for stage in req.prefetch or []:
            if stage.limit is not None:
                self.limit(stage.limit)
            self.params(stage.params)
            self.filter(stage.filter, read=True)
            for child in stage.prefetch or []:
                self.query(child, limit=child.limit or 0)

    def filter(self, flt: Optional[Filter], read: bool) -> None:
        """A filter's size, and (when strict mode asks) that every field it tests is indexed."""
        if flt is None:
            return
        conditions = list(_conditions(flt))
        _limit(len(conditions), self.config.get("filter_max_conditions"), "filter conditions")
        biggest = self.config.get("condition_max_size")
        unindexed_ok = self.config.get("unindexed_filtering_retrieve" if read else "unindexed_filtering_update")
        for condition in conditions:
            match = condition.match
            if biggest is not None and isinstance(match, (MatchAny, MatchExcept)):
                values = match.any if isinstance(match, MatchAny) else match.except_
                _limit(len(values), biggest, "condition value count")
            if unindexed_ok is False:
                self._indexed(condition)

    def _indexed(self, condition: FieldCondition) -> None:
        if condition.match is not None:
            wanted = _INDEX_FOR["match"]
        elif condition.range is not None:
            wanted = _INDEX_FOR["range"]
        elif condition.geo_radius or condition.geo_bounding_box or condition.geo_polygon:
            wanted = _INDEX_FOR["geo"]
        else:
            return  # (is_empty, is_null, values_count: Qdrant answers them without a typed index)
        if self.indexes.get(condition.key) not in wanted:
            raise Forbidden(
                f'Index required but not found for "{condition.key}" of one of the following types: '
                f"[{', '.join(wanted)}]. Help: Create an index for this key or use a different filter."
            )

    # --- writes --------------------------------------------------------------------------

    def batch(self, points: int, what: str = "upsert") -> None:
        _limit(points, self.config.get("upsert_max_batchsize"), what)

    def points_after(self, points: int) -> None:
        most = self.config.get("max_points_count")
        if most is not None and points > most:
            raise Forbidden(f"Max points count limit of {most} reached!")


def _conditions(flt: Filter) -> Iterator[FieldCondition]:
    """Every field condition of a filter, nested filters included."""
    for group in (flt.must, flt.should, flt.must_not):
        for condition in group or []:
            if isinstance(condition, FieldCondition):
                yield condition
            elif isinstance(condition, Filter):
                yield from _conditions(condition)
            elif isinstance(condition, NestedCondition):
                yield from _conditions(condition.nested.filter)
    if flt.min_should is not None:
        for condition in flt.min_should.conditions:
            if isinstance(condition, FieldCondition):
                yield condition
            elif isinstance(condition, Filter):
                yield from _conditions(condition)


__all__ = ["ENFORCED", "StrictMode", "check_config"]
