"""Every rule family on the tiny instance: the MIP optimum equals a brute-force enumeration
(feasibility and objective from the independent audit), and each rule changes the optimum
compared with the same instance with every rule off — so a rule that is silently dropped from
the formulation fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver import solve
from solver.data.policy import Policy
from solver.data.scenario import Scenario, _deep_merge, load_scenario
from solver.errors import InputError
from solver.mip.formulation import formulate
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from solver.rules import FAMILIES, PRICES_ORDER, elastic_roles, price_relaxations
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


@pytest.mark.slow
def test_all_rules_off_matches_brute_force(base: Scenario) -> None:
    _check(base.with_overrides(ALL_OFF))


@pytest.mark.slow
@pytest.mark.parametrize("rule", sorted(ALONE))
def test_rule_alone_matches_brute_force_and_bites(base: Scenario, all_off_optimum: tuple, rule: str) -> None:
    best, plans = _check(base.with_overrides(_deep_merge(ALL_OFF, ALONE[rule])))
    off_best, off_plans = all_off_optimum
    changed = abs(best - off_best) > 1e-7 or not any(p in off_plans for p in plans)
    assert changed, f"rule {rule} does not change the tiny optimum: the test could not catch its removal"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["need-first", "fair-share"])
def test_all_rules_together_match_brute_force(base: Scenario, model: str) -> None:
    from solver.data.scenario import load_policy

    policy, _ = load_policy(model, TINY.parent)
    _check(base.with_overrides(policy.model_dump()))


RELAXING = {"carry_over", "capital_to_revenue", "match_funding"}   # widen or move money: nothing to break


@pytest.mark.slow
@pytest.mark.parametrize("rule", sorted(set(ALONE) - RELAXING))
def test_audit_sees_each_rule(base: Scenario, all_off_optimum: tuple, rule: str) -> None:
    """The plan that is optimal with every rule off, audited with one rule on: the rule's audit check
    names a violation, or its objective term changes the recomputed objective."""
    off_best, off_plans = all_off_optimum
    report = audit(base.with_overrides(_deep_merge(ALL_OFF, ALONE[rule])), Decisions(starts=off_plans[0]))
    assert report.violations or abs(report.objective - off_best) > 1e-6, rule


EVERY_OPTION = {"budget": {"carry_over": 0.5, "capital_to_revenue": 0.3}, "fee": {"payer": "split"},
                "commitments": {"mode": "withdrawable"}, "fair_share": {"mode": "band", "enforcement": "hard"},
                "standardisation": {"mode": "no-divergence"}}


def test_registry_covers_every_row_family(base: Scenario) -> None:
    """Every row family the MILP has belongs to a rule family (relaxable in the elastic model), except
    "at most once", which no planner relaxes; family names are unique; every family is priced."""
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    model = formulate(base.with_overrides(EVERY_OPTION)).model
    assert set(model.families) - {"once"} <= set(elastic_roles())
    assert {f.name for f in FAMILIES if f.prices} == set(PRICES_ORDER)


def test_price_relaxations_are_declarative(base: Scenario) -> None:
    """Each relaxation is a tuple of hashable variant operations, not an edited scenario."""
    rel, inactive = price_relaxations(base)
    assert rel
    assert all(isinstance(r.ops, tuple) and r.ops for r in rel)
    assert len({hash(r.ops) for r in rel}) == len(rel)
    assert "fair_share" in inactive


def test_objective_kind_defaults_to_benefit(base: Scenario) -> None:
    """Models and scenarios without ``kind`` load as before; ``kind`` is not dumped (identities stay)."""
    assert base.policy.objective.kind == "benefit"
    assert "kind" not in base.policy.model_dump()["objective"]
    explicit = base.with_overrides({"objective": {"kind": "benefit"}})
    assert explicit.policy == base.policy
    assert explicit.identity == base.identity
    assert Policy.model_validate({"name": "m", "objective": {"spend_weight": 1.0}}).objective.spend_weight == 1.0


def test_unknown_objective_kind_and_keys_are_named(base: Scenario) -> None:
    with pytest.raises(InputError, match="key 'overrides.objective': unknown objective kind"):
        base.with_overrides({"objective": {"kind": "utility"}})
    with pytest.raises(InputError, match="key 'overrides.objective.spend_weight': Input should be greater"):
        base.with_overrides({"objective": {"spend_weight": -1.0}})
