r"""National pots: capital and revenue envelopes per year, with carry-over and capital-to-revenue
flexibility.

.. math::
    \sum_o (1-m_p) K_{o,t} x_o + f_t + c^K_t - c^K_{t-1} &\le B^K_t \\
    \sum_o \big[(1-m_p) R_{o,t} + \mathbb{1}_{centre}\, r_{o,t} + \phi_c D_{o,t}\big] x_o
        - f_t + c^R_t - c^R_{t-1} &\le B^R_t

:math:`0 \le f_t \le \alpha B^K_t` moves capital to revenue (α = ``capital_to_revenue``).
Carry-over :math:`c_t \ge 0` (none from the last year) is limited to a fraction θ of what
is unspent: :math:`c_t \le \theta\,(B_t + c_{t-1} - \text{spend}_t)`. Withdrawn
commitments charge their withdrawal cost to the chosen pot in the first year. The run-cost and
fee terms of the revenue row come from the revenue and fee families (``Build.terms``).
"""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import POTS, Override
from solver.mip.arrays import INF
from solver.rules.base import (
    MONEY_TOL,
    Audit,
    Build,
    Cheap,
    Family,
    Priced,
    PriceRelaxation,
    fy,
    over,
    row_key,
    rows_from_mask,
)


def define(m: Build) -> None:
    """The ``budget`` rows, the ``carry_over`` limits and the ``flex`` and ``carry_*`` columns."""
    b, d, pol, x, withdraw = m.b, m.d, m.scenario.policy, m.x, m.withdraw
    nT = len(d.years)
    revenue = d.nat_rev
    for term in m.terms["revenue"]:
        revenue = revenue + term
    spend = {"capital": d.nat_cap, "revenue": revenue}
    cols: dict[str, np.ndarray] = {}
    alpha, theta = pol.budget.capital_to_revenue, pol.budget.carry_over
    total = float(d.budget.sum())
    if alpha > 0:
        cols["flex"] = b.add_columns("flex", [f"flex[{y}]" for y in d.years], 0.0, alpha * d.budget[0],
                                     integer=False)
    if theta > 0 and nT > 1:
        for pot in POTS:
            cols[f"carry_{pot}"] = b.add_columns(
                f"carry_{pot}", [f"carry[{pot},{y}]" for y in d.years[:-1]], 0.0, total, integer=False)
    for k, pot in enumerate(POTS):
        coef = spend[pot].T                                   # (t, o)
        r0, c0, v0 = rows_from_mask(coef != 0, coef, x)
        rows, cs, vals = [r0], [c0], [v0]
        if "flex" in cols:
            rows.append(np.arange(nT))
            cs.append(cols["flex"])
            vals.append(np.full(nT, 1.0 if pot == "capital" else -1.0))
        if f"carry_{pot}" in cols:
            c = cols[f"carry_{pot}"]
            rows += [np.arange(nT - 1), np.arange(1, nT)]
            cs += [c, c]
            vals += [np.ones(nT - 1), -np.ones(nT - 1)]
        if withdraw is not None and pol.commitments.withdrawal_pot == pot:
            wcols, wcost = withdraw
            rows.append(np.zeros(len(wcols), dtype=int))
            cs.append(wcols)
            vals.append(wcost)
        b.add_rows("budget", [f"{pot}[{y}]" for y in d.years], np.concatenate(rows), np.concatenate(cs),
                   np.concatenate(vals), -INF, d.budget[k])
        if f"carry_{pot}" in cols:
            # c_t - θ c_{t-1} + θ (spend_t ± f_t) <= θ B_t, for t < last year
            c = cols[f"carry_{pot}"]
            r2, c2, v2 = rows_from_mask(coef[:-1] != 0, theta * coef[:-1], x)
            rr, cc, vv = [r2, np.arange(nT - 1), np.arange(1, nT - 1)], [c2, c, c[:-1]], \
                [v2, np.ones(nT - 1), -theta * np.ones(nT - 2)]
            if "flex" in cols:
                rr.append(np.arange(nT - 1))
                cc.append(cols["flex"][:-1])
                vv.append(np.full(nT - 1, theta if pot == "capital" else -theta))
            if withdraw is not None and pol.commitments.withdrawal_pot == pot:
                wcols, wcost = withdraw
                rr.append(np.zeros(len(wcols), dtype=int))
                cc.append(wcols)
                vv.append(theta * wcost)
            b.add_rows("carry_over", [f"carry_limit[{pot},{y}]" for y in d.years[:-1]], np.concatenate(rr),
                       np.concatenate(cc), np.concatenate(vv), -INF, theta * d.budget[k, :-1])
    m.cols.update(cols)


def check(a: Audit) -> list[str]:
    """Each year's pots: transfers within α of the capital envelope, spend plus carry-out within the
    envelope plus carry-in, carry-out only where allowed and within θ of what is unspent."""
    pol, v, dec, acc = a.scenario.policy, a.v, a.dec, a.acc
    assert acc is not None
    years = v.years
    out: list[str] = []
    alpha, theta = pol.budget.capital_to_revenue, pol.budget.carry_over
    for i, y in enumerate(years):
        f = dec.flex.get(y, 0.0)
        if f < -MONEY_TOL or over(f, alpha * v.envelope[("capital", y)]):
            out.append(f"{y}: capital-to-revenue transfer £{f:.6f}m outside [0, {alpha:g} × capital envelope]")
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = dec.carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = dec.carry.get((pot, y), 0.0)
            if c_out and (theta == 0 or i == len(years) - 1):
                out.append(f"{y} {pot}: carries £{c_out:.6f}m forward where carry-over is not allowed")
            spend = acc.pot_spend[(pot, y)] + sign * f
            avail = v.envelope[(pot, y)] + c_in
            if over(spend + c_out, avail):
                out.append(f"{y} {pot}: spends £{spend:.6f}m and carries £{c_out:.6f}m, "
                           f"envelope plus carry-in is £{avail:.6f}m")
            if c_out < -MONEY_TOL or over(c_out, theta * max(avail - spend, 0.0)):
                out.append(f"{y} {pot}: carries £{c_out:.6f}m, more than {theta:g} of unspent "
                           f"£{avail - spend:.6f}m")
    return out


def causes(c: Cheap) -> list[str]:
    """Money mandatory and committed projects need in a fixed year against the national pots."""
    pol = c.scenario.policy
    need = {(pot, y): 0.0 for pot in POTS for y in c.years}
    for p, s in c.fixed.items():
        m = c.match(p)
        for k, (cap, rev) in c.profile[p].items():
            y = s + k
            if y not in c.env.index:
                continue
            need[("capital", y)] += (1 - m) * cap
            need[("revenue", y)] += (1 - m) * rev
    out = []
    flex = pol.budget.capital_to_revenue
    for y in c.years:
        cap_room = c.env.at[y, "capital"]
        rev_room = c.env.at[y, "revenue"] + flex * c.env.at[y, "capital"]
        for pot, room in (("capital", cap_room), ("revenue", rev_room)):
            if need[(pot, y)] > room + 1e-6 and pol.budget.carry_over == 0:
                out.append(f"{fy(y)} {pot}: mandatory and committed projects need £{need[(pot, y)]:,.3f}m, "
                           f"the envelope allows £{room:,.3f}m — short by £{need[(pot, y)] - room:,.3f}m")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed budget or carry-over row as a sentence."""
    parts = row_key(row).split(",")
    if row.startswith("carry_limit["):
        return f"{parts[0]} {fy(int(parts[1]))}: carry-over limit exceeded by £{amount:,.3f}m"
    pot = row.split("[")[0]
    return (f"{fy(int(parts[0]))} {pot}: the plan needs £{activity:,.3f}m, the envelope is £{hi:,.3f}m — "
            f"short by £{amount:,.3f}m")


def prices(scenario: Scenario) -> Priced:
    """Carry-over → 1 and capital-to-revenue → 1, each priced separately."""
    bud = scenario.policy.budget
    out: list[PriceRelaxation] = []
    inactive: dict[str, str] = {}
    if bud.carry_over >= 1:
        inactive["carry_over"] = "all unspent money already carries over"
    elif len(scenario.instance.years) <= 1:
        inactive["carry_over"] = "single-year envelope"
    else:
        out.append(PriceRelaxation("carry_over", f"carry-over {bud.carry_over:g} → 1 (no money lost at year end)",
                                   (Override.of({"budget": {"carry_over": 1.0}}),)))
    if bud.capital_to_revenue >= 1:
        inactive["capital_to_revenue"] = "capital already funds revenue freely"
    else:
        out.append(PriceRelaxation("capital_to_revenue", f"capital-to-revenue {bud.capital_to_revenue:g} → 1",
                                   (Override.of({"budget": {"capital_to_revenue": 1.0}}),)))
    return out, inactive


FAMILY = Family(name="budgets", define=define, check=check, causes=causes,
                rows={"budget": "money", "carry_over": "money"}, describe=describe, prices=prices)
