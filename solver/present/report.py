"""Tables and the printed summary of an outcome: who is funded, who misses out, money per year
and pot, each system against its fair share. Reads ``Outcome`` (decisions + accounts) and the
instance tables only."""

from __future__ import annotations

import platform as _platform
from importlib.metadata import PackageNotFoundError, version
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from solver.data.policy import Policy
from solver.data.readers import safe_text
from solver.data.scenario import Scenario
from solver.pipeline.accounts import LINE_COLUMNS, Project, best_values, budget_rows, project_system, view
from solver.pipeline.audit import fair_share_amounts
from solver.pipeline.checks import fy
from solver.pipeline.outcome import Outcome
from solver.pipeline.reasons import cannot_be_funded, unfunded_reasons


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def plan_table(outcome: Outcome) -> pd.DataFrame:
    """One row per funded project and year with money: national/local capital and revenue, run
    cost, fee (and who pays it)."""
    sc = outcome.scenario
    acc = outcome.accounts
    pr = sc.instance.projects.set_index("project_id")
    psys = project_system(sc)
    lines = acc.lines_frame()
    lines.insert(1, "name", lines["project_id"].map(pr["name"]))
    lines.insert(2, "org_id", lines["project_id"].map(pr["org_id"]))
    lines.insert(3, "system_id", lines["project_id"].map(psys))
    lines.insert(4, "region", lines["system_id"].map(sc.instance.systems.set_index("system_id")["region"]))
    lines.insert(5, "category", lines["project_id"].map(
        pr["org_id"].map(sc.instance.organisations.set_index("org_id")["category"])).astype("Int64"))
    lines.insert(6, "kind", lines["project_id"].map(pr["kind"]))
    lines.insert(7, "platform", lines["project_id"].map(pr["platform"]))
    lines.insert(8, "start", lines["project_id"].map(outcome.decisions.starts))
    lines.insert(9, "go_live", lines["start"] + lines["project_id"].map(pr["duration_years"]))
    lines["run_cost_payer"] = sc.policy.revenue_consequences.payer
    silent = sorted(set(outcome.decisions.starts) - set(lines["project_id"]))
    if silent:       # funded but costing nothing in the envelope years: one zero row, so the plan reads back whole
        zero = lines.iloc[:0].reindex(range(len(silent)))
        zero["project_id"] = silent
        for col in ("name", "org_id", "kind", "platform"):
            zero[col] = zero["project_id"].map(pr[col])
        zero["system_id"] = zero["project_id"].map(psys)
        zero["region"] = zero["system_id"].map(sc.instance.systems.set_index("system_id")["region"])
        zero["category"] = zero["project_id"].map(
            pr["org_id"].map(sc.instance.organisations.set_index("org_id")["category"])).astype("Int64")
        zero["start"] = zero["project_id"].map(outcome.decisions.starts)
        zero["go_live"] = zero["start"] + zero["project_id"].map(pr["duration_years"])
        zero["year"] = zero["start"]
        for col in LINE_COLUMNS[2:]:
            zero[col] = 0.0
        zero["run_cost_payer"] = sc.policy.revenue_consequences.payer
        lines = pd.concat([lines, zero], ignore_index=True)
    return lines.sort_values(["project_id", "year"]).reset_index(drop=True)


def budget_table(outcome: Outcome) -> pd.DataFrame:
    """Per year and pot: envelope, spent, transfers, carry-over and what is left unspent."""
    assert outcome.decisions is not None
    return pd.DataFrame(budget_rows(outcome.scenario, outcome.decisions, outcome.accounts))


def systems_table(outcome: Outcome, fair_share_envelope: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per system: allocation against fair share (on ``fair_share_envelope`` when given, e.g. the baseline's,
    else the scenario's own basis), funded and unmet need, platforms, trusts left out."""
    sc = outcome.scenario
    acc = outcome.accounts
    inst = sc.instance
    starts = outcome.decisions.starts
    psys = project_system(sc)
    basis = sc if fair_share_envelope is None else sc.with_envelope(fair_share_envelope)
    share = fair_share_amounts(basis, acc)
    values = best_values(sc)
    unmet = _unmet(sc, starts, values)
    orgs = inst.organisations
    pr = inst.projects
    present: dict[str, set[str]] = {}
    for s, k in zip(orgs["system_id"], orgs["platform"]):
        if isinstance(k, str) and k:
            present.setdefault(s, set()).add(k)
    after = {s: set(v) for s, v in present.items()}
    for p in starts:
        k = pr.set_index("project_id").at[p, "platform"]
        if isinstance(k, str) and k:
            after.setdefault(psys[p], set()).add(k)
    left_out = _orgs_left_out(sc, starts)
    wp = inst.systems["weighted_population"]
    rows = []
    for s, name, region, need, w in inst.systems[["system_id", "name", "region", "need_index",
                                                  "weighted_population"]].itertuples(index=False):
        cand = [p for p in pr["project_id"] if psys[p] == s]
        funded = [p for p in cand if p in starts]
        alloc = acc.allocation.get(s, 0.0)
        rows.append({
            "system_id": s, "name": name, "region": region, "need_index": need,
            "fair_share_pct": 100.0 * w / wp.sum(), "fair_share": share[s], "allocation": alloc,
            "allocation_to_fair_share": alloc / share[s] if share[s] > 0 else np.nan,
            "local_capital_peak": max((v for (s2, _), v in acc.local_capital.items() if s2 == s), default=0.0),
            "headroom_peak": max((v for (s2, _), v in acc.headroom_use.items() if s2 == s), default=0.0),
            "candidates": len(cand), "funded": len(funded),
            "need_weighted_benefit_funded": sum(acc.value.get(p, 0.0) for p in funded),
            "unmet_need": sum(v for p, v in unmet.items() if psys[p] == s),
            "platforms_before": ";".join(sorted(present.get(s, set()))),
            "platforms_after": ";".join(sorted(after.get(s, set()))),
            "trusts_left_out": ";".join(sorted(o for o in left_out if left_out[o] == s)),
        })
    return pd.DataFrame(rows).sort_values("system_id").reset_index(drop=True)


def _unmet(sc: Scenario, starts: dict[str, int], values: dict[str, float]) -> dict[str, float]:
    """Need-weighted benefit of unfunded projects; per alternatives group only the best member
    counts, and nothing when another member is funded."""
    out: dict[str, float] = {}
    best_in_group: dict[str, tuple[float, str]] = {}
    funded_groups = set()
    pr = sc.instance.projects
    for p, g in zip(pr["project_id"], pr["group"]):
        if isinstance(g, str) and g and p in starts:
            funded_groups.add(g)
    for p, g in zip(pr["project_id"], pr["group"]):
        if p in starts:
            continue
        if isinstance(g, str) and g:
            if g in funded_groups:
                continue
            if values[p] > best_in_group.get(g, (-1.0, ""))[0]:
                best_in_group[g] = (values[p], p)
        else:
            out[p] = values[p]
    for v, p in best_in_group.values():
        out[p] = v
    return out


def _orgs_left_out(sc: Scenario, starts: dict[str, int]) -> dict[str, str]:
    """Organisations with at least one candidate project and none funded → their system."""
    pr = sc.instance.projects
    has_cand: dict[str, str] = {}
    has_funded = set()
    for p, o, s in zip(pr["project_id"], pr["org_id"], pr["system_id"]):
        if isinstance(o, str):
            has_cand[o] = s if isinstance(s, str) else ""
            if p in starts:
                has_funded.add(o)
    org_sys = dict(zip(sc.instance.organisations["org_id"], sc.instance.organisations["system_id"]))
    return {o: org_sys[o] for o in has_cand if o not in has_funded}


def misses_table(outcome: Outcome, reasons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Who misses out: unfunded projects (cost, need-weighted benefit forgone, and why: the reason code and
    sentence of ``solver.pipeline.reasons``), trusts with candidate projects and nothing funded, systems
    with nothing funded."""
    sc = outcome.scenario
    inst = sc.instance
    starts = outcome.decisions.starts
    psys = project_system(sc)
    values = best_values(sc)
    unmet = _unmet(sc, starts, values)
    cost = inst.costs.assign(total=inst.costs["capital"] + inst.costs["revenue"]).groupby("project_id")["total"].sum()
    orgs = inst.organisations.set_index("org_id")
    pr = inst.projects
    group_funded = {g: p for p, g in zip(pr["project_id"], pr["group"]) if isinstance(g, str) and p in starts}
    rows = []
    for p, name, o, kind, g in pr[["project_id", "name", "org_id", "kind", "group"]].itertuples(index=False):
        if p in starts:
            continue
        rows.append({
            "type": "project", "id": p, "name": name, "system_id": psys[p], "org_id": o or "",
            "category": int(orgs.at[o, "category"]) if isinstance(o, str) else np.nan, "kind": kind,
            "cost": float(cost.get(p, 0.0)), "need_weighted_benefit": values[p],
            "counts_as_unmet": p in unmet, "alternative_funded": group_funded.get(g, "") if isinstance(g, str) else "",
            "withdrawn": p in outcome.decisions.withdrawn,
        })
    for o, s in sorted(_orgs_left_out(sc, starts).items()):
        mine = [p for p, oo in zip(pr["project_id"], pr["org_id"]) if oo == o]
        rows.append({
            "type": "organisation", "id": o, "name": orgs.at[o, "name"], "system_id": s, "org_id": o,
            "category": int(orgs.at[o, "category"]), "kind": "", "cost": float(sum(cost.get(p, 0.0) for p in mine)),
            "need_weighted_benefit": sum(unmet.get(p, 0.0) for p in mine), "counts_as_unmet": False,
            "alternative_funded": "", "withdrawn": False,
        })
    funded_sys = {psys[p] for p in starts}
    for s, name in inst.systems[["system_id", "name"]].itertuples(index=False):
        if s in funded_sys:
            continue
        mine = [p for p in pr["project_id"] if psys[p] == s]
        rows.append({
            "type": "system", "id": s, "name": name, "system_id": s, "org_id": "", "category": np.nan, "kind": "",
            "cost": float(sum(cost.get(p, 0.0) for p in mine)),
            "need_weighted_benefit": sum(unmet.get(p, 0.0) for p in mine), "counts_as_unmet": False,
            "alternative_funded": "", "withdrawn": False,
        })
    order = {"system": 0, "organisation": 1, "project": 2}
    frame = pd.DataFrame(rows, columns=["type", "id", "name", "system_id", "org_id", "category", "kind", "cost",
                                        "need_weighted_benefit", "counts_as_unmet", "alternative_funded",
                                        "withdrawn"])
    why = reasons if reasons is not None else unfunded_reasons(outcome)
    code = dict(zip(why["project_id"], why["code"]))
    text = dict(zip(why["project_id"], why["reason"]))
    alone = set(why.loc[cannot_be_funded(why), "project_id"])
    is_project = frame["type"] == "project"
    frame["reason_code"] = frame["id"].map(code).where(is_project, "")
    frame["fundable_in_some_plan"] = (~frame["id"].isin(alone)).where(is_project, pd.NA)
    frame["reason"] = frame["id"].map(text).where(is_project, "")
    if frame.empty:
        return frame
    frame["category"] = frame["category"].astype("Int64")     # 0-3, empty for systems and system-wide projects
    frame["_o"] = frame["type"].map(order)
    frame = frame.sort_values(["_o", "need_weighted_benefit", "id"], ascending=[True, False, True])
    return frame.drop(columns="_o").reset_index(drop=True)


def trusts_table(outcome: Outcome, reasons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every organisation: category, platform, what it asked (total cost, national and local; each alternatives
    group counted once, at its dearest option), what was funded (national money, and in total with the local
    match: comparable with ``asked``), its funded bids and its unfunded bids with the reason code of each."""
    sc = outcome.scenario
    inst = sc.instance
    starts = outcome.decisions.starts if outcome.decisions is not None else {}
    money, local = outcome.accounts.national(), outcome.accounts.local()
    cost = inst.costs.assign(total=inst.costs["capital"] + inst.costs["revenue"]).groupby("project_id")["total"].sum()
    region = dict(zip(inst.systems["system_id"], inst.systems["region"]))
    why = reasons if reasons is not None else unfunded_reasons(outcome)
    code = dict(zip(why["project_id"], why["code"]))
    bids: dict[str, list[str]] = {}
    group: dict[str, str] = {}
    for p, o, g in inst.projects[["project_id", "org_id", "group"]].itertuples(index=False):
        if isinstance(o, str):
            bids.setdefault(o, []).append(p)
        group[p] = g if isinstance(g, str) and g else ""
    rows = []
    for o, name, s, cat, plat in inst.organisations[["org_id", "name", "system_id", "category",
                                                     "platform"]].itertuples(index=False):
        mine = bids.get(o, [])
        asked_by_group: dict[str, float] = {}
        for p in mine:
            key = group[p] or p
            asked_by_group[key] = max(asked_by_group.get(key, 0.0), float(cost.get(p, 0.0)))
        funded = [p for p in mine if p in starts]
        rows.append({
            "org_id": o, "name": name, "system_id": s, "region": region.get(s, ""), "category": int(cat),
            "platform": plat if isinstance(plat, str) else "", "bids": len(mine),
            "asked": sum(asked_by_group.values()), "funded_national": sum(money.get(p, 0.0) for p in funded),
            "funded_total": sum(money.get(p, 0.0) + local.get(p, 0.0) for p in funded),
            "funded_bids": ";".join(sorted(funded)),
            "unfunded_bids": ";".join(f"{p}: {code.get(p, '')}" for p in sorted(p for p in mine if p not in starts)),
        })
    frame = pd.DataFrame(rows, columns=["org_id", "name", "system_id", "region", "category", "platform", "bids",
                                        "asked", "funded_national", "funded_total", "funded_bids", "unfunded_bids"])
    return frame.sort_values(["category", "org_id"]).reset_index(drop=True)


def tables(outcome: Outcome, fair_share_envelope: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """All output tables of an outcome as DataFrames: plan, budget, systems, misses, trusts (fair shares on
    ``fair_share_envelope`` when given: a baseline's envelope)."""
    why = unfunded_reasons(outcome)
    return {
        "plan": plan_table(outcome),
        "budget": budget_table(outcome),
        "systems": systems_table(outcome, fair_share_envelope),
        "misses": misses_table(outcome, why),
        "trusts": trusts_table(outcome, why),
    }


def summary(outcome: Outcome) -> dict[str, object]:
    """The run's figures as plain JSON-able data (no timings: see ``timings``)."""
    sc = outcome.scenario
    acc = outcome.accounts
    assert outcome.audit is not None
    assert outcome.decisions is not None
    budget = budget_table(outcome)
    return {
        "scenario": sc.name,
        "scenario_id": sc.identity,
        "scenario_path": str(Path(sc.path).resolve()),
        "description": sc.description,
        "instance": sc.instance.name,
        "model": sc.policy.name,
        "model_path": sc.model_path,
        "status": outcome.status.value,
        "termination": outcome.termination.value,
        "objective": round(outcome.objective, 6),
        "bound": None if outcome.bound is None else round(outcome.bound, 6),
        "gap": None if outcome.gap is None else round(outcome.gap, 8),
        "solver": {"backend": outcome.backend, "version": outcome.solver_version,
                   "options": {k: v for k, v in outcome.options.items() if k != "verbose"}},
        "model_size": outcome.model_size,
        "audit": {"passed": outcome.audit.ok, "objective_recomputed": round(outcome.audit.objective, 6)},
        "envelope": [
            {"year": int(r.year), "pot": r.pot, "envelope": round(r.envelope, 6), "spent": round(r.spent, 6),
             "unspent": round(r.unspent, 6)} for r in budget.itertuples()
        ],
        "objective_kind": sc.policy.objective.kind,
        "allocation": sc.policy.allocation.method,
        "rules": rules_in_force(sc.policy),
        "fair_share": {"mode": sc.policy.fair_share.mode, "basis": sc.policy.fair_share.basis,
                       "floor": sc.policy.fair_share.floor},
        "tiers": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.items() if k != "seconds"}
                  for t in outcome.tiers],
        "funded_projects": len(outcome.decisions.starts),
        "candidate_projects": int(len(sc.instance.projects)),
        "withdrawn": list(outcome.decisions.withdrawn),
        "warnings": plan_warnings(outcome),
        "revenue_tail": {str(y): round(v, 6) for y, v in acc.revenue_tail.items()},
        "versions": {
            "envelope-solver": _package_version("envelope-solver"),
            "python": _platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }


def rules_in_force(policy: Policy) -> list[str]:
    """The policy's rules as short sentences a planner can check (the model's settings, not its maths)."""
    p = policy
    o = p.objective
    method = p.allocation.method
    if method != "optimise":
        goal = {"greedy": f"rule-based: greedy by {p.allocation.order}", "capitation": "rule-based: capitation",
                "equal-shares": "rule-based: the Method of Equal Shares"}[method]
    else:
        goal = {"benefit": "maximise need-weighted benefit", "roi": "maximise return on investment",
                "max-min": "maximise the worst-off system's share of its need met",
                "lexicographic": "criteria in turn: " + ", ".join(getattr(o, "tiers", [])),
                "weighted": "a weighted sum of: " + ", ".join(getattr(o, "weights", {}))}.get(o.kind, o.kind)
    weights = ", ".join(f"{k}: {v:g}" for k, v in sorted(p.need.category_weights.items()))
    out = [f"Objective: {goal}; need weights by category {weights}",
           "Each year's money is spent that year (no carry-over)" if p.budget.carry_over == 0 else
           f"{p.budget.carry_over:.0%} of a year's unspent money carries forward",
           f"Access fee {p.fee.rate:.1%}, paid by the " + (
               f"system ({p.fee.system_share:.0%}) and the centre" if p.fee.payer == "split" else p.fee.payer)]
    if p.budget.capital_to_revenue > 0:
        out.append(f"Up to {p.budget.capital_to_revenue:.0%} of capital may move to revenue")
    out.append({"system": "Run costs after go-live come out of the system's revenue headroom",
                "centre": "Run costs after go-live are paid from the national revenue pot",
                "ignore": "Run costs after go-live are not counted"}[p.revenue_consequences.payer])
    out.append("Local match funding within each system's capacity" if p.match_funding.enabled
               else "No local match funding")
    fs = p.fair_share
    if fs.mode != "off":
        what = {"floor": f"at least {fs.floor:.0%} of fair share", "cap": f"at most {fs.cap:g}× fair share",
                "band": f"between {fs.floor:.0%} and {fs.cap:g}× fair share",
                "deviation": "penalised for any deviation from fair share"}[fs.mode]
        how = "a hard rule" if fs.enforcement == "hard" else f"a penalty of {fs.penalty:g} points per £m"
        out.append(f"Fair shares ({fs.basis} basis): each system {what}, {how}")
    else:
        out.append("Fair shares not enforced")
    out.append({"off": "Any EPR platform in any system", "no-divergence": "No new EPR platform where a system has one",
                "single": "One EPR platform per system",
                "penalty": f"A penalty of {p.standardisation.penalty:g} points per new platform in a system"}[
        p.standardisation.mode])
    out.append({"keep": "Committed MoUs are kept", "withdrawable": "Committed MoUs may be withdrawn at a cost",
                "ignore": "Committed MoUs are ignored"}[p.commitments.mode])
    off = [name for name, t in (("mandatory items", p.mandatory), ("dependencies", p.dependencies),
                                ("alternatives", p.alternatives)) if not t.enabled]
    out.append("Mandatory items, dependencies and alternatives apply" if not off else
               "Switched off: " + ", ".join(off))
    return out


def timings(outcome: Outcome) -> dict[str, float]:
    """Wall-clock figures of the run (kept apart so that other outputs are reproducible byte for byte)."""
    return {"build_seconds": round(outcome.build_seconds, 4), "solve_seconds": round(outcome.solve_seconds, 4)}


def format_summary(outcome: Outcome, t: dict[str, pd.DataFrame] | None = None, fair_share_basis: str = "") -> str:
    """The short text summary printed by ``envelope solve`` (``fair_share_basis``: what fair shares were taken
    on, when not the scenario's own envelope, e.g. "the baseline's envelope")."""
    sc = outcome.scenario
    t = t or tables(outcome)
    s_ = safe_text  # every piece of text from the data (names, ids) is printed through it
    gap = "n/a" if outcome.gap is None else f"{100 * outcome.gap:.3f}%"
    bound = "n/a" if outcome.bound is None else f"{round(outcome.bound, 1) + 0.0:,.1f}"  # never "-0.0"
    lines = [
        f"Scenario {s_(sc.name)} — instance {s_(sc.instance.name)}, model {s_(sc.policy.name)}",
        f"Status: {outcome.status.value} (termination: {outcome.termination.value}); "
        f"gap {gap}; objective {outcome.objective:,.1f}, bound {bound}",
        f"Objective: {objective_unit(sc)}",
        f"Solver: {' '.join(filter(None, (outcome.backend, outcome.solver_version)))}; "
        f"build {outcome.build_seconds:.2f} s, "
        f"solve {outcome.solve_seconds:.2f} s; {outcome.model_size['integer_columns']} binaries, "
        f"{outcome.model_size['rows']} rows; plan audit passed",
    ]
    if outcome.status.value == "heuristic":
        lines.append(f"RULE-BASED PLAN ({s_(sc.policy.allocation.method)}): made by the policy's rule, not "
                     "optimised; audited, with no bound claimed")
    elif outcome.status.value != "optimal":
        unproved = [str(t_["criterion"]) for t_ in outcome.tiers if not t_["proved"]]
        if unproved and outcome.termination.value == "optimal":
            lines.append(f"NOT PROVED OPTIMAL: tier(s) {', '.join(unproved)} were not proved within their share of the "
                         f"time limit; the last tier is proved within the gap for the tiers as kept")
        else:
            lines.append(f"NOT PROVED OPTIMAL: the solver stopped ({outcome.termination.value}); this plan is "
                         f"feasible and audited, and no plan is better than the bound {bound}")
    for t_ in outcome.tiers:
        lines.append(f"Tier {t_['criterion']}: best {float(t_['optimum']):,.4g}"  # type: ignore[arg-type]
                     f"{'' if t_['proved'] else ' (not proved)'}, kept at least {float(t_['floor']):,.4g} "  # type: ignore[arg-type]
                     f"(tolerance {float(t_['tolerance']):.1%}); this plan {float(t_.get('achieved', 0.0)):,.4g}")  # type: ignore[arg-type]
    for w in plan_warnings(outcome):
        lines.append(f"WARNING: {s_(w)}")
    lines += [
        "",
        "Envelope (£m)      envelope     spent   unspent",
    ]
    for r in t["budget"].itertuples():
        lines.append(f"  {fy(r.year)} {r.pot:<8} {r.envelope:10,.1f} {r.spent:9,.1f} {r.unspent:9,.1f}")
    carry = sc.policy.budget.carry_over
    for r in t["budget"].itertuples():
        if r.unspent > max(0.5, 0.005 * r.envelope):      # not the odd £k a whole-£k plan cannot use
            fate = "lost (no carry-over)" if carry == 0 or r.year == sc.instance.years[-1] else \
                f"{carry:.0%} of a year's unspent money may be carried"
            flex = "" if r.pot == "revenue" or sc.policy.budget.capital_to_revenue > 0 else \
                "; no capital-to-revenue flexibility"
            lines.append(f"  UNSPENT: £{r.unspent:,.1f}m of {fy(r.year)} {r.pot}, {fate}{flex}")
    tail = outcome.audit.accounts.revenue_tail if outcome.audit.accounts else {}
    if tail:
        first = min(tail)
        lines.append(f"  revenue tail left behind: £{tail[first]:,.1f}m in {fy(first)}, "
                     f"£{sum(tail.values()):,.1f}m to {fy(max(tail))}")
    n_f, n_c = len(outcome.decisions.starts), len(sc.instance.projects)
    lines += ["", f"Funded {n_f} of {n_c} candidate projects"
              + (f"; withdrawn commitments: {', '.join(s_(w) for w in outcome.decisions.withdrawn)}"
                 if outcome.decisions.withdrawn else "")]
    m = t["misses"]
    sysm = m[m["type"] == "system"] if not m.empty else m
    lines.append(f"Systems with nothing funded: {len(sysm)}"
                 + (": " + ", ".join(f"{s_(r.id)} {s_(r.name)}" for r in sysm.itertuples()) if len(sysm) else ""))
    if not m.empty:
        low = m[(m["type"] == "organisation") & (m["category"] <= 1)]
        lines.append(f"Category 0/1 trusts with nothing funded: {len(low)}")
        asked = dict(zip(t["trusts"]["org_id"], t["trusts"]["asked"])) if "trusts" in t else {}
        for r in low.head(15).itertuples():
            lines.append(f"  {s_(r.id)} {s_(r.name)} (category {int(r.category)}, {s_(r.system_id)}): "
                         f"£{asked.get(r.id, r.cost):,.1f}m asked (alternatives counted once)")
        if len(low) > 15:
            lines.append(f"  … and {len(low) - 15} more (misses.csv)")
        proj = m[(m["type"] == "project") & m["counts_as_unmet"]]
        others = int(((m["type"] == "project") & ~m["counts_as_unmet"]).sum())
        note = (f"; {others} other unfunded project{'' if others == 1 else 's'} are alternatives in a group, "
                "whose need is counted once" if others else "")
        fundable = proj[proj["fundable_in_some_plan"].astype(bool)]
        lines.append(f"Unfunded: {len(proj)} project{'' if len(proj) == 1 else 's'} counted as unmet{note}"
                     + ("; the largest need-weighted benefit some plan could fund:" if len(fundable) else
                        "; none of them could be funded by any plan"))
        for r in fundable.head(5).itertuples():
            lines.append(f"  {s_(r.id)} {s_(r.name)}: £{r.cost:,.1f}m, value {r.need_weighted_benefit:,.1f} "
                         f"— {s_(r.reason_code)}")
        codes = m.loc[m["type"] == "project", "reason_code"].value_counts()
        if len(codes):
            lines.append("Why unfunded (misses.csv, docs/reasons.md): "
                         + ", ".join(f"{s_(k)} {v}" for k, v in codes.items()))
    s = t["systems"]
    fs = sc.policy.fair_share
    floor = fs.floor if fs.mode in ("floor", "band") else 0.5
    what = f"{floor:.0%} of their fair share" if fs.mode in ("floor", "band") else "half their fair share"
    if fair_share_basis:
        what += f" on {fair_share_basis}"
    below = s[s["allocation_to_fair_share"] < floor - 1e-9].sort_values("allocation_to_fair_share")
    lines.append(f"Systems below {what}: {len(below)}"
                 + (": " + ", ".join(f"{s_(r.name)} {r.allocation_to_fair_share:.0%}"
                                     for r in below.head(8).itertuples())
                    + (f" … and {len(below) - 8} more (systems.csv)" if len(below) > 8 else "") if len(below) else ""))
    return "\n".join(lines)


def objective_unit(scenario: Scenario) -> str:
    """What the objective counts, in words, with its unit."""
    obj = scenario.policy.objective
    years = f"{obj.horizon_years} year{'s' if obj.horizon_years != 1 else ''}"
    horizon = f"discounted at {obj.discount_rate:.1%} over {years} from {scenario.instance.years[0]}"
    words = {
        "benefit": f"need-weighted benefit points (each funded project's benefit a year once live × its need "
                   f"weight, {horizon})",
        "roi": f"£m of net financial return (savings less national and local cost and run costs, {horizon})",
        "min-share": "the worst-off system's share of its need met (0-1)",
        "weighted": "a weighted score: each criterion as a share of what it could reach with unlimited money",
    }
    kind = obj.kind
    if kind in ("max-min", "lexicographic"):
        from solver.rules.objective import all_tiers

        last = all_tiers(scenario)[-1]
        kind = "benefit" if last == "benefit" or last.startswith("category-") else last
        return f"the last tier, {last}: " + words[kind] + (f" of category {last[-1]} trusts"
                                                          if last.startswith("category-") else "")
    text = words[kind]
    if kind == "benefit" and (obj.spend_weight or scenario.policy.fair_share.mode != "off"
                              or scenario.policy.standardisation.mode == "penalty"):
        text += ", less the policy's penalties"
    return text


# --------------------------------------------------------------------------- warnings


def plan_warnings(outcome: Outcome) -> list[str]:
    """What a planner must not miss in a plan that looks fine: a plan that funds nothing, and a rule that makes
    every project unaffordable on its own (from the tables, no extra solve). Also in summary.json."""
    sc = outcome.scenario
    if outcome.decisions is None or outcome.decisions.starts:
        return []
    n = len(sc.instance.projects)
    out = [f"the plan funds none of the {n} candidate project{'' if n == 1 else 's'} (objective "
           f"{outcome.objective:,.1f}): nothing is allocated"]
    out += unaffordable_alone(sc)
    return out


def unaffordable_alone(scenario: Scenario) -> list[str]:
    """Rules that make every project unaffordable on its own: each project, alone, at every start in its window,
    checked against its system's local capital and revenue headroom per year. Names the rule and what to change;
    empty when some project fits."""
    v = view(scenario)
    pol = scenario.policy
    rate = pol.fee.rate
    sys_share = {"system": 1.0, "centre": 0.0, "split": pol.fee.system_share}[pol.fee.payer]
    run_by_system = pol.revenue_consequences.payer == "system"
    last = v.years[-1]
    parts = ("fee", "run", "match")  # what a system pays for a project: each is a rule's doing

    def fits(p: Project, without: tuple[str, ...]) -> bool:
        m = p.match if pol.match_funding.enabled and "match" not in without else 0.0
        cap, head = v.local_capital[p.system], v.headroom[p.system]
        for start in range(p.earliest, p.latest + 1):
            if start + max(p.profile, default=0) > last:
                continue
            ok = True
            for y in v.years:
                c, r = p.profile.get(y - start, (0.0, 0.0))
                run = p.run_cost if run_by_system and y >= start + p.duration else 0.0
                fee = rate * sys_share * (1 - m) * (c + r)
                local_cap, local_rev = m * c, m * r
                used = local_rev + (0.0 if "fee" in without else fee) + (0.0 if "run" in without else run)
                if local_cap > cap + 1e-9 or used > head + 1e-9:
                    ok = False
                    break
            if ok:
                return True
        return False

    projects = list(v.projects.values())
    if not projects or any(fits(p, ()) for p in projects):
        return []
    zero = sum(1 for h in v.headroom.values() if h <= 0)
    heads = f"revenue_headroom is 0 in {zero} of {len(v.headroom)} systems" if zero else \
        "systems' revenue_headroom and local_capital are too small"
    needs = {
        "fee": (f"the system's part of the access fee (fee.payer = \"{pol.fee.payer}\", rate {rate:.1%})",
                'fee.payer = "centre"'),
        "run": ('run costs once live (revenue_consequences.payer = "system")', 'revenue_consequences.payer = "centre"'),
        "match": ("the local match (match_share of each cost)", "match_funding.enabled = false (or lower match_share)"),
    }
    # the fewest of the system's charges whose removal lets some project fit on its own
    for size in (1, 2, 3):
        for combo in combinations([k for k in parts if k != "run" or run_by_system], size):
            if any(fits(p, combo) for p in projects):
                what = ", ".join(needs[k][0] for k in combo)
                change = " and ".join(needs[k][1] for k in combo)
                return [f"no project is affordable on its own: {heads}, and every project needs its system to pay "
                        f"{what} in some year: set {change} in the model or [overrides], or raise revenue_headroom "
                        "(and local_capital) in systems.csv"]
    return ["no project is affordable on its own within its system's local_capital and revenue_headroom"]
