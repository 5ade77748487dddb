"""Near-optimal alternatives (MGA) on the tiny instance: every alternative passes the audit, is
within the stated loss and distinct; checked against brute-force enumeration of every plan."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from solver import load_scenario, solve
from solver.analyses.near_optimal import alternatives
from solver.data.scenario import Scenario
from solver.errors import InputError
from solver.pipeline.accounts import view
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from tests.bruteforce import project_choices

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny" / "baseline.toml"


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


@pytest.fixture(scope="module")
def best_by_set(tiny: Scenario) -> dict[frozenset[str], float]:
    """Brute force: the best audited value of every feasible funded set of the tiny scenario."""
    v = view(tiny)
    choices = project_choices(tiny)
    ids = sorted(choices)
    best: dict[frozenset[str], float] = {}
    for combo in itertools.product(*(choices[p] for p in ids)):
        starts = {p: c for p, c in zip(ids, combo) if isinstance(c, int)}
        if any(v.projects[p].mandatory and p not in starts for p in ids):
            continue
        groups = [v.projects[p].group for p in starts if v.projects[p].group]
        if len(groups) != len(set(groups)):
            continue
        rep = audit(tiny, Decisions(starts=starts), v=v)
        if rep.ok:
            key = frozenset(starts)
            best[key] = max(best.get(key, -float("inf")), rep.objective)
    return best


def plans_of(a) -> dict[str, Decisions]:
    """Every plan of an analysis, rebuilt from its ``starts`` table."""
    out: dict[str, Decisions] = {}
    for label, rows in a.tables["starts"].groupby("plan", sort=False):
        funded = rows[~rows["withdrawn"]]
        out[label] = Decisions(starts={p: int(s) for p, s in zip(funded["project_id"], funded["start"])},
                               withdrawn=sorted(rows.loc[rows["withdrawn"], "project_id"]))
    return out


@pytest.fixture(scope="module")
def ten_percent(tiny: Scenario):
    return alternatives(tiny, k=5, within=0.10, robustness_samples=5, seed=1)


def test_every_alternative_is_feasible_within_the_loss_and_distinct(tiny: Scenario, ten_percent) -> None:
    a = ten_percent
    opt = solve(tiny)
    plans = plans_of(a)
    assert list(plans)[0] == "optimum"
    assert len(plans) == 6
    assert plans["optimum"].starts == opt.decisions.starts
    for label, plan in plans.items():
        rep = audit(tiny, plan)
        assert rep.ok, (label, rep.violations)
        assert rep.objective >= (1 - 0.10) * opt.objective - 1e-9
        row = a.tables["plans"].set_index("plan").loc[label]
        assert row["objective"] == pytest.approx(rep.objective, rel=1e-9)
        assert bool(row["within"])
        assert row["loss_pct_high"] <= 0.10 + 1e-12
    funded = {label: set(p.starts) for label, p in plans.items()}
    for (la, fa), (lb, fb) in itertools.combinations(funded.items(), 2):
        assert len(fa ^ fb) >= 1, (la, lb)
    d = a.tables["distances"].set_index("plan")
    for la, lb in itertools.permutations(funded, 2):
        assert d.loc[la, lb] == len(funded[la] ^ funded[lb])
    assert a.summary["results"]["min_pairwise_distance"] >= 1


def test_first_alternative_is_the_farthest_plan_within_the_loss(tiny: Scenario, ten_percent,
                                                                  best_by_set: dict) -> None:
    threshold = ten_percent.summary["parameters"]["threshold"]
    plans = plans_of(ten_percent)
    opt = frozenset(plans["optimum"].starts)
    farthest = max(len(s ^ opt) for s, v in best_by_set.items() if v >= threshold)
    assert len(set(plans["alt 1"].starts) ^ opt) == farthest


@pytest.mark.parametrize("mga_gap", [0.0, 0.5])
def test_a_round_is_within_its_mga_gap_of_the_farthest_plan(tiny: Scenario, best_by_set: dict,
                                                            mga_gap: float) -> None:
    """The distance objective t + ε·Σd (ε·Σd < 1) is solved to ``mga_gap``: the plan found is at
    least farthest / (1 + mga_gap) − 1 from the optimum, and exactly the farthest at gap 0."""
    a = alternatives(tiny, k=1, within=0.10, robustness_samples=0, mga_gap=mga_gap)
    assert a.summary["parameters"]["mga_gap"] == mga_gap
    plans = plans_of(a)
    opt = frozenset(plans["optimum"].starts)
    threshold = a.summary["parameters"]["threshold"]
    farthest = max(len(s ^ opt) for s, v in best_by_set.items() if v >= threshold)
    found = len(set(plans["alt 1"].starts) ^ opt)
    assert found >= farthest / (1 + mga_gap) - 1
    if mga_gap == 0:
        assert found == farthest


def test_alternatives_take_the_best_start_years_for_their_projects(ten_percent, best_by_set: dict) -> None:
    table = ten_percent.tables["plans"].set_index("plan")
    for label, plan in plans_of(ten_percent).items():
        assert table.loc[label, "objective"] == pytest.approx(best_by_set[frozenset(plan.starts)], rel=1e-9)


def test_search_stops_when_no_distinct_plan_is_left(tiny: Scenario, best_by_set: dict) -> None:
    a = alternatives(tiny, k=8, within=0.05, robustness_samples=0)
    threshold = a.summary["parameters"]["threshold"]
    expected = {s for s, v in best_by_set.items() if v >= threshold}
    found = {frozenset(p.starts) for p in plans_of(a).values()}
    assert found == expected
    assert a.summary["results"]["alternatives"] == len(expected) - 1 < 8
    assert a.summary["mga_rounds"][-1]["outcome"] == "exhausted"
    assert any("no further distinct plan" in n for n in a.summary["notes"])


def test_differences_say_what_each_alternative_funds_instead(ten_percent) -> None:
    plans = plans_of(ten_percent)
    opt = plans["optimum"].starts
    diff = ten_percent.tables["differences"]
    for label, plan in plans.items():
        rows = diff[diff["plan"] == label]
        assert set(rows.loc[rows["change"] == "dropped", "project_id"]) == set(opt) - set(plan.starts)
        assert set(rows.loc[rows["change"] == "added", "project_id"]) == set(plan.starts) - set(opt)
        moved = {p for p in set(opt) & set(plan.starts) if opt[p] != plan.starts[p]}
        assert set(rows.loc[rows["change"] == "moved", "project_id"]) == moved
    assert "funds instead" in ten_percent.text or "drops" in ten_percent.text


def test_ranking_follows_the_robustness_score(ten_percent) -> None:
    p = ten_percent.tables["plans"]
    assert list(p["rank"]) == list(range(1, len(p) + 1))
    keys = list(zip(-p["feasible_rate"], -p["mean_core_index"], -p["objective"]))
    assert keys == sorted(keys)
    assert ((p["feasible_ci_low"] <= p["feasible_rate"]) & (p["feasible_rate"] <= p["feasible_ci_high"])).all()
    s = ten_percent.tables["samples"]
    assert len(s) == 5 * len(p)
    fits = s[s["feasible"]]
    assert (fits["regret_low"] <= fits["regret_high"] + 1e-12).all()
    assert ten_percent.summary["results"]["ranking"] == list(p["plan"])


def test_without_samples_plans_are_ranked_by_objective(tiny: Scenario) -> None:
    a = alternatives(tiny, k=2, within=0.10, robustness_samples=0)
    p = a.tables["plans"]
    assert p["plan"].iat[0] == "optimum"
    assert list(p["objective"]) == sorted(p["objective"], reverse=True)
    assert "core" not in a.tables


def test_same_seed_identical_outputs(tiny: Scenario) -> None:
    a = alternatives(tiny, k=3, within=0.10, robustness_samples=4, seed=9)
    b = alternatives(tiny, k=3, within=0.10, robustness_samples=4, seed=9)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    strip = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert json.dumps(strip(a.summary), sort_keys=True) == json.dumps(strip(b.summary), sort_keys=True)
    assert a.text == b.text
    json.dumps(a.summary, allow_nan=False)


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"within": -0.1}, {"within": 1.0}, {"robustness_samples": -1},
                                    {"workers": 0}, {"cost_sigma": {"*": -1}},
                                    {"mga_gap": -0.01}, {"mga_gap": 1.0}, {"mga_gap": float("nan")}])
def test_bad_parameters_are_input_errors(tiny: Scenario, kwargs: dict) -> None:
    with pytest.raises(InputError):
        alternatives(tiny, **kwargs)
