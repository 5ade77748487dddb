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

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from solver.analyses.engine import (
    Analysis,
    Comparison,
    Context,
    Task,
    analysis_context,
    base_outcome,
    bound_of,
    certain_ranks,
    compare,
    gap_of,
    header,
    jsonable,
    plan_changes,
    raise_failures,
    refine,
    refine_settings,
    solve_many,
    solve_record,
    time_limited,
)
from solver.data import variants
from solver.data.scenario import Scenario
from solver.pipeline.accounts import project_system
from solver.pipeline.outcome import Outcome
from solver.rules import price_relaxations
from solver.rules.local_funding import UNLIMITED_GBPM


@dataclass
class Relaxation:
    """One rule family relaxed: its name, what was changed, and the relaxed scenario."""

    family: str
    relaxed: str
    scenario: Scenario


def relaxations(scenario: Scenario) -> tuple[list[Relaxation], dict[str, str]]:
    """Relaxations of every active rule family, and the inactive families with the reason (each
    family's relaxation is declared in ``solver/rules/<family>.py`` as variant operations)."""
    priced, inactive = price_relaxations(scenario)
    return [Relaxation(r.family, r.relaxed, variants.apply(scenario, r.ops)) for r in priced], inactive


def rule_prices(scenario: Scenario, *, workers: int = 1, tighten: bool = True,
                refine_gaps: Sequence[float] | None = None, refine_time_limit: float | None = None,
                context: Context | None = None, **solver: object) -> Analysis:
    """What each active rule costs: the objective gained by relaxing it alone, with its band, the
    projects that would come in, go out or move, and a rank that counts only proven differences.

    Every relaxation is solved warm-started from the scenario's own plan (``base_outcome``) and
    compared with it. Tables: ``rules`` (one row per relaxation, ranked by gain) and ``changes``
    (one row per project whose plan changes under a relaxation). Runs on ``context`` (or a new
    one with ``workers``); gains whose band contains 0 (and rules whose order is unsettled) are
    re-solved at ``refine_gaps`` within ``refine_time_limit`` s when ``tighten``.
    """
    sc = scenario.with_solver(**solver)
    gaps, tl = refine_settings(sc, refine_gaps, refine_time_limit)
    wall0 = time.perf_counter()
    with analysis_context(context, workers) as ctx:
        base = base_outcome(sc, ctx)
        rel, inactive = price_relaxations(sc)
        keys = [f"{r.family}: {r.relaxed}" for r in rel]
        tasks: dict[str, Task] = {"base": Task(sc, (), "base")}
        for k, r in zip(keys, rel):
            tasks[k] = Task(sc, r.ops, k, start=base.decisions)   # declarative: the ops travel, not tables
        results = solve_many([tasks[k] for k in keys], ctx, "rule prices")
        raise_failures(results)
        outs: dict[str, Outcome] = {"base": base, **dict(zip(keys, results))}
        comparisons: list[Comparison] = [(k, "base", True) for k in keys]
        comparisons += [(a, b, False) for i, a in enumerate(keys) for b in keys[i + 1:]]
        log: list[dict[str, object]] = []
        if tighten and gaps:
            refine(outs, tasks, comparisons, gaps=gaps, time_limit=tl, context=ctx, log=log, label="rule prices")
        base = outs["base"]        # refined: the summary reads the same base plan as the rows

    ranks = certain_ranks(keys, outs)
    psys = project_system(sc)
    rows, crows = [], []
    for k, r in zip(keys, rel):
        o = outs[k]
        b = compare(o, outs["base"], nonnegative=True)
        ch = plan_changes(outs["base"], o, psys)
        rows.append({
            "family": r.family, "relaxed": r.relaxed, "status": o.status.value, "objective": o.objective,
            "bound": bound_of(o), "gap": gap_of(o), "gain": b.value, "gain_low": b.low, "gain_high": b.high,
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
    summary = header(sc, "rule_prices", {"workers": ctx.workers, "tighten": tighten, "refine_gaps": gaps,
                                         "refine_time_limit": tl, "unlimited_local_limit_gbpm": UNLIMITED_GBPM})
    summary.update({
        "base": solve_record(base),
        "solves": [solve_record(outs[k], "relaxed", k) for k in keys],
        "inactive": inactive,
        "refinements": [{k: v for k, v in r.items() if k != "seconds"} for r in log],
        "time_limited": time_limited(outs, log),
        "notes": ["gain = objective with the rule relaxed − base objective (≥ 0: each relaxation only widens "
                  "the plans allowed)", "ranks count only proven differences; '=' shares a rank"],
    })
    summary["timing"] = {"wall_seconds": time.perf_counter() - wall0,
                         "solve_seconds": {k: o.solve_seconds for k, o in sorted(outs.items())},
                         "refine_seconds": [r["seconds"] for r in log]}
    return Analysis(name="rules", tables={"rules": rules, "changes": changes},  # type: ignore[arg-type]
                    summary=jsonable(summary))  # type: ignore[arg-type]
