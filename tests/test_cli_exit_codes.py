"""Exit codes a script can rely on: a bad option exits 2 with one line naming it (nothing written),
an infeasible baseline exits 3 with the explanation every analysis gives, a baseline with no plan
exits 6, and an interrupted solve exits 130 after writing the best plan found so far."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import solver.api
from solver import load_scenario
from solver.analyses.borderline import thresholds
from solver.analyses.value import value_of_money
from solver.backends.result import Termination
from solver.cli import main
from solver.errors import InputError

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"


def run(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def assert_one_line_error(result: Result, code: int, *phrases: str) -> str:
    """Exit ``code``, nothing on stdout, one line on stderr containing every phrase, no traceback."""
    context = (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exit_code == code, context
    assert "Traceback" not in result.output, context
    assert "internal error" not in result.output, context
    assert result.stdout == "", context
    lines = result.stderr.splitlines()
    assert len(lines) == 1, context
    for phrase in phrases:
        assert phrase in lines[0], context
    return lines[0]


@pytest.fixture
def infeasible(tmp_path: Path) -> Path:
    """The tiny instance with 2025 capital cut to £0.3m: mandatory and committed projects need £1.2m."""
    folder = tmp_path / "tiny"
    shutil.copytree(TINY.parent, folder)
    env = folder / "envelope.csv"
    text = env.read_text()
    assert "\n2025,7," in text
    env.write_text(text.replace("\n2025,7,", "\n2025,0.3,"))
    return folder / "baseline.toml"


# --------------------------------------------------------------------------- 1. value --delta


@pytest.mark.parametrize("delta", ["0", "-1", "nan", "inf"])
def test_value_bad_delta_exits_2_naming_the_option(tmp_path: Path, delta: str) -> None:
    out = tmp_path / "out"
    result = run(["value", str(TINY), "--delta", delta, "-o", str(out)])
    assert_one_line_error(result, 2, "option --delta", "positive")
    assert not out.exists()


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_value_of_money_bad_delta_raises_input_error(delta: float) -> None:
    with pytest.raises(InputError, match="delta must be a positive number"):
        value_of_money(load_scenario(TINY), delta=delta)


# --------------------------------------------------------------------------- 2. thresholds --tolerance


@pytest.mark.parametrize("tolerance", ["0", "1.5", "1", "-0.1"])
def test_thresholds_bad_tolerance_exits_2_naming_the_option(tmp_path: Path, tolerance: str) -> None:
    out = tmp_path / "out"
    result = run(["thresholds", str(TINY), "--tolerance", tolerance, "-o", str(out)])
    assert_one_line_error(result, 2, "option --tolerance", "(0, 1)")
    assert not out.exists()


@pytest.mark.parametrize(("kwargs", "phrase"), [
    ({"tolerance": 0.0}, "tolerance must be"),
    ({"tolerance": 1.5}, "tolerance must be"),
    ({"k": -1}, "k must be >= 0"),
    ({"decrease": (0.5, 0.9)}, "brackets must be"),
    ({"increase": (1.0, 1.0)}, "brackets must be"),
    ({"increase": (1.0, float("inf"))}, "brackets must be"),
])
def test_thresholds_bad_parameters_raise_input_error(kwargs: dict, phrase: str) -> None:
    with pytest.raises(InputError, match=phrase):
        thresholds(load_scenario(TINY), **kwargs)


# --------------------------------------------------------------------------- 3. thresholds, no baseline plan


def test_thresholds_on_an_infeasible_scenario_exits_3_as_the_other_analyses(tmp_path: Path,
                                                                            infeasible: Path) -> None:
    out = tmp_path / "out"
    result = run(["thresholds", str(infeasible), "-o", str(out)])
    context = (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exit_code == 3, context
    assert "Traceback" not in result.output, context
    assert "internal error" not in result.output, context
    assert result.stderr.startswith("infeasible: scenario baseline: no plan satisfies every rule"), context
    assert "2025/26 capital" in result.stderr, context
    assert "short by £0.900m" in result.stderr, context
    assert not out.exists()
    # word for word what solve and another analysis say
    for command in ("solve", "value"):
        other = run([command, str(infeasible), "-o", str(tmp_path / command)])
        assert other.exit_code == 3, (command, other.output)
        assert other.stderr == result.stderr, command


def test_thresholds_baseline_without_any_plan_exits_6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from solver.analyses.engine import clear_base_cache
    from solver.backends.highs import HighsBackend
    from solver.backends.result import SolutionStatus, SolveResult

    def no_plan(self: HighsBackend, model: object, options: object, start: object = None) -> SolveResult:
        return SolveResult(backend="highs", termination=Termination.TIME_LIMIT, status=SolutionStatus.NO_SOLUTION,
                           x=None, objective=None, bound=None, gap=None, solve_seconds=0.0)

    clear_base_cache()
    monkeypatch.setattr(HighsBackend, "solve", no_plan)
    monkeypatch.setattr("solver.pipeline.core.greedy_start", lambda model, options: None)   # no simple plan either
    out = tmp_path / "out"
    result = run(["thresholds", str(TINY), "-o", str(out)])
    assert_one_line_error(result, 6, "without any plan", "--time-limit")
    assert not out.exists()


# --------------------------------------------------------------------------- 4. interrupted solve


def test_interrupted_solve_writes_the_plan_and_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = solver.api.solve

    def interrupted(*args: object, **kwargs: object) -> object:
        return dataclasses.replace(real(*args, **kwargs), termination=Termination.INTERRUPTED)

    monkeypatch.setattr(solver.api, "solve", interrupted)
    out = tmp_path / "out"
    result = run(["solve", str(TINY), "-o", str(out)])
    context = (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exit_code == 130, context
    assert "termination: interrupted" in result.stdout, context
    assert "interrupted" in result.stderr, context
    assert "Traceback" not in result.output, context
    assert (out / "plan.csv").is_file()
    assert json.loads((out / "summary.json").read_text())["termination"] == "interrupted"


def test_finished_solve_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(["solve", str(TINY), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["termination"] != "interrupted"


# --------------------------------------------------------------------------- 5. explain --time-limit


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_explain_validates_time_limit_as_solve_does(tmp_path: Path, limit: str) -> None:
    explain = run(["explain", str(TINY), "--time-limit", limit])
    line = assert_one_line_error(explain, 2, "option --time-limit")
    solve = run(["solve", str(TINY), "--time-limit", limit, "-o", str(tmp_path / "out")])
    assert solve.exit_code == 2
    assert solve.stderr.strip() == line
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 6. ladder --cut


@pytest.mark.parametrize("cuts", [["-5"], ["1", "-0.5"], ["nan"]])
def test_ladder_bad_cut_exits_2_naming_the_option(tmp_path: Path, cuts: list[str]) -> None:
    out = tmp_path / "out"
    args = [a for c in cuts for a in ("--cut", c)]
    result = run(["ladder", str(TINY), *args, "-o", str(out)])
    assert_one_line_error(result, 2, "option --cut", "non-negative")
    assert not out.exists()


# --------------------------------------------------------------------------- 7. robust --samples help


def test_robust_samples_has_help() -> None:
    result = run(["robust", "--help"])
    assert result.exit_code == 0
    assert "Number of samples (uncertain costs, benefits and weights) to re-solve." in " ".join(result.output.split())
