"""The one result type: what a solve of a scenario gave, audited, in the user's terms.

Every solve — ``envelope solve``, each re-solve of an analysis, a batch run — returns an
``Outcome``. It is plain picklable data (about 0.4 MB for England, most of it the scenario's
tables), so it crosses process and cluster boundaries unchanged; presentation reads it, never a
solver object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.backends.result import SolutionStatus, Termination
from solver.data.scenario import Scenario
from solver.pipeline.accounts import Accounts
from solver.pipeline.audit import AuditReport
from solver.pipeline.decisions import Decisions

PLAN_STATUSES = (SolutionStatus.OPTIMAL, SolutionStatus.FEASIBLE, SolutionStatus.HEURISTIC)
"""Statuses of an outcome that holds an audited plan."""


@dataclass
class Outcome:
    """One solve: status and termination kept apart, proof figures, the audited plan.

    ``objective`` is the plan's value under the scenario, recomputed by the audit (NaN without a
    plan). ``bound`` and ``gap`` are the solver's proof for the model it solved; when that model
    was extended with another objective (e.g. a distance, in modelling-to-generate-alternatives)
    its own figure is ``model_objective``.
    """

    scenario: Scenario
    status: SolutionStatus
    termination: Termination
    backend: str
    solver_version: str = ""
    objective: float = float("nan")
    bound: float | None = None
    gap: float | None = None
    model_objective: float | None = None
    decisions: Decisions | None = None
    audit: AuditReport | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    model_size: dict[str, int] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=dict)
    message: str = ""
    label: str = ""
    tiers: list[dict[str, object]] = field(default_factory=list)
    """Earlier tiers of a lexicographic objective, in order: criterion, optimum (the value the tier's own solve
    reached), proved (whether that was proved optimal within the gap), floor (what the next tiers had to keep)
    and achieved (the plan's value, recomputed by the audit)."""

    @property
    def has_plan(self) -> bool:
        """True when a plan was found (optimal or feasible) and passed the audit."""
        return self.decisions is not None and self.status in PLAN_STATUSES

    @property
    def interrupted(self) -> bool:
        """True when the user stopped the solve (Ctrl-C)."""
        return self.termination == Termination.INTERRUPTED

    @property
    def accounts(self) -> Accounts:
        """Money lines and totals of the plan (the audit's recomputation)."""
        if self.audit is None or self.audit.accounts is None:
            raise ValueError(f"{self.label or self.scenario.name}: no plan ({self.status.value})")
        return self.audit.accounts

    @property
    def funded(self) -> set[str]:
        """Funded project ids (empty without a plan)."""
        return set(self.decisions.starts) if self.decisions is not None else set()
