"""Robustness analysis on the tiny instance: sampling, core index, feasibility rate, regret band,
determinism (same seed, any worker count) and parameter checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solver import load_scenario, solve
from solver.analyses.robust import robustness
from solver.analyses.sampling import DEFAULT_COST_SIGMA, Sampling, check_plans, wilson
from solver.data.instance import check_instance
from solver.data.readers import CostRow
from solver.data.scenario import Scenario
from solver.data.variants import apply
from solver.errors import InputError
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from solver.present.outputs import write_folder

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "instances" / "tiny" / "baseline.toml"
NO_NOISE = {"cost_sigma": {}, "benefit_range": (1.0, 1.0), "weight_ranges": {}}


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


def _same(a, b) -> None:
    """Two analyses are identical apart from wall-clock timings."""
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    strip = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert json.dumps(strip(a.summary), sort_keys=True) == json.dumps(strip(b.summary), sort_keys=True)
    assert a.text == b.text


def _draw(sc: Scenario, n: int, seed: int, cost_sigma=None, benefit_range=(0.8, 1.2), weight_ranges=None):
    return Sampling.of(sc, cost_sigma, benefit_range, weight_ranges).draw(sc, n, seed)


def test_wilson_interval() -> None:
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4)
    assert hi == pytest.approx(0.7634, abs=1e-4)
    lo0, hi0 = wilson(0, 10)
    lo1, hi1 = wilson(10, 10)
    assert hi0 == pytest.approx(1 - lo1)
    assert hi0 == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_zero_variance_core_index_is_the_nominal_plan(tiny: Scenario) -> None:
    a = robustness(tiny, samples=4, seed=3, **NO_NOISE)
    nominal = solve(tiny)
    pr = a.tables["projects"]
    assert set(pr["core_index"]) <= {0.0, 1.0}
    funded = dict(zip(pr["project_id"], pr["core_index"] == 1.0))
    assert funded == {p: p in nominal.decisions.starts for p in tiny.instance.projects["project_id"]}
    assert (pr["nominal_funded"] == (pr["core_index"] == 1.0)).all()
    assert set(pr["class"]) <= {"core", "exterior"}
    s = a.tables["samples"]
    assert s["nominal_feasible"].all()
    assert s["feasible"].all()
    assert (s["hamming_to_nominal"] == 0).all()
    assert s["regret_high"].max() <= 1e-6 * abs(nominal.objective)
    assert (s["nominal_value"] - nominal.objective).abs().max() <= 1e-6 * abs(nominal.objective)
    assert a.summary["results"]["nominal_feasibility_rate"] == 1.0


def test_zero_variance_sample_is_the_instance(tiny: Scenario) -> None:
    (draw,) = _draw(tiny, 1, 0, {}, (1.0, 1.0), {})
    s = apply(tiny, [draw])
    pd.testing.assert_frame_equal(s.instance.costs, tiny.instance.costs)
    pd.testing.assert_frame_equal(s.instance.projects, tiny.instance.projects)
    assert s.policy == tiny.policy


def test_samples_keep_every_table_rule(tiny: Scenario) -> None:
    draws = _draw(tiny, 5, 11, {"*": 0.8}, (0.5, 1.5))
    ranges = Sampling.of(tiny).weight_ranges
    for d in draws:
        s = apply(tiny, [d])
        for row in s.instance.costs[["project_id", "year_offset", "capital", "revenue"]].to_dict("records"):
            CostRow.model_validate(row)      # £m with at most 3 decimals, >= 0
        check_instance(s.instance, Path(s.instance.root) / "instance.toml")
        lo, hi = 0.5, 1.5
        ratio = s.instance.projects["benefit"] / tiny.instance.projects["benefit"]
        assert ((ratio >= lo - 1e-6) & (ratio <= hi + 1e-6)).all()
        w = s.policy.need.category_weights
        for c, (a, b) in ranges.items():
            assert a <= w[c] <= b
    assert len({d.cost_factor for d in draws}) == 5


def test_sample_i_does_not_depend_on_the_number_of_samples(tiny: Scenario) -> None:
    assert _draw(tiny, 5, 7)[:3] == _draw(tiny, 3, 7)
    assert _draw(tiny, 3, 8) != _draw(tiny, 3, 7)


def test_default_cost_table_covers_every_kind_with_a_fallback() -> None:
    assert "*" in DEFAULT_COST_SIGMA
    assert all(v >= 0 for v in DEFAULT_COST_SIGMA.values())
    assert Sampling.of(load_scenario(TINY), {"cyber": 0.3}).cost_sigma == {"cyber": 0.3}


def test_same_seed_identical_outputs_and_seed_matters(tiny: Scenario) -> None:
    a = robustness(tiny, samples=6, seed=5)
    b = robustness(tiny, samples=6, seed=5)
    _same(a, b)
    c = robustness(tiny, samples=6, seed=6)
    assert not a.tables["samples"].equals(c.tables["samples"])
    assert a.summary["parameters"]["seed"] == 5
    assert "wall_seconds" in a.summary["timing"]


def test_worker_count_does_not_change_results(tiny: Scenario) -> None:
    _same(robustness(tiny, samples=4, seed=2, workers=1), robustness(tiny, samples=4, seed=2, workers=2))


def test_regret_band_and_infeasibility_reasons(tiny: Scenario) -> None:
    a = robustness(tiny, samples=12, seed=1)
    s = a.tables["samples"]
    fits = s[s["nominal_feasible"]]
    assert len(fits)
    assert (~s["nominal_feasible"]).any()
    assert (fits["regret"] >= 0).all()
    assert (fits["regret_low"] <= fits["regret_high"] + 1e-12).all()
    assert (fits["nominal_overspend_national"] == 0).all()
    assert (fits["nominal_overspend_local"] == 0).all()
    broken = s[~s["nominal_feasible"]]
    assert (broken["nominal_violation"] != "").all()
    assert ((broken["nominal_overspend_national"] + broken["nominal_overspend_local"]) > 0).all()
    assert broken["regret"].isna().all()
    res = a.summary["results"]
    assert res["nominal_feasible"] == len(fits)
    lo, hi = res["nominal_feasibility_ci95"]
    assert lo <= res["nominal_feasibility_rate"] <= hi
    pr = a.tables["projects"]
    assert (pr["ci_low"] <= pr["core_index"]).all()
    assert (pr["core_index"] <= pr["ci_high"]).all()
    assert "Still fits every rule in" in a.text


def test_infeasible_samples_are_counted_not_fatal(tiny: Scenario) -> None:
    # a mandatory fax replacement that can cost many times its estimate: some samples have no plan
    a = robustness(tiny, samples=10, seed=0, cost_sigma={"fax_replacement": 3.0}, benefit_range=(1, 1),
                   weight_ranges={})
    s = a.tables["samples"]
    assert (~s["feasible"]).any()
    assert s["feasible"].any()
    assert set(s.loc[~s["feasible"], "status"]) == {"infeasible"}
    assert (a.tables["projects"]["samples"] == s["feasible"].sum()).all()
    assert not s.loc[~s["feasible"], "nominal_feasible"].any()


def test_money_moves_are_reoptimised_before_calling_a_plan_infeasible(tiny: Scenario) -> None:
    carry = tiny.with_overrides({"budget": {"carry_over": 0.5}})
    out = solve(carry)
    assert any(v > 1e-9 for v in out.decisions.carry.values())   # the optimum relies on carrying money
    bare = Decisions(starts=out.decisions.starts, withdrawn=out.decisions.withdrawn)
    assert not audit(carry, bare).ok                              # ... so without it the audit fails
    (chk,) = check_plans(carry, [bare])                           # but the plan's projects still fit
    assert chk.feasible
    assert chk.value == pytest.approx(out.objective, rel=1e-9)
    a = robustness(carry, samples=3, seed=0, **NO_NOISE)
    assert a.summary["results"]["nominal_feasibility_rate"] == 1.0


def test_outputs_are_tables_and_strict_json(tiny: Scenario, tmp_path: Path) -> None:
    a = robustness(tiny, samples=3, seed=0)
    assert set(a.tables) == {"projects", "samples"}
    json.dumps(a.summary, allow_nan=False)
    folder = write_folder(tmp_path / "robust", a.files())
    written = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))   # not the folder marker
    assert written == ["projects.csv", "samples.csv", "summary.json", "timing.json"]
    back = pd.read_csv(folder / "projects.csv")
    assert list(back["project_id"]) == list(a.tables["projects"]["project_id"])
    assert json.loads((folder / "summary.json").read_text())["parameters"]["samples"] == 3


@pytest.mark.parametrize("kwargs", [
    {"samples": 0}, {"workers": 0}, {"cost_sigma": {"cyber": -0.1}}, {"cost_sigma": {"cyber": float("nan")}},
    {"benefit_range": (1.2, 0.8)}, {"benefit_range": (-1, 1)}, {"weight_ranges": {"7": (1, 2)}},
    {"weight_ranges": {"0": (3, 2)}}, {"weight_ranges": {"0": 3}},
])
def test_bad_parameters_are_input_errors(tiny: Scenario, kwargs: dict) -> None:
    with pytest.raises(InputError):
        robustness(tiny, **kwargs)


def test_unknown_solver_option_is_an_input_error(tiny: Scenario) -> None:
    with pytest.raises(InputError):
        robustness(tiny, samples=1, gap=0.1)
    with pytest.raises(InputError):
        robustness(tiny, samples=1, backend="nope")


def test_draws_are_plain_numbers(tiny: Scenario) -> None:
    (d,) = _draw(tiny, 1, 0)
    assert all(type(v) is float for _, v in d.cost_factor)
    assert all(np.isfinite([v for _, v in d.benefit_factor]))
