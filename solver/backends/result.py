"""What a backend returns: termination and solution status kept apart, with the proof figures.

A solver may stop for one reason (time limit) and still hold a solution of some quality
(feasible, gap 0.4%). Conflating the two is how "optimal" gets reported after a time limit,
so ``Termination`` says why the solver stopped and ``SolutionStatus`` what we have.
"""

from __future__ import annotations

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


class SolutionStatus(StrEnum):
    """What the returned point is worth."""

    OPTIMAL = "optimal"            # proved optimal within the requested gap
    FEASIBLE = "feasible"          # a feasible plan, optimality not proved (see gap)
    INFEASIBLE = "infeasible"      # proved: no plan exists
    NO_SOLUTION = "no_solution"    # stopped before any plan was found
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
