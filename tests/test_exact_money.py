"""Exact money at every size: a plan never breaks a money rule by any amount at the data's
resolution (£0.001m), and every "optimal" is the true optimum.

Instances are one-year, one-system knapsacks built as DataFrames (``validate_tables``), with the
fee, match funding, run costs and standardisation off, so a plan's spend is a sum of whole £k and
its objective is that spend (benefit = cost, need weight 1, one-year horizon). Each has a subset of
items costing exactly the budget and subsets £0.001m over it, so a solver tolerance of £1k at the
row's size shows up as an overspend (or, with rounded binaries, a plan £1k short). Row sizes sweep
£1m to £1tn (the largest accepted money value, ``solver/data/readers.py``).

Every backend must return a plan (through ``solver.api.solve``, which re-checks a false "infeasible":
CBC 2.10.3 proves some of these £100bn knapsacks infeasible, though funding nothing is a plan)
whose spend, in whole £k, is within the budget; "optimal" only at
the known optimum; a backend that cannot deliver exactly raises ``BackendError`` naming itself and
another backend (CP-SAT's capability refusal counts too).
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from solver.api import solve
from solver.backends import available_backends
from solver.backends.result import SolutionStatus
from solver.data.instance import validate_tables
from solver.data.scenario import Scenario, SolverSettings, load_policy
from solver.errors import BackendError
from solver.pipeline.core import solve_scenario
from solver.pipeline.outcome import Outcome
from solver.rules.base import MONEY_TOL, money_tolerance, over

BACKENDS = available_backends()
YEAR = 2025
LARGEST = 1e6           # readers.Money: le=1e6 £m
OFF = {"fee": {"rate": 0.0}, "match_funding": {"enabled": False}, "objective": {"horizon_years": 1},
       "standardisation": {"mode": "off"}, "revenue_consequences": {"payer": "ignore"}}


def knapsack(costs_k: list[int], budget_k: int, backend: str = "highs") -> Scenario:
    """A one-year, one-system scenario: item ``i`` costs ``costs_k[i]`` £k of capital and is worth as many
    points per £m; the capital envelope is ``budget_k`` £k."""
    n = len(costs_k)
    systems = pd.DataFrame([{"system_id": "S1", "name": "System", "region": "R", "population": 1,
                             "weighted_population": 1, "need_index": 1.0, "imd_score": None,
                             "local_capital": 0, "revenue_headroom": 0}])
    orgs = pd.DataFrame([{"org_id": "O1", "name": "Trust", "system_id": "S1", "org_type": "acute",
                          "category": 3, "platform": None}])
    projects = pd.DataFrame([{
        "project_id": f"P{i}", "org_id": "O1", "system_id": None, "name": f"item {i}", "kind": "k",
        "platform": None, "benefit": costs_k[i] / 1000, "earliest_start": YEAR, "latest_start": YEAR,
        "duration_years": 0, "run_cost": 0, "match_share": 0, "mandatory": False, "committed_start": None,
        "withdrawal_cost": 0, "group": None} for i in range(n)])
    costs = pd.DataFrame([{"project_id": f"P{i}", "year_offset": 0, "capital": costs_k[i] / 1000, "revenue": 0}
                          for i in range(n)])
    envelope = pd.DataFrame([{"year": YEAR, "capital": budget_k / 1000, "revenue": 0}])
    inst = validate_tables({"systems": systems, "organisations": orgs, "projects": projects, "costs": costs,
                            "envelope": envelope}, "generated knapsack", {"name": "knapsack", "years": [YEAR]})
    policy, model_path = load_policy("need-first", Path("."), OFF)
    return Scenario(name="knapsack", path="knapsack.toml", description="exact money", instance=inst,
                    policy=policy, model_path=str(model_path),
                    envelope=inst.envelope[["year", "capital", "revenue"]].copy(),
                    solver=SolverSettings(backend=backend, mip_gap=0.0, time_limit=30, threads=1))


def instances(size_m: float, n: int, seed: int) -> list[tuple[list[int], int, int]]:
    """``n`` knapsacks at a row size of ``size_m`` £m: (item costs in £k, budget in £k, best spend in £k).

    The first is fixed (two halves summing to the budget, and pairs and a single item £1k-£3k over); the
    others split the budget into 2-4 random parts and add parts £1k heavier and a complement £1k over.
    The budget is always reachable exactly, so the best spend is the budget.
    """
    budget = round(size_m * 1000)
    half, third = budget // 2, budget // 3
    out = [([half + 1, budget - half - 1, half + 2, third + 1, third - 1, budget - 2 * third + 1], budget, budget)]
    rng = random.Random(seed)
    while len(out) < n:
        parts = [rng.randint(1, 1000) for _ in range(rng.randint(2, 4))]
        sub = [budget * p // sum(parts) for p in parts]
        sub[-1] += budget - sum(sub)
        if min(sub) < 1:
            continue
        items = sub + [s + 1 for s in sub[:2]] + [budget - sub[0] + 1]
        out.append(([min(c, round(LARGEST * 1000)) for c in items], budget, budget))
    return out


def spent_k(out: Outcome) -> int:
    """The plan's capital spend in whole £k (exact: every term is a whole £k)."""
    return round(out.accounts.pot_spend[("capital", YEAR)] * 1000)


def check_exact(costs_k: list[int], budget_k: int, best_k: int, backend: str) -> str:
    """Solve one knapsack; assert the honesty properties; return what happened."""
    try:
        out = solve(knapsack(costs_k, budget_k, backend))    # a false "infeasible" is re-checked here
    except BackendError as exc:
        text = str(exc)
    else:
        text = ""
    if text:
        assert f"backend {backend}" in text, text
        assert "use another backend" in text or "cannot solve this model exactly" in text, text
        return "refused"
    assert out.has_plan, out.status
    assert out.audit is not None
    assert out.audit.ok
    used = sum(costs_k[int(p[1:])] for p in out.decisions.starts)
    assert used == spent_k(out)
    assert used <= budget_k, f"{backend}: spends {used} £k of {budget_k} £k ({out.message})"
    if out.status == SolutionStatus.OPTIMAL:
        assert used == best_k, f"{backend}: 'optimal' spends {used} £k, the optimum is {best_k} £k ({out.message})"
        assert out.objective == pytest.approx(best_k / 1000, rel=1e-12, abs=1e-9)
    return out.status.value


SIZES = [10.0 ** e for e in range(7)]      # £1m ... £1tn


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_money_fast_slice(backend: str) -> None:
    """One knapsack at £1bn (SCIP's first failing size) and one at £100bn (HiGHS's)."""
    for size in (1e3, 1e5):
        costs, budget, best = instances(size, 1, seed=0)[0]
        check_exact(costs, budget, best, backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", SIZES[::2])
def test_exact_money_sweep(backend: str, size: float) -> None:
    """Row sizes 10⁰, 10², 10⁴ and 10⁶ £m (the smallest, the largest and every second power between: the odd
    powers add no case the even ones miss, and cost CI a minute), four knapsacks each."""
    seen = [check_exact(c, b, best, backend) for c, b, best in instances(size, 4, seed=int(size))]
    assert seen


def test_highs_is_exact_and_optimal_at_every_size() -> None:
    """The default backend delivers the known optimum, proved, at every size (re-solving strictly when its
    default tolerances round to a plan £1k short)."""
    if "highs" not in BACKENDS:
        pytest.skip("highs not installed")
    for size in (1e4, 1e6):
        costs, budget, best = instances(size, 1, seed=0)[0]
        out = solve_scenario(knapsack(costs, budget))
        assert out.status == SolutionStatus.OPTIMAL, out.message
        assert spent_k(out) == best


# --------------------------------------------------------------------------- the audit's tolerance


@pytest.mark.parametrize("limit", [1.0, 1e3, 1e6, 1e8])
def test_audit_money_tolerance_is_below_half_a_k_at_every_size(limit: float) -> None:
    assert MONEY_TOL <= money_tolerance(limit) < 0.0005
    assert over(limit + 0.001, limit)
    assert not over(limit, limit)


def test_audit_catches_one_k_over_at_the_largest_size() -> None:
    """A plan £1k over a £1tn budget fails the audit (the old 1e-9 relative tolerance let it pass)."""
    from solver.pipeline.audit import audit
    from solver.pipeline.decisions import Decisions

    budget = round(LARGEST * 1000)
    sc = knapsack([budget // 2 + 1, budget - budget // 2], budget)
    report = audit(sc, Decisions(starts={"P0": YEAR, "P1": YEAR}))
    assert not report.ok
    assert "capital" in report.violations[0]


# --------------------------------------------------------------------------- status honesty


def test_a_solver_tolerance_overspend_is_re_solved_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that always returns a plan £1k over (as SCIP does at £1bn) with "optimal": the core
    re-solves strictly, and when every answer still overspends raises BackendError naming the backend
    and another one — never an "optimal" plan that overspends, never an AuditError."""
    from solver.backends.highs import HighsBackend

    budget = 1_000_000
    costs = [budget // 2 + 1, budget // 2]
    real = HighsBackend.solve
    calls: list[object] = []

    def sloppy(self: HighsBackend, model, options, start=None):  # type: ignore[no-untyped-def]
        res = real(self, model, options, start)
        calls.append(options.tolerance)
        res.x[:2] = 1.0                       # both items: £1k over, as a tolerance of 1e-6 × £1bn allows
        res.objective = res.bound = model.objective_value(res.x)
        return res

    monkeypatch.setattr(HighsBackend, "solve", sloppy)
    with pytest.raises(BackendError, match=r"backend highs cannot deliver .* use another backend"):
        solve_scenario(knapsack(costs, budget))
    assert calls[0] is None
    assert len(calls) > 1
    assert all(t is not None for t in calls[1:])


def test_optimal_is_never_claimed_for_a_plan_worth_less_than_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose point has a binary at 0.4 (rounded to 0) claims its fractional objective: the plan
    returned is worth less, so it is "feasible" with the gap to the bound, not "optimal"."""
    from solver.backends.highs import HighsBackend

    real = HighsBackend.solve

    def fractional(self: HighsBackend, model, options, start=None):  # type: ignore[no-untyped-def]
        res = real(self, model, options, start)
        res.x[:3] = [1.0, 0.0, 0.4]
        res.objective = res.bound = model.objective_value(res.x)
        return res

    monkeypatch.setattr(HighsBackend, "solve", fractional)
    out = solve_scenario(knapsack([500, 400, 300], 1000))
    assert out.status == SolutionStatus.FEASIBLE
    assert out.objective == pytest.approx(0.5)
    assert out.gap is not None
    assert out.gap > 0
    assert "not optimal" in out.message
