"""Cut ladder on the tiny instance: every level's plan and objective equal the brute-force optimum
of the scaled envelope, the flips are exactly the non-nestings of those (unique) optimal plans,
``nested`` plans are nested and are the best nested plans (brute force over the projects funded
at the level above), and the same seed gives identical outputs."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pandas as pd
import pytest

from solver import solve
from solver.analyses.cut_ladder import ladder, ladder_levels
from solver.data.scenario import Scenario, load_scenario
from solver.data.variants import ScaleEnvelope, ShiftEnvelope
from solver.present.outputs import write_folder
from tests.bruteforce import brute_force

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"
LEVELS = [1.0, 0.9, 0.5, 0.4]   # 100% and 90% differ in plan; CYB-B2-LITE is out at 90% and 50%, back at 40%


@functools.cache
def tiny() -> Scenario:
    """The tiny scenario solved to proven optimality."""
    return load_scenario(TINY).with_solver(mip_gap=0.0)


@functools.cache
def tiny_brute(envelope: tuple[float, ...]) -> tuple[float, tuple[dict[str, int], ...]]:
    """Brute-force optimum of the tiny scenario with the given envelope (capital, revenue per year)."""
    sc = tiny()
    env = sc.envelope.copy()
    env[["capital", "revenue"]] = [[envelope[2 * i], envelope[2 * i + 1]] for i in range(len(env))]
    best, plans = brute_force(sc.with_envelope(env))
    return best, tuple(p.starts for p in plans)


def env_key(env: pd.DataFrame) -> tuple[float, ...]:
    """Hashable envelope."""
    return tuple(float(v) for v in env[["capital", "revenue"]].to_numpy().ravel())


def label(f: float) -> str:
    return f"{100 * f:g}%"


@pytest.fixture(scope="module")
def result():
    return ladder(tiny(), LEVELS, nested=True, seed=3)


@pytest.fixture(scope="module")
def brute() -> dict[float, tuple[float, tuple[dict[str, int], ...]]]:
    return {f: tiny_brute(env_key(ScaleEnvelope(f).apply(tiny()).envelope)) for f in LEVELS}


def plans_of(result, plan: str = "optimal") -> dict[str, dict[str, int]]:
    funded = result.tables["funded"]
    out = {}
    for lab in result.tables["levels"]["label"]:
        rows = funded[(funded["label"] == lab) & (funded["plan"] == plan)]
        out[lab] = {str(p): int(s) for p, s in zip(rows["project_id"], rows["start"])}
    return out


@pytest.mark.slow
def test_each_level_is_the_brute_force_optimum(result, brute) -> None:
    levels = result.tables["levels"].set_index("label")
    plans = plans_of(result)
    assert list(levels.index) == [label(f) for f in LEVELS]     # most money first
    for f, (best, optimal) in brute.items():
        assert levels.at[label(f), "objective"] == pytest.approx(best, rel=1e-9, abs=1e-9)
        assert levels.at[label(f), "status"] == "optimal"
        assert plans[label(f)] in list(optimal)
        assert levels.at[label(f), "envelope"] == pytest.approx(f * tiny().envelope[["capital", "revenue"]].sum().sum())


@pytest.mark.slow
def test_loss_against_the_level_above_is_the_brute_force_difference(result, brute) -> None:
    levels = result.tables["levels"]
    for i in range(1, len(LEVELS)):
        lost = brute[LEVELS[i - 1]][0] - brute[LEVELS[i]][0]
        row = levels.iloc[i]
        assert row["loss_vs_above"] == pytest.approx(lost, abs=1e-7)
        assert row["loss_low"] <= lost + 1e-7 <= row["loss_high"] + 2e-7
        assert row["loss_verdict"] == ("positive" if lost > 1e-6 else "zero")


@pytest.mark.slow
def test_flips_are_exactly_the_non_nestings(result, brute) -> None:
    assert all(len(plans) == 1 for _, plans in brute.values()), "optimal plans must be unique for an exact test"
    funded = {label(f): set(plans[0]) for f, (_, plans) in brute.items()}
    labels = [label(f) for f in LEVELS]
    expected = {(p, below) for above, below in zip(labels, labels[1:]) for p in funded[below] - funded[above]}
    flips = result.tables["flips"]
    assert set(zip(flips["project_id"], flips["enters_at"])) == expected
    assert len(flips) == len(expected)
    # by hand: CYB-B2-LITE is funded at 100%, out at 90% and 50%, back at 40%; CYB-B2 comes in at 90%
    lite = flips[flips["project_id"] == "CYB-B2-LITE"].iloc[0]
    assert (lite["kind"], lite["funded_above"], lite["out_from"], lite["out_to"], lite["enters_at"]) == \
        ("leaves and re-enters", "100%", "90%", "50%", "40%")
    cyb = flips[flips["project_id"] == "CYB-B2"].iloc[0]
    assert (cyb["kind"], cyb["enters_at"]) == ("enters as money falls", "90%")
    assert result.summary["counts"]["projects_leaving_and_reentering"] == 1


def test_who_misses_out_first(result) -> None:
    pj = result.tables["projects"].set_index("project_id")
    assert pj.at["EPR-A1-EPIC", "drops_out_at"] == "90%"
    assert pj.at["EPR-A1-EPIC", "lowest_funded"] == "100%"
    assert pj.at["CYB-B2-LITE", "drops_out_at"] == "90%"
    assert pj.at["CYB-B2-LITE", "lowest_funded"] == "40%"
    assert pj.at["CYB-B2-LITE", "reentries"] == 1
    assert pd.isna(pj.at["OPT-B1", "drops_out_at"])          # funded all the way down
    assert pd.isna(pj.at["EPR-B1-EPIC", "misses_out_rank"])  # never funded: not ranked
    ranked = result.tables["projects"].dropna(subset=["misses_out_rank"])
    assert set(ranked["project_id"]) == {"EPR-A1-EPIC", "SCR-A", "CYB-B2-LITE"}
    assert (ranked["misses_out_rank"] == 1).all()            # all drop out at the first cut
    assert "Who misses out first" in result.text
    sy = result.tables["systems"].set_index("system_id")
    assert sy.at["B", "below_floor_at"] == "100%"            # Beta is under half its fair share from the start
    assert sy.at["A", "below_floor_at"] == "90%"
    assert list(result.tables["systems"]["system_id"]) == ["B", "A"]


def test_nested_plans_are_nested(result) -> None:
    nested = plans_of(result, "nested")
    labels = list(result.tables["levels"]["label"])
    for above, below in zip(labels, labels[1:]):
        assert set(nested[below]) <= set(nested[above]), (above, below)
    levels = result.tables["levels"]
    assert (levels["nested_objective"] <= levels["objective"] + 1e-9).all()
    assert (levels["nesting_cost_low"] >= 0).all()
    assert levels["nesting_cost"].iloc[0] == 0
    assert bool(levels["nested_is_optimal_plan"].iloc[0])
    assert levels["nesting_cost"].iloc[1] > 0                # at 90% the optimum swaps CYB-B2-LITE for CYB-B2
    assert levels["nesting_cost"].iloc[3] == 0               # at 40% the optimum is inside the nested plan above
    assert bool(levels["nested_is_optimal_plan"].iloc[3])


def _only(scenario: Scenario, keep: set[str]) -> Scenario:
    """The scenario with every project outside ``keep`` removed from the instance."""
    inst = scenario.instance
    projects = inst.projects[inst.projects["project_id"].isin(keep)]
    costs = inst.costs[inst.costs["project_id"].isin(keep)]
    deps = inst.dependencies[inst.dependencies["project_id"].isin(keep)]
    return dataclasses.replace(scenario, instance=dataclasses.replace(inst, projects=projects, costs=costs,
                                                                      dependencies=deps))


@pytest.mark.slow
def test_nested_plans_are_the_best_nested_plans(result) -> None:
    nested = plans_of(result, "nested")
    levels = result.tables["levels"].set_index("label")
    labels = [label(f) for f in LEVELS]
    for i in range(1, len(LEVELS)):
        sc = _only(ScaleEnvelope(LEVELS[i]).apply(tiny()), set(nested[labels[i - 1]]))
        best, plans = brute_force(sc)
        assert levels.at[labels[i], "nested_objective"] == pytest.approx(best, rel=1e-9, abs=1e-9)
        assert nested[labels[i]] in [p.starts for p in plans]


def test_same_seed_gives_identical_outputs(result, tmp_path: Path) -> None:
    again = ladder(tiny(), LEVELS, nested=True, seed=3)
    assert again.text == result.text
    for name, frame in result.tables.items():
        pd.testing.assert_frame_equal(frame, again.tables[name])
    strip = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert strip(again.summary) == strip(result.summary)
    assert result.summary["solver"]["seed"] == 3
    assert "timing" in result.summary
    a = write_folder(tmp_path / "a", {k: v for k, v in result.files().items() if k.endswith(".csv")})
    b = write_folder(tmp_path / "b", {k: v for k, v in again.files().items() if k.endswith(".csv")})
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name


def test_cuts_in_gbpm_on_one_pot_and_parallel_chains() -> None:
    sc = tiny()
    out = ladder(sc, cuts_gbpm=[0.0, 0.5, 1.0], year=2026, pot="capital", workers=2)
    levels = out.tables["levels"]
    assert list(levels["label"]) == ["-£0m", "-£0.5m", "-£1m"]
    assert list(levels["cut"]) == pytest.approx([0.0, 0.5, 1.0])
    for cut, obj in zip([0.0, 0.5, 1.0], levels["objective"]):
        direct = solve(ShiftEnvelope(2026, "capital", -cut).apply(sc))
        assert obj == pytest.approx(direct.objective, rel=1e-9)
    # a fraction of one year's pots, pro rata over both
    lv = ladder_levels(sc, [0.5], year=2025)[0]
    env = lv.envelope.set_index("year")
    assert env.at[2025, "capital"] == pytest.approx(3.5)
    assert env.at[2025, "revenue"] == pytest.approx(0.25)
    assert env.at[2026, "capital"] == pytest.approx(4.0)


def test_bad_ladder_arguments() -> None:
    from solver.errors import InputError

    with pytest.raises(InputError):
        ladder_levels(tiny(), year=1999)
    with pytest.raises(InputError):
        ladder_levels(tiny(), pot="both")
    with pytest.raises(InputError):
        ladder_levels(tiny(), cuts_gbpm=[100.0])
    with pytest.raises(InputError):
        ladder_levels(tiny(), start=0.5, stop=1.0)
