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
from solver.pipeline.explain import explain

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



# --------------------------------------------------------------------------- a backend's false "infeasible"


def _lying_backend(monkeypatch: pytest.MonkeyPatch, scenario_cols: int) -> str:
    """Make cbc (or scip) say "infeasible" for the scenario's own model (the elastic model, which has
    slack columns, is solved as usual); returns the backend's name."""
    from solver.backends import available_backends, get_backend
    from solver.backends.result import SolutionStatus, SolveResult, Termination

    others = [b for b in available_backends() if b not in ("highs", "cpsat")]
    if "highs" not in available_backends() or not others:
        pytest.skip("needs highs and a second backend (cbc or scip)")
    cls = type(get_backend(others[0]))
    real = cls.solve

    def says_infeasible(self, model, options, start=None):  # type: ignore[no-untyped-def]
        if model.n_cols == scenario_cols:
            return SolveResult(backend=self.name, termination=Termination.INFEASIBLE,
                               status=SolutionStatus.INFEASIBLE, x=None, objective=None, bound=None, gap=None,
                               solve_seconds=0.0, message="Infeasible")
        return real(self, model, options, start)

    monkeypatch.setattr(cls, "solve", says_infeasible)
    return others[0]


def test_a_false_infeasible_is_re_checked_and_the_plan_returned(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """A backend says "infeasible" (as CBC 2.10.3 did where funding nothing is a plan); the elastic model
    finds nothing to relax, so the scenario is re-solved with the default backend and its plan returned,
    the message saying which backend said what: never exit 3 on a feasible scenario."""
    from solver.mip.formulation import formulate

    scenario = load_scenario(TINY / "baseline.toml")
    liar = _lying_backend(monkeypatch, formulate(scenario).model.n_cols)
    out = solve(scenario, backend=liar)
    reference = solve(scenario, backend="highs")
    assert out.backend == "highs"
    assert out.objective == pytest.approx(reference.objective)
    assert f"{liar} reported the scenario infeasible" in out.message
    assert "re-solved with highs" in out.message

    result = CliRunner().invoke(main, ["solve", str(TINY / "baseline.toml"), "--backend", liar,
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def test_a_real_infeasible_still_raises(tmp_path: Path) -> None:
    """The re-check only runs when the elastic model contradicts the backend."""
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    _edit(folder, "envelope.csv", lambda f: _set(f, "year", "2025", "capital", "0.3"))
    with pytest.raises(InfeasibleError):
        solve(load_scenario(folder / "baseline.toml"))


def test_explain_writes_its_explanation_to_stdout(tmp_path: Path) -> None:
    """``envelope explain X > report.txt`` keeps the explanation (exit 3 still says: infeasible)."""
    folder = tmp_path / "inst"
    shutil.copytree(TINY, folder)
    _edit(folder, "systems.csv", lambda f: _set(f, "system_id", "B", "revenue_headroom", "0.01"))
    bad = CliRunner().invoke(main, ["explain", str(folder / "baseline.toml")])
    assert bad.exit_code == 3
    assert "short by £0.011m" in bad.stdout
    assert bad.stderr == ""
