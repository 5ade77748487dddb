"""The plan audit: every rule re-checked from the tables, and the objective recomputed.

Uses ``accounting`` (plain loops over the tables), never the solver's matrix, so a formulation
bug or a solver returning a slightly infeasible point shows up as a named violation.
Tolerance: money within ``MONEY_TOL`` £m (+ a relative 1e-9), objective within ``OBJ_RTOL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .accounting import Accounts, account, project_system
from .plan import Decisions
from .scenario import Scenario

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


def fair_share_amounts(scenario: Scenario, acc: Accounts) -> dict[str, float]:
    """Each system's fair share (£m) on the policy's basis."""
    inst = scenario.instance
    wp = dict(zip(inst.systems["system_id"], inst.systems["weighted_population"]))
    total_wp = sum(wp.values())
    if scenario.policy.fair_share.basis == "envelope":
        base = float(scenario.envelope[["capital", "revenue"]].to_numpy().sum())
    else:
        base = sum(acc.allocation.values())
    return {s: base * w / total_wp for s, w in wp.items()}


def platform_introductions(scenario: Scenario, dec: Decisions) -> dict[str, set[str]]:
    """Per system, the platforms of funded projects that no organisation in the system has yet."""
    inst = scenario.instance
    present: dict[str, set[str]] = {}
    for s, k in zip(inst.organisations["system_id"], inst.organisations["platform"]):
        if isinstance(k, str) and k:
            present.setdefault(s, set()).add(k)
    psys = project_system(scenario)
    plat = dict(zip(inst.projects["project_id"], inst.projects["platform"]))
    new: dict[str, set[str]] = {}
    for p in dec.starts:
        k = plat[p]
        if isinstance(k, str) and k and k not in present.get(psys[p], set()):
            new.setdefault(psys[p], set()).add(k)
    return new


def audit(scenario: Scenario, dec: Decisions, claimed_objective: float | None = None) -> AuditReport:
    """Check every rule for a plan and recompute its objective."""
    inst, pol = scenario.instance, scenario.policy
    years = list(inst.years)
    v: list[str] = []
    pr = inst.projects.set_index("project_id")
    plen = inst.profile_length()

    # selection and phasing
    for p, s in dec.starts.items():
        if p not in pr.index:
            v.append(f"{p}: funded but not a project of the instance")
            continue
        row = pr.loc[p]
        if not row["earliest_start"] <= s <= row["latest_start"]:
            v.append(f"{p}: starts {s}, outside [{row['earliest_start']}, {row['latest_start']}]")
        if s + int(plen[p]) - 1 > years[-1]:
            v.append(f"{p}: cost profile starting {s} runs past {years[-1]}")
    if any(p not in pr.index for p in dec.starts):
        return AuditReport(v, float("nan"))
    acc = account(scenario, dec)

    # budgets, flexibility and carry-over
    alpha, theta = pol.budget.capital_to_revenue, pol.budget.carry_over
    env = scenario.envelope.set_index("year")
    for i, y in enumerate(years):
        f = dec.flex.get(y, 0.0)
        if f < -MONEY_TOL or _over(f, alpha * env.at[y, "capital"]):
            v.append(f"{y}: capital-to-revenue transfer £{f:.6f}m outside [0, {alpha:g} × capital envelope]")
        for pot, sign in (("capital", 1.0), ("revenue", -1.0)):
            c_in = dec.carry.get((pot, years[i - 1]), 0.0) if i else 0.0
            c_out = dec.carry.get((pot, y), 0.0)
            if c_out and (theta == 0 or i == len(years) - 1):
                v.append(f"{y} {pot}: carries £{c_out:.6f}m forward where carry-over is not allowed")
            spend = acc.pot_spend[(pot, y)] + sign * f
            avail = env.at[y, pot] + c_in
            if _over(spend + c_out, avail):
                v.append(f"{y} {pot}: spends £{spend:.6f}m and carries £{c_out:.6f}m, "
                         f"envelope plus carry-in is £{avail:.6f}m")
            if c_out < -MONEY_TOL or _over(c_out, theta * max(avail - spend, 0.0)):
                v.append(f"{y} {pot}: carries £{c_out:.6f}m, more than {theta:g} of unspent £{avail - spend:.6f}m")

    # local match and revenue headroom
    systems = inst.systems.set_index("system_id")
    for (s, y), used in sorted(acc.local_capital.items()):
        if _over(used, systems.at[s, "local_capital"]):
            v.append(f"{s} {y}: local match capital £{used:.6f}m exceeds local_capital "
                     f"£{systems.at[s, 'local_capital']:.3f}m")
    for (s, y), used in sorted(acc.headroom_use.items()):
        if _over(used, systems.at[s, "revenue_headroom"]):
            v.append(f"{s} {y}: local revenue (match, run costs, fees) £{used:.6f}m exceeds revenue_headroom "
                     f"£{systems.at[s, 'revenue_headroom']:.3f}m")

    # mandatory and commitments
    for p, row in pr.iterrows():
        if pol.mandatory.enabled and row["mandatory"] and p not in dec.starts:
            v.append(f"{p}: mandatory but not funded")
        c = row["committed_start"]
        if c == c:  # committed (not NaN)
            if p in dec.withdrawn:
                if pol.commitments.mode != "withdrawable":
                    v.append(f"{p}: withdrawn, but commitments must be kept")
                if p in dec.starts:
                    v.append(f"{p}: both withdrawn and funded")
            elif dec.starts.get(p) != int(c):
                v.append(f"{p}: committed to start {int(c)}, plan has {dec.starts.get(p, 'not funded')}")
    for p in dec.withdrawn:
        if p not in pr.index or pr.at[p, "committed_start"] != pr.at[p, "committed_start"]:
            v.append(f"{p}: withdrawn but not a committed project")

    # alternatives
    if pol.alternatives.enabled:
        per_group: dict[str, list[str]] = {}
        for p in dec.starts:
            g = pr.at[p, "group"]
            if isinstance(g, str) and g:
                per_group.setdefault(g, []).append(p)
        for g, ps in sorted(per_group.items()):
            if len(ps) > 1:
                v.append(f"group {g}: {len(ps)} alternatives funded ({', '.join(sorted(ps))}), at most one allowed")

    # dependencies
    if pol.dependencies.enabled:
        group_members: dict[str, list[str]] = {}
        for p, g in pr["group"].items():
            if isinstance(g, str) and g:
                group_members.setdefault(g, []).append(p)
        for p, q, lag in inst.dependencies[["project_id", "requires", "lag_years"]].itertuples(index=False):
            if p not in dec.starts:
                continue
            qs = group_members.get(q, [q])
            if not any(qq in dec.starts and dec.starts[qq] + lag <= dec.starts[p] for qq in qs):
                v.append(f"{p}: starts {dec.starts[p]} but requires {q} to have started {lag} year(s) before")

    # standardisation
    mode = pol.standardisation.mode
    psys = project_system(scenario)
    new = platform_introductions(scenario, dec)
    present = {s: {k for s2, k in zip(inst.organisations["system_id"], inst.organisations["platform"])
                   if s2 == s and isinstance(k, str) and k} for s in systems.index}
    funded_plat: dict[str, set[str]] = {}
    for p in dec.starts:
        k = pr.at[p, "platform"]
        if isinstance(k, str) and k:
            funded_plat.setdefault(psys[p], set()).add(k)
    std_penalty = 0.0
    for s in sorted(funded_plat):
        if mode == "no-divergence":
            if present[s] and new.get(s):
                v.append(f"{s}: funds platform(s) {sorted(new[s])} not already in the system (no-divergence)")
            if not present[s] and len(funded_plat[s]) > 1:
                v.append(f"{s}: has no platform yet but funds {sorted(funded_plat[s])}; may adopt exactly one")
        elif mode == "single" and len(funded_plat[s]) > 1:
            v.append(f"{s}: funds {len(funded_plat[s])} platforms {sorted(funded_plat[s])}; 'single' allows one")
        elif mode == "penalty":
            std_penalty += pol.standardisation.penalty * len(new.get(s, ()))

    # fair shares
    fs = pol.fair_share
    fs_penalty = 0.0
    if fs.mode != "off":
        share = fair_share_amounts(scenario, acc)
        for s in sorted(share):
            a, f = acc.allocation[s], share[s]
            short = max(0.0, fs.floor * f - a) if fs.mode in ("floor", "band") else 0.0
            excess = max(0.0, a - fs.cap * f) if fs.mode in ("cap", "band") else 0.0
            if fs.mode == "deviation":
                fs_penalty += fs.penalty * abs(a - f)
            elif fs.enforcement == "hard":
                if short > MONEY_TOL:
                    v.append(f"{s}: allocation £{a:.6f}m below the fair-share floor £{fs.floor * f:.6f}m")
                if excess > MONEY_TOL:
                    v.append(f"{s}: allocation £{a:.6f}m above the fair-share cap £{fs.cap * f:.6f}m")
            else:
                fs_penalty += fs.penalty * (short + excess)

    spend_pen = pol.objective.spend_weight * sum(acc.allocation.values())
    objective = sum(acc.value.values()) - spend_pen - fs_penalty - std_penalty
    if claimed_objective is not None and abs(objective - claimed_objective) > OBJ_RTOL * max(1.0, abs(objective)):
        v.append(f"objective: solver reports {claimed_objective:.6f}, recomputed from the tables {objective:.6f}")
    return AuditReport(v, objective, {"spend": spend_pen, "fair_share": fs_penalty, "standardisation": std_penalty},
                       acc)
