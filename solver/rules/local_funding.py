r"""Local funding: each system's match capital and its revenue headroom, per year.

.. math::
    \sum_{o \in s} m_p K_{o,t}\, x_o &\le L_s \\
    \sum_{o \in s} \big[m_p R_{o,t} + \mathbb{1}_{system}\, r_{o,t} + \phi_s D_{o,t}\big] x_o &\le H_s

:math:`L_s` is ``local_capital``, :math:`H_s` ``revenue_headroom`` (both £m per year);
:math:`\phi_s` the system's part of the fee rate. The run-cost and fee terms of the headroom row
come from the revenue and fee families (``Build.terms``); :math:`m_p` is 0 when match funding is off.
"""

from __future__ import annotations

import numpy as np

from solver.data.readers import UNLIMITED_LOCAL_GBPM
from solver.data.scenario import Scenario
from solver.data.variants import SetSystems
from solver.mip.arrays import INF
from solver.rules.base import Audit, Build, Cheap, Family, Priced, PriceRelaxation, fy, over, row_key

UNLIMITED_GBPM = UNLIMITED_LOCAL_GBPM
"""A local limit that never binds (£1tn a year), used to remove local capital and headroom limits (the value an
absent ``local_capital`` or ``revenue_headroom`` column takes)."""


def define(m: Build) -> None:
    """The ``local_capital`` and ``headroom`` rows (only where a system has a term in a year)."""
    b, d, x = m.b, m.d, m.x
    headroom = d.loc_rev
    for term in m.terms["headroom"]:
        headroom = headroom + term
    nT = len(d.years)
    o_sys = d.p_system[d.o_project]
    blocks = [("local_capital", d.loc_cap, d.local_capital), ("headroom", headroom, d.headroom)]
    for family, coef, cap in blocks:
        o, t = np.nonzero(coef)
        if o.size == 0:
            continue
        key = o_sys[o] * nT + t
        used, row = np.unique(key, return_inverse=True)
        s_of, t_of = used // nT, used % nT
        b.add_rows(family, [f"{family}[{d.system_ids[s]},{d.years[k]}]" for s, k in zip(s_of, t_of)],
                   row, x[o], coef[o, t], -INF, cap[s_of])


def check(a: Audit) -> list[str]:
    """Each system's local match capital and local revenue within its limits, every year."""
    v, acc = a.v, a.acc
    assert acc is not None
    out: list[str] = []
    for (s, y), used in sorted(acc.local_capital.items()):
        if over(used, v.local_capital[s]):
            out.append(f"{s} {y}: local match capital £{used:.6f}m exceeds local_capital £{v.local_capital[s]:.3f}m")
    for (s, y), used in sorted(acc.headroom_use.items()):
        if over(used, v.headroom[s]):
            out.append(f"{s} {y}: local revenue (match, run costs, fees) £{used:.6f}m exceeds revenue_headroom "
                       f"£{v.headroom[s]:.3f}m")
    return out


def causes(c: Cheap) -> list[str]:
    """Local match that mandatory and committed projects need in a fixed year against local_capital."""
    local_cap: dict[tuple[str, int], float] = {}
    for p, s in c.fixed.items():
        m = c.match(p)
        for k, (cap, _) in c.profile[p].items():
            y = s + k
            if y not in c.env.index:
                continue
            local_cap[(c.psys[p], y)] = local_cap.get((c.psys[p], y), 0.0) + m * cap
    systems = c.scenario.instance.systems.set_index("system_id")
    out = []
    for (s, y), used in sorted(local_cap.items()):
        have = systems.at[s, "local_capital"]
        if used > have + 1e-6:
            out.append(f"{s} {fy(y)}: local match of £{used:,.3f}m needed for mandatory and committed projects, "
                       f"local_capital is £{have:,.3f}m — short by £{used - have:,.3f}m")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed local capital or headroom row as a sentence."""
    parts = row_key(row).split(",")
    if row.startswith("headroom["):
        return (f"{parts[0]} {fy(int(parts[1]))}: local revenue (match, run costs, fees) of £{activity:,.3f}m "
                f"needed, revenue_headroom is £{hi:,.3f}m — short by £{amount:,.3f}m")
    return (f"{parts[0]} {fy(int(parts[1]))}: local match of £{activity:,.3f}m needed, local_capital is "
            f"£{hi:,.3f}m — short by £{amount:,.3f}m")


def prices(scenario: Scenario) -> Priced:
    """Local match capital unlimited (the centre still pays only its (1 − match) share: switching match
    funding off would change who pays, not relax a rule); revenue headroom unlimited."""
    out: list[PriceRelaxation] = []
    inactive: dict[str, str] = {}
    if not scenario.policy.match_funding.enabled:
        inactive["match_funding"] = "match funding off"
    elif not (scenario.instance.projects["match_share"].astype(float) > 0).any():
        inactive["match_funding"] = "no project needs match funding"
    else:
        out.append(PriceRelaxation("match_funding", "local match capital unlimited (centre still pays only its share)",
                                   (SetSystems("local_capital", UNLIMITED_GBPM),)))
    out.append(PriceRelaxation("revenue_headroom", "local revenue headroom unlimited",
                               (SetSystems("revenue_headroom", UNLIMITED_GBPM),)))
    return out, inactive


FAMILY = Family(name="local_funding", define=define, check=check, causes=causes,
                rows={"local_capital": "money", "headroom": "money"}, describe=describe, prices=prices)
