"""Money and benefit of a plan, recomputed row by row from the instance tables.

This is deliberately written as plain loops over the tables (read once into dictionaries by
``view``), sharing nothing with the vectorised formulation, so that the audit (``audit.py``)
is an independent second computation of every figure the solver claims. Reports read these
figures too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from solver.data.scenario import Scenario
from solver.pipeline.decisions import Decisions

LINE_COLUMNS = [
    "project_id", "year", "national_capital", "local_capital", "national_revenue", "local_revenue",
    "run_cost", "fee", "fee_system", "fee_centre",
]


@dataclass
class Project:
    """One project's attributes, as plain Python values."""

    id: str
    system: str
    org: str | None
    platform: str
    benefit: float
    earliest: int
    latest: int
    duration: int
    run_cost: float
    match: float
    mandatory: bool
    committed: int | None
    withdrawal_cost: float
    group: str
    profile: dict[int, tuple[float, float]]   # year_offset -> (capital, revenue)
    need_weight: float
    category: int | None = None               # its organisation's category (None: system-wide)
    savings: float = 0.0                      # cash-releasing savings per year once live


@dataclass
class View:
    """A scenario's tables as dictionaries, built once and shared by many plan evaluations."""

    years: list[int]
    projects: dict[str, Project]
    envelope: dict[tuple[str, int], float]
    local_capital: dict[str, float]
    headroom: dict[str, float]
    weighted_population: dict[str, float]
    present_platforms: dict[str, set[str]]
    group_members: dict[str, list[str]]
    dependencies: list[tuple[str, str, int]]


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


def view(scenario: Scenario) -> View:
    """Read a scenario's tables into dictionaries (once per scenario)."""
    inst = scenario.instance
    psys = project_system(scenario)
    weights = need_weight_of(scenario)
    profile: dict[str, dict[int, tuple[float, float]]] = {}
    for p, k, c, r in inst.costs[["project_id", "year_offset", "capital", "revenue"]].itertuples(index=False):
        profile.setdefault(p, {})[int(k)] = (float(c), float(r))
    projects = {}
    cols = ["project_id", "org_id", "platform", "benefit", "earliest_start", "latest_start", "duration_years",
            "run_cost", "match_share", "mandatory", "committed_start", "withdrawal_cost", "group"]
    category = {o: int(c) for o, c in zip(inst.organisations["org_id"], inst.organisations["category"])}
    savings = dict(zip(inst.projects["project_id"], inst.projects["savings"].astype(float))) \
        if "savings" in inst.projects.columns else {}
    for p, o, plat, b, e, l_, d, run, m, mand, c, w, g in inst.projects[cols].itertuples(index=False):
        projects[p] = Project(
            id=p, system=psys[p], org=o if isinstance(o, str) else None,
            platform=plat if isinstance(plat, str) else "", benefit=float(b), earliest=int(e), latest=int(l_),
            duration=int(d), run_cost=float(run), match=float(m), mandatory=bool(mand),
            committed=int(c) if c == c else None, withdrawal_cost=float(w), group=g if isinstance(g, str) else "",
            profile=profile.get(p, {}), need_weight=weights[p],
            category=category.get(o) if isinstance(o, str) else None, savings=savings.get(p, 0.0),
        )
    env = {}
    for y, c, r in scenario.envelope[["year", "capital", "revenue"]].itertuples(index=False):
        env[("capital", int(y))] = float(c)
        env[("revenue", int(y))] = float(r)
    present: dict[str, set[str]] = {s: set() for s in inst.systems["system_id"]}
    for s, k in zip(inst.organisations["system_id"], inst.organisations["platform"]):
        if isinstance(k, str) and k:
            present[s].add(k)
    members: dict[str, list[str]] = {}
    for p in projects.values():
        if p.group:
            members.setdefault(p.group, []).append(p.id)
    systems = inst.systems
    return View(
        years=list(inst.years),
        projects=projects,
        envelope=env,
        local_capital=dict(zip(systems["system_id"], systems["local_capital"].astype(float))),
        headroom=dict(zip(systems["system_id"], systems["revenue_headroom"].astype(float))),
        weighted_population=dict(zip(systems["system_id"], systems["weighted_population"].astype(float))),
        present_platforms=present,
        group_members=members,
        dependencies=[(p, q, int(lag)) for p, q, lag in
                      inst.dependencies[["project_id", "requires", "lag_years"]].itertuples(index=False)],
    )


def live_years(scenario: Scenario, start: int, duration: int) -> float:
    """Discounted years a project started in ``start`` is live within the appraisal horizon."""
    obj = scenario.policy.objective
    t0 = scenario.instance.years[0]
    golive = start + duration
    total = 0.0
    for k in range(obj.horizon_years):
        if t0 + k >= golive:
            total += (1.0 + obj.discount_rate) ** -k
    return total


def option_value(scenario: Scenario, weight: float, benefit: float, start: int, duration: int) -> float:
    """Discounted, need-weighted benefit of a project started in ``start`` over the horizon (× the
    objective's value weight)."""
    return scenario.policy.objective.value_weight * weight * benefit * live_years(scenario, start, duration)


@dataclass
class Accounts:
    """Every money line of a plan and the totals the rules are checked against."""

    lines: list[tuple]             # (project, year, nat cap, loc cap, nat rev, loc rev, run, fee, fee sys, fee centre)
    pot_spend: dict[tuple[str, int], float]
    local_capital: dict[tuple[str, int], float]
    headroom_use: dict[tuple[str, int], float]
    allocation: dict[str, float]   # national delivery funding per system, all years
    value: dict[str, float]        # discounted need-weighted benefit per funded project
    revenue_tail: dict[int, float]  # run costs of funded projects after the envelope, per year

    def lines_frame(self) -> pd.DataFrame:
        """The money lines as a DataFrame."""
        return pd.DataFrame(self.lines, columns=LINE_COLUMNS)

    def national(self) -> dict[str, float]:
        """National delivery funding (capital and revenue, all years) of each funded project that draws any:
        the one definition of a project's national money (fees, run costs and withdrawal costs apart)."""
        out: dict[str, float] = {}
        for line in self.lines:
            out[line[0]] = out.get(line[0], 0.0) + line[2] + line[4]
        return out

    def local(self) -> dict[str, float]:
        """Local match (capital and revenue, all years) of each funded project."""
        out: dict[str, float] = {}
        for line in self.lines:
            out[line[0]] = out.get(line[0], 0.0) + line[3] + line[5]
        return out


def account(scenario: Scenario, dec: Decisions, v: View | None = None) -> Accounts:
    """Recompute every money line and total of a plan from the tables."""
    v = v or view(scenario)
    pol = scenario.policy
    years = v.years
    horizon_end = years[0] + pol.objective.horizon_years - 1
    rate = pol.fee.rate
    sys_share = {"system": 1.0, "centre": 0.0, "split": pol.fee.system_share}[pol.fee.payer]
    payer = pol.revenue_consequences.payer

    lines = []
    pot = {(q, y): 0.0 for q in ("capital", "revenue") for y in years}
    loc: dict[tuple[str, int], float] = {}
    head: dict[tuple[str, int], float] = {}
    alloc = {s: 0.0 for s in v.local_capital}
    value = {}
    tail = {y: 0.0 for y in range(years[-1] + 1, horizon_end + 1)}
    for p_id, start in dec.starts.items():
        p = v.projects[p_id]
        m = p.match if pol.match_funding.enabled else 0.0
        s = p.system
        golive = start + p.duration
        for y in years:
            c, r = p.profile.get(y - start, (0.0, 0.0))
            run_y = p.run_cost if y >= golive else 0.0
            if c == 0 and r == 0 and run_y == 0:
                continue
            nc, lc, nr, lr = (1 - m) * c, m * c, (1 - m) * r, m * r
            fee = rate * (nc + nr)
            fs, fc = fee * sys_share, fee * (1 - sys_share)
            lines.append((p_id, y, nc, lc, nr, lr, run_y, fee, fs, fc))
            pot[("capital", y)] += nc
            pot[("revenue", y)] += nr + fc + (run_y if payer == "centre" else 0.0)
            loc[(s, y)] = loc.get((s, y), 0.0) + lc
            head[(s, y)] = head.get((s, y), 0.0) + lr + fs + (run_y if payer == "system" else 0.0)
            alloc[s] += nc + nr
        for y in tail:
            if y >= golive:
                tail[y] += p.run_cost
        value[p_id] = option_value(scenario, p.need_weight, p.benefit, start, p.duration)
    for p_id in dec.withdrawn:
        pot[(pol.commitments.withdrawal_pot, years[0])] += v.projects[p_id].withdrawal_cost
    return Accounts(lines=lines, pot_spend=pot, local_capital=loc, headroom_use=head, allocation=alloc,
                    value=value, revenue_tail=tail)


def best_values(scenario: Scenario) -> dict[str, float]:
    """Best discounted need-weighted benefit each project could earn: at its earliest allowed start (its
    committed start when committed, unless the policy ignores commitments)."""
    weights = need_weight_of(scenario)
    pr = scenario.instance.projects
    keep = scenario.policy.commitments.mode != "ignore"
    out = {}
    for p, b, e, c, dur in pr[["project_id", "benefit", "earliest_start", "committed_start",
                               "duration_years"]].itertuples(index=False):
        start = int(c) if c == c and keep else int(e)
        out[p] = option_value(scenario, weights[p], float(b), start, int(dur))
    return out


def budget_rows(scenario: Scenario, dec: Decisions, acc: Accounts) -> list[dict[str, float | int | str]]:
    """Per year and pot: envelope, spent, capital-to-revenue transfer, carry-over in and out, and what is
    left unspent (the one definition of unspent money, for reports, metrics and diffs)."""
    frame = scenario.envelope[["year", "capital", "revenue"]]
    env = {(int(y), q): float(v) for y, c, r in frame.itertuples(index=False)
           for q, v in (("capital", c), ("revenue", r))}
    years = list(scenario.instance.years)
    rows: list[dict[str, float | int | str]] = []
    for i, y in enumerate(years):
        f = dec.flex.get(y, 0.0)
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = dec.carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = dec.carry.get((pot, y), 0.0)
            spent = acc.pot_spend[(pot, y)]
            envelope = env[(y, pot)]
            rows.append({
                "year": y, "pot": pot, "envelope": envelope, "spent": spent,
                "capital_to_revenue": sign * f, "carried_in": c_in, "carried_out": c_out,
                "unspent": envelope + c_in - spent - sign * f - c_out,
            })
    return rows
