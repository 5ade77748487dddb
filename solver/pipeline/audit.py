"""The plan audit: every rule re-checked from the tables, and the objective recomputed.

Each rule family's ``check`` (``solver/rules/<family>.py``) uses ``accounts`` (plain loops over the
tables), never the solver's matrix, so a formulation bug or a solver returning a slightly infeasible
point shows up as a named violation. The objective is recomputed by the policy's objective kind
(``solver/rules/objective.py``) from the families' penalties.
Tolerance: money within ``MONEY_TOL`` £m (£1, plus a relative 1e-12 for float noise: below half a
£k at every accepted size, so a plan that breaks a money rule by £1k is always caught), objective
within ``OBJ_RTOL`` relative (1e-6 absolute for objectives below 1). The solve core compares the
recomputed objective with the rounded plan's value in the model; what a solver *claimed* is judged by
the status (never "optimal" unless the bound is within the gap of the audited objective).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.data.scenario import Scenario
from solver.pipeline.accounts import Accounts, View, account, view
from solver.pipeline.decisions import Decisions
from solver.rules import AUDIT_ORDER, FAMILIES, ordered, selection
from solver.rules import objective as objective_family
from solver.rules.base import MONEY_TOL, Audit, money_tolerance
from solver.rules.fair_shares import fair_share_amounts
from solver.rules.standardisation import funded_platforms

OBJ_RTOL = 1e-6

__all__ = ["MONEY_TOL", "OBJ_RTOL", "money_tolerance", "AuditReport", "audit", "fair_share_amounts", "funded_platforms"]


@dataclass
class AuditReport:
    """Outcome of an audit: violations (empty when the plan is valid) and recomputed figures."""

    violations: list[str]
    objective: float
    penalties: dict[str, float] = field(default_factory=dict)
    accounts: Accounts | None = None

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return not self.violations


def audit(scenario: Scenario, dec: Decisions, claimed_objective: float | None = None,
          v: View | None = None) -> AuditReport:
    """Check every rule for a plan and recompute its objective."""
    a = Audit(scenario, dec, v or view(scenario))
    out = selection.check(a)
    unknown = selection.unknown(a)
    if unknown is not None:          # the accounts need known projects
        return AuditReport(out + unknown, float("nan"))
    a.acc = account(scenario, dec, a.v)
    for family in ordered(AUDIT_ORDER[1:]):
        assert family.check is not None
        out += family.check(a)
    penalties: dict[str, float] = {}
    for family in FAMILIES:
        if family.penalty is not None:
            penalties.update(family.penalty(a))
    objective, terms = objective_family.recompute(a, penalties)
    if claimed_objective is not None and abs(objective - claimed_objective) > OBJ_RTOL * max(1.0, abs(objective)):
        out.append(f"objective: solver reports {claimed_objective:.6f}, recomputed from the tables {objective:.6f}")
    return AuditReport(out, objective, terms, a.acc)
