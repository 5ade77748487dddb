"""Cheap infeasibility checks in the user's terms, run when a solver proves a scenario infeasible
(and by ``validate``): forced money against budgets, mandatory projects that cannot be funded.
They name a rule, a year and an amount; they never call a solver."""

from __future__ import annotations

from solver.data.scenario import Scenario
from solver.solve.accounts import project_system


def fy(year: int) -> str:
    """Financial-year label: 2026 → '2026/27'."""
    return f"{year}/{(year + 1) % 100:02d}"


def forced_starts(scenario: Scenario) -> dict[str, int | None]:
    """Projects that must be funded: committed (kept) at their start, mandatory ones (start None when
    they have a choice of start)."""
    pol = scenario.policy
    out: dict[str, int | None] = {}
    for p, c, mand, e, l_ in scenario.instance.projects[
        ["project_id", "committed_start", "mandatory", "earliest_start", "latest_start"]
    ].itertuples(index=False):
        if c == c and pol.commitments.mode == "keep":
            out[p] = int(c)
        elif mand and pol.mandatory.enabled:
            fixed = c == c and pol.commitments.mode != "ignore"
            out[p] = int(c) if fixed else (int(e) if e == l_ else None)
    return out


def obvious_causes(scenario: Scenario) -> list[str]:
    """Statements of why no plan can exist, where cheap to find (may be empty)."""
    inst, pol = scenario.instance, scenario.policy
    causes: list[str] = []
    forced = forced_starts(scenario)
    pr = inst.projects.set_index("project_id")
    profile: dict[str, dict[int, tuple[float, float]]] = {}
    for p, k, c, r in inst.costs[["project_id", "year_offset", "capital", "revenue"]].itertuples(index=False):
        profile.setdefault(p, {})[int(k)] = (float(c), float(r))
    psys = project_system(scenario)
    env = scenario.envelope.set_index("year")
    years = list(inst.years)

    # mandatory projects that share an alternatives group
    if pol.alternatives.enabled:
        groups: dict[str, list[str]] = {}
        for p in forced:
            g = pr.at[p, "group"]
            if isinstance(g, str) and g:
                groups.setdefault(g, []).append(p)
        for g, ps in sorted(groups.items()):
            if len(ps) > 1:
                causes.append(f"alternatives: group {g} allows one project, but {', '.join(sorted(ps))} "
                              "are all mandatory or committed")

    # money that forced projects need in a fixed year, against national and local limits
    need = {(pot, y): 0.0 for pot in ("capital", "revenue") for y in years}
    local_cap: dict[tuple[str, int], float] = {}
    fixed = {p: s for p, s in forced.items() if s is not None}
    for p, s in fixed.items():
        m = float(pr.at[p, "match_share"]) if pol.match_funding.enabled else 0.0
        for k, (c, r) in profile[p].items():
            y = s + k
            if y not in env.index:
                continue
            need[("capital", y)] += (1 - m) * c
            need[("revenue", y)] += (1 - m) * r
            local_cap[(psys[p], y)] = local_cap.get((psys[p], y), 0.0) + m * c
    flex = pol.budget.capital_to_revenue
    for y in years:
        cap_room = env.at[y, "capital"]
        rev_room = env.at[y, "revenue"] + flex * env.at[y, "capital"]
        for pot, room in (("capital", cap_room), ("revenue", rev_room)):
            if need[(pot, y)] > room + 1e-6 and pol.budget.carry_over == 0:
                causes.append(f"{fy(y)} {pot}: mandatory and committed projects need £{need[(pot, y)]:,.3f}m, "
                              f"the envelope allows £{room:,.3f}m — short by £{need[(pot, y)] - room:,.3f}m")
    # a forced project with a choice of start that does not fit on its own in any of its starts
    last = years[-1]
    for p, s in forced.items():
        if s is not None:
            continue
        m = float(pr.at[p, "match_share"]) if pol.match_funding.enabled else 0.0
        worst: list[tuple[float, str]] = []
        for start in range(int(pr.at[p, "earliest_start"]), int(pr.at[p, "latest_start"]) + 1):
            if start + max(profile[p]) > last:
                continue
            over = []
            for k, (c, r) in profile[p].items():
                y = start + k
                rooms = {"capital": env.at[y, "capital"], "revenue": env.at[y, "revenue"] + flex * env.at[y, "capital"]}
                for pot, amount in (("capital", (1 - m) * c), ("revenue", (1 - m) * r)):
                    if amount > rooms[pot] + 1e-6:
                        over.append((amount - rooms[pot], f"{fy(y)} {pot} needs £{amount:,.3f}m of "
                                                          f"£{rooms[pot]:,.3f}m"))
            if not over:
                break
            worst.append(max(over))
        else:
            if worst and pol.budget.carry_over == 0:
                short, text = min(worst)
                causes.append(f"mandatory project {p} does not fit in any allowed start year on its own: at best "
                              f"{text} — short by £{short:,.3f}m")

    systems = inst.systems.set_index("system_id")
    for (s, y), used in sorted(local_cap.items()):
        have = systems.at[s, "local_capital"]
        if used > have + 1e-6:
            causes.append(f"{s} {fy(y)}: local match of £{used:,.3f}m needed for mandatory and committed projects, "
                          f"local_capital is £{have:,.3f}m — short by £{used - have:,.3f}m")

    # mandatory platform projects that standardisation forbids
    if pol.standardisation.mode == "no-divergence":
        present: dict[str, set[str]] = {}
        for s, k in zip(inst.organisations["system_id"], inst.organisations["platform"]):
            if isinstance(k, str) and k:
                present.setdefault(s, set()).add(k)
        for p in forced:
            k = pr.at[p, "platform"]
            s = psys[p]
            if isinstance(k, str) and k and present.get(s) and k not in present[s]:
                causes.append(f"standardisation: {p} must be funded but uses platform {k}, "
                              f"which system {s} does not run (it runs {', '.join(sorted(present[s]))})")
    # dependencies of forced projects on projects that cannot come first
    if pol.dependencies.enabled:
        members = pr.reset_index().dropna(subset=["group"]).groupby("group")["project_id"].apply(list).to_dict()
        for p, q, lag in inst.dependencies[["project_id", "requires", "lag_years"]].itertuples(index=False):
            if p not in fixed:
                continue
            latest_ok = fixed[p] - lag
            first = min(int(pr.at[m, "earliest_start"]) for m in members.get(q, [q]))
            if first > latest_ok:
                causes.append(f"dependency: {p} must start {fy(fixed[p])} but requires {q} to have started by "
                              f"{fy(latest_ok)} (lag {lag}); {q} cannot start before {fy(first)}")
    return causes
