"""Qdrant's formula queries: re-score the prefetches' candidates with an expression.

A :class:`Formula` is compiled once per request (before any read: what the reference refuses while
parsing, such as a bad ``$score[..]`` pattern, a bad key path or datetime, a decay midpoint out of
range or ``max`` of nothing, is refused here) into closures, then evaluated per candidate. The
semantics, including which errors a point's values raise and in which order operands are looked at,
are qdrant-client local mode's (``qdrant_client/hybrid/formula.py``):

* a number is itself; ``$score`` / ``$score[i]`` is prefetch ``i``'s score of the point (else the
  ``defaults`` entry for it, else 0); any other string is a payload key whose one value must be a
  number (else the ``defaults`` entry; missing from both, or not a number: an error);
* a condition is 1 when the point passes it, else 0;
* ``mult`` stops at a zero factor, ``div`` answers ``left`` when it is 0 and ``by_zero_default`` (or
  an error) when ``right`` is; any non-finite result is an error, also after rounding to float32;
* decays: ``lin`` ``max(0, 1 - (1 - midpoint) / scale * |x - target|)``, ``exp``
  ``exp(ln(midpoint) / scale * |x - target|)``, ``gauss`` ``exp(ln(midpoint) / scale^2 * (x - target)^2)``.

Every error is an :class:`~vecdb.errors.InvalidInput` (HTTP 400) that names ``query.formula``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from vecdb.errors import InvalidInput
from vecdb.filtering.evaluate import PointView, compile_filter
from vecdb.filtering.keypath import parse_key_path
from vecdb.filtering.values import extract_values
from vecdb.models import expressions as ex
from vecdb.models.filters import Filter, parse_datetime

DEFAULT_SCORE = 0.0
DEFAULT_DECAY_TARGET = 0.0
DEFAULT_DECAY_MIDPOINT = 0.5
DEFAULT_DECAY_SCALE = 1.0
MEAN_EARTH_RADIUS = 6371008.8
"""Meters, as Qdrant (IUGG's mean radius)."""


@dataclass
class Candidate:
    """What an expression may look at for one point."""

    key: int
    point: Optional[PointView]
    """The stored point (id, payload, vectors); None when the formula needs none of it."""
    scores: Sequence[dict[int, float]]
    """Per prefetch, the scores of the points it found."""


Node = Callable[[Candidate], float]


class FormulaError(InvalidInput):
    """A formula the reference refuses, or one that cannot score a point."""


def _fail(where: str, message: str) -> FormulaError:
    return FormulaError(f"{where}: {message}")


def _non_finite(where: str, expression: str) -> FormulaError:
    return _fail(where, f"the expression {expression} produced a non-finite number")


def parse_variable(var: str, where: str) -> str | int:
    """``$score`` -> 0, ``$score[i]`` -> i, anything else is a payload key (returned as is)."""
    if not var.startswith("$score"):
        return var
    rest = var.replace("$score", "", 1)
    if rest == "":
        return 0
    if rest.startswith("["):
        rest = rest.replace("[", "", 1)
        end = rest.find("]")
        raw = rest[:end]
        if end != -1 and raw.isascii() and raw.isdigit() and len(rest) == end + 1:
            return int(raw)
    raise _fail(where, f"invalid score pattern: {var}")


def _score_key(index: int) -> str:
    return f"$score[{index}]"


class Formula:
    """One compiled ``{"formula": ..., "defaults": ...}`` query."""

    def __init__(self, query: ex.FormulaQuery, where: str = "query.formula", analyzers: Any = None) -> None:
        """``analyzers``: the payload indexes' text analyzers, for ``match: {text}`` conditions."""
        self.where = where
        self.analyzers = analyzers
        self.defaults: dict[str, Any] = {}
        for key, value in (query.defaults or {}).items():  # keys parse like variables: `$score` is `$score[0]`
            var = parse_variable(key, f"{where}.defaults")
            self.defaults[_score_key(var) if isinstance(var, int) else key] = value
        self.needs_point = False
        self._root = self._compile(query.formula, where)

    # --- evaluation ------------------------------------------------------------------------

    def score(self, candidate: Candidate) -> float:
        """The point's score, rounded to float32 as Qdrant's are."""
        value = self._root(candidate)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                rounded = np.float32(value)
            except OverflowError:  # an integer product beyond any float
                rounded = np.float32(np.inf)
        if not np.isfinite(rounded):
            raise _non_finite(self.where, f"{value} as f32 = {rounded}")
        return float(rounded)

    def rescore(
        self, sources: Sequence[list[tuple[float, int]]], point_of: Callable[[int], Optional[PointView]], limit: int
    ) -> list[tuple[float, int]]:
        """Every candidate of ``sources`` (first-seen order) scored, best ``limit`` first (ties keep that order)."""
        scores = [{key: s for s, key in hits} for hits in sources]
        keys = dict.fromkeys(key for hits in sources for _, key in hits)
        out = []
        for key in keys:
            point = point_of(key) if self.needs_point else None
            out.append((self.score(Candidate(key, point, scores)), key))
        out.sort(key=lambda hit: hit[0], reverse=True)
        return out[:limit]

    # --- compilation -----------------------------------------------------------------------

    def _compile(self, e: Any, where: str) -> Node:
        if isinstance(e, (int, float)) and not isinstance(e, bool):
            constant = float(e)
            return lambda c: constant
        if isinstance(e, str):
            return self._variable(e, where)
        if isinstance(e, ex.MultExpression):
            return self._mult([self._compile(x, f"{where}.mult.{i}") for i, x in enumerate(e.mult)])
        if isinstance(e, ex.SumExpression):
            parts = [self._compile(x, f"{where}.sum.{i}") for i, x in enumerate(e.sum)]
            return lambda c: sum(part(c) for part in parts)
        if isinstance(e, (ex.MaxExpression, ex.MinExpression)):
            return self._extreme(e, where)
        if isinstance(e, ex.NegExpression):
            inner = self._compile(e.neg, f"{where}.neg")
            return lambda c: -inner(c)
        if isinstance(e, ex.AbsExpression):
            inner = self._compile(e.abs, f"{where}.abs")
            return lambda c: abs(inner(c))
        if isinstance(e, ex.DivExpression):
            return self._div(e.div, where)
        if isinstance(e, ex.PowExpression):
            return self._pow(e.pow, where)
        for model, name, func, test in _UNARY:
            if isinstance(e, model):
                return self._unary(getattr(e, name), f"{where}.{name}", name, func, test)
        if isinstance(e, (ex.LinDecayExpression, ex.ExpDecayExpression, ex.GaussDecayExpression)):
            return self._decay(e, where)
        if isinstance(e, ex.DatetimeExpression):
            parsed = parse_datetime(e.datetime)
            if parsed is None:
                raise _fail(f"{where}.datetime", f"expected a datetime in a supported format, got {e.datetime!r}")
            stamp = parsed.timestamp()
            return lambda c: stamp
        if isinstance(e, ex.DatetimeKeyExpression):
            return self._datetime_key(e.datetime_key, f"{where}.datetime_key")
        if isinstance(e, ex.GeoDistance):
            return self._geo(e.geo_distance, f"{where}.geo_distance")
        return self._condition(e, where)

    def _variable(self, text: str, where: str) -> Node:
        var = parse_variable(text, where)
        if isinstance(var, int):
            index, fallback = var, self.defaults.get(_score_key(var))

            def score_of(c: Candidate) -> float:
                if index < len(c.scores):
                    found = c.scores[index].get(c.key)
                    if found is not None:
                        return found
                return fallback if fallback is not None else DEFAULT_SCORE

            return score_of
        get = self._payload_value(var, where)

        def number(c: Candidate) -> float:
            value = get(c)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
            raise _fail(where, f"expected a number for {var!r} in the payload and/or in the formula defaults")

        return number

    def _payload_value(self, key: str, where: str) -> Callable[[Candidate], Any]:
        """The one value at ``key`` (a one-element array is its element), else its default, else an error."""
        parse_key_path(key, where)
        self.needs_point = True
        defaults = self.defaults

        def value_of(c: Candidate) -> Any:
            assert c.point is not None
            values: Any = extract_values(c.point.payload, key)
            if not values:
                values = defaults.get(key)
                if isinstance(values, list) and not values:
                    values = None
            if isinstance(values, list) and len(values) == 1:
                return values[0]
            if values is None:
                raise _fail(where, f"no value for {key!r} in the payload nor the formula defaults")
            return values

        return value_of

    def _condition(self, condition: Any, where: str) -> Node:
        predicate = compile_filter(Filter(must=[condition]), self.analyzers)
        self.needs_point = True
        if predicate is None:
            return lambda c: 1.0

        def holds(c: Candidate) -> float:
            assert c.point is not None
            return 1.0 if predicate(c.point) else 0.0

        return holds

    def _mult(self, factors: list[Node]) -> Node:
        def product(c: Candidate) -> float:
            values = []
            for factor in factors:
                value = factor(c)
                if value == 0.0:
                    return value
                values.append(value)
            return math.prod(values)

        return product

    def _extreme(self, e: ex.MaxExpression | ex.MinExpression, where: str) -> Node:
        name = "max" if isinstance(e, ex.MaxExpression) else "min"
        operands: list[Any] = e.max if isinstance(e, ex.MaxExpression) else e.min
        if not operands:
            raise _fail(f"{where}.{name}", f"`{name}` needs at least one operand")
        parts = [self._compile(x, f"{where}.{name}.{i}") for i, x in enumerate(operands)]
        if name == "max":

            def largest(c: Candidate) -> float:
                best = -math.inf
                for part in parts:
                    best = max(best, part(c))
                return best

            return largest

        def smallest(c: Candidate) -> float:
            best = math.inf
            for part in parts:
                best = min(best, part(c))
            return best

        return smallest

    def _div(self, params: ex.DivParams, where: str) -> Node:
        left = self._compile(params.left, f"{where}.div.left")
        right = self._compile(params.right, f"{where}.div.right")
        by_zero, at = params.by_zero_default, f"{where}.div"

        def quotient(c: Candidate) -> float:
            num = left(c)
            if num == 0.0:
                return num
            den = right(c)
            if den == 0.0:
                if by_zero is not None:
                    return by_zero
                raise _non_finite(at, f"{num}/{den}")
            result = num / den
            if math.isfinite(result):
                return result
            raise _non_finite(at, f"{num}/{den}")

        return quotient

    def _pow(self, params: ex.PowParams, where: str) -> Node:
        base = self._compile(params.base, f"{where}.pow.base")
        exponent = self._compile(params.exponent, f"{where}.pow.exponent")
        at = f"{where}.pow"

        def power(c: Candidate) -> float:
            b, x = base(c), exponent(c)
            try:
                result = math.pow(b, x)
            except (OverflowError, ValueError):
                pass
            else:
                if math.isfinite(result):
                    return result
            raise _non_finite(at, f"{b}^{x}")

        return power

    def _unary(
        self, operand: Any, where: str, name: str, func: Callable[[float], float], test: Callable[[float], bool]
    ) -> Node:
        inner = self._compile(operand, where)
        label = {"sqrt": "√{}"}.get(name, name + "({})")

        def apply(c: Candidate) -> float:
            value = inner(c)
            if test(value):
                try:
                    result = func(value)
                except OverflowError:
                    pass
                else:
                    if name != "acosh" or math.isfinite(result):  # (as the reference: only acosh checks)
                        return result
            raise _non_finite(where, label.format(value))

        return apply

    def _decay(self, e: Any, where: str) -> Node:
        linear = isinstance(e, ex.LinDecayExpression)
        name = "lin_decay" if linear else "exp_decay" if isinstance(e, ex.ExpDecayExpression) else "gauss_decay"
        params: ex.DecayParamsExpression = getattr(e, name)
        at = f"{where}.{name}"
        midpoint = DEFAULT_DECAY_MIDPOINT if params.midpoint is None else params.midpoint
        scale = DEFAULT_DECAY_SCALE if params.scale is None else params.scale
        if linear and not 0.0 <= midpoint <= 1.0:
            raise _fail(f"{at}.midpoint", f"a linear decay's midpoint must be in [0.0, 1.0], got {midpoint}")
        if not linear and (midpoint <= 0.0 or midpoint >= 1.0):
            raise _fail(f"{at}.midpoint", f"a decay's midpoint must be in (0.0, 1.0), got {midpoint}")
        if scale <= 0.0:
            raise _fail(f"{at}.scale", f"scale must be positive, got {scale}")
        x = self._compile(params.x, f"{at}.x")
        target = None if params.target is None else self._compile(params.target, f"{at}.target")
        if linear:
            lin_factor = (1.0 - midpoint) / scale

            def lin(c: Candidate) -> float:
                diff = abs(x(c) - (DEFAULT_DECAY_TARGET if target is None else target(c)))
                return max(0.0, -lin_factor * diff + 1.0)

            return lin
        if name == "exp_decay":
            exp_factor = math.log(midpoint) / scale

            def exp(c: Candidate) -> float:
                diff = abs(x(c) - (DEFAULT_DECAY_TARGET if target is None else target(c)))
                return math.exp(exp_factor * diff)

            return exp
        gauss_factor = math.log(midpoint) / (scale * scale)

        def gauss(c: Candidate) -> float:
            diff = x(c) - (DEFAULT_DECAY_TARGET if target is None else target(c))
            return math.exp(gauss_factor * diff * diff)

        return gauss

    def _datetime_key(self, key: str, where: str) -> Node:
        get = self._payload_value(key, where)

        def stamp(c: Candidate) -> float:
            value = get(c)
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None:
                raise _fail(where, f"expected a datetime for {key!r} in the payload and/or in the formula defaults")
            return parsed.timestamp()

        return stamp

    def _geo(self, params: ex.GeoDistanceParams, where: str) -> Node:
        get = self._payload_value(params.to, where)
        lon1, lat1 = math.radians(params.origin.lon), math.radians(params.origin.lat)

        def distance(c: Candidate) -> float:
            value = get(c)
            lon, lat = (value.get("lon"), value.get("lat")) if isinstance(value, dict) else (None, None)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lon, lat)):
                raise _fail(where, f"expected a geo point for {params.to!r} in the payload and/or the formula defaults")
            lon2, lat2 = math.radians(lon), math.radians(lat)  # type: ignore[arg-type]
            a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
            return MEAN_EARTH_RADIUS * (2 * math.asin(math.sqrt(a)))

        return distance


_UNARY: tuple[tuple[type, str, Callable[[float], float], Callable[[float], bool]], ...] = (
    (ex.SqrtExpression, "sqrt", math.sqrt, lambda v: v >= 0),
    (ex.ExpExpression, "exp", math.exp, lambda v: True),
    (ex.Log10Expression, "log10", math.log10, lambda v: v > 0),
    (ex.LnExpression, "ln", math.log, lambda v: v > 0),
    (ex.AcoshExpression, "acosh", math.acosh, lambda v: v >= 1),
)
"""One-operand functions: model, key, function, domain (outside it, or on overflow: an error)."""
