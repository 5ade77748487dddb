r"""The Envelope MIP: one ``define_*`` function per rule family, built as arrays.

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

Objective (maximise)

.. math::
    \sum_o \Big( \beta\, w_p\, b_p \sum_{\tau = g_o}^{t_0 + H - 1} \delta^{\tau - t_0}
          - \lambda \sum_t D_{o,t} \Big) x_o - \text{penalties}

with need weight :math:`w_p = c_{\mathrm{cat}(p)} \cdot \nu_{\mathrm{sys}(p)}^{\kappa}`,
discount :math:`\delta = 1/(1+\rho)` and horizon :math:`H`.

Each ``define_*`` below states its rows. The formulation never reads files: it takes a resolved
``Scenario`` and returns a ``Formulation`` (the ``MILP`` plus the maps back to the domain).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from solver.data.scenario import Scenario
from solver.mip.arrays import INF, MILP, ModelBuilder

POTS = ("capital", "revenue")


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
    o_value: np.ndarray      # discounted need-weighted benefit per option
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
    return pr["org_id"].map(org_sys).fillna(pr["system_id"]).set_axis(pr.index)


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
    o_value = pol.objective.benefit_weight * w[o_project] * benefit[o_project] * years_value

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


def _rows_from_mask(mask: np.ndarray, coef: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """COO triplets for rows given as a (row, option) boolean mask and coefficient array."""
    r, o = np.nonzero(mask)
    return r, cols[o], coef[r, o]


def _fee_shares(scenario: Scenario) -> tuple[float, float]:
    """(system share, centre share) of the access fee rate."""
    fee = scenario.policy.fee
    if fee.payer == "system":
        return fee.rate, 0.0
    if fee.payer == "centre":
        return 0.0, fee.rate
    return fee.rate * fee.system_share, fee.rate * (1 - fee.system_share)


def define_selection(b: ModelBuilder, d: Data, scenario: Scenario) -> np.ndarray:
    r"""Start-year options and "funded at most once".

    .. math:: x_o \in \{0,1\}, \qquad \sum_{s} x_{(p,s)} \le 1 \quad \forall p

    A project the scenario excludes (``variants.ForceOut``) has its options fixed at 0.

    The objective coefficient of :math:`x_o` is its discounted need-weighted benefit less
    :math:`\lambda` per £m of national draw.
    """
    names = [f"x[{d.project_ids[p]}@{s}]" for p, s in zip(d.o_project, d.o_start)]
    spend = (d.nat_cap + d.nat_rev).sum(axis=1)
    cost = d.o_value - scenario.policy.objective.spend_weight * spend
    hi = np.ones(len(names))
    if scenario.excluded:
        hi[np.isin(d.project_ids[d.o_project].astype(str), sorted(scenario.excluded))] = 0.0
    x = b.add_columns("x", names, 0.0, hi, integer=True, cost=cost)
    counts = np.bincount(d.o_project, minlength=len(d.project_ids))
    multi = np.flatnonzero(counts > 1)
    if multi.size:
        row_of = np.full(len(d.project_ids), -1)
        row_of[multi] = np.arange(multi.size)
        sel = row_of[d.o_project] >= 0
        b.add_rows("once", [f"once[{d.project_ids[p]}]" for p in multi],
                   row_of[d.o_project[sel]], x[sel], np.ones(sel.sum()), -INF, 1.0)
    return x


def define_budgets(b: ModelBuilder, d: Data, scenario: Scenario, x: np.ndarray,
                   withdraw: tuple[np.ndarray, np.ndarray] | None) -> dict[str, np.ndarray]:
    r"""National capital and revenue envelopes per year, with carry-over and flexibility.

    .. math::
        \sum_o (1-m_p) K_{o,t} x_o + f_t + c^K_t - c^K_{t-1} &\le B^K_t \\
        \sum_o \big[(1-m_p) R_{o,t} + \mathbb{1}_{centre}\, r_{o,t} + \phi_c D_{o,t}\big] x_o
            - f_t + c^R_t - c^R_{t-1} &\le B^R_t

    :math:`0 \le f_t \le \alpha B^K_t` moves capital to revenue (α = ``capital_to_revenue``).
    Carry-over :math:`c_t \ge 0` (none from the last year) is limited to a fraction θ of what
    is unspent: :math:`c_t \le \theta\,(B_t + c_{t-1} - \text{spend}_t)`. Withdrawn
    commitments charge their withdrawal cost to the chosen pot in the first year.
    """
    pol = scenario.policy
    nT = len(d.years)
    _, fee_centre = _fee_shares(scenario)
    centre_run = d.run if pol.revenue_consequences.payer == "centre" else 0.0 * d.run
    spend = {
        "capital": d.nat_cap,
        "revenue": d.nat_rev + centre_run + fee_centre * (d.nat_cap + d.nat_rev),
    }
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
        rows, cs, vals = _rows_from_mask(coef != 0, coef, x)
        rows, cs, vals = [rows], [cs], [vals]
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
            m = coef[:-1] != 0
            r2, c2, v2 = _rows_from_mask(m, theta * coef[:-1], x)
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
    return cols


def define_local_funding(b: ModelBuilder, d: Data, scenario: Scenario, x: np.ndarray) -> None:
    r"""Local match capital and the system's revenue headroom, per system and year.

    .. math::
        \sum_{o \in s} m_p K_{o,t}\, x_o &\le L_s \\
        \sum_{o \in s} \big[m_p R_{o,t} + \mathbb{1}_{system}\, r_{o,t} + \phi_s D_{o,t}\big] x_o &\le H_s

    :math:`L_s` is ``local_capital``, :math:`H_s` ``revenue_headroom`` (both £m per year);
    :math:`\phi_s` the system's part of the fee rate.
    """
    pol = scenario.policy
    fee_sys, _ = _fee_shares(scenario)
    sys_run = d.run if pol.revenue_consequences.payer == "system" else 0.0 * d.run
    nT, nS = len(d.years), len(d.system_ids)
    o_sys = d.p_system[d.o_project]
    blocks = [("local_capital", d.loc_cap, d.local_capital),
              ("headroom", d.loc_rev + sys_run + fee_sys * (d.nat_cap + d.nat_rev), d.headroom)]
    for family, coef, cap in blocks:
        o, t = np.nonzero(coef)
        if o.size == 0:
            continue
        key = o_sys[o] * nT + t
        used, row = np.unique(key, return_inverse=True)
        s_of, t_of = used // nT, used % nT
        b.add_rows(family, [f"{family}[{d.system_ids[s]},{d.years[k]}]" for s, k in zip(s_of, t_of)],
                   row, x[o], coef[o, t], -INF, cap[s_of])
    del nS


def define_mandatory(b: ModelBuilder, d: Data, x: np.ndarray) -> None:
    r"""Mandatory projects are funded, starting by their latest start: :math:`\sum_s x_{(p,s)} = 1`."""
    mand = np.flatnonzero(d.p_mandatory)
    if mand.size == 0:
        return
    row_of = np.full(len(d.project_ids), -1)
    row_of[mand] = np.arange(mand.size)
    sel = row_of[d.o_project] >= 0
    b.add_rows("mandatory", [f"mandatory[{d.project_ids[p]}]" for p in mand],
               row_of[d.o_project[sel]], x[sel], np.ones(sel.sum()), 1.0, 1.0)


def define_commitments(b: ModelBuilder, d: Data, scenario: Scenario,
                       x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Committed projects keep their committed start, or (withdrawable) are dropped at a cost.

    keep: :math:`x_{(p,c_p)} = 1`; withdrawable: :math:`x_{(p,c_p)} + z_p = 1`, :math:`z_p \in \{0,1\}`,
    with :math:`W_p z_p` charged to the chosen pot in the first year (see ``define_budgets``).
    """
    com = np.flatnonzero(~np.isnan(d.p_committed))
    if com.size == 0:
        return None
    row_of = np.full(len(d.project_ids), -1)
    row_of[com] = np.arange(com.size)
    sel = row_of[d.o_project] >= 0
    names = [f"commitment[{d.project_ids[p]}]" for p in com]
    rows, cols, vals = [row_of[d.o_project[sel]]], [x[sel]], [np.ones(sel.sum())]
    result = None
    if scenario.policy.commitments.mode == "withdrawable":
        w = b.add_columns("withdraw", [f"withdraw[{d.project_ids[p]}]" for p in com], 0.0, 1.0, integer=True)
        rows.append(np.arange(com.size))
        cols.append(w)
        vals.append(np.ones(com.size))
        result = (w, d.p_withdrawal[com])
    b.add_rows("commitment", names, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), 1.0, 1.0)
    return result


def define_alternatives(b: ModelBuilder, d: Data, x: np.ndarray) -> None:
    r"""At most one project per alternatives group: :math:`\sum_{p \in g} \sum_s x_{(p,s)} \le 1`."""
    groups = d.p_group[d.o_project]
    has = groups != ""
    if not has.any():
        return
    names, row = np.unique(groups[has].astype(str), return_inverse=True)
    b.add_rows("alternatives", [f"group[{g}]" for g in names], row, x[has], np.ones(has.sum()), -INF, 1.0)


def define_dependencies(b: ModelBuilder, d: Data, scenario: Scenario, x: np.ndarray) -> None:
    r"""A project may start only ``lag`` years after what it requires has started.

    For :math:`p` requiring :math:`Q` (a project, or any member of a group) with lag :math:`L`,
    for each candidate start :math:`y` of :math:`p`:

    .. math:: \sum_{s \le y} x_{(p,s)} \le \sum_{q \in Q} \sum_{s' \le y - L} x_{(q,s')}
    """
    dep = scenario.instance.dependencies
    if dep.empty:
        return
    pidx = pd.Series(np.arange(len(d.project_ids)), index=d.project_ids)
    opts = pd.DataFrame({"o": np.arange(d.o_project.size), "proj": d.o_project, "start": d.o_start})
    deps = pd.DataFrame({"dep": np.arange(len(dep)), "p_id": dep["project_id"].to_numpy(),
                         "q_id": dep["requires"].to_numpy(), "lag": dep["lag_years"].to_numpy()})
    deps["p"] = pidx.loc[deps["p_id"]].to_numpy()
    groups = pd.DataFrame({"q_id": d.p_group, "q": np.arange(len(d.project_ids))})
    groups = groups[groups["q_id"] != ""]
    singles = pd.DataFrame({"q_id": d.project_ids, "q": np.arange(len(d.project_ids))})
    members = pd.concat([groups, singles]).merge(deps[["dep", "q_id"]], on="q_id")[["dep", "q"]]
    # one row per dependency and candidate start year y of the dependent project
    rows = deps.merge(opts[["proj", "start"]].rename(columns={"proj": "p", "start": "y"}), on="p")
    rows = rows.drop_duplicates(["dep", "y"]).sort_values(["dep", "y"]).reset_index(drop=True)
    if rows.empty:
        return
    rows["r"] = np.arange(len(rows))
    mine = rows[["r", "p", "y"]].merge(opts.rename(columns={"proj": "p"}), on="p")
    mine = mine[mine["start"] <= mine["y"]]
    theirs = rows[["r", "dep", "y", "lag"]].merge(members, on="dep").merge(opts.rename(columns={"proj": "q"}), on="q")
    theirs = theirs[theirs["start"] <= theirs["y"] - theirs["lag"]]
    names = [f"dependency[{p}<-{q},{y}]" for p, q, y in zip(rows["p_id"], rows["q_id"], rows["y"])]
    b.add_rows("dependency", names,
               np.concatenate([mine["r"].to_numpy(), theirs["r"].to_numpy()]),
               np.concatenate([x[mine["o"].to_numpy()], x[theirs["o"].to_numpy()]]),
               np.concatenate([np.ones(len(mine)), -np.ones(len(theirs))]), -INF, 0.0)


def define_fair_shares(b: ModelBuilder, d: Data, scenario: Scenario, x: np.ndarray) -> dict[str, np.ndarray]:
    r"""Each system's national funding against its fair share of weighted population.

    Allocation :math:`A_s = \sum_{o \in s} \sum_t D_{o,t} x_o`; fair share :math:`F_s = \sigma_s B`
    with :math:`\sigma_s` the weighted-population share and :math:`B` the whole envelope
    (basis ``envelope``) or the plan's whole national draw (basis ``spend``, linear in x).

    floor: :math:`A_s + u_s \ge \varphi F_s`; cap: :math:`A_s - v_s \le \gamma F_s`; band: both;
    deviation: :math:`A_s - F_s = v_s - u_s`. With ``hard`` enforcement :math:`u, v` are fixed
    at 0; with ``penalty`` they cost π points per £m.
    """
    fs = scenario.policy.fair_share
    if fs.mode == "off":
        return {}
    nS = len(d.system_ids)
    draw = (d.nat_cap + d.nat_rev).sum(axis=1)
    o_sys = d.p_system[d.o_project]
    total_env = float(d.budget.sum())
    sigma = d.fair_share
    penalised = fs.enforcement == "penalty" or fs.mode == "deviation"
    ub = total_env if penalised else 0.0
    cols: dict[str, np.ndarray] = {}

    def alloc_minus_share(factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Triplets of A_s − factor·F_s (variable part) and the constant part per system."""
        rows, cs, vals = [o_sys], [x], [draw.copy()]
        const = np.zeros(nS)
        if fs.basis == "envelope":
            const = factor * sigma * total_env
        else:
            rows.append(np.repeat(np.arange(nS), draw.size))
            cs.append(np.tile(x, nS))
            vals.append(-factor * np.repeat(sigma, draw.size) * np.tile(draw, nS))
        return np.concatenate(rows), np.concatenate(cs), np.concatenate(vals), const

    sys_names = [str(s) for s in d.system_ids]
    if fs.mode in ("floor", "band"):
        u = b.add_columns("fs_short", [f"short[{s}]" for s in sys_names], 0.0, ub, integer=False,
                          cost=-fs.penalty)
        r, c, v, const = alloc_minus_share(fs.floor)
        b.add_rows("fair_share", [f"fair_floor[{s}]" for s in sys_names], np.concatenate([r, np.arange(nS)]),
                   np.concatenate([c, u]), np.concatenate([v, np.ones(nS)]), const, INF)
        cols["fs_short"] = u
    if fs.mode in ("cap", "band"):
        v_ = b.add_columns("fs_excess", [f"excess[{s}]" for s in sys_names], 0.0, ub, integer=False,
                           cost=-fs.penalty)
        r, c, v, const = alloc_minus_share(fs.cap)
        b.add_rows("fair_share", [f"fair_cap[{s}]" for s in sys_names], np.concatenate([r, np.arange(nS)]),
                   np.concatenate([c, v_]), np.concatenate([v, -np.ones(nS)]), -INF, const)
        cols["fs_excess"] = v_
    if fs.mode == "deviation":
        u = b.add_columns("fs_short", [f"below[{s}]" for s in sys_names], 0.0, total_env, integer=False,
                          cost=-fs.penalty)
        v_ = b.add_columns("fs_excess", [f"above[{s}]" for s in sys_names], 0.0, total_env, integer=False,
                           cost=-fs.penalty)
        r, c, v, const = alloc_minus_share(1.0)
        b.add_rows("fair_share", [f"fair_dev[{s}]" for s in sys_names],
                   np.concatenate([r, np.arange(nS), np.arange(nS)]), np.concatenate([c, u, v_]),
                   np.concatenate([v, np.ones(nS), -np.ones(nS)]), const, const)
        cols["fs_short"], cols["fs_excess"] = u, v_
    return cols


def define_standardisation(b: ModelBuilder, d: Data, scenario: Scenario,
                           x: np.ndarray) -> tuple[np.ndarray, list[tuple]] | None:
    r"""Core platforms per system (projects with a platform only).

    :math:`y_{s,k} \in \{0,1\}`: platform :math:`k` used by a funded project in system :math:`s`;
    link :math:`\sum_s x_{(p,s)} \le y_{\mathrm{sys}(p),k(p)}`.

    - ``no-divergence``: :math:`y_{s,k} = 0` for :math:`k \notin P_s` when the system already has
      platforms :math:`P_s \neq \emptyset`; a system with none: :math:`\sum_k y_{s,k} \le 1`.
    - ``single``: :math:`\sum_k y_{s,k} \le 1` for every system.
    - ``penalty``: each :math:`y_{s,k}` with :math:`k \notin P_s` costs π points.
    """
    mode = scenario.policy.standardisation.mode
    if mode == "off":
        return None
    o_plat = d.p_platform[d.o_project]
    has = np.flatnonzero(o_plat != "")
    if has.size == 0:
        return None
    o_sys = d.p_system[d.o_project[has]]
    pairs = sorted({(int(s), str(k)) for s, k in zip(o_sys, o_plat[has])})
    pair_idx = {pk: i for i, pk in enumerate(pairs)}
    new = np.array([k not in d.sys_platforms[s] for s, k in pairs])
    ub = np.ones(len(pairs))
    cost = np.zeros(len(pairs))
    if mode == "no-divergence":
        has_any = np.array([bool(d.sys_platforms[s]) for s, _ in pairs])
        ub[new & has_any] = 0.0
    if mode == "penalty":
        cost[new] = -scenario.policy.standardisation.penalty
    y = b.add_columns("platform", [f"platform[{d.system_ids[s]},{k}]" for s, k in pairs], 0.0, ub,
                      integer=True, cost=cost)
    # link rows: one per project with a platform
    projs = np.unique(d.o_project[has])
    row_of = np.full(len(d.project_ids), -1)
    row_of[projs] = np.arange(projs.size)
    link_y = np.array([pair_idx[(int(d.p_system[p]), str(d.p_platform[p]))] for p in projs])
    b.add_rows("standardisation", [f"platform_link[{d.project_ids[p]}]" for p in projs],
               np.concatenate([row_of[d.o_project[has]], np.arange(projs.size)]),
               np.concatenate([x[has], y[link_y]]),
               np.concatenate([np.ones(has.size), -np.ones(projs.size)]), -INF, 0.0)
    if mode in ("no-divergence", "single"):
        sys_of = np.array([s for s, _ in pairs])
        if mode == "no-divergence":
            pick = np.array([not d.sys_platforms[s] for s in sys_of])
        else:
            pick = np.ones(len(pairs), dtype=bool)
        if pick.any():
            used, row = np.unique(sys_of[pick], return_inverse=True)
            b.add_rows("standardisation", [f"one_platform[{d.system_ids[s]}]" for s in used], row, y[pick],
                       np.ones(pick.sum()), -INF, 1.0)
    return y, [(str(d.system_ids[s]), k) for s, k in pairs]


def formulate(scenario: Scenario) -> Formulation:
    """Build the whole MIP for a scenario: checks are done; this only assembles arrays."""
    t0 = time.perf_counter()
    d = prepare(scenario)
    pol = scenario.policy
    b = ModelBuilder()
    x = define_selection(b, d, scenario)
    withdraw = define_commitments(b, d, scenario, x)
    cols = define_budgets(b, d, scenario, x, withdraw)
    define_local_funding(b, d, scenario, x)
    if pol.mandatory.enabled:
        define_mandatory(b, d, x)
    if pol.alternatives.enabled:
        define_alternatives(b, d, x)
    if pol.dependencies.enabled:
        define_dependencies(b, d, scenario, x)
    cols.update(define_fair_shares(b, d, scenario, x))
    keys: dict[str, list[tuple]] = {}
    std = define_standardisation(b, d, scenario, x)
    if std is not None:
        cols["platform"], keys["platform"] = std
    if withdraw is not None:
        cols["withdraw"] = withdraw[0]
    model = b.build()
    return Formulation(model=model, data=d, x=x, cols=cols, col_keys=keys,
                       build_seconds=time.perf_counter() - t0)
