"""Every solve of robust, alternatives and thresholds goes through the engine, so that

- Ctrl-C during the FIRST solve (HiGHS keeps its incumbent and returns, termination
  ``interrupted``) ends the analysis with exit 130 and writes nothing, instead of carrying on with
  the incumbent as the nominal plan;
- an infeasible probe is a status, never explained: no elastic (explain) model is solved for it.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner

import solver.pipeline.verdict
from solver import load_scenario
from solver.analyses.borderline import thresholds
from solver.analyses.engine import clear_base_cache
from solver.backends.highs import HighsBackend
from solver.backends.result import Termination
from solver.cli import main

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"


@pytest.mark.parametrize(("command", "args"), [
    ("robust", ["--samples", "4"]),
    ("alternatives", ["--k", "2", "--samples", "2"]),
])
def test_ctrl_c_during_the_first_solve_stops_the_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          command: str, args: list[str]) -> None:
    real = HighsBackend.solve
    calls = {"n": 0}

    def interrupted_first(self, model, options, start=None):
        result = real(self, model, options, start)
        calls["n"] += 1
        if calls["n"] == 1:
            assert result.has_solution                 # HiGHS returns its incumbent on Ctrl-C
            return dataclasses.replace(result, termination=Termination.INTERRUPTED)
        return result

    clear_base_cache()                                 # the base solve must really run (not be reused)
    monkeypatch.setattr(HighsBackend, "solve", interrupted_first)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [command, str(TINY), "-o", str(out), "--gap", "0", *args])
    assert result.exit_code == 130, (result.output, result.exception)
    assert "interrupted" in result.stderr
    assert not out.exists()
    assert calls["n"] == 1                             # nothing solved after the interrupted solve
    clear_base_cache()


def test_infeasible_thresholds_probes_run_no_elastic_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """On tiny two unfunded projects are blocked (no plan funds them: a platform their system may
    not adopt) and forcing a funded project's cost up makes probes infeasible; none is explained."""
    calls = {"explain": 0}
    module = importlib.import_module("solver.pipeline.explain")
    real = module.explain

    def counting(*a: object, **kw: object) -> object:
        calls["explain"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(module, "explain", counting)
    monkeypatch.setattr(solver.pipeline.verdict, "explain", counting)
    tiny = load_scenario(TINY)
    a = thresholds(tiny, k=3, tolerance=0.05)
    probes = a.tables["probes"]
    infeasible = probes[probes["status"] == "infeasible"]
    assert len(infeasible) >= 2
    assert set(a.tables["margin"].loc[a.tables["margin"]["screen"] == "blocked", "project_id"]) >= {
        "EPR-A1-META", "EPR-B1-EPIC"}
    assert calls["explain"] == 0
