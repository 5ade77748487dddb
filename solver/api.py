"""The Python API, mirroring the CLI: ``load_scenario`` → ``solve`` → ``Outcome`` → tables.

    >>> from solver import load_scenario, solve, tables
    >>> outcome = solve(load_scenario("instances/tiny/baseline.toml"))
    >>> tables(outcome)["plan"].head()

``solve`` is the one solve core (``solver.pipeline.core.solve_scenario``) plus what a user of a single
scenario wants: infeasibility explained, and the documented exceptions instead of statuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from solver.data.scenario import Scenario
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from solver.pipeline.outcome import Outcome
from solver.pipeline.verdict import require_plan

if TYPE_CHECKING:
    from solver.analyses.engine import Analysis


def solve(
    scenario: Scenario,
    *,
    backend: str | None = None,
    time_limit: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    seed: int | None = None,
    start: Decisions | None = None,
) -> Outcome:
    """Formulate, solve, decode and audit one scenario.

    Raises ``InfeasibleError`` (with causes in the user's terms where cheap to find),
    ``NoSolutionError`` when the solver stopped before finding any plan, ``KeyboardInterrupt``
    when interrupted before any plan, ``BackendError`` and ``AuditError`` (a returned plan that
    breaks a rule). An interrupted solve with a plan returns it (termination ``interrupted``).
    ``start`` is an optional warm start (e.g. the plan of a neighbouring scenario).
    """
    scenario = scenario.with_solver(backend=backend, time_limit=time_limit, mip_gap=mip_gap, threads=threads,
                                    seed=seed)
    return require_plan(solve_scenario(scenario, start=start), start)


def against_baseline(scenario: Scenario, outcome: Outcome, baseline: Scenario | None = None,
                     **solver: object) -> tuple[Outcome, Analysis] | None:
    """For a scenario that names its ``baseline`` (``baseline``: that scenario, if already loaded): the
    baseline's plan (solved with the same solver options) and what changes from it to ``outcome``
    (``solver.analyses.diff``); None without a baseline. The baseline's own baseline is not followed.
    Raises as ``solve`` does when the baseline has no plan."""
    if not scenario.baseline:
        return None
    from solver.analyses.diff import diff_plans
    from solver.data.scenario import load_scenario

    base = solve(baseline if baseline is not None else load_scenario(scenario.baseline), **solver)  # type: ignore[arg-type]
    return base, diff_plans(base, outcome)
