"""The Python API, mirroring the CLI: ``load_scenario`` → ``solve`` → ``Outcome`` → tables.

    >>> from solver import load_scenario, solve, tables
    >>> outcome = solve(load_scenario("instances/tiny/baseline.toml"))
    >>> tables(outcome)["plan"].head()
"""

from __future__ import annotations

from solver.backends import get_backend
from solver.backends.result import SolutionStatus
from solver.data.scenario import Scenario
from solver.errors import AuditError, BackendError, InfeasibleError, NoSolutionError
from solver.mip.formulation import formulate
from solver.solve.audit import audit
from solver.solve.decisions import Decisions
from solver.solve.encoding import decode, encode
from solver.solve.explain import explain
from solver.solve.outcome import Outcome


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
    ``NoSolutionError`` when the solver stopped before finding any plan, ``BackendError``
    and ``AuditError`` (a returned plan that breaks a rule). ``start`` is an optional warm start
    (e.g. the plan of a neighbouring scenario).
    """
    scenario = scenario.with_solver(backend=backend, time_limit=time_limit, mip_gap=mip_gap, threads=threads,
                                    seed=seed)
    engine = get_backend(scenario.backend)
    form = formulate(scenario)
    x0 = encode(form, start) if start is not None else None
    result = engine.solve(form.model, scenario.solve_options(), start=x0)
    if result.status == SolutionStatus.INFEASIBLE:
        why = explain(scenario, backend=scenario.backend if scenario.backend != "cpsat" else "highs")
        raise InfeasibleError(f"scenario {scenario.name}: no plan satisfies every rule", why.lines())
    if result.status == SolutionStatus.ERROR:
        raise BackendError(f"backend {result.backend} failed: {result.message}")
    if not result.has_solution or result.x is None:
        raise NoSolutionError(f"{result.backend} stopped ({result.termination.value}) after "
                              f"{result.solve_seconds:.1f} s without finding any plan; "
                              "raise the time limit (--time-limit)")
    decisions = decode(form, result.x)
    report = audit(scenario, decisions, claimed_objective=result.objective)
    if not report.ok:
        raise AuditError(report.violations)
    return Outcome(
        scenario=scenario,
        backend=result.backend,
        solver_version=result.solver_version,
        status=result.status,
        termination=result.termination,
        objective=report.objective,
        bound=result.bound,
        gap=result.gap,
        build_seconds=form.build_seconds,
        solve_seconds=result.solve_seconds,
        model_size=form.model.size(),
        options=dict(result.options),
        decisions=decisions,
        audit=report,
        message=result.message,
    )
