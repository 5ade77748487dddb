"""Declarative variants: each operation makes a valid scenario, is hashable and picklable, and the
content identity changes exactly when something that decides the plan changes."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from solver import load_scenario, solve, variants
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"

OPS = [
    variants.ScaleEnvelope(0.9), variants.CutEnvelope(1.0, year=2026, pot="capital"),
    variants.ShiftEnvelope(2025, "revenue", 0.5), variants.ScaleCost("OPT-B1", 1.5),
    variants.ScaleBenefit("OPT-B1", 0.5), variants.ForceIn("OPT-B1"), variants.ForceOut(frozenset({"OPT-B1"})),
    variants.Override.of({"fee": {"rate": 0.0}}), variants.SetSystems("local_capital", 100.0),
    variants.Sample(0, (("OPT-B1", 1.1),), (("OPT-B1", 0.9),), (("0", 4.0), ("1", 3.0), ("2", 1.5), ("3", 1.0))),
]


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_each_operation_changes_the_identity_and_round_trips(tiny: Scenario, op: object) -> None:
    changed = variants.apply(tiny, [op], label="v")
    assert changed.identity != tiny.identity
    assert pickle.loads(pickle.dumps(op)) == op
    assert hash(op) == hash(pickle.loads(pickle.dumps(op)))
    assert changed.name == f"{tiny.name}#v"


def test_identity_is_content_not_name_or_path(tiny: Scenario) -> None:
    again = load_scenario(TINY)
    assert again.identity == tiny.identity
    assert dataclasses.replace(tiny, name="other", path="/elsewhere.toml").identity == tiny.identity
    assert variants.apply(tiny, [variants.ScaleEnvelope(1.0)]).identity == tiny.identity
    assert tiny.with_solver(mip_gap=0.01).identity != tiny.identity


def test_force_out_is_kept_by_the_solver_and_checked_by_the_audit(tiny: Scenario) -> None:
    optional = sorted(solve(tiny).funded - {"COM-A2", "FAX-B2"})   # neither committed nor mandatory
    out = variants.apply(tiny, [variants.ForceOut(frozenset({optional[0]}))])
    assert optional[0] not in solve(out).funded
    report = audit(out, Decisions(starts={optional[0]: 2025}))
    assert any("excludes it" in v for v in report.violations)


@pytest.mark.parametrize(("op", "phrase"), [
    (variants.ScaleCost("OPT-B1", -1.0), "factor must be"),
    (variants.ScaleBenefit("OPT-B1", float("nan")), "factor must be"),
    (variants.ScaleCost("NOPE", 2.0), "not in instance"),
    (variants.CutEnvelope(1e9), "exceeds"),
    (variants.ScaleEnvelope(-1.0), "scale must be"),
    (variants.SetSystems("local_capital", -5.0), ">= 0"),
    (variants.SetSystems("need_index", 1.0), "can be set"),
    (variants.ShiftEnvelope(1999, "capital", 1.0), "not an envelope year"),
])
def test_bad_operations_are_input_errors(tiny: Scenario, op: object, phrase: str) -> None:
    with pytest.raises(InputError, match=phrase):
        variants.apply(tiny, [op])
