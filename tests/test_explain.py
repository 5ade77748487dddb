"""Infeasibility explained: one crafted infeasible tiny scenario per rule family; the explanation
names the rule, the year or project, and the amount."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from solver import load_scenario, solve
from solver.cli import main
from solver.errors import InfeasibleError
from solver.solve.explain import explain

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny"


def _edit(folder: Path, table: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = folder / table
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(frame).to_csv(path, index=False)


def _set(frame: pd.DataFrame, key: str, value: str, column: str, new: str) -> pd.DataFrame:
    frame.loc[frame[key] == value, column] = new
    return frame


CASES: dict[str, tuple[list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame]]], dict, list[str]]] = {
    "capital budget": (
        [("envelope.csv", lambda f: _set(f, "year", "2025", "capital", "0.3"))], {},
        ["2025/26 capital", "short by £0.900m"]),
    "revenue budget": (
        [("envelope.csv", lambda f: _set(f, "year", "2025", "revenue", "0.05"))], {},
        ["2025/26 revenue", "short by £0.050m"]),
    "local match": (
        [("projects.csv", lambda f: _set(f, "project_id", "FAX-B2", "match_share", "0.5")),
         ("systems.csv", lambda f: _set(f, "system_id", "B", "local_capital", "0.1"))], {},
        ["B 202", "local match", "short by £0.200m"]),
    "revenue headroom": (
        [("systems.csv", lambda f: _set(f, "system_id", "B", "revenue_headroom", "0.01"))], {},
        ["B 202", "revenue_headroom", "short by £0.011m"]),
    "alternatives": (
        [("projects.csv", lambda f: _set(_set(f, "project_id", "FAX-B2", "group", "CYB-B2-OPTIONS"),
                                         "project_id", "CYB-B2", "mandatory", "true"))], {},
        ["alternatives", "CYB-B2-OPTIONS"]),
    "dependency": (
        [("projects.csv", lambda f: _set(_set(f, "project_id", "SCR-A", "mandatory", "true"),
                                         "project_id", "SCR-A", "latest_start", "2025"))], {},
        ["SCR-A"]),
    "fair share": ([], {"fair_share": {"mode": "floor", "floor": 1.0, "enforcement": "hard"}},
                   ["fair-share floor", "short by £"]),
    "standardisation": (
        [("projects.csv", lambda f: _set(f, "project_id", "EPR-B1-EPIC", "mandatory", "true"))], {},
        ["standardisation", "Epic", "B"]),
    "commitment": (
        [("dependencies.csv", lambda f: pd.concat([f, pd.DataFrame([{"project_id": "COM-A2", "requires": "EPR-A1",
                                                                      "lag_years": "1"}])]))], {},
        ["COM-A2"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_explanation_names_rule_and_amount(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    edits, overrides, phrases = CASES[case]
    for table, fn in edits:
        _edit(folder, table, fn)
    scenario = load_scenario(folder / "baseline.toml").with_overrides(overrides)
    with pytest.raises(InfeasibleError) as err:
        solve(scenario)
    text = str(err.value)
    for phrase in phrases:
        assert phrase in text, text
    why = explain(scenario)
    assert why.relaxations, "the elastic model must find a relaxation"
    assert all(line in text for line in why.lines())


def test_solve_cli_exits_3_with_explanation(tmp_path: Path) -> None:
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    _edit(folder, "envelope.csv", lambda f: _set(f, "year", "2025", "capital", "0.3"))
    result = CliRunner().invoke(main, ["solve", str(folder / "baseline.toml"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 3
    assert "short by £0.900m" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_validate_flags_a_mandatory_project_that_fits_no_start(tmp_path: Path) -> None:
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    _edit(folder, "costs.csv", lambda f: _set(f, "project_id", "FAX-B2", "capital", "8"))
    result = CliRunner().invoke(main, ["validate", str(folder / "baseline.toml")])
    assert result.exit_code == 3
    assert "FAX-B2" in result.output
    assert "short by £1.000m" in result.output
    assert "valid —" not in result.output


def test_explain_cli(tmp_path: Path) -> None:
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    ok = CliRunner().invoke(main, ["explain", str(folder / "baseline.toml")])
    assert ok.exit_code == 0
    assert "feasible" in ok.output
    _edit(folder, "systems.csv", lambda f: _set(f, "system_id", "B", "revenue_headroom", "0.01"))
    bad = CliRunner().invoke(main, ["explain", str(folder / "baseline.toml")])
    assert bad.exit_code == 3
    assert "revenue_headroom" in bad.output
    assert "short by £0.011m" in bad.output
