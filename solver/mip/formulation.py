r"""The Envelope MIP, built as arrays: the scenario's data (``prepare``), then each rule family's
rows and columns (``solver/rules/<family>.py``, run in order by ``formulate``).

Notation (all money in £m):

- :math:`T` envelope years, :math:`t_0` the first; :math:`P` projects; :math:`S` systems.
- An *option* :math:`o = (p, s)` is project :math:`p` started in year :math:`s`, allowed when
  :math:`s \in [e_p, l_p]` and the whole cost profile (length :math:`n_p`) fits:
  :math:`s + n_p - 1 \le \max T`. A committed project has only its committed start.
- :math:`x_o \in \{0,1\}`: option chosen. Cost of an option in year :math:`t`:
  capital :math:`K_{p,t-s}`, revenue :math:`R_{p,t-s}`; national share :math:`(1-m_p)`, local
  share :math:`m_p` (match share; 0 when match funding is off). Go-live :math:`g_o = s + d_p`;
  run cost :math:`r_p` in every year :math:`t \ge g_o`.
- National draw :math:`D_{o,t} = (1-m_p)(K_{p,t-s} + R_{p,t-s})`; access fee :math:`\phi D_{o,t}`.

The objective is set by the objective family (``solver/rules/objective.py``); ``prepare`` computes
each option's discounted need-weighted benefit (``Data.o_value``) and discounted live years
(``Data.o_live``) that its criteria use.

Each family's ``define`` states its rows in its docstring. The formulation never reads files: it takes a resolved
``Scenario`` and returns a ``Formulation`` (the ``MILP`` plus the maps back to the domain).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from solver.data.scenario import Scenario
from solver.data.variants import POTS
from solver.mip.arrays import MILP, ModelBuilder
from solver.rules import FAMILIES
from solver.rules.base import Build

__all__ = ["POTS", "Data", "Formulation", "discount_factors", "formulate", "need_weights", "prepare",
           "project_systems"]


@dataclass
class Data:
    """Arrays derived from one scenario, indexed by project (p), option (o), year (t), system (s)."""

    years: np.ndarray
    project_ids: np.ndarray
    system_ids: np.ndarray
    p_system: np.ndarray
    p_need_weight: np.ndarray
    p_benefit: np.ndarray
    p_match: np.ndarray
    p_run: np.ndarray
    p_duration: np.ndarray
    p_platform: np.ndarray
    p_mandatory: np.ndarray
    p_committed: np.ndarray
    p_withdrawal: np.ndarray
    p_group: np.ndarray
    o_project: np.ndarray
    o_start: np.ndarray
    nat_cap: np.ndarray      # (o, t)
    nat_rev: np.ndarray
    loc_cap: np.ndarray
    loc_rev: np.ndarray
    run: np.ndarray          # (o, t) run cost in envelope years
    o_value: np.ndarray      # discounted need-weighted benefit per option (× the objective's value weight)
    o_live: np.ndarray       # discounted live years of each option within the appraisal horizon
    t_discount: np.ndarray   # (t,) discount factor of each envelope year, 0 beyond the horizon
    p_category: np.ndarray   # category of the project's organisation, -1 for a system-wide project
    p_savings: np.ndarray    # cash-releasing savings per year once live (£m)
    budget: np.ndarray       # (2, t): capital, revenue
    local_capital: np.ndarray
    headroom: np.ndarray
    fair_share: np.ndarray   # share of weighted population per system
    sys_platforms: list[set[str]]


def need_weights(scenario: Scenario) -> pd.Series:
    """Need weight per project: category weight × need_index ** power (system-wide projects take
    the mean category weight of their system's organisations, or category 3's if it has none)."""
    inst, pol = scenario.instance, scenario.policy
    cw = {int(k): v for k, v in pol.need.category_weights.items()}
    orgs = inst.organisations.set_index("org_id")
    sysw = inst.systems.set_index("system_id")["need_index"] ** pol.need.need_index_power
    org_w = orgs["category"].map(cw)
    sys_mean = org_w.groupby(orgs["system_id"]).mean()
    pr = inst.projects
    system = project_systems(scenario)
    cat_w = pr["org_id"].map(org_w)
    cat_w = cat_w.fillna(system.map(sys_mean)).fillna(cw[3])
    return pd.Series(cat_w.to_numpy() * system.map(sysw).to_numpy(), index=pr["project_id"].to_numpy())


def project_systems(scenario: Scenario) -> pd.Series:
    """System of each project (its organisation's, or its own system_id)."""
    inst = scenario.instance
    org_sys = inst.organisations.set_index("org_id")["system_id"]
    pr = inst.projects
    return pr["org_id"].map(org_sys).astype(object).fillna(pr["system_id"]).set_axis(pr.index)


def discount_factors(scenario: Scenario) -> dict[int, float]:
    """Discount factor of every year in the appraisal horizon, 1 in the first envelope year."""
    t0 = scenario.instance.years[0]
    obj = scenario.policy.objective
    delta = 1.0 / (1.0 + obj.discount_rate)
    return {t0 + k: delta**k for k in range(obj.horizon_years)}


def prepare(scenario: Scenario) -> Data:
    """Vectorised data for the formulation (no solver, no files)."""
    inst, pol = scenario.instance, scenario.policy
    years = np.asarray(inst.years)
    t0, tl, nT = years[0], years[-1], len(years)
    pr = inst.projects.reset_index(drop=True)
    nP = len(pr)
    systems = inst.systems.reset_index(drop=True)
    sys_index = {s: i for i, s in enumerate(systems["system_id"])}
    p_system = project_systems(scenario).map(sys_index).to_numpy(dtype=int)

    pid_index = {p: i for i, p in enumerate(pr["project_id"])}
    co = inst.costs
    plen = np.zeros(nP, dtype=int)
    K = int(co["year_offset"].max()) + 1
    CAP = np.zeros((nP, K))
    REV = np.zeros((nP, K))
    ci = co["project_id"].map(pid_index).to_numpy()
    off = co["year_offset"].to_numpy()
    np.add.at(CAP, (ci, off), co["capital"].to_numpy())
    np.add.at(REV, (ci, off), co["revenue"].to_numpy())
    np.maximum.at(plen, ci, off + 1)

    committed = pr["committed_start"].to_numpy(dtype=float)
    earliest = pr["earliest_start"].to_numpy()
    latest = pr["latest_start"].to_numpy()
    # Options: every (project, start) pair, vectorised over the (P, T) grid.
    pp, tt = np.meshgrid(np.arange(nP), years, indexing="ij")
    ok = (tt >= earliest[:, None]) & (tt <= latest[:, None]) & (tt + plen[:, None] - 1 <= tl)
    if pol.commitments.mode == "ignore":
        committed = np.full(nP, np.nan)
    has_c = ~np.isnan(committed)
    ok[has_c] &= tt[has_c] == committed[has_c][:, None]
    o_project, o_start = pp[ok], tt[ok]

    match = pr["match_share"].to_numpy(dtype=float) if pol.match_funding.enabled else np.zeros(nP)
    rel = years[None, :] - o_start[:, None]                       # (o, t) offset into the profile
    inside = (rel >= 0) & (rel < K)
    relc = np.clip(rel, 0, K - 1)
    cap = np.where(inside, CAP[o_project[:, None], relc], 0.0)
    rev = np.where(inside, REV[o_project[:, None], relc], 0.0)
    m = match[o_project][:, None]
    duration = pr["duration_years"].to_numpy(dtype=int)
    golive = o_start + duration[o_project]
    run_cost = pr["run_cost"].to_numpy(dtype=float)
    run = np.where(years[None, :] >= golive[:, None], run_cost[o_project][:, None], 0.0)

    disc = discount_factors(scenario)
    horizon = np.array(sorted(disc))
    dvec = np.array([disc[y] for y in horizon])
    live = horizon[None, :] >= golive[:, None]
    years_value = (live * dvec[None, :]).sum(axis=1)
    w = need_weights(scenario).to_numpy()
    benefit = pr["benefit"].to_numpy(dtype=float)
    o_value = pol.objective.value_weight * w[o_project] * benefit[o_project] * years_value
    t_discount = np.array([disc.get(int(y), 0.0) for y in years])
    org_cat = inst.organisations.set_index("org_id")["category"]
    p_category = pr["org_id"].map(org_cat).fillna(-1).to_numpy(dtype=int)
    p_savings = (pr["savings"].to_numpy(dtype=float) if "savings" in pr.columns else np.zeros(nP))

    env = scenario.envelope.set_index("year").loc[years]
    wp = systems["weighted_population"].to_numpy(dtype=float)
    orgs = inst.organisations
    sys_platforms = [set() for _ in range(len(systems))]
    for s_id, plat in zip(orgs["system_id"], orgs["platform"]):
        if plat:
            sys_platforms[sys_index[s_id]].add(plat)
    del t0, nT
    return Data(
        years=years,
        project_ids=pr["project_id"].to_numpy(dtype=object),
        system_ids=systems["system_id"].to_numpy(dtype=object),
        p_system=p_system,
        p_need_weight=w,
        p_benefit=benefit,
        p_match=match,
        p_run=run_cost,
        p_duration=duration,
        p_platform=pr["platform"].fillna("").to_numpy(dtype=object),
        p_mandatory=pr["mandatory"].to_numpy(dtype=bool),
        p_committed=committed,
        p_withdrawal=pr["withdrawal_cost"].to_numpy(dtype=float),
        p_group=pr["group"].fillna("").to_numpy(dtype=object),
        o_project=o_project,
        o_start=o_start,
        nat_cap=(1 - m) * cap,
        nat_rev=(1 - m) * rev,
        loc_cap=m * cap,
        loc_rev=m * rev,
        run=run,
        o_value=o_value,
        o_live=years_value,
        t_discount=t_discount,
        p_category=p_category,
        p_savings=p_savings,
        budget=np.vstack([env["capital"].to_numpy(dtype=float), env["revenue"].to_numpy(dtype=float)]),
        local_capital=systems["local_capital"].to_numpy(dtype=float),
        headroom=systems["revenue_headroom"].to_numpy(dtype=float),
        fair_share=wp / wp.sum(),
        sys_platforms=sys_platforms,
    )


@dataclass
class Formulation:
    """The built ``MILP`` and the maps from its columns back to the domain."""

    model: MILP
    data: Data
    x: np.ndarray                      # column of each option
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    col_keys: dict[str, list[tuple]] = field(default_factory=dict)
    build_seconds: float = 0.0


def formulate(scenario: Scenario) -> Formulation:
    """Build the whole MIP for a scenario: checks are done; this only assembles arrays. Each rule
    family (``solver.rules.FAMILIES``, in order) adds its columns and rows; the objective family
    sets the objective last."""
    t0 = time.perf_counter()
    d = prepare(scenario)
    m = Build(ModelBuilder(), d, scenario)
    for family in FAMILIES:
        if family.define is not None:
            family.define(m)
    model = m.b.build()
    return Formulation(model=model, data=d, x=m.x, cols=m.cols, col_keys=m.keys,
                       build_seconds=time.perf_counter() - t0)
