"""Every rule family in one place: one module per family, and the registry that runs them.

``FAMILIES`` is the build order of the MILP (it fixes column and row order, so it never changes
without a reason). The audit, the cheap infeasibility statements and the price of each rule read
the same families in the orders below, kept as they were so messages and outputs stay in place.
How to add a family or an objective kind: docs/rules.md.
"""

from __future__ import annotations

from solver.data.scenario import Scenario
from solver.rules import (
    alternatives,
    budgets,
    commitments,
    dependencies,
    fair_shares,
    fee,
    local_funding,
    mandatory,
    objective,
    revenue,
    selection,
    standardisation,
)
from solver.rules.base import Family, Priced, PriceRelaxation

FAMILIES: tuple[Family, ...] = (
    selection.FAMILY,
    commitments.FAMILY,
    revenue.FAMILY,          # run-cost terms of the revenue and headroom rows
    fee.FAMILY,              # fee terms of the revenue and headroom rows
    budgets.FAMILY,
    local_funding.FAMILY,
    mandatory.FAMILY,
    alternatives.FAMILY,
    dependencies.FAMILY,
    fair_shares.FAMILY,
    standardisation.FAMILY,
    objective.FAMILY,        # last: assembles the penalties the families contributed
)
BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}

AUDIT_ORDER = ("selection", "budgets", "local_funding", "mandatory", "commitments", "alternatives", "dependencies",
               "standardisation", "fair_shares")
CAUSES_ORDER = ("alternatives", "budgets", "mandatory", "local_funding", "standardisation", "dependencies")
PRICES_ORDER = ("standardisation", "fair_shares", "budgets", "local_funding", "revenue", "fee", "commitments",
                "mandatory", "dependencies", "alternatives")


def ordered(names: tuple[str, ...]) -> tuple[Family, ...]:
    """The families with these names, in this order."""
    return tuple(BY_NAME[n] for n in names)


def elastic_roles() -> dict[str, tuple[str, Family]]:
    """Relaxable row family → (weight class, rule family), for the elastic model."""
    return {row: (weight, f) for f in FAMILIES for row, weight in f.rows.items()}


def price_relaxations(scenario: Scenario) -> Priced:
    """For the ``rules`` command: each active family's relaxations (family, what is relaxed, variant
    operations), and the inactive ones with the reason."""
    out: list[PriceRelaxation] = []
    inactive: dict[str, str] = {}
    for f in ordered(PRICES_ORDER):
        assert f.prices is not None
        rel, off = f.prices(scenario)
        out += rel
        inactive.update(off)
    return out, inactive


__all__ = ["AUDIT_ORDER", "BY_NAME", "CAUSES_ORDER", "FAMILIES", "PRICES_ORDER", "Family", "PriceRelaxation",
           "elastic_roles", "ordered", "price_relaxations"]
