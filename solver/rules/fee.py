r"""The access fee: a rate :math:`\phi` on every £m of national funding drawn, paid by the system,
the centre or split between them (``fee.payer``, ``fee.system_share``).

With national draw :math:`D_{o,t} = (1-m_p)(K_{o,t} + R_{o,t})` and the rate split
:math:`\phi = \phi_s + \phi_c`:

.. math::
    \phi_c D_{o,t}\ \text{in the national revenue row } (t), \qquad
    \phi_s D_{o,t}\ \text{in the system's headroom row } (s, t)

This family adds no rows of its own: ``define`` computes the fee's coefficients and hands them to
the budgets and local-funding families (``Build.terms``), so the fee has one home and the rows
are summed exactly as before. The audit checks the fee inside those rows (``accounts`` splits each
money line's fee into its system and centre parts).
"""

from __future__ import annotations

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.rules.base import Build, Family, Priced, PriceRelaxation


def shares(scenario: Scenario) -> tuple[float, float]:
    """(system share, centre share) of the access fee rate."""
    fee = scenario.policy.fee
    if fee.payer == "system":
        return fee.rate, 0.0
    if fee.payer == "centre":
        return 0.0, fee.rate
    return fee.rate * fee.system_share, fee.rate * (1 - fee.system_share)


def define(m: Build) -> None:
    """The fee's terms: the centre's part in the national revenue rows, the system's in headroom."""
    d = m.d
    fee_sys, fee_centre = shares(m.scenario)
    m.terms["revenue"].append(fee_centre * (d.nat_cap + d.nat_rev))
    m.terms["headroom"].append(fee_sys * (d.nat_cap + d.nat_rev))


def prices(scenario: Scenario) -> Priced:
    """Access-fee rate → 0."""
    fee = scenario.policy.fee
    if fee.rate <= 0:
        return [], {"fee": "rate 0"}
    return [PriceRelaxation("fee", f"access fee {fee.rate:.1%} ({fee.payer}) → 0",
                            (Override.of({"fee": {"rate": 0.0}}),))], {}


FAMILY = Family(name="fee", define=define, prices=prices)
