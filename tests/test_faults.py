"""Faults and trust: interrupted solves keep their incumbent, output folders are replaced
atomically, corrupted plans are caught by the audit, missing backends say how to install them,
and exported text cannot run as a spreadsheet formula."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solver import load_scenario, solve
from solver.backends import get_backend
from solver.backends.base import SolveOptions
from solver.backends.result import SolutionStatus, Termination
from solver.errors import BackendError
from solver.mip.arrays import ModelBuilder
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions
from solver.present.outputs import write_folder

TINY = Path(__file__).resolve().parent.parent / "instances" / "tiny" / "baseline.toml"


def _hard_knapsack(n: int = 300, m: int = 5) -> object:
    rng = np.random.default_rng(1)
    w = rng.integers(20, 100, (m, n)).astype(float)
    v = w.sum(0) + rng.integers(0, 10, n)
    b = ModelBuilder()
    x = b.add_columns("x", [f"x{i}" for i in range(n)], 0, 1, integer=True, cost=v)
    r, c = np.nonzero(np.ones((m, n)))
    b.add_rows("budget", [f"r{i}" for i in range(m)], r, x[c], w[r, c], -np.inf, w.sum(1) / 2)
    return b.build()


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_during_highs_solve_returns_the_incumbent() -> None:
    model = _hard_knapsack()
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = get_backend("highs").solve(model, SolveOptions(time_limit=60, mip_gap=0.0))
    finally:
        timer.cancel()
    assert res.termination == Termination.INTERRUPTED
    assert res.status == SolutionStatus.FEASIBLE
    assert res.x is not None
    assert model.max_violation(res.x) < 1e-6
    assert res.solve_seconds < 30


def test_time_limit_never_claims_optimal() -> None:
    model = _hard_knapsack()
    res = get_backend("highs").solve(model, SolveOptions(time_limit=0.5, mip_gap=0.0))
    assert res.termination == Termination.TIME_LIMIT
    assert res.status in (SolutionStatus.FEASIBLE, SolutionStatus.NO_SOLUTION)
    if res.status == SolutionStatus.FEASIBLE:
        assert res.gap is not None
        assert res.gap > 0


def test_folder_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    write_folder(target, {"a.csv": pd.DataFrame({"x": [1.0]}), "s.json": {"ok": True}})
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def failing(self: pd.DataFrame, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    with pytest.raises(OSError, match="disk full"):
        write_folder(target, {"a.csv": pd.DataFrame({"x": [2.0]}), "b.csv": pd.DataFrame({"y": [3.0]})})
    after = {p.name: p.read_bytes() for p in target.iterdir()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture(scope="module")
def tiny_plan() -> tuple[object, Decisions, float]:
    scenario = load_scenario(TINY)
    out = solve(scenario, mip_gap=0.0)
    return scenario, out.decisions, out.objective


def _corrupt(dec: Decisions, **changes: object) -> Decisions:
    starts = dict(dec.starts)
    starts.update(changes.get("add", {}))  # type: ignore[arg-type]
    for p in changes.get("drop", []):  # type: ignore[union-attr]
        starts.pop(p, None)
    return Decisions(starts=starts, withdrawn=list(changes.get("withdrawn", dec.withdrawn)),  # type: ignore[arg-type]
                     flex=dec.flex, carry=dec.carry)


@pytest.mark.parametrize(("change", "phrase"), [
    ({"add": {"EPR-A1-META": 2025}}, "alternatives funded"),
    ({"drop": ["FAX-B2"]}, "mandatory but not funded"),
    ({"add": {"COM-A2": 2026}}, "committed to start"),
    ({"add": {"EPR-B1-EPIC": 2025}}, "no-divergence"),
    ({"add": {"OPT-A2": 2024}}, "outside"),
    ({"add": {"EPR-A1-EPIC": 2025, "EPR-A1-META": 2025, "OPT-B1": 2025, "CYB-B2": 2025}}, "envelope"),
    ({"drop": ["EPR-A1-EPIC", "EPR-A1-META"], "add": {"SCR-A": 2026}}, "requires"),
    ({"withdrawn": ["COM-A2"]}, "commitments must be kept"),
])
def test_audit_catches_a_corrupted_plan(tiny_plan: tuple, change: dict, phrase: str) -> None:
    scenario, dec, objective = tiny_plan
    assert audit(scenario, dec, claimed_objective=objective).ok
    report = audit(scenario, _corrupt(dec, **change))
    assert not report.ok
    assert any(phrase in v for v in report.violations), report.violations


def test_audit_catches_a_wrong_objective(tiny_plan: tuple) -> None:
    scenario, dec, objective = tiny_plan
    report = audit(scenario, dec, claimed_objective=objective * 1.001)
    assert any("objective" in v for v in report.violations)


def test_missing_backend_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from solver.backends.highs import HighsBackend

    monkeypatch.setattr(HighsBackend, "available", lambda self: False)
    with pytest.raises(BackendError, match="pip install highspy"):
        get_backend("highs")


def test_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "plain"], "v": [-1.0, 0.0, 1, 2, 3]})
    write_folder(tmp_path / "o", {"t.csv": frame})
    text = (tmp_path / "o" / "t.csv").read_text().splitlines()
    assert text[1].startswith("\"'=HYPERLINK")
    assert text[2].startswith("'+1")
    assert text[3].startswith("'-cmd")
    assert text[4].startswith("'@SUM")
    assert text[5].startswith("plain")
    assert text[1].endswith(",-1.000000")  # numbers are untouched
