r"""Fair shares: each system's national funding against its fair share of weighted population.

Allocation :math:`A_s = \sum_{o \in s} \sum_t D_{o,t} x_o`; fair share :math:`F_s = \sigma_s B`
with :math:`\sigma_s` the weighted-population share and :math:`B` the whole envelope
(basis ``envelope``) or the plan's whole national draw (basis ``spend``, linear in x).

floor: :math:`A_s + u_s \ge \varphi F_s`; cap: :math:`A_s - v_s \le \gamma F_s`; band: both;
deviation: :math:`A_s - F_s = v_s - u_s`. With ``hard`` enforcement :math:`u, v` are fixed
at 0; with ``penalty`` they cost π points per £m — the family's contribution to the objective,
:math:`-\pi \sum_s (u_s + v_s)`, which the objective family assembles (``Build.penalties``).
"""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.mip.arrays import INF
from solver.pipeline.accounts import Accounts, View, view
from solver.rules.base import Audit, Build, Family, Priced, PriceRelaxation, money_tolerance, row_key


def define(m: Build) -> None:
    """The ``fair_share`` rows and the shortfall/excess columns ``fs_short``, ``fs_excess``."""
    fs = m.scenario.policy.fair_share
    if fs.mode == "off":
        return
    b, d, x = m.b, m.d, m.x
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
        u = b.add_columns("fs_short", [f"short[{s}]" for s in sys_names], 0.0, ub, integer=False)
        r, c, v, const = alloc_minus_share(fs.floor)
        b.add_rows("fair_share", [f"fair_floor[{s}]" for s in sys_names], np.concatenate([r, np.arange(nS)]),
                   np.concatenate([c, u]), np.concatenate([v, np.ones(nS)]), const, INF)
        cols["fs_short"] = u
    if fs.mode in ("cap", "band"):
        v_ = b.add_columns("fs_excess", [f"excess[{s}]" for s in sys_names], 0.0, ub, integer=False)
        r, c, v, const = alloc_minus_share(fs.cap)
        b.add_rows("fair_share", [f"fair_cap[{s}]" for s in sys_names], np.concatenate([r, np.arange(nS)]),
                   np.concatenate([c, v_]), np.concatenate([v, -np.ones(nS)]), -INF, const)
        cols["fs_excess"] = v_
    if fs.mode == "deviation":
        u = b.add_columns("fs_short", [f"below[{s}]" for s in sys_names], 0.0, total_env, integer=False)
        v_ = b.add_columns("fs_excess", [f"above[{s}]" for s in sys_names], 0.0, total_env, integer=False)
        r, c, v, const = alloc_minus_share(1.0)
        b.add_rows("fair_share", [f"fair_dev[{s}]" for s in sys_names],
                   np.concatenate([r, np.arange(nS), np.arange(nS)]), np.concatenate([c, u, v_]),
                   np.concatenate([v, np.ones(nS), -np.ones(nS)]), const, const)
        cols["fs_short"], cols["fs_excess"] = u, v_
    m.cols.update(cols)
    # every shortfall and excess column costs π points per £m (fixed at 0 when hard)
    penalised_cols = np.concatenate(list(cols.values()))
    m.penalties["fair_share"] = (penalised_cols, np.full(penalised_cols.size, -fs.penalty))


def fair_share_amounts(scenario: Scenario, acc: Accounts, v: View | None = None) -> dict[str, float]:
    """Each system's fair share (£m) on the policy's basis."""
    v = v or view(scenario)
    total_wp = sum(v.weighted_population.values())
    if scenario.policy.fair_share.basis == "envelope":
        base = sum(v.envelope.values())
    else:
        base = sum(acc.allocation.values())
    return {s: base * w / total_wp for s, w in v.weighted_population.items()}


def _gaps(a: Audit) -> list[tuple[str, float, float, float, float]]:
    """Per system (sorted): allocation, fair share, shortfall below the floor, excess above the cap."""
    fs = a.scenario.policy.fair_share
    assert a.acc is not None
    share = fair_share_amounts(a.scenario, a.acc, a.v)
    out = []
    for s in sorted(share):
        al, f = a.acc.allocation[s], share[s]
        short = max(0.0, fs.floor * f - al) if fs.mode in ("floor", "band") else 0.0
        excess = max(0.0, al - fs.cap * f) if fs.mode in ("cap", "band") else 0.0
        out.append((s, al, f, short, excess))
    return out


def check(a: Audit) -> list[str]:
    """With hard enforcement, every system's allocation within its floor and cap."""
    fs = a.scenario.policy.fair_share
    if fs.mode == "off" or fs.mode == "deviation" or fs.enforcement != "hard":
        return []
    out = []
    for s, al, f, short, excess in _gaps(a):
        if short > money_tolerance(fs.floor * f):
            out.append(f"{s}: allocation £{al:.6f}m below the fair-share floor £{fs.floor * f:.6f}m")
        if excess > money_tolerance(fs.cap * f):
            out.append(f"{s}: allocation £{al:.6f}m above the fair-share cap £{fs.cap * f:.6f}m")
    return out


def penalty(a: Audit) -> dict[str, float]:
    """The objective points lost to fair shares: π per £m of deviation, or (penalty enforcement) of
    shortfall and excess."""
    fs = a.scenario.policy.fair_share
    total = 0.0
    if fs.mode == "off" or (fs.mode != "deviation" and fs.enforcement == "hard"):
        return {"fair_share": total}
    for _, al, f, short, excess in _gaps(a):
        if fs.mode == "deviation":
            total += fs.penalty * abs(al - f)
        else:
            total += fs.penalty * (short + excess)
    return {"fair_share": total}


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed fair-share row as a sentence."""
    key, kind = row_key(row), row.split("[")[0]
    if kind == "fair_floor":
        return f"{key}: fair-share floor cannot be met — short by £{amount:,.3f}m"
    if kind == "fair_cap":
        return f"{key}: fair-share cap cannot be kept — over by £{amount:,.3f}m"
    return f"{key}: fair-share deviation rule relaxed by £{amount:,.3f}m"


def prices(scenario: Scenario) -> Priced:
    """Fair shares off (no floors, caps or penalties)."""
    fs = scenario.policy.fair_share
    if fs.mode == "off":
        return [], {"fair_share": "mode off"}
    return [PriceRelaxation("fair_share", f"mode {fs.mode} ({fs.enforcement}) → off",
                            (Override.of({"fair_share": {"mode": "off"}}),))], {}


FAMILY = Family(name="fair_shares", define=define, check=check, penalty=penalty, rows={"fair_share": "money"},
                describe=describe, prices=prices)
