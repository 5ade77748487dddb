"""The one solve pipeline: formulate → (extend) → solve → decode → audit → ``Outcome``.

Every command and analysis solves through ``solve_scenario``. It never explains infeasibility
(that costs an extra MILP; ``solver.api.solve`` asks for it) and never raises for an outcome a
caller may expect — infeasible, stopped without a plan, interrupted: those are statuses and
terminations of the returned ``Outcome``. It raises only for what is a failure: a backend that is
missing, refuses the model or crashes (``BackendError``), and a plan that breaks a rule when
re-checked from the tables (``AuditError``, a bug).

Interrupt policy (one, here): a Ctrl-C during the solve returns the incumbent with termination
``interrupted``. The caller decides what that means: ``envelope solve`` writes the plan and exits
130; an analysis stops as a whole (``Outcome.interrupted`` → ``KeyboardInterrupt`` in the engine).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from solver.backends import get_backend
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.errors import AuditError, BackendError
from solver.mip.arrays import MILP
from solver.mip.formulation import Formulation, formulate
from solver.solve.audit import audit
from solver.solve.decisions import Decisions
from solver.solve.encoding import decode, encode
from solver.solve.outcome import Outcome

Extension = Callable[[Formulation], MILP]
"""Builds the model actually solved from a formulation: its own columns first (so the plan decodes
as usual), then any extra columns and rows, bounds or another objective (``MILP.extended``)."""


def solve_scenario(scenario: Scenario, *, form: Formulation | None = None, extend: Extension | None = None,
                   start: Decisions | None = None, label: str = "") -> Outcome:
    """Solve ``scenario`` with its own solver settings and return the audited ``Outcome``.

    ``form`` reuses a formulation already built for this scenario; ``extend`` modifies the model
    solved (the plan is still audited against the scenario, and its objective recomputed from the
    tables); ``start`` is a warm start (e.g. a neighbouring scenario's plan).
    """
    engine = get_backend(scenario.backend)
    form = form if form is not None else formulate(scenario)
    model = extend(form) if extend is not None else form.model
    refusal = engine.refusal(model)
    if refusal is not None:
        raise BackendError(f"backend {engine.name} cannot solve this model exactly: {refusal}")
    x0 = None
    if start is not None and engine.capabilities.mip_start:
        x0 = np.zeros(model.n_cols)
        x0[:form.model.n_cols] = encode(form, start)
    result = engine.solve(model, scenario.solve_options(), start=x0)
    common = dict(scenario=scenario, termination=result.termination, backend=result.backend,
                  solver_version=result.solver_version, build_seconds=form.build_seconds,
                  solve_seconds=result.solve_seconds, model_size=model.size(), options=dict(result.options),
                  message=result.message, label=label)
    if result.status == SolutionStatus.ERROR:
        raise BackendError(f"backend {result.backend} failed: {result.message}")
    if not result.has_solution or result.x is None:
        status = SolutionStatus.INFEASIBLE if result.status == SolutionStatus.INFEASIBLE else \
            SolutionStatus.NO_SOLUTION
        return Outcome(status=status, **common)
    n = form.model.n_cols
    x = np.array(result.x[:n], dtype=float)
    x[form.model.integrality] = np.round(x[form.model.integrality])
    decisions = decode(form, x)
    claimed = result.objective if extend is None else form.model.objective_value(x)
    report = audit(scenario, decisions, claimed_objective=claimed)
    if not report.ok:
        raise AuditError(report.violations)
    return Outcome(status=result.status, objective=report.objective, bound=result.bound, gap=result.gap,
                   model_objective=result.objective, decisions=decisions, audit=report, **common)
