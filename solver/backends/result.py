"""What a backend returns: termination and solution status kept apart, with the proof figures.

A solver may stop for one reason (time limit) and still hold a solution of some quality
(feasible, gap 0.4%). Conflating the two is how "optimal" gets reported after a time limit,
so ``Termination`` says why the solver stopped and ``SolutionStatus`` what we have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Termination(StrEnum):
    """Why the solver stopped."""

    OPTIMAL = "optimal"            # proved optimal within the requested gap
    INFEASIBLE = "infeasible"      # proved that no solution exists
    TIME_LIMIT = "time_limit"
    INTERRUPTED = "interrupted"    # user interrupt (Ctrl-C)
    UNBOUNDED = "unbounded"
    ERROR = "error"
    COMPLETED = "completed"        # a rule-based allocation ran to its end (no solver, nothing to prove)


class SolutionStatus(StrEnum):
    """What the returned point is worth."""

    OPTIMAL = "optimal"            # proved optimal within the requested gap
    FEASIBLE = "feasible"          # a feasible plan, optimality not proved (see gap)
    INFEASIBLE = "infeasible"      # proved: no plan exists
    NO_SOLUTION = "no_solution"    # stopped before any plan was found
    HEURISTIC = "heuristic"        # a rule-based allocation's plan: audited, no bound claimed
    ERROR = "error"


@dataclass
class SolveResult:
    """Outcome of one backend call on one ``MILP``; plain data, picklable."""

    backend: str
    termination: Termination
    status: SolutionStatus
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    solve_seconds: float
    solver_version: str = ""
    message: str = ""
    options: dict[str, object] = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        """True when ``x`` holds a feasible point."""
        return self.x is not None and self.status in (SolutionStatus.OPTIMAL, SolutionStatus.FEASIBLE)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound − objective| / max(|objective|, 1e-9), the convention used in every summary.

    Backends report gaps with different denominators; recomputing one way keeps results
    comparable across backends.
    """
    if objective is None or bound is None or not np.isfinite(bound):
        return None
    return abs(bound - objective) / max(abs(objective), 1e-9)


#: A plan whose bound is within this much (absolute, objective units) of its objective is optimal
#: whatever its relative gap: a proven optimum of 0 has an infinite relative gap to a bound of 1e-9
#: (CP-SAT's objective rounding, a solver's tolerances). The same as HiGHS's default ``mip_abs_gap``.
ABS_GAP = 1e-6


def within_gap(objective: float | None, bound: float | None, mip_gap: float) -> bool:
    """True when ``bound`` proves ``objective`` optimal within ``mip_gap`` (relative, the
    ``relative_gap`` convention, with ``REL_SLACK`` for float noise) or within ``ABS_GAP`` absolute."""
    gap = relative_gap(objective, bound)
    if gap is None or objective is None or bound is None:
        return False
    return gap <= mip_gap + REL_SLACK or abs(bound - objective) <= ABS_GAP


#: Relative slack of ``within_gap`` (a tenth of the audit's objective tolerance): a strict re-solve that keeps a
#: money row a hair inside its limit can end 1e-8 below a bound the first solve proved (CBC, 4e-6 on 250).
REL_SLACK = 1e-7


def normalise(backend: str, termination: Termination, status: SolutionStatus, *, x: np.ndarray | None,
              objective: float | None, bound: float | None, seconds: float, version: str, message: str,
              options: Mapping[str, object], notes: Sequence[str] = ()) -> SolveResult:
    """The one place a backend's raw outcome becomes a ``SolveResult``; every backend ends here.

    The backend maps its solver's status to ``termination`` and ``status``; then, the same for all:

    - a returned point is at least ``FEASIBLE`` (a solver error or "no solution" status with an
      incumbent, as SCIP's ABNORMAL), unless the solver called the model unbounded;
    - no bound without a point, except while still searching (``NO_SOLUTION``); none when infeasible;
    - ``gap`` is ``relative_gap(objective, bound)`` when there is a point, else None;
    - ``OPTIMAL`` only when ``within_gap`` proves it for ``options["mip_gap"]``, else ``FEASIBLE``
      with the note "gap G above mip_gap" (never call a plan optimal outside the requested gap).

    ``notes`` are appended to ``message`` in parentheses, "; "-separated.
    """
    has_point = x is not None
    if has_point and termination != Termination.UNBOUNDED and \
            status in (SolutionStatus.NO_SOLUTION, SolutionStatus.ERROR):
        status = SolutionStatus.FEASIBLE
    if status == SolutionStatus.INFEASIBLE or (not has_point and status != SolutionStatus.NO_SOLUTION):
        bound = None
    if bound is not None and not np.isfinite(bound):
        bound = None
    if not has_point:
        objective = None
    gap = relative_gap(objective, bound) if has_point else None
    notes = list(notes)
    mip_gap = float(options.get("mip_gap", 0.0))  # type: ignore[arg-type]
    if status == SolutionStatus.OPTIMAL and not within_gap(objective, bound, mip_gap):
        status = SolutionStatus.FEASIBLE
        notes.append(f"gap {gap if gap is None else f'{gap:.3g}'} above mip_gap")
    if notes:
        message += " (" + "; ".join(notes) + ")"
    return SolveResult(
        backend=backend,
        termination=termination,
        status=status,
        x=np.asarray(x, dtype=float) if has_point else None,
        objective=float(objective) if objective is not None else None,
        bound=float(bound) if bound is not None else None,
        gap=gap,
        solve_seconds=float(seconds),
        solver_version=version,
        message=message,
        options=dict(options),
    )


@dataclass
class LpDuals:
    """The optimal solution of a model's LP relaxation (integrality dropped), with its duals; plain data.

    Duals are as the LP solver reports them for the maximisation: the objective's rate of change per
    unit increase of a row's (column's) active bound; 0 where no bound is active.
    """

    backend: str
    objective: float             # with the model's offset
    row_activity: np.ndarray     # A @ x, one per row
    row_dual: np.ndarray         # one per row
    col_value: np.ndarray        # x, one per column
    col_dual: np.ndarray         # reduced costs, one per column
