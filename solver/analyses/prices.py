"""Price of each rule: re-solve with one active rule family relaxed at a time and report the
objective gained (what the rule costs) and which projects would change.

Every relaxation below widens the set of allowed plans (and never lowers a plan's objective),
so the base plan stays feasible: it warm-starts each re-solve and the true gain is ≥ 0, which
clips each band at 0. A gain whose band still reaches 0, and two rules whose order the bands do
not settle, are re-solved tighter before anything is ranked.

What "relaxed" means, family by family (only families active in the scenario are priced):

- ``standardisation``: mode → off (any platform may be funded anywhere).
- ``fair_share``: mode → off (no floors, caps or penalties).
- ``carry_over``: fraction carried → 1 (every unspent £ may be carried to the next year).
- ``capital_to_revenue``: fraction → 1 (capital may fund revenue freely).
- ``match_funding``: systems' local match *capital* limits removed (``local_capital`` unlimited).
  The centre still pays only its (1 − match) share: switching match funding off instead would
  make the centre pay the local share too — a change of who pays, not a relaxation, and it
  usually *lowers* the objective. The local share of revenue stays in the revenue headroom.
- ``revenue_headroom``: systems' local revenue headroom removed (``revenue_headroom`` unlimited);
  covers match revenue, run costs and fees a system must afford.
- ``run_costs``: payer → ignore (run costs after go-live need no funding).
- ``fee``: access-fee rate → 0.
- ``commitments``: keep → withdrawable at the withdrawal cost, and (separately) → ignore (committed
  projects become ordinary candidates, free to drop); withdrawable → ignore.
- ``mandatory``, ``dependencies``, ``alternatives``: switched off.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from solver.analyses.engine import Analysis, Point
from solver.analyses.value import (
    Band,
    Comparison,
    SolveTask,
    base_point,
    certain_ranks,
    compare,
    fmt_band,
    jsonable,
    plan_changes,
    project_system_map,
    refine,
    refine_settings,
    scenario_summary,
    solve_point,
    solve_record,
    solver_summary,
    time_limited,
)
from solver.data.scenario import Scenario
from solver.run.executor import run_all

UNLIMITED_GBPM = 1e6
"""A local limit that never binds (£1tn a year), used to remove local capital and headroom limits."""


@dataclass
class Relaxation:
    """One rule family relaxed: its name, what was changed, and the relaxed scenario."""

    family: str
    relaxed: str
    scenario: Scenario


def _with_systems(sc: Scenario, column: str, value: float) -> Scenario:
    systems = sc.instance.systems.copy()
    systems[column] = value
    return dataclasses.replace(sc, instance=dataclasses.replace(sc.instance, systems=systems))


def relaxations(scenario: Scenario) -> tuple[list[Relaxation], dict[str, str]]:
    """Relaxations of every active rule family, and the inactive families with the reason."""
    pol, inst = scenario.policy, scenario.instance
    pr = inst.projects
    out: list[Relaxation] = []
    inactive: dict[str, str] = {}

    def add(family: str, relaxed: str, sc: Scenario) -> None:
        out.append(Relaxation(family, relaxed, sc))

    std = pol.standardisation.mode
    if std == "off":
        inactive["standardisation"] = "mode off"
    elif not pr["platform"].fillna("").astype(str).str.len().gt(0).any():
        inactive["standardisation"] = "no project has a platform"
    else:
        add("standardisation", f"mode {std} → off", scenario.with_overrides({"standardisation": {"mode": "off"}}))
    fs = pol.fair_share
    if fs.mode == "off":
        inactive["fair_share"] = "mode off"
    else:
        add("fair_share", f"mode {fs.mode} ({fs.enforcement}) → off",
            scenario.with_overrides({"fair_share": {"mode": "off"}}))
    multi_year = len(inst.years) > 1
    if pol.budget.carry_over >= 1:
        inactive["carry_over"] = "all unspent money already carries over"
    elif not multi_year:
        inactive["carry_over"] = "single-year envelope"
    else:
        add("carry_over", f"carry-over {pol.budget.carry_over:g} → 1 (no money lost at year end)",
            scenario.with_overrides({"budget": {"carry_over": 1.0}}))
    if pol.budget.capital_to_revenue >= 1:
        inactive["capital_to_revenue"] = "capital already funds revenue freely"
    else:
        add("capital_to_revenue", f"capital-to-revenue {pol.budget.capital_to_revenue:g} → 1",
            scenario.with_overrides({"budget": {"capital_to_revenue": 1.0}}))
    if not pol.match_funding.enabled:
        inactive["match_funding"] = "match funding off"
    elif not (pr["match_share"].astype(float) > 0).any():
        inactive["match_funding"] = "no project needs match funding"
    else:
        add("match_funding", "local match capital unlimited (centre still pays only its share)",
            _with_systems(scenario, "local_capital", UNLIMITED_GBPM))
    add("revenue_headroom", "local revenue headroom unlimited",
        _with_systems(scenario, "revenue_headroom", UNLIMITED_GBPM))
    if pol.revenue_consequences.payer == "ignore":
        inactive["run_costs"] = "run costs already ignored"
    elif not (pr["run_cost"].astype(float) > 0).any():
        inactive["run_costs"] = "no project has a run cost"
    else:
        add("run_costs", f"run costs paid by {pol.revenue_consequences.payer} → ignored",
            scenario.with_overrides({"revenue_consequences": {"payer": "ignore"}}))
    if pol.fee.rate <= 0:
        inactive["fee"] = "rate 0"
    else:
        add("fee", f"access fee {pol.fee.rate:.1%} ({pol.fee.payer}) → 0",
            scenario.with_overrides({"fee": {"rate": 0.0}}))
    committed = pr["committed_start"].notna().any()
    mode = pol.commitments.mode
    if mode == "ignore":
        inactive["commitments"] = "mode ignore"
    elif not committed:
        inactive["commitments"] = "no committed project"
    else:
        if mode == "keep":
            add("commitments", "keep → withdrawable at the withdrawal cost",
                scenario.with_overrides({"commitments": {"mode": "withdrawable"}}))
        add("commitments", f"{mode} → ignore (committed projects are ordinary candidates)",
            scenario.with_overrides({"commitments": {"mode": "ignore"}}))
    for fam, has, what, relaxed in (
            ("mandatory", pr["mandatory"].astype(bool).any(), "no mandatory project",
             "mandatory projects become optional"),
            ("dependencies", not inst.dependencies.empty, "no dependency", "dependencies ignored"),
            ("alternatives", pr["group"].fillna("").astype(str).str.len().gt(0).any(), "no alternatives group",
             "alternatives may be funded together")):
        if not getattr(pol, fam).enabled:
            inactive[fam] = "off"
        elif not has:
            inactive[fam] = what
        else:
            add(fam, relaxed, scenario.with_overrides({fam: {"enabled": False}}))
    return out, inactive


def rule_prices(scenario: Scenario, *, workers: int = 1, tighten: bool = True,
                refine_gaps: Sequence[float] | None = None, refine_time_limit: float | None = None,
                **solver: object) -> Analysis:
    """What each active rule costs: the objective gained by relaxing it alone, with its band, the
    projects that would come in, go out or move, and a rank that counts only proven differences.

    Tables: ``rules`` (one row per relaxation, ranked by gain) and ``changes`` (one row per project
    whose plan changes under a relaxation). ``workers`` > 1 solves on a process pool; gains whose
    band contains 0 (and rules whose order is unsettled) are re-solved at ``refine_gaps`` within
    ``refine_time_limit`` s when ``tighten``.
    """
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    wall0 = time.perf_counter()
    base = base_point(sc)
    rel, inactive = relaxations(sc)
    keys = [f"{r.family}: {r.relaxed}" for r in rel]
    tasks: dict[str, SolveTask] = {"base": SolveTask(sc, "base")}
    for k, r in zip(keys, rel):
        tasks[k] = SolveTask(r.scenario, k, start=base.decisions())
    results = run_all(solve_point, [tasks[k] for k in keys], workers=workers, label="rule prices")
    points: dict[str, Point] = {"base": base, **dict(zip(keys, results))}
    comparisons: list[Comparison] = [(k, "base", True) for k in keys]
    comparisons += [(a, b, False) for i, a in enumerate(keys) for b in keys[i + 1:]]
    log: list[dict[str, object]] = []
    if tighten and gaps:
        refine(points, tasks, comparisons, gaps=gaps, time_limit=tl, workers=workers, log=log)

    ranks = certain_ranks(keys, points)
    psys = project_system_map(sc)
    rows, crows = [], []
    for k, r in zip(keys, rel):
        p = points[k]
        b = compare(p, points["base"], nonnegative=True)
        ch = plan_changes(points["base"], p, psys)
        rows.append({
            "family": r.family, "relaxed": r.relaxed, "status": p.status, "objective": p.objective,
            "bound": p.bound, "gap": p.gap, "gain": b.value, "gain_low": b.low, "gain_high": b.high,
            "verdict": b.verdict, "rank": ranks[k][0], "tied_with": "; ".join(ranks[k][1]),
            "projects_in": sum(c["change"] == "in" for c in ch), "projects_out": sum(c["change"] == "out" for c in ch),
            "projects_moved": sum(c["change"] == "moved" for c in ch),
        })
        crows += [{"family": r.family, "relaxed": r.relaxed, **c} for c in ch]
    rules = pd.DataFrame(rows, columns=["family", "relaxed", "status", "objective", "bound", "gap", "gain",
                                        "gain_low", "gain_high", "verdict", "rank", "tied_with", "projects_in",
                                        "projects_out", "projects_moved"])
    rules = rules.sort_values(["rank", "gain", "family", "relaxed"], ascending=[True, False, True, True],
                              kind="stable").reset_index(drop=True)
    changes = pd.DataFrame(crows, columns=["family", "relaxed", "project_id", "system_id", "change", "base_start",
                                           "new_start"])
    for col in ("base_start", "new_start"):
        changes[col] = changes[col].astype("Int64")
    summary = {
        "analysis": "rule_prices",
        "scenario": scenario_summary(sc),
        "parameters": {"workers": workers, "tighten": tighten, "refine_gaps": gaps, "refine_time_limit": tl,
                       "unlimited_local_limit_gbpm": UNLIMITED_GBPM},
        "solver": solver_summary(sc),
        "base": solve_record(base),
        "solves": [solve_record(points[k], "relaxed") for k in keys],
        "inactive": inactive,
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited(points, log),
        "notes": ["gain = objective with the rule relaxed − base objective (≥ 0: each relaxation only widens "
                  "the plans allowed)", "ranks count only proven differences; '=' shares a rank"],
    }
    summary["timing"] = {"wall_seconds": time.perf_counter() - wall0,
                         "solve_seconds": {k: p.solve_seconds for k, p in sorted(points.items())},
                         "refine_seconds": [r["seconds"] for r in log]}
    text = _text(sc, points["base"], rules, inactive)
    return Analysis(name="rules", tables={"rules": rules, "changes": changes}, summary=jsonable(summary),  # type: ignore[arg-type]
                    text=text)


def _text(sc: Scenario, base: Point, rules: pd.DataFrame, inactive: dict[str, str]) -> str:
    lines = [f"Price of each rule — scenario {sc.name} ({sc.policy.name}): base objective {base.objective:,.2f} "
             f"(gap {100 * base.gap:.4f}%)", "",
             "What each rule costs — objective gained if it alone were relaxed [band]; '=' not separable:"]
    for r in rules.itertuples():
        tie = "=" if r.tied_with else " "
        if r.status in ("infeasible", "no_solution"):
            lines.append(f"  {tie}{r.rank:>2}. {r.family} — {r.relaxed}: no plan ({r.status})")
            continue
        band = fmt_band(Band(r.gain, r.gain_low, r.gain_high, r.verdict))
        moves = f"{r.projects_in} in, {r.projects_out} out, {r.projects_moved} moved"
        lines.append(f"  {tie}{r.rank:>2}. {r.family} — {r.relaxed}: {band} ({r.verdict}); {moves}")
    free = rules[rules["verdict"] == "zero"]
    if len(free):
        lines += ["", f"Free (proven to cost nothing here): {', '.join(free['family'])}"]
    if inactive:
        lines += ["", "Not active in this scenario: " + "; ".join(f"{k} ({v})" for k, v in inactive.items())]
    undet = rules[rules["verdict"] == "undetermined"]
    if len(undet):
        lines += ["", f"{len(undet)} price(s) remain undetermined (band reaches 0): raise the refine time limit."]
    if math.isfinite(base.gap) and base.gap > 0:
        lines.append(f"Bands come from each solve's proven bound; base gap {100 * base.gap:.4f}%.")
    return "\n".join(lines)
