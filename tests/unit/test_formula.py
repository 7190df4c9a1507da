"""``vecdb.engine.formula`` against qdrant-client's evaluator (``qdrant_client/hybrid/formula.py``).

Hypothesis builds expressions from every operator over variables that hit (``$score``, ``$score[1]``,
numeric payload keys), miss (keys absent, with or without a default), or are the wrong type (a
string, a list of two numbers), plus conditions, datetimes and decays; the value (rounded to float32
as both round it) must agree, and where the reference raises, vecdb must answer InvalidInput.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client.http import models as qm
from qdrant_client.hybrid.formula import evaluate_expression, parse_defaults, validate_expression

from tests.helpers import FakePoint
from vecdb.engine.formula import Candidate, Formula
from vecdb.errors import InvalidInput
from vecdb.models.expressions import FormulaQuery

PAYLOAD = {
    "n": 2.5,
    "i": 3,
    "z": 0,
    "neg": -4.0,
    "big": 800.0,
    "s": "text",
    "pair": [1.0, 2.0],
    "one": [7.0],
    "when": "2024-03-01T12:00:00Z",
    "naive": "2024-03-02 08:30:00",
    "bad_when": "yesterday",
    "geo": {"lon": 13.4, "lat": 52.5},
    "obj": {"x": 1.5},
}
VARIABLES = ["$score", "$score[0]", "$score[1]", "$score[2]", "n", "i", "z", "neg", "big", "obj.x", "one", "missing"]
BAD_VARIABLES = ["s", "pair", "geo", "$score[x]", "$scorex"]
DEFAULTS = st.sampled_from([{}, {"missing": 1.5}, {"$score[2]": 0.25, "missing": 0.0}, {"$score": 9.0}])

leaf = st.one_of(
    st.sampled_from([0, 1, 2, -1, 0.5, 1e-3, 10, 1e300]),
    st.sampled_from(VARIABLES),
    st.sampled_from(BAD_VARIABLES),
    st.sampled_from(
        [
            qm.FieldCondition(key="i", match=qm.MatchValue(value=3)),
            qm.FieldCondition(key="n", range=qm.Range(gt=3)),
            qm.HasIdCondition(has_id=[1, 5]),
            qm.IsEmptyCondition(is_empty=qm.PayloadField(key="missing")),
            qm.DatetimeKeyExpression(datetime_key="when"),
            qm.DatetimeKeyExpression(datetime_key="naive"),
            qm.DatetimeKeyExpression(datetime_key="bad_when"),
            qm.DatetimeExpression(datetime="2024-03-01T00:00:00+01:00"),
            qm.GeoDistance(geo_distance=qm.GeoDistanceParams(origin=qm.GeoPoint(lon=2.35, lat=48.85), to="geo")),
        ]
    ),
)


def _decay(children: st.SearchStrategy[Any], kind: str) -> st.SearchStrategy[Any]:
    model = {"lin": qm.LinDecayExpression, "exp": qm.ExpDecayExpression, "gauss": qm.GaussDecayExpression}[kind]
    params = st.builds(
        qm.DecayParamsExpression,
        x=children,
        target=st.one_of(st.none(), children),
        scale=st.sampled_from([None, 0.5, 3.0, 86400.0]),
        midpoint=st.sampled_from([None, 0.1, 0.5, 0.9]),
    )
    return params.map(lambda p: model(**{f"{kind}_decay": p}))


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    many = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        many.map(lambda xs: qm.SumExpression(sum=xs)),
        many.map(lambda xs: qm.MultExpression(mult=xs)),
        many.map(lambda xs: qm.MaxExpression(max=xs)),
        many.map(lambda xs: qm.MinExpression(min=xs)),
        children.map(lambda x: qm.NegExpression(neg=x)),
        children.map(lambda x: qm.AbsExpression(abs=x)),
        children.map(lambda x: qm.SqrtExpression(sqrt=x)),
        children.map(lambda x: qm.ExpExpression(exp=x)),
        children.map(lambda x: qm.Log10Expression(log10=x)),
        children.map(lambda x: qm.LnExpression(ln=x)),
        st.builds(
            lambda a, b, d: qm.DivExpression(div=qm.DivParams(left=a, right=b, by_zero_default=d)),
            children,
            children,
            st.sampled_from([None, 0.0, 7.0]),
        ),
        st.builds(lambda a, b: qm.PowExpression(pow=qm.PowParams(base=a, exponent=b)), children, children),
        _decay(children, "lin"),
        _decay(children, "exp"),
        _decay(children, "gauss"),
    )


expressions = st.recursive(leaf, _extend, max_leaves=6)
SCORES = [{1: 0.75, 5: -0.5}, {1: 2.0}]


def _reference(expr: Any, point_id: int, defaults: dict[str, Any]) -> float:
    validate_expression(expr)
    value = evaluate_expression(expr, point_id, SCORES, PAYLOAD, {}, parse_defaults(defaults))
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.float32(value)
    if not np.isfinite(rounded):
        raise ValueError("non-finite")
    return float(rounded)


def _vecdb(expr: Any, point_id: int, defaults: dict[str, Any]) -> float:
    body = {"formula": expr.model_dump(exclude_unset=True) if hasattr(expr, "model_dump") else expr}
    formula = Formula(FormulaQuery.model_validate({**body, "defaults": defaults}))
    return formula.score(
        Candidate(point_id, FakePoint(point_id, PAYLOAD), [{k: v for k, v in s.items()} for s in SCORES])
    )


@settings(max_examples=600, deadline=None)
@given(expressions, st.sampled_from([1, 5, 9]), DEFAULTS)
def test_formula_equals_local_mode(expr: Any, point_id: int, defaults: dict[str, Any]) -> None:
    try:
        want = _reference(expr, point_id, defaults)
    except Exception:  # noqa: BLE001 - whatever the reference refuses, vecdb answers 400
        with pytest.raises(InvalidInput):
            _vecdb(expr, point_id, defaults)
        return
    got = _vecdb(expr, point_id, defaults)
    assert got == want or (math.isnan(got) and math.isnan(want)), (expr, got, want)


@pytest.mark.parametrize(
    ("formula", "defaults", "message"),
    [
        ("missing", {}, "query.formula: no value for 'missing'"),
        ("s", {}, "query.formula: expected a number for 's'"),
        ({"sum": [1, "pair"]}, {}, r"query.formula.sum.1: expected a number for 'pair'"),
        ({"div": {"left": 1, "right": "z"}}, {}, "query.formula.div: the expression 1.0/0 produced a non-finite"),
        ({"ln": "neg"}, {}, r"query.formula.ln: the expression ln\(-4.0\)"),
        ({"datetime_key": "bad_when"}, {}, "query.formula.datetime_key: expected a datetime for 'bad_when'"),
        ({"exp": "big"}, {}, r"query.formula.exp: the expression exp\(800.0\)"),
    ],
)
def test_errors_name_the_field(formula: Any, defaults: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Formula(FormulaQuery.model_validate({"formula": formula, "defaults": defaults})).score(
            Candidate(1, FakePoint(1, PAYLOAD), SCORES)
        )


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("$score[x]", "invalid score pattern"),
        ({"max": []}, "`max` needs at least one operand"),
        ({"exp_decay": {"x": 1, "midpoint": 1.0}}, "exp_decay.midpoint"),
        ({"lin_decay": {"x": 1, "scale": 0}}, "lin_decay.scale"),
        ({"datetime": "soon"}, "query.formula.datetime"),
        ("a[", "query.formula"),
    ],
)
def test_refused_before_any_point_is_scored(formula: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Formula(FormulaQuery.model_validate({"formula": formula}))


def test_defaults_and_missing_prefetch_scores() -> None:
    formula = Formula(
        FormulaQuery.model_validate({"formula": {"sum": ["$score[1]", "$score[3]"]}, "defaults": {"$score[3]": 2}})
    )
    assert formula.score(Candidate(5, None, SCORES)) == 2.0  # point 5 is not in prefetch 1: 0, plus the default
    assert formula.score(Candidate(1, None, SCORES)) == 4.0
    assert not formula.needs_point  # scores only: no payload read
