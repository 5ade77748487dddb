"""Brute-force optimum of a small scenario: enumerate every plan, keep those the audit accepts.

Independent of the formulation: plans are enumerated from the tables, feasibility and objective
come from ``solver.pipeline.audit``; where carry-over or capital-to-revenue flexibility is on, a small
direct calculation (``_money_moves``) decides whether the money can be moved so that the plan fits.

Each distinct scenario is enumerated once per test session: results are kept by the scenario's
content identity (solver settings aside), so tests that share an oracle do not pay for it twice.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import numpy as np

from solver.data.scenario import Scenario, SolverSettings
from solver.pipeline.accounts import View, account, view
from solver.pipeline.audit import audit
from solver.pipeline.decisions import Decisions


def project_choices(scenario: Scenario) -> dict[str, list[object]]:
    """Per project: None (unfunded), each allowed start year, and 'withdrawn' where allowed."""
    v = view(scenario)
    pol = scenario.policy
    last = v.years[-1]
    out: dict[str, list[object]] = {}
    for p in v.projects.values():
        starts = [s for s in range(p.earliest, p.latest + 1) if s + max(p.profile) <= last]
        if p.committed is not None and pol.commitments.mode != "ignore":
            starts = [p.committed]
        opts: list[object] = [None, *starts]
        if p.committed is not None and pol.commitments.mode == "withdrawable":
            opts.append("withdrawn")
        out[p.id] = opts
    return out


def _money_moves(scenario: Scenario, dec: Decisions, v: View) -> Decisions | None:
    """Transfers or carry-overs that make the plan fit, or None (exact for either rule alone).

    Capital-to-revenue alone: each year independently needs max(0, revenue overspend) ≤
    min(α·capital envelope, capital left). Carry-over alone: carrying the most allowed each year
    is optimal, since more money carried in never hurts a later year.
    """
    pol = scenario.policy
    acc = account(scenario, dec, v)
    years = v.years
    alpha, theta = pol.budget.capital_to_revenue, pol.budget.carry_over
    if alpha > 0 and theta > 0:
        raise NotImplementedError("brute force handles carry-over and flexibility one at a time")
    if alpha > 0:
        flex = {}
        for y in years:
            need = max(0.0, acc.pot_spend[("revenue", y)] - v.envelope[("revenue", y)])
            room = min(alpha * v.envelope[("capital", y)], v.envelope[("capital", y)] - acc.pot_spend[("capital", y)])
            if need > room + 1e-9:
                return None
            flex[y] = need
        return Decisions(starts=dec.starts, withdrawn=dec.withdrawn, flex=flex)
    carry = {}
    for pot in ("capital", "revenue"):
        c_in = 0.0
        for y in years:
            left = v.envelope[(pot, y)] + c_in - acc.pot_spend[(pot, y)]
            if left < -1e-9:
                return None
            if y != years[-1]:
                carry[(pot, y)] = c_in = theta * max(left, 0.0)
    return Decisions(starts=dec.starts, withdrawn=dec.withdrawn, carry=carry)


_ORACLE: dict[str, tuple[float, list[Decisions]]] = {}


def brute_force(scenario: Scenario) -> tuple[float, list[Decisions]]:
    """Best objective and every plan attaining it (within 1e-7); enumerated once per scenario."""
    key = dataclasses.replace(scenario, solver=SolverSettings()).identity
    if key not in _ORACLE:
        _ORACLE[key] = _enumerate(scenario)
    return copy.deepcopy(_ORACLE[key])


def _enumerate(scenario: Scenario) -> tuple[float, list[Decisions]]:
    pol = scenario.policy
    v = view(scenario)
    choices = project_choices(scenario)
    ids = sorted(choices)
    moves = pol.budget.capital_to_revenue > 0 or pol.budget.carry_over > 0
    best = -np.inf
    argbest: list[Decisions] = []
    for combo in itertools.product(*(choices[p] for p in ids)):
        starts = {p: c for p, c in zip(ids, combo) if isinstance(c, int)}
        withdrawn = [p for p, c in zip(ids, combo) if c == "withdrawn"]
        if pol.mandatory.enabled and any(v.projects[p].mandatory and p not in starts for p in ids):
            continue
        if pol.alternatives.enabled:
            groups = [v.projects[p].group for p in starts if v.projects[p].group]
            if len(groups) != len(set(groups)):
                continue
        dec = Decisions(starts=starts, withdrawn=withdrawn)
        rep = audit(scenario, dec, v=v)
        if not rep.ok and moves and all("spends" in m or "carr" in m for m in rep.violations):
            moved = _money_moves(scenario, dec, v)
            if moved is not None:
                rep = audit(scenario, moved, v=v)
        if not rep.ok:
            continue
        if rep.objective > best + 1e-7:
            best, argbest = rep.objective, [dec]
        elif abs(rep.objective - best) <= 1e-7:
            argbest.append(dec)
    return best, argbest
