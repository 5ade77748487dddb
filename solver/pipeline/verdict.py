"""A solve's outcome as what a user of one scenario acts on: its plan, or the documented error.

``solve_scenario`` reports infeasible, no plan and interrupted as statuses; ``envelope solve``, the
Python ``solve`` and every analysis's base solve turn them into exceptions here, in one way:

- infeasible → ``InfeasibleError`` with the explanation in the user's terms (``explain``), unless
  the elastic model finds nothing to relax: then the backend's "infeasible" is re-checked with
  another backend (CBC 2.10.3 has proved "infeasible" where funding nothing is a valid plan), so a
  scenario the elastic model finds feasible never exits 3;
- interrupted with no plan → ``KeyboardInterrupt``;
- stopped with no plan → ``NoSolutionError``.
"""

from __future__ import annotations

import dataclasses

from solver.backends import DEFAULT_BACKEND, available_backends
from solver.backends.result import SolutionStatus, Termination
from solver.errors import BackendError, InfeasibleError, NoSolutionError
from solver.pipeline.core import solve_scenario
from solver.pipeline.decisions import Decisions
from solver.pipeline.explain import explain
from solver.pipeline.outcome import Outcome


def require_plan(outcome: Outcome, start: Decisions | None = None) -> Outcome:
    """``outcome`` if it has a plan, else the error above (``start``: the warm start of a re-check)."""
    scenario = outcome.scenario
    if outcome.status == SolutionStatus.INFEASIBLE:
        why = explain(scenario)
        if why.feasible:
            return _recheck(outcome, start)
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule", why.lines())
    if not outcome.has_plan:
        if outcome.interrupted:
            raise KeyboardInterrupt
        if outcome.termination == Termination.COMPLETED:      # a rule-based allocation, not a solver
            raise NoSolutionError(f"scenario {scenario.name}: {outcome.message}")
        raise NoSolutionError(f"scenario {scenario.name}: {outcome.backend} stopped ({outcome.termination.value}) "
                              f"after {outcome.solve_seconds:.1f} s without any plan; "
                              "raise the time limit (--time-limit)")
    return outcome


def _recheck(outcome: Outcome, start: Decisions | None) -> Outcome:
    """A backend's "infeasible" that the elastic model contradicts (nothing to relax): solve again with
    the default backend (or another installed one) and return its plan, saying who said what."""
    scenario, said = outcome.scenario, outcome.backend
    others = [b for b in dict.fromkeys([DEFAULT_BACKEND, *available_backends()]) if b != said]
    if not others:
        raise BackendError(f"backend {said} reported scenario {scenario.name} infeasible, but the elastic model "
                           "found nothing to relax, and no other backend is installed to re-check it; "
                           f"install another backend (pip install highspy) and solve with it")
    again = solve_scenario(scenario.with_solver(backend=others[0]), start=start)
    if again.status == SolutionStatus.INFEASIBLE:
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule",
                              [f"{said} and {others[0]} both report it infeasible, though the elastic "
                               "model found nothing to relax (a solver tolerance at the edge of feasibility)"])
    note = (f"{said} reported the scenario infeasible, but the elastic model found nothing to relax; "
            f"re-solved with {others[0]}: {again.message}")
    return dataclasses.replace(again, message=note)
