"""The Python API, mirroring the CLI: ``load_scenario`` → ``solve`` → ``Outcome`` → tables.

    >>> from solver import load_scenario, solve, tables
    >>> outcome = solve(load_scenario("instances/tiny/baseline.toml"))
    >>> tables(outcome)["plan"].head()

``solve`` is the one solve core (``solver.pipeline.core.solve_scenario``) plus what a user of a single
scenario wants: infeasibility explained, and the documented exceptions instead of statuses.
"""

from __future__ import annotations

import dataclasses

from solver.backends import DEFAULT_BACKEND, available_backends
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.errors import BackendError, InfeasibleError, NoSolutionError
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from solver.pipeline.explain import explain
from solver.pipeline.outcome import Outcome


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
    outcome = solve_scenario(scenario, start=start)
    if outcome.status == SolutionStatus.INFEASIBLE:
        why = explain(scenario)
        if why.feasible:
            return _recheck(scenario, outcome, start)
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule", why.lines())
    if not outcome.has_plan:
        if outcome.interrupted:
            raise KeyboardInterrupt
        raise NoSolutionError(f"{outcome.backend} stopped ({outcome.termination.value}) after "
                              f"{outcome.solve_seconds:.1f} s without finding any plan; "
                              "raise the time limit (--time-limit)")
    return outcome


def _recheck(scenario: Scenario, outcome: Outcome, start: Decisions | None) -> Outcome:
    """A backend's "infeasible" that the elastic model contradicts (nothing to relax): solve again with
    the default backend (or another installed one) and return its plan, saying who said what.

    CBC 2.10.3 has proved "infeasible" where funding nothing is a valid plan; a scenario the elastic
    model finds feasible never exits 3."""
    said = outcome.backend
    others = [b for b in dict.fromkeys([DEFAULT_BACKEND, *available_backends()]) if b != said]
    if not others:
        raise BackendError(f"backend {said} reported scenario {scenario.name} infeasible, but the elastic model "
                           "found nothing to relax, and no other backend is installed to re-check it; "
                           f"install another backend (pip install highspy) and solve with it")
    other = scenario.with_solver(backend=others[0])
    again = solve_scenario(other, start=start)
    if again.status == SolutionStatus.INFEASIBLE:
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule",
                              [f"{said} and {others[0]} both report it infeasible, though the elastic "
                               "model found nothing to relax (a solver tolerance at the edge of feasibility)"])
    note = (f"{said} reported the scenario infeasible, but the elastic model found nothing to relax; "
            f"re-solved with {others[0]}: {again.message}")
    return dataclasses.replace(again, message=note)
