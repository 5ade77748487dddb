"""The plan audit: every rule re-checked from the tables, and the objective recomputed.

Uses ``accounting`` (plain loops over the tables), never the solver's matrix, so a formulation
bug or a solver returning a slightly infeasible point shows up as a named violation.
Tolerance: money within ``MONEY_TOL`` £m (+ a relative 1e-9), objective within ``OBJ_RTOL``
relative (1e-6 absolute for objectives below 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from solver.data.scenario import Scenario
from solver.solve.accounts import Accounts, View, account, view
from solver.solve.decisions import Decisions

MONEY_TOL = 1e-6
OBJ_RTOL = 1e-6


@dataclass
class AuditReport:
    """Outcome of an audit: violations (empty when the plan is valid) and recomputed figures."""

    violations: list[str]
    objective: float
    penalties: dict[str, float] = field(default_factory=dict)
    accounts: Accounts | None = None

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return not self.violations


def _over(used: float, limit: float) -> bool:
    return used > limit + MONEY_TOL + 1e-9 * abs(limit)


def fair_share_amounts(scenario: Scenario, acc: Accounts, v: View | None = None) -> dict[str, float]:
    """Each system's fair share (£m) on the policy's basis."""
    v = v or view(scenario)
    total_wp = sum(v.weighted_population.values())
    if scenario.policy.fair_share.basis == "envelope":
        base = sum(v.envelope.values())
    else:
        base = sum(acc.allocation.values())
    return {s: base * w / total_wp for s, w in v.weighted_population.items()}


def funded_platforms(v: View, dec: Decisions) -> dict[str, set[str]]:
    """Per system, the platforms of its funded projects."""
    out: dict[str, set[str]] = {}
    for p_id in dec.starts:
        p = v.projects[p_id]
        if p.platform:
            out.setdefault(p.system, set()).add(p.platform)
    return out


def audit(scenario: Scenario, dec: Decisions, claimed_objective: float | None = None,
          v: View | None = None) -> AuditReport:
    """Check every rule for a plan and recompute its objective."""
    v = v or view(scenario)
    pol = scenario.policy
    years = v.years
    out: list[str] = []

    # selection and phasing
    for p_id, s in dec.starts.items():
        if p_id not in v.projects:
            out.append(f"{p_id}: funded but not a project of the instance")
            continue
        p = v.projects[p_id]
        if not p.earliest <= s <= p.latest:
            out.append(f"{p_id}: starts {s}, outside [{p.earliest}, {p.latest}]")
        if s + max(p.profile) > years[-1]:
            out.append(f"{p_id}: cost profile starting {s} runs past {years[-1]}")
        if p_id in scenario.excluded:
            out.append(f"{p_id}: funded although the scenario excludes it")
    if any(p not in v.projects for p in list(dec.starts) + list(dec.withdrawn)):
        out += [f"{p}: withdrawn but not a project of the instance" for p in dec.withdrawn if p not in v.projects]
        return AuditReport(out, float("nan"))
    acc = account(scenario, dec, v)

    # budgets, flexibility and carry-over
    alpha, theta = pol.budget.capital_to_revenue, pol.budget.carry_over
    for i, y in enumerate(years):
        f = dec.flex.get(y, 0.0)
        if f < -MONEY_TOL or _over(f, alpha * v.envelope[("capital", y)]):
            out.append(f"{y}: capital-to-revenue transfer £{f:.6f}m outside [0, {alpha:g} × capital envelope]")
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = dec.carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = dec.carry.get((pot, y), 0.0)
            if c_out and (theta == 0 or i == len(years) - 1):
                out.append(f"{y} {pot}: carries £{c_out:.6f}m forward where carry-over is not allowed")
            spend = acc.pot_spend[(pot, y)] + sign * f
            avail = v.envelope[(pot, y)] + c_in
            if _over(spend + c_out, avail):
                out.append(f"{y} {pot}: spends £{spend:.6f}m and carries £{c_out:.6f}m, "
                           f"envelope plus carry-in is £{avail:.6f}m")
            if c_out < -MONEY_TOL or _over(c_out, theta * max(avail - spend, 0.0)):
                out.append(f"{y} {pot}: carries £{c_out:.6f}m, more than {theta:g} of unspent "
                           f"£{avail - spend:.6f}m")

    # local match and revenue headroom
    for (s, y), used in sorted(acc.local_capital.items()):
        if _over(used, v.local_capital[s]):
            out.append(f"{s} {y}: local match capital £{used:.6f}m exceeds local_capital £{v.local_capital[s]:.3f}m")
    for (s, y), used in sorted(acc.headroom_use.items()):
        if _over(used, v.headroom[s]):
            out.append(f"{s} {y}: local revenue (match, run costs, fees) £{used:.6f}m exceeds revenue_headroom "
                       f"£{v.headroom[s]:.3f}m")

    # mandatory and commitments
    for p in v.projects.values():
        if pol.mandatory.enabled and p.mandatory and p.id not in dec.starts:
            out.append(f"{p.id}: mandatory but not funded")
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

    # alternatives
    if pol.alternatives.enabled:
        for g, members in sorted(v.group_members.items()):
            funded = sorted(p for p in members if p in dec.starts)
            if len(funded) > 1:
                out.append(f"group {g}: {len(funded)} alternatives funded ({', '.join(funded)}), at most one allowed")

    # dependencies
    if pol.dependencies.enabled:
        for p, q, lag in v.dependencies:
            if p not in dec.starts:
                continue
            qs = v.group_members.get(q, [q])
            if not any(qq in dec.starts and dec.starts[qq] + lag <= dec.starts[p] for qq in qs):
                out.append(f"{p}: starts {dec.starts[p]} but requires {q} to have started {lag} year(s) before")

    # standardisation
    mode = pol.standardisation.mode
    std_penalty = 0.0
    for s, plats in sorted(funded_platforms(v, dec).items()):
        new = plats - v.present_platforms[s]
        if mode == "no-divergence":
            if v.present_platforms[s] and new:
                out.append(f"{s}: funds platform(s) {sorted(new)} not already in the system (no-divergence)")
            if not v.present_platforms[s] and len(plats) > 1:
                out.append(f"{s}: has no platform yet but funds {sorted(plats)}; may adopt exactly one")
        elif mode == "single" and len(plats) > 1:
            out.append(f"{s}: funds {len(plats)} platforms {sorted(plats)}; 'single' allows one")
        elif mode == "penalty":
            std_penalty += pol.standardisation.penalty * len(new)

    # fair shares
    fs = pol.fair_share
    fs_penalty = 0.0
    if fs.mode != "off":
        share = fair_share_amounts(scenario, acc, v)
        for s in sorted(share):
            a, f = acc.allocation[s], share[s]
            short = max(0.0, fs.floor * f - a) if fs.mode in ("floor", "band") else 0.0
            excess = max(0.0, a - fs.cap * f) if fs.mode in ("cap", "band") else 0.0
            if fs.mode == "deviation":
                fs_penalty += fs.penalty * abs(a - f)
            elif fs.enforcement == "hard":
                if short > MONEY_TOL:
                    out.append(f"{s}: allocation £{a:.6f}m below the fair-share floor £{fs.floor * f:.6f}m")
                if excess > MONEY_TOL:
                    out.append(f"{s}: allocation £{a:.6f}m above the fair-share cap £{fs.cap * f:.6f}m")
            else:
                fs_penalty += fs.penalty * (short + excess)

    spend_pen = pol.objective.spend_weight * sum(acc.allocation.values())
    objective = sum(acc.value.values()) - spend_pen - fs_penalty - std_penalty
    if claimed_objective is not None and abs(objective - claimed_objective) > OBJ_RTOL * max(1.0, abs(objective)):
        out.append(f"objective: solver reports {claimed_objective:.6f}, recomputed from the tables {objective:.6f}")
    return AuditReport(out, objective, {"spend": spend_pen, "fair_share": fs_penalty, "standardisation": std_penalty},
                       acc)
