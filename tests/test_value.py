"""Value of money on the tiny instance: every gain and loss equals the difference of brute-force
optima with the pot shifted; bands, verdicts and ranks never rank on noise; a loose solve is
re-solved tighter; the LP dual is the LP relaxation's derivative; same seed → same outputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from solver.analyses.engine import Analysis, Task, certain_ranks, compare, proven, refine
from solver.analyses.value import lp_relaxation, lp_values, value_of_money
from solver.backends.result import SolutionStatus, Termination
from solver.data.variants import ShiftEnvelope
from solver.mip.formulation import formulate
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from tests.test_ladder import env_key, tiny, tiny_brute


@pytest.fixture(scope="module")
def money() -> Analysis:
    return value_of_money(tiny(), delta=1.0, seed=5)


@pytest.mark.slow
def test_gains_and_losses_match_brute_force(money: Analysis) -> None:
    sc = tiny()
    base, _ = tiny_brute(env_key(sc.envelope))
    table = money.tables["money"]
    assert len(table) == 6
    for r in table.itertuples():
        up, _ = tiny_brute(env_key(ShiftEnvelope(r.year, r.pot, 1.0).apply(sc).envelope))
        down, _ = tiny_brute(env_key(ShiftEnvelope(r.year, r.pot, -1.0).apply(sc).envelope))
        assert r.gain == pytest.approx(up - base, abs=1e-7), (r.year, r.pot)
        assert r.gain_low - 1e-7 <= up - base <= r.gain_high + 1e-7
        if math.isinf(down):           # the cut leaves no feasible plan
            assert math.isinf(r.loss)
            assert r.loss > 0
        else:
            assert r.loss == pytest.approx(base - down, abs=1e-7), (r.year, r.pot)
        assert r.gain_verdict == ("positive" if up - base > 1e-6 else "zero")
        assert r.plus == 1.0
        env = float(sc.envelope.set_index("year").at[r.year, r.pot])
        assert r.minus == pytest.approx(-min(1.0, env))      # a cut cannot take a pot below 0
    # 2026 capital is the pot that binds hardest (by brute force above): it must rank first, alone
    top = table.iloc[0]
    assert (top["year"], top["pot"], top["gain_rank"]) == (2026, "capital", 1)
    assert "Where the next £1m does most good" in money.text


def test_ranks_only_count_proven_differences(money: Analysis) -> None:
    table = money.tables["money"]
    for r in table.itertuples():
        better = sum(1 for s in table.itertuples() if s.gain - r.gain > 1e-6)
        assert r.gain_rank == better + 1
    zero = table[table["gain_verdict"] == "zero"]
    assert zero["gain_rank"].nunique() == 1
    assert (zero["gain_tied_with"] != "").all()


def _pt(obj: float, bound: float, status: str = "feasible", label: str = "p") -> Outcome:
    """An outcome with a plan and the given proof figures."""
    return Outcome(scenario=tiny(), status=SolutionStatus(status), termination=Termination.TIME_LIMIT,
                   backend="highs", objective=obj, bound=bound, gap=(bound - obj) / obj, decisions=Decisions({}),
                   label=label)


def _none(status: SolutionStatus) -> Outcome:
    """An outcome without a plan."""
    return Outcome(scenario=tiny(), status=status, termination=Termination.INFEASIBLE, backend="highs")


def test_compare_bands_and_verdicts() -> None:
    b = compare(_pt(100.0, 101.0), _pt(99.0, 100.0))
    assert (b.value, b.low, b.high, b.verdict) == (1.0, 0.0, 2.0, "undetermined")
    assert compare(_pt(103.0, 103.5), _pt(100.0, 101.0)).verdict == "positive"
    assert compare(_pt(100.0, 100.5), _pt(103.0, 104.0)).verdict == "negative"
    assert compare(_pt(100.0, 100.0), _pt(100.0, 100.0)).verdict == "zero"
    nn = compare(_pt(99.5, 101.0), _pt(100.0, 100.2), nonnegative=True)   # a relaxation: true gain >= 0
    assert nn.low == 0.0
    assert nn.value == 0.0
    assert nn.high == pytest.approx(1.0)
    assert compare(_none(SolutionStatus.INFEASIBLE), _pt(1.0, 1.0)).verdict == "negative"
    assert compare(_none(SolutionStatus.NO_SOLUTION), _pt(1.0, 1.0)).verdict == "undetermined"
    assert compare(_none(SolutionStatus.ERROR), _pt(1.0, 1.0)).verdict == "undetermined"
    ranks = certain_ranks(["a", "b", "c"], {"a": _pt(100, 101), "b": _pt(100.5, 100.6), "c": _pt(90, 90)})
    assert ranks["a"] == (1, ["b"])
    assert ranks["b"] == (1, ["a"])
    assert ranks["c"] == (3, [])


def test_an_undetermined_difference_is_resolved_tighter() -> None:
    sc = tiny()
    up = (ShiftEnvelope(2025, "revenue", 1.0),)     # worth exactly 0
    best, _ = tiny_brute(env_key(sc.envelope))
    # pretend both solves stopped at a loose gap: the band [−10, +10] says nothing
    points = {"base": _pt(best, best + 10), "up": _pt(best, best + 10)}
    tasks = {"base": Task(sc, (), "base"), "up": Task(sc, up, "up")}
    log: list[dict[str, object]] = []
    refine(points, tasks, [("up", "base", False)], gaps=[0.0], time_limit=10, log=log)
    assert {r["label"] for r in log} == {"base", "up"}
    assert proven(points["base"])
    assert proven(points["up"])
    assert compare(points["up"], points["base"]).verdict == "zero"
    # nothing left to refine: no more solves
    refine(points, tasks, [("up", "base", False)], gaps=[0.0], time_limit=10, log=log)
    assert len(log) == 2


def test_refinement_stops_when_a_probe_cannot_reach_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that stops on its time limit short of the gap skips the rest of that stage and
    every tighter one (logged as skipped); a probe that reaches it lets the stage run."""
    import solver.analyses.engine as engine

    sc = tiny()
    keys = ["a", "b", "c"]
    tasks = {k: Task(sc, (), k) for k in keys}
    comparisons = [("a", "b", False), ("b", "c", False)]

    def run(reach: bool) -> tuple[list[str], list[dict[str, object]]]:
        calls: list[str] = []

        def fake(task: Task) -> Outcome:
            calls.append(task.label)
            gap = task.resolved().solver.mip_gap if reach else 0.01
            return _pt(100.0, 100.0 * (1 + gap), "optimal" if reach else "feasible", task.label)

        monkeypatch.setattr(engine, "run_task", fake)
        points = {k: _pt(100.0, 101.0) for k in keys}
        log: list[dict[str, object]] = []
        refine(points, tasks, comparisons, gaps=[1e-4, 0.0], time_limit=5, log=log)
        return calls, log

    calls, log = run(reach=False)
    assert calls == ["a"]                                     # the probe only
    assert [(r["label"], r["mip_gap"], r["status"]) for r in log] == [
        ("a", 1e-4, "feasible"), ("b", 1e-4, "skipped"), ("c", 1e-4, "skipped"),
        ("a", 0.0, "skipped"), ("b", 0.0, "skipped"), ("c", 0.0, "skipped")]
    calls, log = run(reach=True)
    assert calls == ["a", "b", "c", "a", "b", "c"]            # both stages in full (0 still undetermined at 1e-4)
    assert all(r["status"] == "optimal" for r in log)


def test_lp_dual_is_the_lp_relaxation_derivative() -> None:
    # carry-over and envelope-based fair-share floors make the envelope appear outside the budget rows
    fair = {"mode": "floor", "floor": 0.9, "enforcement": "penalty", "penalty": 2.0}
    sc = tiny().with_overrides({"budget": {"carry_over": 0.5}, "fair_share": fair})
    duals = lp_values(sc)
    base = lp_relaxation(formulate(sc).model).objective
    eps = 1e-4
    for r in duals.itertuples():
        up = lp_relaxation(formulate(ShiftEnvelope(r.year, r.pot, eps).apply(sc)).model).objective
        down = lp_relaxation(formulate(ShiftEnvelope(r.year, r.pot, -eps).apply(sc)).model).objective
        right, left = (up - base) / eps, (base - down) / eps
        lo, hi = min(left, right), max(left, right)         # one-sided at a breakpoint
        assert lo - 1e-4 <= r.lp_dual <= hi + 1e-4, (r.year, r.pot, r.lp_dual, left, right)
    assert not np.allclose(duals["lp_dual"], duals["lp_row_dual"])   # the chain rule mattered here


def test_same_seed_gives_identical_outputs(money: Analysis) -> None:
    again = value_of_money(tiny(), delta=1.0, seed=5)
    pd.testing.assert_frame_equal(money.tables["money"], again.tables["money"])
    strip = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert strip(money.summary) == strip(again.summary)
    assert money.text == again.text
    assert money.summary["solver"]["seed"] == 5
