"""The greedy plan: built on the model's own rows, it keeps every rule (the audit agrees) under every
policy option, and it is what a solve returns when the solver stops before finding any plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver import load_scenario, solve
from solver.backends.highs import HighsBackend
from solver.backends.result import SolutionStatus, SolveResult, Termination
from solver.mip.formulation import formulate
from solver.pipeline.audit import audit
from solver.pipeline.encoding import decode
from solver.pipeline.greedy import greedy_start

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"
POLICIES = [
    {},
    {"fair_share": {"mode": "band", "enforcement": "penalty", "penalty": 3.0}},
    {"fair_share": {"mode": "deviation", "basis": "spend"}, "standardisation": {"mode": "single"}},
    {"commitments": {"mode": "withdrawable"}, "budget": {"carry_over": 0.5}},
    {"budget": {"capital_to_revenue": 0.3}, "fee": {"payer": "split"}, "revenue_consequences": {"payer": "centre"}},
    {"standardisation": {"mode": "penalty", "penalty": 5.0}, "match_funding": {"enabled": False}},
]


@pytest.mark.parametrize("overrides", POLICIES)
def test_the_greedy_plan_keeps_every_rule(overrides: dict) -> None:
    sc = load_scenario(TINY).with_overrides(overrides)
    form = formulate(sc)
    x = greedy_start(form.model, form.x)
    assert x is not None
    assert form.model.max_violation(x) <= 1e-7
    dec = decode(form, x)
    report = audit(sc, dec, claimed_objective=form.model.objective_value(x))
    assert report.ok, report.violations
    optimum = solve(sc, mip_gap=0.0).objective
    assert 0 < report.objective <= optimum + 1e-9


def test_a_solver_that_stops_without_a_plan_still_gives_the_greedy_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped(self: HighsBackend, model: object, options: object, start: object = None) -> SolveResult:
        return SolveResult(backend="highs", termination=Termination.TIME_LIMIT, status=SolutionStatus.NO_SOLUTION,
                           x=None, objective=None, bound=None, gap=None, solve_seconds=0.0,
                           message="Time limit reached")

    monkeypatch.setattr(HighsBackend, "solve", stopped)
    out = solve(load_scenario(TINY))
    assert out.status == SolutionStatus.FEASIBLE
    assert out.termination == Termination.TIME_LIMIT
    assert out.audit is not None
    assert out.audit.ok
    assert "greedy plan" in out.message
    assert out.funded


def test_no_greedy_plan_when_a_lower_bound_cannot_be_met() -> None:
    """A hard fair-share floor nothing greedy meets: None, not a plan that breaks the rule."""
    sc = load_scenario(TINY).with_overrides({"fair_share": {"mode": "floor", "floor": 1.0, "enforcement": "hard"}})
    form = formulate(sc)
    x = greedy_start(form.model, form.x)
    assert x is None or form.model.max_violation(x) <= 1e-7
