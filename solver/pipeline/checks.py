"""Cheap infeasibility checks in the user's terms, run when a solver proves a scenario infeasible
(and by ``validate``): forced money against budgets, mandatory projects that cannot be funded.
They name a rule, a year and an amount; they never call a solver. Each statement belongs to its rule
family (``causes`` in ``solver/rules/<family>.py``); this runs them in order."""

from __future__ import annotations

from solver.data.scenario import Scenario
from solver.rules import CAUSES_ORDER, ordered
from solver.rules.base import cheap, forced_starts, fy

__all__ = ["forced_starts", "fy", "obvious_causes"]


def obvious_causes(scenario: Scenario) -> list[str]:
    """Statements of why no plan can exist, where cheap to find (may be empty)."""
    c = cheap(scenario)
    causes: list[str] = []
    for family in ordered(CAUSES_ORDER):
        assert family.causes is not None
        causes += family.causes(c)
    return causes
