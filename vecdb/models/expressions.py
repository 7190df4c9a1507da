"""Qdrant's formula language (``{"formula": <expression>, "defaults": {...}}``): the wire models.

An expression is a number, a variable (``"$score"``, ``"$score[2]"``, or a payload key path), a
filter condition (1 when it holds, 0 when not), or an object told apart by its one key (``sum``,
``mult``, ``div``, ``exp_decay``, ...). The member is chosen from that key up front (as
:mod:`vecdb.models.filters` does for conditions), so an error names the real problem instead of
listing every shape that did not fit. :mod:`vecdb.engine.formula` compiles and evaluates them.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import Discriminator, Field, StrictFloat, StrictInt, StrictStr, Tag, WithJsonSchema

from vecdb.models.base import TAG_MARK, RequestModel
from vecdb.models.filters import Condition, Filter, GeoPoint  # noqa: F401  (Filter: for Condition's forward reference)


class GeoDistanceParams(RequestModel):
    origin: GeoPoint
    to: StrictStr = Field(description="payload key of the geo point to measure to")


class GeoDistance(RequestModel):
    """Haversine distance in meters from ``origin`` to the payload's geo point at ``to``."""

    geo_distance: GeoDistanceParams


class DatetimeExpression(RequestModel):
    """A datetime constant (RFC 3339; naive is UTC), as seconds since the epoch."""

    datetime: StrictStr


class DatetimeKeyExpression(RequestModel):
    """The datetime at a payload key, as seconds since the epoch."""

    datetime_key: StrictStr


class MultExpression(RequestModel):
    mult: list[Expression]


class SumExpression(RequestModel):
    sum: list[Expression]


class MaxExpression(RequestModel):
    max: list[Expression]


class MinExpression(RequestModel):
    min: list[Expression]


class NegExpression(RequestModel):
    neg: Expression


class AbsExpression(RequestModel):
    abs: Expression


class DivParams(RequestModel):
    left: Expression
    right: Expression
    by_zero_default: Optional[float] = None


class DivExpression(RequestModel):
    div: DivParams


class SqrtExpression(RequestModel):
    sqrt: Expression


class PowParams(RequestModel):
    base: Expression
    exponent: Expression


class PowExpression(RequestModel):
    pow: PowParams


class ExpExpression(RequestModel):
    exp: Expression


class Log10Expression(RequestModel):
    log10: Expression


class LnExpression(RequestModel):
    ln: Expression


class AcoshExpression(RequestModel):
    acosh: Expression


class DecayParamsExpression(RequestModel):
    """``x`` decays with its distance to ``target`` (default 0): ``midpoint`` (default 0.5) at ``scale`` (default 1)."""

    x: Expression
    target: Optional[Expression] = None
    scale: Optional[float] = None
    midpoint: Optional[float] = None


class LinDecayExpression(RequestModel):
    lin_decay: DecayParamsExpression


class ExpDecayExpression(RequestModel):
    exp_decay: DecayParamsExpression


class GaussDecayExpression(RequestModel):
    gauss_decay: DecayParamsExpression


OPERATORS: dict[str, type[RequestModel]] = {
    "mult": MultExpression,
    "sum": SumExpression,
    "max": MaxExpression,
    "min": MinExpression,
    "neg": NegExpression,
    "abs": AbsExpression,
    "div": DivExpression,
    "sqrt": SqrtExpression,
    "pow": PowExpression,
    "exp": ExpExpression,
    "log10": Log10Expression,
    "ln": LnExpression,
    "acosh": AcoshExpression,
    "lin_decay": LinDecayExpression,
    "exp_decay": ExpDecayExpression,
    "gauss_decay": GaussDecayExpression,
    "geo_distance": GeoDistance,
    "datetime": DatetimeExpression,
    "datetime_key": DatetimeKeyExpression,
}
"""The expression objects, by their one key."""
_OPERATOR_TAGS = {model: key for key, model in OPERATORS.items()}


def _expression_tag(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return None  # JSON true/false is not a number here
    if isinstance(value, (int, float)):
        return TAG_MARK + "number"
    if isinstance(value, str):
        return TAG_MARK + "variable"
    if isinstance(value, dict):
        return TAG_MARK + next((key for key in OPERATORS if key in value), "condition")
    return TAG_MARK + _OPERATOR_TAGS.get(type(value), "condition")


Expression = Annotated[
    Union[
        Annotated[Union[StrictInt, StrictFloat], Tag(TAG_MARK + "number")],
        Annotated[StrictStr, Tag(TAG_MARK + "variable")],
        Annotated[Condition, Tag(TAG_MARK + "condition")],
        Annotated[MultExpression, Tag(TAG_MARK + "mult")],
        Annotated[SumExpression, Tag(TAG_MARK + "sum")],
        Annotated[MaxExpression, Tag(TAG_MARK + "max")],
        Annotated[MinExpression, Tag(TAG_MARK + "min")],
        Annotated[NegExpression, Tag(TAG_MARK + "neg")],
        Annotated[AbsExpression, Tag(TAG_MARK + "abs")],
        Annotated[DivExpression, Tag(TAG_MARK + "div")],
        Annotated[SqrtExpression, Tag(TAG_MARK + "sqrt")],
        Annotated[PowExpression, Tag(TAG_MARK + "pow")],
        Annotated[ExpExpression, Tag(TAG_MARK + "exp")],
        Annotated[Log10Expression, Tag(TAG_MARK + "log10")],
        Annotated[LnExpression, Tag(TAG_MARK + "ln")],
        Annotated[AcoshExpression, Tag(TAG_MARK + "acosh")],
        Annotated[LinDecayExpression, Tag(TAG_MARK + "lin_decay")],
        Annotated[ExpDecayExpression, Tag(TAG_MARK + "exp_decay")],
        Annotated[GaussDecayExpression, Tag(TAG_MARK + "gauss_decay")],
        Annotated[GeoDistance, Tag(TAG_MARK + "geo_distance")],
        Annotated[DatetimeExpression, Tag(TAG_MARK + "datetime")],
        Annotated[DatetimeKeyExpression, Tag(TAG_MARK + "datetime_key")],
    ],
    Discriminator(
        _expression_tag,
        custom_error_type="invalid_expression",
        custom_error_message="an expression must be a number, a variable ($score, $score[i] or a payload key), "
        "a filter condition, or an object with one of: " + ", ".join(OPERATORS),
    ),
    # The schema of the recursive union, inlined at each of its ~25 uses, grew openapi.json by 80 KB and
    # made schema-driven fuzzing crawl; the document states the node's shape once, in words.
    WithJsonSchema(
        {
            "title": "Expression",
            "description": "A formula node: a number, a variable ($score, $score[i] or a payload key), a filter "
            "condition, or an object with one key of: " + ", ".join(OPERATORS) + " (Qdrant's expression language).",
            "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "object"}],
        }
    ),
]
"""One node of a formula."""


class FormulaQuery(RequestModel):
    """Re-score the prefetches' candidates with ``formula``; ``defaults`` stand in for missing payload values
    (and for ``$score[i]`` of a prefetch that did not find the point)."""

    formula: Expression
    defaults: Optional[dict[str, Any]] = None


_RECURSIVE: tuple[type[RequestModel], ...] = (
    *OPERATORS.values(),
    DivParams,
    PowParams,
    DecayParamsExpression,
    FormulaQuery,
)
for _model in _RECURSIVE:
    _model.model_rebuild()
