"""Every rule family on the tiny instance: the MIP optimum equals a brute-force enumeration
(feasibility and objective from the independent audit), and each rule changes the optimum
compared with the same instance with every rule off — so a rule that is silently dropped from
the formulation fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver import solve
from solver.data.scenario import Scenario, _deep_merge, load_scenario
from tests.bruteforce import brute_force

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"

ALL_OFF = {
    "need": {"category_weights": {"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0}, "need_index_power": 0.0},
    "match_funding": {"enabled": False}, "fee": {"rate": 0.0}, "revenue_consequences": {"payer": "ignore"},
    "standardisation": {"mode": "off"}, "commitments": {"mode": "ignore"}, "mandatory": {"enabled": False},
    "dependencies": {"enabled": False}, "alternatives": {"enabled": False}, "fair_share": {"mode": "off"},
}

ALONE = {
    "need_weighting": {"need": {"category_weights": {"0": 4.0, "1": 3.0, "2": 1.5, "3": 1.0}, "need_index_power": 1.0}},
    "carry_over": {"budget": {"carry_over": 0.5}},
    "capital_to_revenue": {"budget": {"capital_to_revenue": 0.2}},
    "run_cost_system": {"revenue_consequences": {"payer": "system"}},
    "run_cost_centre": {"revenue_consequences": {"payer": "centre"}},
    "match_funding": {"match_funding": {"enabled": True}},
    "fee_system": {"fee": {"rate": 0.035, "payer": "system"}},
    "fee_centre": {"fee": {"rate": 0.035, "payer": "centre"}},
    "fee_split": {"fee": {"rate": 0.035, "payer": "split", "system_share": 0.5}},
    "fair_floor_hard": {"fair_share": {"mode": "floor", "floor": 0.9, "enforcement": "hard"}},
    "fair_floor_penalty": {"fair_share": {"mode": "floor", "floor": 0.9, "enforcement": "penalty", "penalty": 5.0}},
    "fair_cap_hard_spend": {"fair_share": {"mode": "cap", "cap": 1.02, "enforcement": "hard", "basis": "spend"}},
    "fair_band_hard_spend": {"fair_share": {"mode": "band", "floor": 0.95, "cap": 1.05, "enforcement": "hard",
                                            "basis": "spend"}},
    "fair_deviation": {"fair_share": {"mode": "deviation", "penalty": 2.0}},
    "std_no_divergence": {"standardisation": {"mode": "no-divergence"}},
    "std_single": {"standardisation": {"mode": "single"}},
    "std_penalty": {"standardisation": {"mode": "penalty", "penalty": 30.0}},
    "mandatory": {"mandatory": {"enabled": True}},
    "commitments_keep": {"commitments": {"mode": "keep"}},
    "commitments_withdrawable": {"commitments": {"mode": "withdrawable"}},
    "dependencies": {"dependencies": {"enabled": True}},
    "alternatives": {"alternatives": {"enabled": True}},
}


@pytest.fixture(scope="module")
def base() -> Scenario:
    return load_scenario(TINY).with_solver(mip_gap=0.0)


@pytest.fixture(scope="module")
def all_off_optimum(base: Scenario) -> tuple[float, list[dict[str, int]]]:
    best, plans = brute_force(base.with_overrides(ALL_OFF))
    return best, [p.starts for p in plans]


def _check(scenario: Scenario) -> tuple[float, list[dict[str, int]]]:
    best, plans = brute_force(scenario)
    assert plans, "brute force found no feasible plan"
    out = solve(scenario, backend="highs", mip_gap=0.0)
    assert out.objective == pytest.approx(best, rel=1e-7, abs=1e-7)
    assert out.decisions.starts in [p.starts for p in plans]
    return best, [p.starts for p in plans]


def test_all_rules_off_matches_brute_force(base: Scenario) -> None:
    _check(base.with_overrides(ALL_OFF))


@pytest.mark.parametrize("rule", sorted(ALONE))
def test_rule_alone_matches_brute_force_and_bites(base: Scenario, all_off_optimum: tuple, rule: str) -> None:
    best, plans = _check(base.with_overrides(_deep_merge(ALL_OFF, ALONE[rule])))
    off_best, off_plans = all_off_optimum
    changed = abs(best - off_best) > 1e-7 or not any(p in off_plans for p in plans)
    assert changed, f"rule {rule} does not change the tiny optimum: the test could not catch its removal"


@pytest.mark.parametrize("model", ["need-first", "fair-share"])
def test_all_rules_together_match_brute_force(base: Scenario, model: str) -> None:
    from solver.data.scenario import load_policy

    policy, _ = load_policy(model, TINY.parent)
    _check(base.with_overrides(policy.model_dump()))
