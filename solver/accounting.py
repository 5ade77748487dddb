"""Money and benefit of a plan, recomputed row by row from the instance tables.

This is deliberately written as plain loops over the tables, sharing nothing with the
vectorised formulation, so that the audit (``audit.py``) is an independent second computation
of every figure the solver claims. Reports read these tables too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .plan import Decisions
from .scenario import Scenario

LINE_COLUMNS = [
    "project_id", "year", "national_capital", "local_capital", "national_revenue", "local_revenue",
    "run_cost", "fee", "fee_system", "fee_centre",
]


@dataclass
class Accounts:
    """Every money line of a plan and the totals the rules are checked against."""

    lines: pd.DataFrame            # one row per funded project and envelope year it costs money
    pot_spend: dict[tuple[str, int], float]
    local_capital: dict[tuple[str, int], float]
    headroom_use: dict[tuple[str, int], float]
    allocation: dict[str, float]   # national delivery funding per system, all years
    value: dict[str, float]        # discounted need-weighted benefit per funded project
    need_weight: dict[str, float]
    revenue_tail: dict[int, float]  # run costs of funded projects after the envelope, per year


def project_system(scenario: Scenario) -> dict[str, str]:
    """System of each project."""
    inst = scenario.instance
    org_sys = dict(zip(inst.organisations["org_id"], inst.organisations["system_id"]))
    return {
        p: (org_sys[o] if isinstance(o, str) else s)
        for p, o, s in zip(inst.projects["project_id"], inst.projects["org_id"], inst.projects["system_id"])
    }


def need_weight_of(scenario: Scenario) -> dict[str, float]:
    """Need weight per project: category weight × need_index ** power; a system-wide project takes
    the mean category weight of its system's organisations (category 3's when it has none)."""
    inst, pol = scenario.instance, scenario.policy
    cw = {int(k): v for k, v in pol.need.category_weights.items()}
    org_w = {o: cw[int(c)] for o, c in zip(inst.organisations["org_id"], inst.organisations["category"])}
    org_sys = dict(zip(inst.organisations["org_id"], inst.organisations["system_id"]))
    by_sys: dict[str, list[float]] = {}
    for o, w in org_w.items():
        by_sys.setdefault(org_sys[o], []).append(w)
    need = dict(zip(inst.systems["system_id"], inst.systems["need_index"]))
    psys = project_system(scenario)
    out = {}
    for p, o in zip(inst.projects["project_id"], inst.projects["org_id"]):
        s = psys[p]
        if isinstance(o, str):
            w = org_w[o]
        elif by_sys.get(s):
            w = sum(by_sys[s]) / len(by_sys[s])
        else:
            w = cw[3]
        out[p] = w * need[s] ** pol.need.need_index_power
    return out


def option_value(scenario: Scenario, weight: float, benefit: float, start: int, duration: int) -> float:
    """Discounted, need-weighted benefit of a project started in ``start`` over the horizon."""
    obj = scenario.policy.objective
    t0 = scenario.instance.years[0]
    golive = start + duration
    total = 0.0
    for k in range(obj.horizon_years):
        if t0 + k >= golive:
            total += (1.0 + obj.discount_rate) ** -k
    return obj.benefit_weight * weight * benefit * total


def account(scenario: Scenario, dec: Decisions) -> Accounts:
    """Recompute every money line and total of a plan from the tables."""
    inst, pol = scenario.instance, scenario.policy
    years = list(inst.years)
    last = years[-1]
    horizon_end = years[0] + pol.objective.horizon_years - 1
    pr = inst.projects.set_index("project_id")
    profile: dict[str, dict[int, tuple[float, float]]] = {}
    for p, k, c, r in inst.costs[["project_id", "year_offset", "capital", "revenue"]].itertuples(index=False):
        profile.setdefault(p, {})[int(k)] = (float(c), float(r))
    rate = pol.fee.rate
    sys_share = {"system": 1.0, "centre": 0.0, "split": pol.fee.system_share}[pol.fee.payer]
    payer = pol.revenue_consequences.payer
    psys = project_system(scenario)
    weights = need_weight_of(scenario)

    lines = []
    pot = {(q, y): 0.0 for q in ("capital", "revenue") for y in years}
    loc = {}
    head = {}
    alloc = {s: 0.0 for s in inst.systems["system_id"]}
    value = {}
    tail = {y: 0.0 for y in range(last + 1, horizon_end + 1)}
    for p, start in dec.starts.items():
        row = pr.loc[p]
        m = float(row["match_share"]) if pol.match_funding.enabled else 0.0
        s = psys[p]
        golive = start + int(row["duration_years"])
        run = float(row["run_cost"])
        for y in years:
            c, r = profile[p].get(y - start, (0.0, 0.0)) if y >= start else (0.0, 0.0)
            run_y = run if y >= golive else 0.0
            if c == 0 and r == 0 and run_y == 0:
                continue
            nc, lc, nr, lr = (1 - m) * c, m * c, (1 - m) * r, m * r
            fee = rate * (nc + nr)
            fs, fc = fee * sys_share, fee * (1 - sys_share)
            lines.append((p, y, nc, lc, nr, lr, run_y, fee, fs, fc))
            pot[("capital", y)] += nc
            pot[("revenue", y)] += nr + fc + (run_y if payer == "centre" else 0.0)
            loc[(s, y)] = loc.get((s, y), 0.0) + lc
            head[(s, y)] = head.get((s, y), 0.0) + lr + fs + (run_y if payer == "system" else 0.0)
            alloc[s] += nc + nr
        for y in tail:
            if y >= golive:
                tail[y] += run
        value[p] = option_value(scenario, weights[p], float(row["benefit"]), start, int(row["duration_years"]))
    for p in dec.withdrawn:
        pot[(pol.commitments.withdrawal_pot, years[0])] += float(pr.loc[p, "withdrawal_cost"])
    frame = pd.DataFrame(lines, columns=LINE_COLUMNS)
    return Accounts(lines=frame, pot_spend=pot, local_capital=loc, headroom_use=head, allocation=alloc,
                    value=value, need_weight=weights, revenue_tail=tail)
