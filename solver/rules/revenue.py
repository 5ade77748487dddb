r"""Revenue consequences: a funded project's run cost :math:`r_p` in every year from go-live, and who
pays it (``revenue_consequences.payer``).

The run cost :math:`r_{o,t}` of option :math:`o` in year :math:`t` is one more term of a revenue row:

.. math::
    \text{centre:}\quad \mathbb{1}_{centre}\, r_{o,t}\ \text{in the national revenue row } (t)
    \qquad
    \text{system:}\quad \mathbb{1}_{system}\, r_{o,t}\ \text{in the system's headroom row } (s, t)

This family adds no rows of its own: ``define`` hands the terms to the budgets and local-funding
families (``Build.terms``). The audit checks them inside those rows (``accounts`` puts each year's
run cost in the payer's pot or headroom); after the envelope the run costs are the revenue tail.
"""

from __future__ import annotations

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.rules.base import Build, Family, Priced, PriceRelaxation


def define(m: Build) -> None:
    """Run costs in the payer's revenue row: national revenue (centre) or system headroom (system)."""
    d, payer = m.d, m.scenario.policy.revenue_consequences.payer
    m.terms["revenue"].append(d.run if payer == "centre" else 0.0 * d.run)
    m.terms["headroom"].append(d.run if payer == "system" else 0.0 * d.run)


def prices(scenario: Scenario) -> Priced:
    """Run costs ignored (they need no funding)."""
    payer = scenario.policy.revenue_consequences.payer
    if payer == "ignore":
        return [], {"run_costs": "run costs already ignored"}
    if not (scenario.instance.projects["run_cost"].astype(float) > 0).any():
        return [], {"run_costs": "no project has a run cost"}
    return [PriceRelaxation("run_costs", f"run costs paid by {payer} → ignored",
                            (Override.of({"revenue_consequences": {"payer": "ignore"}}),))], {}


FAMILY = Family(name="revenue", define=define, prices=prices)
