"""The outcome of a solve: solver figures, the audited decisions and the accounts. Plain data
(picklable); reports and output writers read this, never solver objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.backends.result import SolutionStatus, Termination
from solver.solve.audit import AuditReport
from solver.solve.decisions import Decisions


@dataclass
class Outcome:
    """Everything a report needs about one solved scenario."""

    scenario: object               # solver.data.scenario.Scenario (typed loosely to keep imports acyclic)
    backend: str
    solver_version: str
    status: SolutionStatus
    termination: Termination
    objective: float
    bound: float | None
    gap: float | None
    build_seconds: float
    solve_seconds: float
    model_size: dict[str, int]
    options: dict[str, object]
    decisions: Decisions
    audit: AuditReport
    message: str = ""
    extra: dict[str, object] = field(default_factory=dict)
