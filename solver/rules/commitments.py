r"""Commitments: committed projects (signed MoUs) keep their committed start, or — withdrawable —
are dropped at a cost.

keep: :math:`x_{(p,c_p)} = 1`; withdrawable: :math:`x_{(p,c_p)} + z_p = 1`, :math:`z_p \in \{0,1\}`,
with :math:`W_p z_p` charged to the chosen pot in the first year (the budgets family carries the
term). With mode ``ignore`` a committed project is an ordinary candidate (``formulation.prepare``
gives it every start).
"""

from __future__ import annotations

import numpy as np

from solver.data.scenario import Scenario
from solver.data.variants import Override
from solver.rules.base import Audit, Build, Family, Priced, PriceRelaxation, row_key


def define(m: Build) -> None:
    """The ``commitment`` rows and, when withdrawable, the ``withdraw`` columns."""
    b, d = m.b, m.d
    com = np.flatnonzero(~np.isnan(d.p_committed))
    if com.size == 0:
        return
    row_of = np.full(len(d.project_ids), -1)
    row_of[com] = np.arange(com.size)
    sel = row_of[d.o_project] >= 0
    names = [f"commitment[{d.project_ids[p]}]" for p in com]
    rows, cols, vals = [row_of[d.o_project[sel]]], [m.x[sel]], [np.ones(sel.sum())]
    if m.scenario.policy.commitments.mode == "withdrawable":
        w = b.add_columns("withdraw", [f"withdraw[{d.project_ids[p]}]" for p in com], 0.0, 1.0, integer=True)
        rows.append(np.arange(com.size))
        cols.append(w)
        vals.append(np.ones(com.size))
        m.withdraw = (w, d.p_withdrawal[com])
        m.cols["withdraw"] = w
    b.add_rows("commitment", names, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), 1.0, 1.0)


def check(a: Audit) -> list[str]:
    """Committed projects start at their committed start unless (withdrawable) withdrawn; only
    committed projects are withdrawn."""
    pol, v, dec = a.scenario.policy, a.v, a.dec
    out: list[str] = []
    for p in v.projects.values():
        if p.committed is not None and pol.commitments.mode != "ignore":
            if p.id in dec.withdrawn:
                if pol.commitments.mode != "withdrawable":
                    out.append(f"{p.id}: withdrawn, but commitments must be kept")
                if p.id in dec.starts:
                    out.append(f"{p.id}: both withdrawn and funded")
            elif dec.starts.get(p.id) != p.committed:
                out.append(f"{p.id}: committed to start {p.committed}, plan has {dec.starts.get(p.id, 'not funded')}")
    for p_id in dec.withdrawn:
        if v.projects[p_id].committed is None or pol.commitments.mode != "withdrawable":
            out.append(f"{p_id}: withdrawn but not a committed project")
    return out


def describe(row: str, activity: float, hi: float, amount: float) -> str:
    """A relaxed commitment row as a sentence."""
    return f"commitment: {row_key(row)} cannot keep its committed start within the other rules"


def prices(scenario: Scenario) -> Priced:
    """keep → withdrawable, and → ignore (committed projects become ordinary candidates)."""
    mode = scenario.policy.commitments.mode
    if mode == "ignore":
        return [], {"commitments": "mode ignore"}
    if not scenario.instance.projects["committed_start"].notna().any():
        return [], {"commitments": "no committed project"}
    out = []
    if mode == "keep":
        out.append(PriceRelaxation("commitments", "keep → withdrawable at the withdrawal cost",
                                   (Override.of({"commitments": {"mode": "withdrawable"}}),)))
    out.append(PriceRelaxation("commitments", f"{mode} → ignore (committed projects are ordinary candidates)",
                               (Override.of({"commitments": {"mode": "ignore"}}),)))
    return out, {}


FAMILY = Family(name="commitments", define=define, check=check, rows={"commitment": "required"},
                describe=describe, prices=prices)
