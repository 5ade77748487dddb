"""The built-in England instance end to end: validate, solve with the default settings, print the
summary, write the tables, and re-audit the plan read back from disk; its calibration against the
published figures; and NHS England's 2023 decision reproduced by the levelling-up model under the cut."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver import load_scenario, solve
from solver.backends.result import SolutionStatus
from solver.cli import main
from solver.data.scenario import Scenario, builtin_models_dir, load_policy
from solver.pipeline.audit import audit
from solver.pipeline.core import solve_scenario
from solver.present.outputs import read_decisions

ENGLAND = Path(__file__).resolve().parent.parent / "instances" / "england"
SCENARIOS = ["baseline", "cut-350m", "cut-350m-withdraw"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_validate(name: str) -> None:
    result = CliRunner().invoke(main, ["validate", str(ENGLAND / f"{name}.toml")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


@pytest.mark.slow
def test_cut_scenario_solves_prints_and_writes_an_audited_plan(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["solve", str(ENGLAND / "cut-350m.toml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    for phrase in ("Status: optimal", "gap", "bound", "2026/27 capital", "2029/30 revenue",
                   "Category 0/1 trusts with nothing funded", "Systems with nothing funded", "plan audit passed"):
        assert phrase in text
    for name in ("plan.csv", "budget.csv", "systems.csv", "misses.csv", "summary.json", "timing.json"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "optimal"
    assert summary["gap"] <= 1e-3
    assert summary["audit"]["passed"]
    cut = [e for e in summary["envelope"] if e["year"] == 2026 and e["pot"] == "capital"][0]
    base = load_scenario(ENGLAND / "baseline.toml").envelope.set_index("year").at[2026, "capital"]
    assert cut["envelope"] == pytest.approx(base - 350.0)
    assert cut["spent"] <= cut["envelope"] + 1e-6

    scenario = load_scenario(ENGLAND / "cut-350m.toml")
    decisions = read_decisions(out)
    report = audit(scenario, decisions, claimed_objective=summary["objective"])
    assert report.ok, report.violations


@pytest.mark.slow
def test_cut_costs_benefit_and_funds_fewer() -> None:
    base = solve(load_scenario(ENGLAND / "baseline.toml"))
    cut = solve(load_scenario(ENGLAND / "cut-350m.toml"))
    assert base.status == cut.status == SolutionStatus.OPTIMAL
    # the cut plan is feasible for the baseline, so the baseline optimum cannot be lower beyond the gaps
    assert base.bound >= cut.objective - 1e-6
    assert len(cut.decisions.starts) < len(base.decisions.starts)
    # need-first stays quick on England (it is the default model: about a second each)
    assert base.solve_seconds + cut.solve_seconds < 30


# --------------------------------------------------------------------------- calibration


def test_calibration_matches_the_published_figures() -> None:
    """Categories within a few trusts of the published counts (20 without an EPR, 132 in group 2, 43 meeting
    the standard), demand 4-5 times the envelope, many signed MoUs on category-2 optimisation, and room for
    every large EPR to slip a year."""
    sc = load_scenario(ENGLAND / "baseline.toml")
    inst = sc.instance
    cats = inst.organisations["category"].value_counts().to_dict()
    published = {0: (17, 22), 1: (7, 14), 2: (127, 137), 3: (38, 48)}  # 19-20, ~10, 132, 43
    for c, (lo, hi) in published.items():
        assert lo <= cats[c] <= hi, (c, cats[c])
    # Epic trusts (Cambridge, Royal Devon, Guy's ...) meet the standard; in-house EPRs are not all category 1
    orgs = inst.organisations.set_index("org_id")
    assert (orgs.loc[orgs["platform"] == "Epic", "category"] == 3).all()
    assert orgs.loc[["RGT", "RH8", "RJ1"], "category"].eq(3).all()
    assert (orgs.loc[orgs["platform"] == "In-house", "category"] != 1).all()

    pr = inst.projects
    total = (inst.costs["capital"] + inst.costs["revenue"]).groupby(inst.costs["project_id"]).sum()
    cost = pr["project_id"].map(total)
    grouped = pr["group"].notna() & (pr["group"] != "")
    demand = cost[~grouped].sum() + cost[grouped].groupby(pr.loc[grouped, "group"]).mean().sum()
    envelope = float(sc.envelope[["capital", "revenue"]].to_numpy().sum())
    assert envelope == pytest.approx(1900.0)
    assert 4.0 <= demand / envelope <= 5.0

    category = pr["org_id"].map(orgs["category"])
    mou = pr["committed_start"].notna()
    opt2 = (pr["kind"] == "epr_optimisation") & (category == 2)
    assert (mou & opt2).sum() >= 0.2 * cats[2]
    assert (pr.loc[mou, "withdrawal_cost"] > 0).all()

    epr = pr[(pr["kind"] == "epr_procurement") & (category <= 1) & ~mou]  # a signed MoU keeps its start
    assert len(epr) > 0
    assert (epr["latest_start"] > epr["earliest_start"]).all()


@pytest.mark.slow
def test_the_build_reproduces_the_instance_byte_for_byte(tmp_path: Path) -> None:
    """Rebuilding from source/ (in a copy) gives exactly the files in the repository: nobody edited a
    generated file by hand, and the build is deterministic, measurements included."""
    shutil.copy(ENGLAND / "build.py", tmp_path / "build.py")
    shutil.copytree(ENGLAND / "source", tmp_path / "source")
    subprocess.run([sys.executable, str(tmp_path / "build.py")], check=True, capture_output=True, timeout=300)
    made = sorted(p.name for p in tmp_path.iterdir() if p.is_file() and p.name != "build.py")
    assert made == sorted(p.name for p in ENGLAND.iterdir() if p.is_file() and p.name != "build.py")
    for name in made:
        assert (tmp_path / name).read_bytes() == (ENGLAND / name).read_bytes(), name


# --------------------------------------------------------------------------- NHS England's 2023 decision


def national_money(sc: Scenario) -> dict[tuple[int, str], float]:
    """National funding (capital and revenue, all years) of ``sc``'s plan by (category, kind); category -1
    for system-wide projects."""
    out = solve_scenario(sc)
    assert out.has_plan
    assert out.audit is not None
    assert out.audit.ok
    pr = sc.instance.projects.set_index("project_id")
    category = pr["org_id"].map(sc.instance.organisations.set_index("org_id")["category"]).fillna(-1)
    money: dict[tuple[int, str], float] = defaultdict(float)
    for project, _year, nat_cap, _loc_cap, nat_rev, *_ in out.accounts.lines:
        money[(int(category[project]), str(pr.at[project, "kind"]))] += nat_cap + nat_rev
    return dict(money)


def by_category(money: dict[tuple[int, str], float]) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    for (cat, _kind), value in money.items():
        out[cat] += value
    return out


def changes(base: dict[tuple[int, str], float], other: dict[tuple[int, str], float]) -> dict[tuple[int, str], float]:
    return {k: other.get(k, 0.0) - base.get(k, 0.0) for k in set(base) | set(other)}


@pytest.mark.slow
def test_levelling_up_under_the_cut_keeps_category_0_and_1_and_cuts_category_2_optimisation() -> None:
    """Issue 10's test: under the £350m cut, levelling-up (NHS England's stated priority) keeps category 0
    and 1 national funding at >= 95% of the same model's baseline, and the first and largest loss falls
    on category-2 optimisation and extension, as NHS England decided in 2023. "First": a £100m cut
    already takes most of its loss there. Three levelling-up solves of 15 s each (not every tier is proved in
    that time; the claims hold with room to spare: measured 567 vs 558 for category 0, 292 vs 291 for category 1,
    and 92% / 77% of the loss on category-2 optimisation; benchmarks/policies.py solves it to its limits)."""
    policy, path = load_policy("levelling-up", builtin_models_dir())
    baseline = load_scenario(ENGLAND / "baseline.toml").with_policy(policy, str(path)).with_solver(time_limit=15)
    cut = load_scenario(ENGLAND / "cut-350m.toml").with_policy(policy, str(path)).with_solver(time_limit=15)
    base = national_money(baseline)
    full = national_money(cut)
    env = baseline.envelope.copy()
    env.loc[env["year"] == 2026, "capital"] -= 100.0
    small = national_money(baseline.with_envelope(env))

    base_cat, cut_cat = by_category(base), by_category(full)
    for c in (0, 1):
        assert base_cat[c] > 100.0
        assert cut_cat[c] >= 0.95 * base_cat[c], (c, base_cat[c], cut_cat[c])
    for other in (full, small):
        delta = changes(base, other)
        lost = sum(v for v in delta.values() if v < 0)
        worst = min(delta, key=delta.__getitem__)
        assert worst == (2, "epr_optimisation"), sorted(delta.items(), key=lambda kv: kv[1])[:4]
        assert delta[worst] <= 0.5 * lost < 0
    assert sum(changes(base, full).values()) < -300.0  # the cut does take money away
