"""The built-in England instance end to end: validate, solve with the default settings, print the
summary, write the tables, and re-audit the plan read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver import load_scenario, solve
from solver.backends.result import SolutionStatus
from solver.cli import main
from solver.pipeline.audit import audit
from solver.present.outputs import read_decisions

ENGLAND = Path(__file__).resolve().parent.parent / "instances" / "england"


@pytest.mark.parametrize("name", ["baseline", "cut-350m"])
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
    for phrase in ("Status: optimal", "gap", "bound", "2026/27 capital", "2028/29 revenue",
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
