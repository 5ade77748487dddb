r"""Mandatory projects are funded, starting by their latest start: :math:`\sum_s x_{(p,s)} = 1`."""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.rules.base import Audit, Build, Cheap, Family, Priced, PriceRelaxation, fy, row_key


def define(m: Build) -> None:
    """The ``mandatory`` rows (when the rule is on)."""
    if not m.scenario.policy.mandatory.enabled:
        return
    b, d, x = m.b, m.d, m.x
    mand = np.flatnonzero(d.p_mandatory)
    if mand.size == 0:
        return
    row_of = np.full(len(d.project_ids), -1)
    row_of[mand] = np.arange(mand.size)
    sel = row_of[d.o_project] >= 0
    b.add_rows("mandatory", [f"mandatory[{d.project_ids[p]}]" for p in mand],
               row_of[d.o_project[sel]], x[sel], np.ones(sel.sum()), 1.0, 1.0)


def check(a: Audit) -> list[str]:
    """Every mandatory project is funded."""
    if not a.scenario.policy.mandatory.enabled:
        return []
    return [f"{p.id}: mandatory but not funded" for p in a.v.projects.values()
            if p.mandatory and p.id not in a.dec.starts]


def causes(c: Cheap) -> list[str]:
    """A mandatory project with a choice of start that fits the national pots in none of its starts."""
    pol = c.scenario.policy
    flex = pol.budget.capital_to_revenue
    env, pr = c.env, c.projects
    last = c.years[-1]
    out = []
    for p, s in c.forced.items():
        if s is not None:
            continue
        m = c.match(p)
        worst: list[tuple[float, str]] = []
        for start in range(int(pr.at[p, "earliest_start"]), int(pr.at[p, "latest_start"]) + 1):
            if start + max(c.profile[p]) > last:
                continue
            over = []
            for k, (cap, rev) in c.profile[p].items():
                y = start + k
                rooms = {"capital": env.at[y, "capital"], "revenue": env.at[y, "revenue"] + flex * env.at[y, "capital"]}
                for pot, amount in (("capital", (1 - m) * cap), ("revenue", (1 - m) * rev)):
                    if amount > rooms[pot] + 1e-6:
                        over.append((amount - rooms[pot], f"{fy(y)} {pot} needs £{amount:,.3f}m of "
                                                          f"£{rooms[pot]:,.3f}m"))
            if not over:
                break
            worst.append(max(over))
        else:
            if worst and pol.budget.carry_over == 0:
                short, text = min(worst)
                out.append(f"mandatory project {p} does not fit in any allowed start year on its own: at best "
                           f"{text} — short by £{short:,.3f}m")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed mandatory row as a sentence."""
    return f"mandatory: {row_key(row)} cannot be funded within the other rules"


def prices(scenario: Scenario) -> Priced:
    """Mandatory projects become optional."""
    if not scenario.policy.mandatory.enabled:
        return [], {"mandatory": "off"}
    if not scenario.instance.projects["mandatory"].astype(bool).any():
        return [], {"mandatory": "no mandatory project"}
    return [PriceRelaxation("mandatory", "mandatory projects become optional",
                            (Override.of({"mandatory": {"enabled": False}}),))], {}


FAMILY = Family(name="mandatory", define=define, check=check, causes=causes, rows={"mandatory": "required"},
                describe=describe, prices=prices)
