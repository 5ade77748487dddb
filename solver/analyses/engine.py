"""What every sensitivity analysis shares: one re-solve reduced to a small picklable ``Point``,
envelope edits, and the band within which two MIP objectives can honestly be compared.

A MIP solved to a relative gap g only proves its optimum lies in [objective, bound]. The
difference between two such optima therefore lies in
``[obj_a − bound_b, bound_a − obj_b]``; a difference whose band contains 0 is not a ranking,
so ``compare`` re-solves both to proven optimality (gap 0, within a time limit) before saying
which is larger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from solver.api import solve
from solver.backends.result import Termination
from solver.data.scenario import Scenario
from solver.errors import InfeasibleError, NoSolutionError
from solver.solve.decisions import Decisions


@dataclass
class Point:
    """One re-solve, reduced to what the analyses compare (picklable, small)."""

    label: str
    feasible: bool
    objective: float = float("nan")
    bound: float = float("nan")
    gap: float = float("nan")
    status: str = "infeasible"
    starts: dict[str, int] = field(default_factory=dict)
    withdrawn: list[str] = field(default_factory=list)
    allocation: dict[str, float] = field(default_factory=dict)
    spend: dict[str, float] = field(default_factory=dict)   # "capital 2026" → £m
    solve_seconds: float = 0.0

    @property
    def funded(self) -> set[str]:
        """Funded project ids."""
        return set(self.starts)

    def decisions(self) -> Decisions:
        """The plan as decisions (e.g. a warm start for a neighbouring solve)."""
        return Decisions(starts=dict(self.starts), withdrawn=list(self.withdrawn))


def point(scenario: Scenario, label: str = "", *, start: Decisions | None = None, **solver: object) -> Point:
    """Solve ``scenario`` and keep the figures the analyses need; infeasible → ``feasible=False``."""
    try:
        out = solve(scenario, start=start, **solver)  # type: ignore[arg-type]
    except (InfeasibleError, NoSolutionError) as exc:
        return Point(label=label, feasible=False, status=type(exc).__name__)
    if out.termination == Termination.INTERRUPTED:
        raise KeyboardInterrupt    # Ctrl-C stops the whole analysis, not only this solve
    acc = out.audit.accounts
    assert acc is not None
    bound = out.bound if out.bound is not None else out.objective
    return Point(
        label=label, feasible=True, objective=out.objective, bound=bound,
        gap=out.gap if out.gap is not None else 0.0, status=out.status.value,
        starts=dict(out.decisions.starts), withdrawn=list(out.decisions.withdrawn),
        allocation=dict(acc.allocation),
        spend={f"{pot} {y}": v for (pot, y), v in acc.pot_spend.items()},
        solve_seconds=out.solve_seconds,
    )


def scaled_envelope(scenario: Scenario, factor: float) -> pd.DataFrame:
    """The scenario's envelope with every year and pot multiplied by ``factor``."""
    env = scenario.envelope.copy()
    env[["capital", "revenue"]] = (env[["capital", "revenue"]] * factor).round(6)
    return env


def shifted_envelope(scenario: Scenario, year: int, pot: str, amount: float) -> pd.DataFrame:
    """The envelope with ``amount`` £m added to (negative: taken from) one year's pot, floored at 0."""
    env = scenario.envelope.copy()
    i = env.index[env["year"] == year][0]
    env.at[i, pot] = max(0.0, round(float(env.at[i, pot]) + amount, 6))
    return env


@dataclass
class Difference:
    """``a − b`` with the interval the two solves' bounds allow."""

    value: float
    low: float
    high: float

    @property
    def certain_sign(self) -> int:
        """+1 or −1 when the band excludes 0, else 0 (not a ranking)."""
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0


def difference(a: Point, b: Point) -> Difference:
    """a.objective − b.objective with the band [a.obj − b.bound, a.bound − b.obj] (maximisation)."""
    return Difference(value=a.objective - b.objective, low=a.objective - b.bound, high=a.bound - b.objective)


@dataclass
class Analysis:
    """What every sensitivity command returns: tables, a JSON summary (parameters, seeds, solver
    figures) and a readable ranked summary for the terminal."""

    name: str
    tables: dict[str, pd.DataFrame]
    summary: dict[str, object]
    text: str

    def files(self) -> dict[str, object]:
        """Output files for ``solver.present.outputs.write_folder``: one CSV per table, summary.json, and
        the wall-clock figures apart in timing.json, so that equal runs write byte-identical files
        everywhere else (as ``envelope solve`` does)."""
        out: dict[str, object] = {f"{k}.csv": v for k, v in self.tables.items()}
        out["summary.json"] = {k: v for k, v in self.summary.items() if k != "timing"}
        if "timing" in self.summary:
            out["timing.json"] = self.summary["timing"]
        return out
